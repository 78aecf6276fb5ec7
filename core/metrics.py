"""Prometheus metrics served at ``/metrics`` (docs/operations.md lists them all).

Two kinds:

* **Measured in the process**: request latency (``RequestMetricsMiddleware`` in
  ``core/middleware.py`` observes ``HTTP_REQUEST_DURATION``). Under gunicorn with several
  workers each process keeps its own numbers; with ``PROMETHEUS_MULTIPROC_DIR`` set (in the
  environment, before the processes start) they write them to files there and a scrape of
  any worker sums them all. Unset, the single-process registry is used.
* **Read at scrape time** (custom collectors): Celery queue depth from the broker (``LLEN``)
  and the business gauges from PostgreSQL — UDRs by state and the rated / billed counters
  derived from them, the provisioning outbox by state with the age of its oldest pending
  request, and billing run progress. They are computed by whichever process answers the
  scrape, so they are right whatever the number of workers, and cost nothing between
  scrapes. A collector whose source is down reports ``ottbss_metrics_collector_up 0``
  instead of failing the whole scrape.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
from contextlib import nullcontext

import redis
from django.apps import apps
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client import CollectorRegistry, Histogram, generate_latest, multiprocess
from prometheus_client import REGISTRY as PROCESS_REGISTRY
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

logger = logging.getLogger(__name__)

# Buckets around the DESIGN.md §5 targets: 20 ms (entitlements), 100 ms (portal reads), 150 ms (orders).
LATENCY_BUCKETS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_REQUEST_DURATION = Histogram(
    "ottbss_http_request_duration_seconds",
    "Time from the request entering Django to the response leaving it, by view, method and status.",
    ["view", "method", "status"],
    buckets=LATENCY_BUCKETS,
)

# How long a scrape-time database query may take before the collector gives up.
SCRAPE_QUERY_TIMEOUT_MS = 5000
# kombu's Redis transport keeps priorities 3, 6 and 9 in lists of their own beside the queue's.
_KOMBU_PRIORITY_SEPARATOR = "\x06\x16"
_KOMBU_PRIORITY_STEPS = (3, 6, 9)


# --- Access --------------------------------------------------------------------------------

def metrics_access_allowed(request) -> bool:
    """A scrape is allowed from an address in ``METRICS_ALLOWED_IPS`` (addresses or
    networks, as the socket sees them: never a forwarded header, which a client can forge)
    or with ``Authorization: Bearer <METRICS_TOKEN>``."""
    token = settings.METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer ") and hmac.compare_digest(header[len("Bearer "):].strip(), token):
        return True
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(allowed, strict=False) for allowed in settings.METRICS_ALLOWED_IPS)


# --- Exposition ------------------------------------------------------------------------------

def metrics_registry() -> CollectorRegistry:
    """The registry a scrape reads: this process's (or every gunicorn worker's) measured
    metrics, plus the scrape-time collectors."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_directory():
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ProcessMetrics())
    registry.register(CeleryQueueCollector())
    registry.register(BusinessCollector())
    return registry


def metrics_exposition() -> bytes:
    return generate_latest(metrics_registry())


def multiprocess_directory() -> str:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


class _ProcessMetrics:
    """The default (single-process) registry: our histogram plus process and GC metrics."""

    def collect(self):
        yield from PROCESS_REGISTRY.collect()


def _collector_up(name: str, ok: bool) -> GaugeMetricFamily:
    gauge = GaugeMetricFamily("ottbss_metrics_collector_up", "1 if the collector could read its source at this scrape.",
                              labels=["collector"])
    gauge.add_metric([name], 1 if ok else 0)
    return gauge


# --- Celery queues ----------------------------------------------------------------------------

def celery_queue_names() -> list[str]:
    """The queues workers consume: Celery's default and declared queues, the queues named
    in ``CELERY_TASK_ROUTES`` (when a dict) and ``METRICS_CELERY_QUEUES``."""
    from config.celery import app

    routes = app.conf.task_routes if isinstance(app.conf.task_routes, dict) else {}
    routed = {route["queue"] for route in routes.values() if isinstance(route, dict) and route.get("queue")}
    names = set(app.amqp.queues.keys()) | {app.conf.task_default_queue} | routed | set(settings.METRICS_CELERY_QUEUES)
    return sorted(names)


class CeleryQueueCollector:
    """Messages waiting in each Celery queue (``LLEN`` on the broker), and messages taken by
    a worker but not yet acknowledged (redelivered if that worker dies)."""

    name = "celery_queues"

    def collect(self):
        url = settings.CELERY_BROKER_URL
        if not url.startswith(("redis://", "rediss://", "unix://")):
            return  # the eager embedded default has no queues
        depth = GaugeMetricFamily("ottbss_celery_queue_length", "Messages waiting in the Celery queue.", labels=["queue"])
        unacked = GaugeMetricFamily("ottbss_celery_unacked_messages",
                                    "Messages delivered to a worker and not yet acknowledged (acks late).")
        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        try:
            for queue in celery_queue_names():
                keys = [queue] + [f"{queue}{_KOMBU_PRIORITY_SEPARATOR}{step}" for step in _KOMBU_PRIORITY_STEPS]
                depth.add_metric([queue], sum(client.llen(key) for key in keys))
            unacked.add_metric([], client.hlen("unacked"))
        except redis.RedisError as error:
            logger.warning("Metrics: cannot read Celery queues: %s", error)
            yield _collector_up(self.name, False)
            return
        finally:
            client.close()
        yield depth
        yield unacked
        yield _collector_up(self.name, True)


# --- Business gauges from the database -------------------------------------------------------

class BusinessCollector:
    """Rating throughput, provisioning backlog and billing run progress, read from the
    database at scrape time (a few aggregate queries on indexed state columns)."""

    name = "database"

    def collect(self):
        try:
            with _bounded_queries():
                families = [*_udr_metrics(), *_provisioning_metrics(), *_billing_run_metrics()]
        except Exception as error:  # a scrape must answer even while the database is away
            logger.warning("Metrics: cannot read the database: %s: %s", type(error).__name__, error)
            yield _collector_up(self.name, False)
            return
        yield from families
        yield _collector_up(self.name, True)


def _bounded_queries():
    if connection.vendor != "postgresql":
        return nullcontext()
    return _PostgresTimeout()


class _PostgresTimeout:
    def __enter__(self):
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL statement_timeout = %s", [SCRAPE_QUERY_TIMEOUT_MS])
        return self

    def __exit__(self, *exc):
        return self._atomic.__exit__(*exc)


def _count_by_state(queryset, states, name: str, documentation: str) -> tuple[dict, GaugeMetricFamily]:
    """Rows by state (every state listed, 0 when none) as a gauge, and the counts."""
    by_state = dict(queryset.order_by().values_list("state").annotate(n=Count("pk")))
    gauge = GaugeMetricFamily(name, documentation, labels=["state"])
    for state in states:
        gauge.add_metric([state], by_state.get(state, 0))
    return by_state, gauge


def _udr_metrics():
    UsageDetailRecord = apps.get_model("billing", "UsageDetailRecord")
    by_state, states = _count_by_state(UsageDetailRecord.objects, UsageDetailRecord.State.values, "ottbss_udrs",
                                       "Usage detail records by state.")
    billed = by_state.get(UsageDetailRecord.State.BILLED, 0)
    rated = by_state.get(UsageDetailRecord.State.RATED, 0) + billed
    # Records only move forward (PENDING → RATED → BILLED), so these counts only grow:
    # rate(ottbss_udrs_rated_total[5m]) is the rating throughput.
    yield states
    yield CounterMetricFamily("ottbss_udrs_rated", "UDRs rated so far (RATED or BILLED).", value=rated)
    yield CounterMetricFamily("ottbss_udrs_billed", "UDRs billed so far.", value=billed)


def _provisioning_metrics():
    ProvisioningRequest = apps.get_model("provisioning", "ProvisioningRequest")
    requests = ProvisioningRequest.objects.order_by()
    by_state, states = _count_by_state(requests, ProvisioningRequest.State.values, "ottbss_provisioning_requests",
                                       "Provisioning outbox requests by state.")
    yield states
    oldest = requests.filter(state=ProvisioningRequest.State.PENDING).aggregate(oldest=Min("created_at"))["oldest"]
    age = (timezone.now() - oldest).total_seconds() if oldest else 0.0
    yield GaugeMetricFamily("ottbss_provisioning_oldest_pending_age_seconds",
                            "Age of the oldest PENDING provisioning request (0 when none).", value=max(age, 0.0))
    yield GaugeMetricFamily("ottbss_provisioning_dead_letters",
                            "REJECTED provisioning requests waiting for Finance or an Administrator to retry or cancel.",
                            value=by_state.get(ProvisioningRequest.State.REJECTED, 0))


def _billing_run_metrics():
    BillingRun = apps.get_model("billing", "BillingRun")
    runs = BillingRun.objects.order_by()
    _by_state, states = _count_by_state(runs, BillingRun.State.values, "ottbss_billing_runs", "Billing runs by state.")
    yield states
    # Progress of the runs still going (few at a time, so one series per run is cheap).
    accounts = GaugeMetricFamily("ottbss_billing_run_accounts", "Accounts of an unfinished billing run: planned and done.",
                                 labels=["run_id", "progress"])
    errors = GaugeMetricFamily("ottbss_billing_run_errors", "Accounts an unfinished billing run could not bill.", labels=["run_id"])
    started = GaugeMetricFamily("ottbss_billing_run_started_timestamp_seconds", "When an unfinished billing run started.",
                                labels=["run_id"])
    active = runs.filter(state__in=[BillingRun.State.PENDING, BillingRun.State.RUNNING])
    for run in active.only("pk", "accounts_total", "accounts_done", "errors_count", "started_at", "created_at"):
        run_id = str(run.pk)
        accounts.add_metric([run_id, "planned"], run.accounts_total)
        accounts.add_metric([run_id, "done"], run.accounts_done)
        errors.add_metric([run_id], run.errors_count)
        started.add_metric([run_id], (run.started_at or run.created_at).timestamp())
    yield accounts
    yield errors
    yield started


def request_observe(*, view: str, method: str, status: int, seconds: float) -> None:
    """Records one request's latency (the middleware's single call)."""
    HTTP_REQUEST_DURATION.labels(view=view, method=method, status=str(status)).observe(seconds)

