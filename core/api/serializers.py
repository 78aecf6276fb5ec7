"""The bases the API's serializers use.

DRF's ``ModelSerializer`` works out its fields from the model — field info, field classes,
their arguments — every time a serializer is used (once per response, and once more for
each nested serializer). That is about a fifth of a small authenticated read. The outcome
depends only on the class (its ``Meta`` and declared fields), so ``ModelSerializer`` here
works it out once per class and hands each use copies (``_fresh``). A class that makes its
fields per request (from its context, say) must not use it.

A plain ``Serializer`` deep-copies its declared fields on every use; ``Serializer`` here
hands out the same cheaper copies (used by the responses of the hottest device paths).
"""

from __future__ import annotations

import copy

from rest_framework import serializers


class ModelSerializer(serializers.ModelSerializer):
    def get_fields(self):
        cls = type(self)
        template = cls.__dict__.get("_fields_template")
        if template is None:
            # Unbound fields, as DRF builds them; a race only builds the same dict twice.
            template = super().get_fields()
            cls._fields_template = template
        return {name: _fresh(field) for name, field in template.items()}


class Serializer(serializers.Serializer):
    def get_fields(self):
        return {name: _fresh(field) for name, field in self._declared_fields.items()}


def _fresh(field):
    """A copy of an unbound template field for one use. A plain field keeps its state in its
    own attributes, set when it is bound, so a shallow copy is a separate field (and ten
    times cheaper than DRF's deep copy). A field that holds another field or serializer
    (a nested serializer, a list of them, a many-related field) binds that one to itself,
    so it gets a deep copy: nothing bound is ever shared between two uses."""
    if isinstance(field, serializers.BaseSerializer) or hasattr(field, "child") or hasattr(field, "child_relation"):
        return copy.deepcopy(field)
    return copy.copy(field)
