"""Portal views declare whose objects they serve.

Every portal view whose URL carries an object id subclasses ``OwnedObjectMixin`` and says
which model the id names and how that model reaches the caller. ``tests/test_api_scoping.py``
walks the OpenAPI schema, finds each such path, and proves another customer's id answers
404; a new endpoint that does not declare its owner fails that test.
"""

from __future__ import annotations

from django.db import models


class OwnedObjectMixin:
    #: the model whose instance the URL's id names
    owned_model: type[models.Model]
    #: the URL kwarg holding the id, and the model field it matches
    lookup_url_kwarg: str = "pk"
    lookup_field: str = "pk"
    #: the path from ``owned_model`` to the auth user who owns it (portal) ...
    owner_user_lookup: str | None = None
    #: ... or to the accounts receivable that owns it (device API)
    owner_account_lookup: str | None = None

    def get_queryset(self):
        """Only the caller's own objects: anything else is simply not found (404)."""
        if getattr(self, "swagger_fake_view", False):
            return self.owned_model.objects.none()
        if self.owner_user_lookup:
            return self.owned_model.objects.filter(**{self.owner_user_lookup: self.request.user})
        if self.owner_account_lookup:
            return self.owned_model.objects.filter(**{self.owner_account_lookup: self.request.user.account})
        raise NotImplementedError(f"{type(self).__name__} must declare owner_user_lookup or owner_account_lookup")


class SharedObjectMixin:
    """Views whose URL names an object every customer may see (a catalog title, a
    package). The scoping test accepts these without an owner, and checks that their
    ``get_queryset`` hides what customers must not see (e.g. unpublished titles)."""

    shared_with_every_customer = True
