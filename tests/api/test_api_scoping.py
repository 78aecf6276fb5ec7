"""Every portal path that names an object answers 404 to a customer who does not own it.

The test reads the OpenAPI schema, so new endpoints are covered automatically: each path
with a parameter must resolve to a view that declares its owner (``OwnedObjectMixin``);
one that does not fails here until it does. For each such path and each of its methods,
customer A asks for customer B's object and must get 404, and B must not (proving the id
was real). Device endpoints are checked the same way with device keys.
"""

from __future__ import annotations

import re

import pytest
from django.urls import resolve
from drf_spectacular.generators import SchemaGenerator

from accounts import services
from accounts.api.authentication import DeviceKeyAuthentication
from core.api.scoping import OwnedObjectMixin, SharedObjectMixin
from tests.conftest import portal_client_for
from tests.factories import customer_create

pytestmark = pytest.mark.django_db

PARAMETER = re.compile(r"\{(\w+)\}")


def templated_paths() -> list[tuple[str, list[str]]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return [
        (path, [method for method in operations if method in {"get", "put", "patch", "delete", "post"}])
        for path, operations in schema["paths"].items()
        if PARAMETER.search(path)
    ]


def view_class(path_template: str):
    probe = PARAMETER.sub("1", path_template)
    return resolve(probe).func.view_class


def owned_object(view, owner_account):
    """An object of ``view.owned_model`` that belongs to ``owner_account``."""
    if view.owner_user_lookup:
        owner = {view.owner_user_lookup: owner_account.contact.portal_user.user}
    else:
        owner = {view.owner_account_lookup: owner_account}
    return view.owned_model.objects.filter(**owner).first()


@pytest.fixture
def two_customers():
    a = customer_create(first_name="Anna", email="anna@example.com")
    b = customer_create(first_name="Bob", email="bob@example.com")
    for account in (a, b):
        services.address_save(contact=account.contact, data={"kind": "SHIPPING", "line1": "1 Rd", "city": "X", "country": "CY"})
    place_an_order(b)
    give_a_playing_device(b)
    return a, b


def place_an_order(account) -> None:
    """A subscription and a PPV order (UDR) for the account, on the Company ZX catalog and
    billing (the "Normal" scheme invoices every order at once, so B owns an invoice too),
    credited in full (so B owns a credit note)."""
    from billing.demo import demo_billing_load
    from catalogs.demo import demo_catalog_load
    from catalogs.models import ContentTitle
    from subscriptions.services.orders import usage_order_place
    from tests.world import effective_subscription

    demo_catalog_load()
    scheme = demo_billing_load()["scheme"]
    usage_order_place(subscription=effective_subscription(account, scheme), title=ContentTitle.objects.get(code="LOTR"))
    from billing.models import Invoice
    from billing.services.invoicing import credit_note_issue

    credit_note_issue(invoice=Invoice.objects.get(account=account), reason="Did not play")  # B owns a credit note too


def give_a_playing_device(account) -> None:
    """A registered device with a stream session on it (after ``place_an_order``)."""
    from django.utils import timezone

    from catalogs.models import ContentTitle
    from subscriptions.models import StreamSession
    from subscriptions.services.devices import device_register

    device, _key = device_register(account=account, name="Bob's TV", screen="SMART_TV")
    StreamSession.objects.create(account=account, device=device, title=ContentTitle.objects.get(code="LOTR"),
                                 last_heartbeat_at=timezone.now())


def client_for(view, account):
    if DeviceKeyAuthentication in getattr(view, "authentication_classes", []):
        from rest_framework.test import APIClient

        _credential, raw_key = services.device_credential_issue(account=account, label="probe")
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Device {raw_key}")
        return client
    return portal_client_for(account)


def owned_paths() -> list[tuple[str, list[str]]]:
    return [(path, methods) for path, methods in templated_paths() if not issubclass(view_class(path), SharedObjectMixin)]


def test_the_schema_has_paths_with_ids_to_check():
    assert len(owned_paths()) >= 3


def test_shared_paths_are_read_only():
    for path, methods in templated_paths():
        if issubclass(view_class(path), SharedObjectMixin):
            assert set(methods) <= {"get"}, f"{path} is shared by every customer, so it must not change anything"


@pytest.mark.parametrize("path, methods", owned_paths(), ids=lambda value: value if isinstance(value, str) else "")
def test_another_customers_object_is_not_found(two_customers, path, methods):
    customer_a, customer_b = two_customers
    view = view_class(path)
    assert issubclass(view, OwnedObjectMixin), f"{path}: {view.__name__} must declare its owner with OwnedObjectMixin"
    assert view.owner_user_lookup or view.owner_account_lookup, f"{path}: {view.__name__} declares no owner lookup"

    target = owned_object(view, customer_b)
    assert target is not None, f"{path}: the fixture has no {view.owned_model.__name__} for customer B; add one above"
    parameter = PARAMETER.search(path).group(1)
    url_kwarg = "id" if view.lookup_url_kwarg == "pk" else view.lookup_url_kwarg  # the schema spells pk as id
    assert parameter == url_kwarg, f"{path}: URL parameter {parameter} is not the view's lookup_url_kwarg"
    url = path.replace("{" + parameter + "}", str(getattr(target, view.lookup_field)))

    intruder, owner = client_for(view, customer_a), client_for(view, customer_b)
    for method in methods:
        response = getattr(intruder, method)(url, {}, format="json")
        assert response.status_code == 404, f"{method.upper()} {url} as another customer: {response.status_code}"
        assert response.json()["error"]["code"] == "not_found"
    if "get" in methods:
        assert owner.get(url).status_code == 200, f"GET {url} as its owner should work"
    assert view.owned_model.objects.filter(pk=target.pk).exists(), "the intruder's requests must not delete anything"
