from __future__ import annotations

pytest_plugins = ["tests.world"]

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from accounts import roles, services

from .factories import PORTAL_PASSWORD, StaffUserFactory, customer_create


@pytest.fixture(autouse=True)
def _clear_cache():
    """Throttle counters live in the (real, shared) cache: start every test from zero."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _reference_data(request):
    """Transactional tests (live server, workers, concurrency) end by emptying every table,
    which also removes what migrations seeded. Seed it again for the next one."""
    marker = request.node.get_closest_marker("django_db")
    transactional = (marker and marker.kwargs.get("transaction")) or "live_server" in request.fixturenames
    if not transactional:
        yield
        return
    from tests.reference_data import reference_data_ensure

    request.getfixturevalue("transactional_db")
    reference_data_ensure()
    yield


@pytest.fixture
def collector_on():
    """Python's cycle collector switched on for the test, as it was after (core.memory)."""
    import gc

    was = gc.isenabled()
    gc.enable()
    yield
    (gc.enable if was else gc.disable)()


@pytest.fixture
def collector_watch(collector_on, monkeypatch):
    """``watch(module, name)``: record, each time ``module.name`` is called, whether the
    cycle collector was on; returns the list it appends to."""
    import gc

    def watch(module, name: str) -> list[bool]:
        seen, original = [], getattr(module, name)
        monkeypatch.setattr(module, name, lambda *args, **kwargs: seen.append(gc.isenabled()) or original(*args, **kwargs))
        return seen

    return watch


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def customer(db):
    return customer_create(first_name="Maria", last_name="Georgiou", email="maria@example.com", mobile_phone="99123456")


@pytest.fixture
def other_customer(db):
    return customer_create(first_name="Nikos", last_name="Ioannou", email="nikos@example.com", mobile_phone="99765432")


def portal_client_for(account) -> APIClient:
    client = APIClient()
    token = services.portal_login(username=account.contact.email, password=PORTAL_PASSWORD)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def portal_client(customer) -> APIClient:
    return portal_client_for(customer)


@pytest.fixture
def agent(db):
    return StaffUserFactory(username="agent", role=roles.CALL_CENTER_AGENT)


@pytest.fixture
def marketing_user(db):
    return StaffUserFactory(username="marketing", role=roles.MARKETING)


@pytest.fixture
def finance_user(db):
    return StaffUserFactory(username="finance", role=roles.FINANCE)


@pytest.fixture
def administrator(db):
    return StaffUserFactory(username="administrator", role=roles.ADMINISTRATOR)
