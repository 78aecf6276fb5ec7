"""Liveness and readiness: /readyz asks the database, the cache (Redis) and the Celery
broker, each within a short timeout, and names what failed; /healthz never asks Redis."""

from __future__ import annotations

import socket
import time

import pytest
from django.conf import settings
from django.db import connections
from django.db.utils import load_backend
from django.test import override_settings

from core.health import database_check

pytestmark = pytest.mark.django_db


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_cache_at(url: str) -> dict:
    return {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url,
                        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1}}}


def test_readyz_answers_200_with_every_check_when_all_dependencies_answer(client):
    assert settings.REDIS_URL.startswith("redis://"), "make test runs the suite with a real Redis"

    response = client.get("/readyz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert {name: check["status"] for name, check in body["checks"].items()} == {"database": "ok", "cache": "ok", "broker": "ok"}
    assert all(check["duration_ms"] >= 0 for check in body["checks"].values())


def test_readyz_answers_503_naming_the_broker_when_it_is_unreachable(client):
    broker = f"redis://127.0.0.1:{closed_port()}/0"

    with override_settings(CELERY_BROKER_URL=broker, CELERY_TASK_ALWAYS_EAGER=False):
        started = time.monotonic()
        response = client.get("/readyz")
        elapsed = time.monotonic() - started

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "fail"
    assert body["failed"] == ["broker"]
    assert body["checks"]["broker"] == {**body["checks"]["broker"], "status": "fail", "detail": "ConnectionError"}
    assert body["checks"]["database"]["status"] == "ok" and body["checks"]["cache"]["status"] == "ok"
    assert elapsed < settings.HEALTH_CHECK_TIMEOUT_SECONDS * 3  # a short timeout, not a retry loop
    assert "127.0.0.1" not in response.content.decode()  # internal addresses stay in the log


def test_readyz_answers_503_naming_the_cache_when_redis_is_unreachable(client):
    with override_settings(CACHES=redis_cache_at(f"redis://127.0.0.1:{closed_port()}/0")):
        response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["failed"] == ["cache"]
    assert response.json()["checks"]["broker"]["status"] == "ok"


def test_liveness_does_not_depend_on_redis(client):
    nowhere = f"redis://127.0.0.1:{closed_port()}/0"

    with override_settings(CACHES=redis_cache_at(nowhere), CELERY_BROKER_URL=nowhere, CELERY_TASK_ALWAYS_EAGER=False):
        liveness = client.get("/healthz")
        readiness = client.get("/readyz")

    assert liveness.status_code == 200 and liveness.json() == {"status": "ok"}
    assert readiness.status_code == 503 and readiness.json()["failed"] == ["cache", "broker"]


def test_the_database_check_fails_fast_on_a_database_that_does_not_answer():
    default = connections["default"].settings_dict
    unreachable = {**default, "HOST": "127.0.0.1", "PORT": str(closed_port()), "OPTIONS": {**default.get("OPTIONS", {}), "connect_timeout": 1}}
    wrapper = load_backend(default["ENGINE"]).DatabaseWrapper(unreachable, alias="readyz-probe")
    try:
        result = database_check(connection=wrapper)
    finally:
        wrapper.close()

    assert result.ok is False
    assert result.detail == "OperationalError"
    assert result.duration_ms < 3000


def test_the_database_check_passes_on_the_real_database():
    assert database_check().ok is True
