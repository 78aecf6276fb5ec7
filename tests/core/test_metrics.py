"""/metrics: a Prometheus server scrapes latency, queue depth, rating throughput,
provisioning backlog and billing run progress; only allowed addresses or the token may."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta, timezone as dt_timezone
from decimal import Decimal
from pathlib import Path

import pytest
import redis
import time_machine
from django.conf import settings
from django.test import override_settings
from prometheus_client.parser import text_string_to_metric_families

from billing.models import BillingRun, UsageDetailRecord
from catalogs.models import Product, ProductType
from config.celery import app
from provisioning.models import ProvisioningRequest
from tests.factories import customer_create

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
NOW = datetime(2026, 11, 20, 10, 0, tzinfo=dt_timezone.utc)


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} from the exposition format."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(client, **headers) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return samples(response.content.decode())


def value(metrics, name: str, **labels) -> float:
    return metrics.get((name, tuple(sorted(labels.items()))), 0.0)


def usage_product() -> Product:
    product_type, _ = ProductType.objects.get_or_create(name="USAGE services", defaults={"classification": "SERVICE", "service_type": "USAGE"})
    return Product.objects.get_or_create(code="metrics-movie", defaults={"name": "Metrics movie", "product_type": product_type})[0]


def udr(account, product, state: str) -> UsageDetailRecord:
    amount = None if state == UsageDetailRecord.State.PENDING else Decimal("5.0000")
    return UsageDetailRecord.objects.create(account=account, product=product, usage_at=NOW, channel="PORTAL", source="TEST",
                                            external_id=uuid.uuid4().hex, state=state, amount=amount, currency="EUR")


@pytest.mark.django_db
def test_scrape_reports_udrs_provisioning_backlog_and_billing_run_progress(client):
    with time_machine.travel(NOW, tick=False):
        account = customer_create(portal=False)
        product = usage_product()
        before = scrape(client)

        for state, count in (("PENDING", 3), ("RATED", 2), ("BILLED", 4), ("REJECTED", 1)):
            for _ in range(count):
                udr(account, product, state)
        old = ProvisioningRequest.objects.create(account=account, kind="PURCHASE_PPV")
        ProvisioningRequest.objects.filter(pk=old.pk).update(created_at=NOW - timedelta(minutes=10))
        ProvisioningRequest.objects.create(account=account, kind="ADD_ENTITLEMENT", state="REJECTED", error_code="retries_exhausted")
        run = BillingRun.objects.create(run_date=date(2026, 11, 20), state="RUNNING", accounts_total=10, accounts_done=4,
                                        errors_count=1, started_at=NOW - timedelta(minutes=3))
        BillingRun.objects.create(run_date=date(2026, 10, 20), state="COMPLETED", accounts_total=7, accounts_done=7)

        after = scrape(client)

    def grew(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert [grew("ottbss_udrs", state=state) for state in ("PENDING", "RATED", "BILLED", "REJECTED", "CANCELLED")] == [3, 2, 4, 1, 0]
    assert grew("ottbss_udrs_rated_total") == 6  # rated, billed or not
    assert grew("ottbss_udrs_billed_total") == 4
    assert grew("ottbss_provisioning_requests", state="PENDING") == 1
    assert grew("ottbss_provisioning_dead_letters") == 1
    assert value(after, "ottbss_provisioning_oldest_pending_age_seconds") == 600.0
    assert value(after, "ottbss_billing_runs", state="RUNNING") == 1
    assert value(after, "ottbss_billing_runs", state="COMPLETED") == 1
    assert value(after, "ottbss_billing_run_accounts", run_id=str(run.pk), progress="planned") == 10
    assert value(after, "ottbss_billing_run_accounts", run_id=str(run.pk), progress="done") == 4
    assert value(after, "ottbss_billing_run_errors", run_id=str(run.pk)) == 1
    assert value(after, "ottbss_billing_run_started_timestamp_seconds", run_id=str(run.pk)) == (NOW - timedelta(minutes=3)).timestamp()
    assert not any(name == "ottbss_billing_run_accounts" and dict(labels)["progress"] == "planned" and value_ == 7
                   for (name, labels), value_ in after.items())  # finished runs drop out
    assert value(after, "ottbss_metrics_collector_up", collector="database") == 1


@pytest.mark.django_db
def test_scrape_reports_the_depth_of_each_celery_queue_from_redis(client):
    queue = f"metrics-test-{uuid.uuid4().hex[:8]}"
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    try:
        with override_settings(METRICS_CELERY_QUEUES=[queue]):
            for priority in (None, None, 9):  # kombu keeps high priorities in a list of their own
                app.send_task("core.tasks.idempotency_records_purge_task", queue=queue, priority=priority)

            metrics = scrape(client)

        assert value(metrics, "ottbss_celery_queue_length", queue=queue) == 3
        assert ("ottbss_celery_queue_length", (("queue", "celery"),)) in metrics
        assert value(metrics, "ottbss_metrics_collector_up", collector="celery_queues") == 1
    finally:
        broker.delete(queue, *(f"{queue}\x06\x16{step}" for step in (3, 6, 9)))


@pytest.mark.django_db
def test_an_unreachable_broker_is_reported_without_failing_the_scrape(client):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    with override_settings(CELERY_BROKER_URL=f"redis://127.0.0.1:{port}/0"):
        metrics = scrape(client)

    assert value(metrics, "ottbss_metrics_collector_up", collector="celery_queues") == 0
    assert value(metrics, "ottbss_metrics_collector_up", collector="database") == 1


@pytest.mark.django_db
def test_request_latency_is_observed_by_view_method_and_status(client):
    before = scrape(client)

    client.get("/healthz")
    client.get("/healthz")
    client.post("/healthz")
    client.get("/no-such-page/123")

    after = scrape(client)
    count = "ottbss_http_request_duration_seconds_count"
    assert value(after, count, view="healthz", method="GET", status="200") - value(before, count, view="healthz", method="GET", status="200") == 2
    assert value(after, count, view="healthz", method="POST", status="200") - value(before, count, view="healthz", method="POST", status="200") == 1
    assert value(after, count, view="unresolved", method="GET", status="404") - value(before, count, view="unresolved", method="GET", status="404") == 1
    bucket = "ottbss_http_request_duration_seconds_bucket"
    assert value(after, bucket, view="healthz", method="GET", status="200", le="+Inf") == value(after, count, view="healthz", method="GET", status="200")


@pytest.mark.django_db
def test_metrics_are_refused_to_other_addresses_without_the_token(client):
    with override_settings(METRICS_ALLOWED_IPS=["10.0.0.0/8"], METRICS_TOKEN="scrape-token-8f3a"):
        refused = client.get("/metrics")
        wrong_token = client.get("/metrics", HTTP_AUTHORIZATION="Bearer not-the-token")
        with_token = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-token-8f3a")
        from_network = client.get("/metrics", REMOTE_ADDR="10.20.30.40")
        forged_forward = client.get("/metrics", HTTP_X_FORWARDED_FOR="10.1.1.1")

    assert (refused.status_code, wrong_token.status_code, forged_forward.status_code) == (403, 403, 403)
    assert b"ottbss_" not in refused.content
    assert with_token.status_code == 200 and b"ottbss_udrs" in with_token.content
    assert from_network.status_code == 200


def test_without_a_token_configured_no_bearer_header_opens_the_endpoint(client):
    with override_settings(METRICS_ALLOWED_IPS=[], METRICS_TOKEN=""):
        assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 403


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url() -> str:
    db = settings.DATABASES["default"]
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@pytest.mark.django_db
def test_under_gunicorn_with_several_workers_a_scrape_counts_every_workers_requests(tmp_path):
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    port = free_port()
    env = {**{key: value for key, value in os.environ.items() if key != "DJANGO_ALLOW_ASYNC_UNSAFE"},
           "DJANGO_SETTINGS_MODULE": "config.settings.test", "DATABASE_URL": database_url(), "REDIS_URL": settings.REDIS_URL,
           "PROMETHEUS_MULTIPROC_DIR": str(multiproc)}
    log = tmp_path / "gunicorn.log"
    server = subprocess.Popen([str(BIN / "gunicorn"), "config.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "3"],
                              cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def get(path: str) -> bytes:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
                return response.read()

        deadline = time.monotonic() + 60
        while True:
            try:
                get("/readyz")
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, log.read_text()[-2000:]
                time.sleep(0.3)
        # One worker answering /readyz does not mean the others have loaded the application
        # (config/wsgi.py imports every view first): batches until two have served some.
        sent, deadline = 0, time.monotonic() + 60
        while True:
            with ThreadPoolExecutor(max_workers=6) as pool:  # concurrent, so several workers take some
                list(pool.map(lambda _: get("/healthz"), range(30)))
            sent += 30
            pids = {path.name.split("_")[-1] for path in multiproc.glob("histogram_*.db")}
            if len(pids) >= 2 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        scraped = [samples(get("/metrics").decode()) for _ in range(3)]

        assert len(pids) >= 2, "the requests were served by several workers"
        for metrics in scraped:  # whichever worker answers, it sums them all
            assert value(metrics, "ottbss_http_request_duration_seconds_count", view="healthz", method="GET", status="200") == sent
            assert value(metrics, "ottbss_metrics_collector_up", collector="database") == 1
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=20)
