"""Every API operation, fed schema-generated input, answers without a server error and as
its OpenAPI schema says (status code, content type, body).

Schemathesis reads ``/api/schema/`` from the application itself (in-process WSGI, no
server) and generates requests for each operation: half of them aim at objects that exist
and belong to the caller (so the happy path is exercised, not only 404s), the rest use
whatever ids the schema allows. Each operation runs with the credential it is meant for —
a portal customer's token, a device key, no credential for the anonymous ones, a staff
token for the staff endpoints — and staff endpoints also run as a portal customer, who must
be refused as documented. Stripe calls go to localstripe (a separate process); nothing
leaves the machine. An operation the walker cannot classify or give an existing object
fails the test instead of being skipped, so new endpoints are covered as they appear.
"""

from __future__ import annotations

import re

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from django.urls import resolve
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st
from rest_framework.authtoken.models import Token
from rest_framework.permissions import AllowAny
from rest_framework.test import APIRequestFactory
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts import roles, services as account_services
from accounts.api.authentication import DeviceKeyAuthentication
from accounts.api.permissions import IsDevice, IsPortalUser
from tests.api.test_api_scoping import give_a_playing_device, place_an_order
from tests.factories import PORTAL_PASSWORD, StaffUserFactory, customer_create
from tests.payments.conftest import localstripe_url  # noqa: F401  (the session fixture)

pytestmark = pytest.mark.django_db

MAX_EXAMPLES = 12
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
PARAMETER = re.compile(r"\{(\w+)\}")

SCHEMA = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())
SCHEMA.config.generation.update(max_examples=MAX_EXAMPLES, with_security_parameters=False, deterministic=True)


def operations() -> list:
    return [result.ok() for result in SCHEMA.get_all_operations()]


def view_class(path_template: str):
    return resolve(PARAMETER.sub("1", path_template)).func.view_class


def audience(path_template: str) -> str:
    """Who the operation is for, from its view's permission: portal, device, anyone or staff."""
    permissions = set(view_class(path_template).permission_classes)
    for permission, name in ((IsPortalUser, "portal"), (IsDevice, "device"), (AllowAny, "anyone")):
        if permission in permissions:
            return name
    return "staff"


def runs() -> list[tuple[str, str]]:
    """(operation label, caller) pairs: each operation as its audience, staff ones also as
    a portal customer (who must be refused as the schema says)."""
    pairs = []
    for operation in operations():
        caller = audience(operation.path)
        pairs.append((operation.label, caller))
        if caller == "staff":
            pairs.append((operation.label, "portal"))
    return pairs


# --- the world the requests run in ------------------------------------------------------

@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    """The WSGI handler closes the database connection around each request, which would end
    the test's transaction; Django's own test client stops it the same way."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def world(settings, localstripe_url):  # noqa: F811
    """A Company ZX customer with a subscription, an order, an invoice and a credit note, a
    playing device, an address and a card; a pending TV pairing; an administrator."""
    settings.STRIPE_API_BASE = localstripe_url
    settings.STRIPE_SECRET_KEY = "sk_test_security_suite"
    settings.STRIPE_PUBLISHABLE_KEY = "pk_test_security_suite"
    settings.CELERY_TASK_ALWAYS_EAGER = True
    from subscriptions.services.devices import pairing_start

    account = customer_create(first_name="Sofia", last_name="Charalambous", email="sofia@example.com")
    account_services.address_save(contact=account.contact, data={"kind": "SHIPPING", "line1": "1 Rd", "city": "Nicosia", "country": "CY"})
    place_an_order(account)
    give_a_playing_device(account)
    _credential, device_key = account_services.device_credential_issue(account=account, label="schemathesis")
    staff = StaffUserFactory(username="administrator", role=roles.ADMINISTRATOR)
    return {
        "account": account,
        "pairing": pairing_start(screen="SMART_TV"),
        "headers": {
            "portal": portal_headers(account),
            "device": {"Authorization": f"Device {device_key}"},
            "staff": {"Authorization": f"Token {Token.objects.get_or_create(user=staff)[0].key}"},
            "anyone": {},
        },
    }


def portal_headers(account) -> dict:
    token = account_services.portal_login(username=account.contact.email, password=PORTAL_PASSWORD)
    return {"Authorization": f"Token {token.key}"}


def existing_path_parameters(operation, caller: str, world) -> dict | None:
    """Values naming objects the caller may see, read through the view's own queryset."""
    names = PARAMETER.findall(operation.path)
    if not names:
        return None
    if names == ["poll_token"]:
        return {"poll_token": world["pairing"].poll_token}
    view = view_class(operation.path)()
    request = APIRequestFactory().get("/", HTTP_AUTHORIZATION=world["headers"][caller].get("Authorization", ""))
    view.request = view.initialize_request(request)
    view.request.user  # authenticates with the view's own authenticators
    view.kwargs = {}
    target = view.get_queryset().first() if hasattr(view, "get_queryset") else None
    assert target is not None, f"{operation.label}: the world has no object for this path as {caller}; add one to the fixture"
    assert len(names) == 1, f"{operation.label}: teach this test about paths with several parameters"
    return {names[0]: getattr(target, getattr(view, "lookup_field", "pk"))}


def destructive_last(run: tuple[str, str]) -> tuple[bool, str]:
    """Logging out and deleting run after the rest, so they do not take the world away."""
    label, _caller = run
    return (label.startswith("DELETE") or "logout" in label, label)


def exercise(label: str, caller: str, world) -> None:
    operation = SCHEMA.find_operation_by_label(label)
    known = existing_path_parameters(operation, caller, world) if caller == audience(operation.path) else None
    strategies = [operation.as_strategy()]
    if known:
        strategies.append(operation.as_strategy(path_parameters=known))
    headers = world["headers"][caller]

    @given(case=st.one_of(*strategies))
    @hypothesis_settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                         suppress_health_check=list(HealthCheck))
    def exchange(case):
        response = case.call(headers=headers)
        case.validate_response(response, checks=CHECKS)
        if caller != audience(operation.path):
            assert response.status_code in (401, 403), f"{label} as {caller}: {response.status_code}"

    exchange()


def test_every_operation_keeps_its_schema(world):
    """One world for every operation (building it is most of the cost); every failing
    operation is reported, not only the first."""
    failures = []
    for label, caller in sorted(runs(), key=destructive_last):
        world["headers"]["portal"] = portal_headers(world["account"])  # a logout revokes the token
        try:
            exercise(label, caller, world)
        except (Exception, FailureGroup) as failure:  # noqa: BLE001  (collected and reported below)
            failures.append(f"{label} as {caller}: {type(failure).__name__}: {str(failure)[:700]}")
    assert not failures, f"{len(failures)} operation(s) break their schema:\n\n" + "\n\n".join(failures)


def test_every_operation_is_run():
    """The walk covers the whole schema; it grows with the API."""
    labels = {label for label, _caller in runs()}
    assert labels == {operation.label for operation in operations()}
    assert len(labels) >= 50
