"""Readiness checks: can this process do its work right now?

``/healthz`` (liveness) only proves the process answers and reaches its database;
``/readyz`` asks every dependency a request may need: PostgreSQL, the Django cache (Redis)
and the Celery broker. Each check opens or uses a connection with a short timeout and
never waits for a worker (a broker that accepts connections is ready even when no worker
is running; queue depth is a metric, not a readiness question).

A check answers ``CheckResult``; the error's class is public, its message goes to the log
only (it can name internal hosts).
"""

from __future__ import annotations

import logging
import time
import uuid
from contextlib import nullcontext
from dataclasses import dataclass

import redis
from django.conf import settings
from django.core.cache import caches
from django.db import connections, transaction
from kombu import Connection

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    duration_ms: float
    detail: str = ""

    def as_dict(self) -> dict:
        body = {"status": "ok" if self.ok else "fail", "duration_ms": round(self.duration_ms, 1)}
        if self.detail:
            body["detail"] = self.detail
        return body


def health_timeout() -> float:
    return float(settings.HEALTH_CHECK_TIMEOUT_SECONDS)


def _run(name: str, probe) -> CheckResult:
    started = time.perf_counter()
    try:
        detail = probe() or ""
    except Exception as error:  # any failure of a dependency makes the process not ready
        logger.warning("Readiness check %s failed: %s: %s", name, type(error).__name__, error)
        return CheckResult(name=name, ok=False, duration_ms=(time.perf_counter() - started) * 1000, detail=type(error).__name__)
    return CheckResult(name=name, ok=True, duration_ms=(time.perf_counter() - started) * 1000, detail=detail)


def database_check(*, connection=None) -> CheckResult:
    """``SELECT 1`` on the default database (or ``connection``), bounded by a statement
    timeout on PostgreSQL; the connect timeout is ``DB_CONNECT_TIMEOUT`` in settings."""
    connection = connection or connections["default"]

    def probe():
        # SET LOCAL needs a transaction; a connection Django does not manage (a test's probe) gets none.
        managed = connections[connection.alias] is connection if connection.alias in connections else False
        with transaction.atomic(using=connection.alias) if managed else nullcontext():
            with connection.cursor() as cursor:
                if managed and connection.vendor == "postgresql":
                    cursor.execute("SET LOCAL statement_timeout = %s", [int(health_timeout() * 1000)])
                cursor.execute("SELECT 1")
                cursor.fetchone()

    return _run("database", probe)


def cache_check(*, alias: str = "default") -> CheckResult:
    """A round trip through the Django cache: write a unique key, read it back, delete it."""

    def probe():
        cache = caches[alias]
        key, value = f"readyz:{uuid.uuid4().hex}", uuid.uuid4().hex
        cache.set(key, value, timeout=int(health_timeout()) + 1)
        if cache.get(key) != value:
            raise RuntimeError("the cache did not return what was written")
        cache.delete(key)

    return _run("cache", probe)


def broker_check(*, url: str | None = None) -> CheckResult:
    """Opens a fresh connection to the Celery broker (no task is sent). With the eager
    embedded default there is no broker to reach, which is ready by definition."""
    url = url or settings.CELERY_BROKER_URL
    if settings.CELERY_TASK_ALWAYS_EAGER and url == settings.CELERY_BROKER_URL:
        return _run("broker", lambda: "eager: tasks run in-process")

    def probe():
        if url.startswith(("redis://", "rediss://", "unix://")):
            # A PING on a fresh client: kombu's own connect retries for far longer than a probe may take.
            client = redis.Redis.from_url(url, socket_connect_timeout=health_timeout(), socket_timeout=health_timeout())
            try:
                client.ping()
            finally:
                client.close()
            return ""
        with Connection(url, connect_timeout=health_timeout()) as connection:
            connection.ensure_connection(max_retries=1, timeout=health_timeout())
        return ""

    return _run("broker", probe)


def readiness_checks() -> list[CheckResult]:
    return [database_check(), cache_check(), broker_check()]

