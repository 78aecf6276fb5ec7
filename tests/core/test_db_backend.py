"""core.db.postgresql: a reused connection is checked without a round trip, and a connection
the server closed is still found unusable (and replaced) before a request uses it."""

from __future__ import annotations

import select
import time

import pytest
from django.db import connection, connections
from django.db.utils import load_backend

pytestmark = pytest.mark.django_db


@pytest.fixture
def probe():
    settings = connections["default"].settings_dict
    wrapper = load_backend(settings["ENGINE"]).DatabaseWrapper({**settings, "CONN_HEALTH_CHECKS": True}, alias="backend-probe")
    yield wrapper
    wrapper.close()


def backend_pid(wrapper) -> int:
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def last_query_of(pid: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid])
        return cursor.fetchone()[0]


def test_a_quiet_connection_is_usable_without_asking_the_server(probe):
    pid = backend_pid(probe)

    assert probe.is_usable()
    assert last_query_of(pid) == "SELECT pg_backend_pid()"  # no SELECT 1 was sent


def test_a_connection_the_server_closed_is_unusable_and_replaced(probe):
    first = backend_pid(probe)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [first])
    deadline = time.monotonic() + 5
    while not select.select([probe.connection.fileno()], [], [], 0.05)[0] and time.monotonic() < deadline:
        pass  # the server's goodbye arrives

    assert not probe.is_usable()
    probe.health_check_done = False
    probe.close_if_health_check_failed()
    assert probe.connection is None
    assert backend_pid(probe) != first
