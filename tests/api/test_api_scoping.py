"""Every portal path that names an object answers 404 to a customer who does not own it.

The test reads the OpenAPI schema, so new endpoints are covered automatically: each path
with a parameter must resolve to a view that declares its owner (``OwnedObjectMixin``);
one that does not fails here until it does. For each such path and each of its methods,
customer A asks for customer B's object and must get 404, and B must not (proving the id
was real). Device endpoints are checked the same way with device keys.

Paths without an id are walked too, so every path in the schema is accounted for: each
list (GET) a customer may call is read as customer A, and must not show any of customer
B's identifying strings (account number, e-mail, document and subscription numbers, device
name); staff-only paths must refuse a customer; and each remaining write names, in
``WRITES_WITHOUT_AN_ID`` below, why it cannot reach another customer's object. A new path
that fits none of these fails here instead of being skipped.
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


METHODS = {"get", "put", "patch", "delete", "post"}


def all_paths() -> list[tuple[str, list[str]]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return [(path, [method for method in operations if method in METHODS]) for path, operations in schema["paths"].items()]


def templated_paths() -> list[tuple[str, list[str]]]:
    return [(path, methods) for path, methods in all_paths() if PARAMETER.search(path)]


def plain_paths() -> list[tuple[str, list[str]]]:
    return [(path, methods) for path, methods in all_paths() if not PARAMETER.search(path)]


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


# --- paths without an id ------------------------------------------------------------------

#: Writes whose path names no object: why each cannot reach another customer's object.
WRITES_WITHOUT_AN_ID = {
    ("post", "/api/v1/auth/login/"): "anonymous; answers a token for the credentials given",
    ("post", "/api/v1/auth/logout/"): "revokes the caller's own token",
    ("post", "/api/v1/auth/signup/"): "anonymous; creates a new customer",
    ("post", "/api/v1/device/orders/"): "orders on the calling device's own account; the body names a shared catalog title",
    ("post", "/api/v1/device/pairing/"): "anonymous; a TV asks for a new pairing code",
    ("post", "/api/v1/device/streams/"): "starts a stream on the calling device; the body names a shared catalog title",
    ("post", "/api/v1/device/viewing-events/"): "records events of the calling device",
    ("post", "/api/v1/devices/"): "registers a device on the caller's own account",
    ("post", "/api/v1/devices/pair/"): "claims an unpaired TV's code for the caller's own account",
    ("patch", "/api/v1/me/"): "changes the caller's own contact",
    ("post", "/api/v1/me/addresses/"): "adds an address to the caller's own contact",
    ("post", "/api/v1/orders/"): "orders on the caller's own subscription (looked up among theirs); the body names a shared title",
    ("post", "/api/v1/payment-methods/cards/"): "starts adding a card to the caller's own account",
    ("post", "/api/v1/payment-methods/cards/confirm/"): "finishes a card setup for the caller's own account",
    ("post", "/api/v1/usage-records/batch/"): "staff and source systems only (refused to customers below)",
    ("post", "/api/v1/wallet/top-up/"): "tops up the caller's own wallet",
    ("post", "/api/v1/webhooks/stripe/"): "Stripe's signed events; no customer credential",
}

#: Reads that answer 400 without a query: the query a customer would send.
QUERY_FOR_READS = {
    "/api/v1/catalog/rate-preview/": {"product": "LOTR"},
}


def audience(path: str) -> str:
    """portal, device, anyone (no credential) or staff, from the view's permissions."""
    from rest_framework.permissions import AllowAny

    from accounts.api.permissions import IsDevice, IsPortalUser

    permissions = set(resolve(path).func.view_class.permission_classes)
    for permission, name in ((IsPortalUser, "portal"), (IsDevice, "device"), (AllowAny, "anyone")):
        if permission in permissions:
            return name
    return "staff"


def fingerprints(account) -> set[str]:
    """Strings that identify the account's own data and appear nowhere else."""
    from billing.models import CreditNote, Invoice
    from subscriptions.models import Device, Subscription

    found = {account.number, account.contact.email}
    found |= set(Invoice.objects.filter(account=account).exclude(number="").values_list("number", flat=True))
    found |= set(CreditNote.objects.filter(account=account).exclude(number="").values_list("number", flat=True))
    found |= set(Subscription.objects.filter(account=account).values_list("number", flat=True))
    found |= set(Device.objects.filter(account=account).values_list("name", flat=True))
    return {value for value in found if value}


def test_every_path_without_an_id_is_accounted_for():
    unaccounted = [
        f"{method.upper()} {path}"
        for path, methods in plain_paths()
        for method in methods
        if method != "get" and audience(path) != "staff" and (method, path) not in WRITES_WITHOUT_AN_ID
    ]
    assert not unaccounted, f"say in WRITES_WITHOUT_AN_ID why these cannot reach another customer's object: {unaccounted}"
    stale = [key for key in WRITES_WITHOUT_AN_ID if key[1] not in dict(plain_paths())]
    assert not stale, f"these paths are gone from the schema: {stale}"


@pytest.mark.parametrize("path", [path for path, methods in plain_paths() if "get" in methods and audience(path) in {"portal", "device"}])
def test_a_list_shows_nothing_of_another_customer(two_customers, path):
    customer_a, customer_b = two_customers
    view = resolve(path).func.view_class
    secrets = fingerprints(customer_b)
    assert len(secrets) >= 5, "the fixture should give customer B an invoice, a credit note, a subscription and a device"

    query = QUERY_FOR_READS.get(path, {})
    as_a = client_for(view, customer_a).get(path, query)
    as_b = client_for(view, customer_b).get(path, query)

    assert as_a.status_code == 200, f"GET {path} as a customer: {as_a.status_code}; give its query in QUERY_FOR_READS"
    leaked = sorted(secret for secret in secrets if secret in as_a.content.decode())
    assert not leaked, f"GET {path} shows customer A what belongs to customer B: {leaked}"
    assert as_b.status_code == 200


@pytest.mark.parametrize("path, methods", [(path, methods) for path, methods in all_paths() if audience(PARAMETER.sub("1", path)) == "staff"])
def test_a_customer_is_refused_staff_paths(two_customers, path, methods):
    customer_a, _customer_b = two_customers
    client = portal_client_for(customer_a)
    url = PARAMETER.sub("1", path)
    for method in methods:
        response = getattr(client, method)(url, {}, format="json")
        assert response.status_code == 403, f"{method.upper()} {path} as a customer: {response.status_code}"
