"""The end-to-end harness: the real topology (gunicorn, Celery worker and beat, the Nagra
simulator, localstripe) started once for tests/e2e on pytest-django's test database and the
session's Redis, plus HTTP clients that talk to gunicorn the way the portal, a decoder and
Stripe.js do.

The processes and the test share one database, so everything is committed: each test gets
a fresh copy of pytest-django's migrated test database (``CREATE DATABASE ... TEMPLATE``),
instead of pytest-django's flush after a transactional test, which would re-create the
content types under new ids that the long-running processes have cached. The topology uses
its own Redis logical database (the queues of other tests' in-process code never reach this
worker). It is stopped when tests/e2e is done, so its worker never touches another
package's data.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
import pytest
import requests

from .topology import Topology, database_url_for, redis_url_db

E2E_REDIS_DB = 11
STRIPE_KEYS = {"STRIPE_SECRET_KEY": "sk_test_e2e", "STRIPE_PUBLISHABLE_KEY": "pk_test_e2e",
               "STRIPE_WEBHOOK_SECRET": "whsec_test_e2e"}


def _require_servers() -> None:
    missing = [name for name in ("DATABASE_URL", "REDIS_URL") if not os.environ.get(name, "").startswith(("postgres", "redis"))]
    assert not missing, (f"tests/e2e needs real PostgreSQL and Redis ({', '.join(missing)} not set): run it through "
                         "scripts/testenv.py, as `make test` does")


def _maintenance(*statements: str) -> None:
    """Run statements on the server's maintenance database (outside any transaction)."""
    with psycopg.connect(database_url_for("postgres"), autocommit=True) as db:
        for statement in statements:
            db.execute(statement)


@contextmanager
def _database(name: str) -> Iterator[None]:
    """Point this process's Django connection at another database for the block."""
    from django.db import connection, connections

    previous = connection.settings_dict["NAME"]
    connections.close_all()
    connection.settings_dict["NAME"] = name
    try:
        yield
    finally:
        connections.close_all()
        connection.settings_dict["NAME"] = previous


@dataclass(frozen=True)
class E2eDatabases:
    template: str
    current: str


@pytest.fixture(scope="package")
def e2e_databases(django_db_setup, django_db_blocker) -> Iterator[E2eDatabases]:
    """A template copied from pytest-django's migrated test database (reference data
    re-seeded: an earlier transactional test may have emptied it), and the name of the
    database each e2e test gets fresh from it."""
    from django.db import connection, connections

    from tests.reference_data import reference_data_ensure

    _require_servers()
    created = None
    with django_db_blocker.unblock():
        if connection.settings_dict["NAME"] != connection.creation._get_test_db_name():
            # pytest-django sets up only the databases some collected test marks django_db
            # (none, when tests/e2e runs alone): migrate the test database ourselves.
            from django.test.utils import setup_databases

            created = setup_databases(verbosity=0, interactive=False, aliases={"default"})
    source = connection.settings_dict["NAME"]
    names = E2eDatabases(template=f"{source}_e2e_template", current=f"{source}_e2e")
    with django_db_blocker.unblock():
        connections.close_all()
        _maintenance(f'DROP DATABASE IF EXISTS "{names.current}" WITH (FORCE)',
                     f'DROP DATABASE IF EXISTS "{names.template}" WITH (FORCE)',
                     # A template must have no other sessions: earlier tests' threads may hold some.
                     f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{source}' AND pid <> pg_backend_pid()",
                     f'CREATE DATABASE "{names.template}" TEMPLATE "{source}"')
        with _database(names.template):
            reference_data_ensure()
        _maintenance(f'CREATE DATABASE "{names.current}" TEMPLATE "{names.template}"')  # the processes start on it
    try:
        yield names
    finally:
        _maintenance(f'DROP DATABASE IF EXISTS "{names.current}" WITH (FORCE)',
                     f'DROP DATABASE IF EXISTS "{names.template}" WITH (FORCE)')
        if created is not None:
            from django.test.utils import teardown_databases

            with django_db_blocker.unblock():
                teardown_databases(created, verbosity=0)


@pytest.fixture(scope="package")
def topology(e2e_databases, tmp_path_factory):
    """gunicorn + worker + beat + simulator + localstripe, started in parallel, stopped at
    the end of tests/e2e (and at exit, whatever happens)."""
    top = Topology.create(tmp_path_factory.mktemp("e2e-topology"), database_url=database_url_for(e2e_databases.current),
                          redis_url=redis_url_db(os.environ["REDIS_URL"], E2E_REDIS_DB), **STRIPE_KEYS)
    try:
        started = [top.simulator(wait=False), top.localstripe(wait=False)]
        started += [top.gunicorn(wait=False), top.worker(wait=False), top.beat(wait=False)]
        for service in started:
            service.wait_ready()
        yield top
    finally:
        top.stop()


@pytest.fixture
def e2e_db(topology, e2e_databases, django_db_blocker) -> Iterator[str]:
    """Each test: a fresh database cloned from the template (the running processes' open
    connections to the old one are cut; they reconnect, as after a database restart), used
    by this process too. No flush between tests, so the content type ids the processes
    have cached stay valid."""
    with django_db_blocker.unblock():
        from django.db import connections

        connections.close_all()
        _maintenance(f'DROP DATABASE IF EXISTS "{e2e_databases.current}" WITH (FORCE)',
                     f'CREATE DATABASE "{e2e_databases.current}" TEMPLATE "{e2e_databases.template}"')
        with _database(e2e_databases.current):
            yield e2e_databases.current


@pytest.fixture
def e2e_settings(topology, e2e_db, settings):
    """The test process sees the same external systems as the topology; the platform
    (the simulator) starts each test empty, as the database does."""
    requests.post(topology.env["NAGRA_ENDPOINT"].rsplit("/", 1)[0] + "/control", json={"reset": True}, timeout=5).raise_for_status()
    settings.NAGRA_ENDPOINT = topology.env["NAGRA_ENDPOINT"]
    settings.STRIPE_API_BASE = topology.env["STRIPE_API_BASE"]
    for key, value in STRIPE_KEYS.items():
        setattr(settings, key, value)
    return settings


@dataclass
class Http:
    """A client of the running server: ``Token`` for portal users, ``Device`` for decoders."""

    base: str
    session: requests.Session

    @classmethod
    def anonymous(cls, base: str) -> "Http":
        return cls(base=base, session=requests.Session())

    @classmethod
    def portal(cls, base: str, *, username: str, password: str) -> "Http":
        client = cls.anonymous(base)
        response = client.post("/api/v1/auth/login/", {"email": username, "password": password})
        assert response.status_code == 200, response.text
        return cls.token(base, key=response.json()["token"])

    @classmethod
    def token(cls, base: str, *, key: str) -> "Http":
        client = cls.anonymous(base)
        client.session.headers["Authorization"] = f"Token {key}"
        return client

    @classmethod
    def device(cls, base: str, *, key: str) -> "Http":
        client = cls.anonymous(base)
        client.session.headers["Authorization"] = f"Device {key}"
        return client

    def get(self, path: str, **params) -> requests.Response:
        return self.session.get(f"{self.base}{path}", params=params or None, timeout=30)

    def post(self, path: str, data: dict | list | None = None, *, key: str | None = None, timeout: float = 30) -> requests.Response:
        headers = {"Idempotency-Key": key} if key else {}
        return self.session.post(f"{self.base}{path}", json=data if data is not None else {}, headers=headers, timeout=timeout)


class StripeJs:
    """What Stripe.js does in the customer's browser: the card goes to (local)Stripe, never to us."""

    def __init__(self, base: str):
        self.base = base

    def card_setup_confirm(self, *, setup_intent: str, client_secret: str, number: str) -> dict:
        return requests.post(f"{self.base}/v1/setup_intents/{setup_intent}/confirm", timeout=10, data={
            "key": STRIPE_KEYS["STRIPE_PUBLISHABLE_KEY"], "client_secret": client_secret, "payment_method_data[type]": "card",
            "payment_method_data[card][number]": number, "payment_method_data[card][exp_month]": "12",
            "payment_method_data[card][exp_year]": "2034", "payment_method_data[card][cvc]": "123"}).json()


def card_save(portal: Http, stripe_js: StripeJs, number: str = "4242424242424242") -> dict:
    """The portal's "add a card" page, over HTTP: our API gives the client secret, Stripe.js takes the card."""
    setup = portal.post("/api/v1/payment-methods/cards/")
    assert setup.status_code == 201, setup.text
    stripe_js.card_setup_confirm(setup_intent=setup.json()["setup_intent"], client_secret=setup.json()["client_secret"], number=number)
    confirmed = portal.post("/api/v1/payment-methods/cards/confirm/", {"setup_intent": setup.json()["setup_intent"]})
    assert confirmed.status_code == 200, confirmed.text
    return confirmed.json()


@pytest.fixture
def stripe_js(topology) -> StripeJs:
    return StripeJs(topology.env["STRIPE_API_BASE"])
