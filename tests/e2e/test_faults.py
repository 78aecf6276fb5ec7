"""Faults against the real topology (tests/e2e/topology.py): a worker killed mid-batch, the
Nagra platform down, Stripe hanging, Redis restarted, PostgreSQL stopped. After each, the
system recovers by itself (no process is restarted but the one the fault took), nothing is
lost or duplicated — usage records, invoices, payments, provisioning commands — and the
ledger balances.

Redis and PostgreSQL faults use their OWN throwaway servers (scripts/testenv.py's classes),
never the session's: the session's Redis and database serve the rest of the suite.
"""

from __future__ import annotations

import time as clock
from collections import Counter
from datetime import datetime, time, timedelta
from decimal import Decimal

import psycopg
import requests
from django.db import connection
from django.db.models import Sum
from django.utils import timezone

from billing.demo import demo_billing_load
from billing.models import Invoice, InvoiceLine, UsageDetailRecord
from billing.selectors import ar_balance, trial_balance
from catalogs.demo import demo_catalog_load
from catalogs.models import ContentTitle
from catalogs.rating import wall_clock
from payments.models import Payment
from provisioning.models import ProvisioningRequest

from .conftest import STRIPE_KEYS, Http, card_save
from .topology import HangingServer, OwnPostgres, OwnRedis, Topology, database_url_for, url_port, wait_until
from .world import subscription_activated, world_create


D = Decimal
DEADLINE = 60.0
PRICES = {"LOTR": (D("10.00"), D("5.00")), "LIMITLESS": (D("10.00"), D("5.00")), "SERENDIPITY": (D("3.00"), D("3.00"))}


def ledger_balances() -> None:
    balances = trial_balance()
    assert sum(balances.values()) == 0, balances


def price(code: str, usage_at: datetime) -> Decimal:
    day, night = PRICES[code]
    return night if time(0, 1) <= wall_clock(usage_at).time() <= time(6, 59, 59) else day


# --- 1. a worker killed (SIGKILL) in the middle of bulk rating --------------------------------

def usage_batch(subscription, count: int) -> tuple[list[dict], Decimal]:
    """``count`` records over yesterday (day and night), and what they cost."""
    start = datetime.combine(timezone.localdate() - timedelta(days=1), time(0, 0), tzinfo=timezone.get_current_timezone())
    codes = list(PRICES)
    records, total = [], D("0.00")
    for i in range(count):
        usage_at, code = start + timedelta(seconds=25 * i), codes[i % 3]
        records.append({"external_id": f"kill-{i}", "account": subscription.account.number, "product": code,
                        "usage_at": usage_at.isoformat(), "subscription": subscription.number})
        total += price(code, usage_at)
    return records, total


def test_a_worker_killed_mid_batch_loses_and_duplicates_nothing(topology, e2e_settings):
    world = world_create()
    account = world.maria.account
    records, total = usage_batch(world.maria, 3000)
    staff = Http.token(topology.url, key=world.ingest_token)
    for first in range(0, len(records), 1000):
        response = staff.post("/api/v1/usage-records/batch/", {"source": "FAULTS", "records": records[first:first + 1000]})
        assert response.status_code == 200 and response.json()["accepted"] == 1000, response.text
    udrs = UsageDetailRecord.objects.filter(account=account)

    # The beat dispatcher starts rating; once the first chunks are done, the worker dies.
    wait_until(lambda: udrs.exclude(state="PENDING").exists(), timeout=DEADLINE, interval=0.05,
               what="bulk rating started", services=(topology.services["worker"],))
    topology.services["worker"].kill()
    assert udrs.filter(state="PENDING").exists(), "the batch finished before the worker was killed: make it bigger"

    # A new worker takes over; beat's dispatcher gives it the rest.
    topology.services["worker"].start()
    wait_until(lambda: not udrs.exclude(state="BILLED").exists(), timeout=DEADLINE, what="every record rated and billed",
               services=(topology.services["worker"], topology.services["beat"]))
    assert udrs.count() == 3000
    assert udrs.aggregate(total=Sum("amount"))["total"] == total
    lines = InvoiceLine.objects.filter(udr__account=account)
    assert lines.count() == 3000 and lines.values("udr").distinct().count() == 3000  # each record invoiced once
    invoiced = Invoice.objects.filter(account=account).aggregate(total=Sum("gross_total"))["total"]
    assert invoiced == total and ar_balance(account=account) == total
    ledger_balances()


# --- 2. the Nagra platform down ----------------------------------------------------------------

def simulator_applied(topology) -> list[dict]:
    base = topology.env["NAGRA_ENDPOINT"].rsplit("/", 1)[0]
    return requests.get(f"{base}/control", timeout=5).json()["applied"]


def nagra_outage_orders(topology, scheme):
    """A customer signs up and orders while the platform is unreachable: the order
    succeeds, and the commands wait, retried with backoff."""
    subscription = subscription_activated(scheme, first_name="Eleni", email="eleni@example.com")
    portal = Http.portal(topology.url, username="eleni@example.com", password="correct-horse-battery")
    order = portal.post("/api/v1/orders/", {"title": ContentTitle.objects.get(code="LOTR").pk}, key="eleni-1")
    assert order.status_code == 201, order.text
    commands = ProvisioningRequest.objects.filter(account=subscription.account)
    wait_until(lambda: commands.filter(attempts__gte=2).exists(), timeout=DEADLINE, what="delivery retried with backoff",
               services=(topology.services["worker"],))
    assert not commands.exclude(state="PENDING").exists()
    assert commands.exclude(error_code="").exists()
    return commands


def test_commands_back_off_while_nagra_is_down_and_are_delivered_once(topology, e2e_settings):
    demo_catalog_load()
    scheme = demo_billing_load()["scheme"]
    simulator = topology.services["nagra"]
    simulator.kill()
    try:
        commands = nagra_outage_orders(topology, scheme)
        simulator.start()  # the platform is back, on the same address
    finally:
        if not simulator.alive:
            simulator.start()
    wait_until(lambda: not commands.exclude(state="COMPLETED").exists(), timeout=DEADLINE,
               what="every command delivered after the platform returned", services=(topology.services["worker"],))
    ours = {str(request_id) for request_id in commands.values_list("request_id", flat=True)}
    applied = [item for item in simulator_applied(topology) if item["requestId"] in ours]
    assert Counter(item["requestId"] for item in applied) == Counter(ours)  # each exactly once
    assert [item["operation"] for item in applied] == ["CreateAccount", "AddEntitlement", "PurchasePpvEvent"]  # in order
    ledger_balances()


# --- 3. Stripe hangs -----------------------------------------------------------------------------

def localstripe_intents(base: str) -> list[dict]:
    response = requests.get(f"{base}/v1/payment_intents", auth=(STRIPE_KEYS["STRIPE_SECRET_KEY"], ""), timeout=10)
    return response.json()["data"]


def test_a_hanging_stripe_fails_collection_cleanly_and_a_retry_charges_once(topology, e2e_settings, stripe_js):
    demo_catalog_load()
    scheme = demo_billing_load()["scheme"]
    subscription = subscription_activated(scheme, first_name="Petros", email="petros@example.com")
    portal = Http.portal(topology.url, username="petros@example.com", password="correct-horse-battery")
    order = portal.post("/api/v1/orders/", {"title": ContentTitle.objects.get(code="SERENDIPITY").pk})
    assert order.status_code == 201, order.text
    card_save(portal, stripe_js)
    invoice = Invoice.objects.get(account=subscription.account)
    intents_before = len(localstripe_intents(topology.env["STRIPE_API_BASE"]))

    hanging = HangingServer().start()
    try:
        stalled = topology.gunicorn(name="web-stripe-hangs", STRIPE_API_BASE=hanging.url, STRIPE_TIMEOUT_SECONDS="1")
        through_stalled = Http.token(f"http://127.0.0.1:{url_port(stalled.ready_url)}",
                                     key=portal.session.headers["Authorization"].split()[1])
        started = clock.monotonic()
        answer = through_stalled.post(f"/api/v1/invoices/{invoice.pk}/pay/")
        assert clock.monotonic() - started < 20  # bounded by STRIPE_TIMEOUT_SECONDS and the retries
        assert hanging.connections >= 1
    finally:
        hanging.stop()
        topology.services.pop("web-stripe-hangs").stop()
    assert answer.status_code == 200, answer.text
    assert answer.json()["paid"] is False and answer.json()["payment"]["state"] == "PENDING"  # outcome unknown, nothing posted
    assert ar_balance(account=subscription.account) == D("3.00")
    ledger_balances()

    # Stripe answers again: the customer retries; the same payment is sent again, once.
    retried = portal.post(f"/api/v1/invoices/{invoice.pk}/pay/")
    assert retried.status_code == 200, retried.text
    assert retried.json()["paid"] is True
    payments = Payment.objects.filter(invoice=invoice)
    assert [(p.state, p.amount) for p in payments] == [("SUCCEEDED", D("3.00"))]
    assert len(localstripe_intents(topology.env["STRIPE_API_BASE"])) == intents_before + 1
    assert ar_balance(account=subscription.account) == 0
    ledger_balances()


# --- 4. Redis restarted (its own throwaway Redis) ----------------------------------------------

def test_orders_survive_a_redis_restart_and_queued_work_completes(topology, e2e_settings, tmp_path):
    redis = OwnRedis(tmp_path)
    redis.start()
    world = world_create()
    lotr = ContentTitle.objects.get(code="LOTR").pk
    try:
        with topology.paused("worker", "beat"):  # only this deployment's worker works now
            own = Topology.create(tmp_path / "logs", database_url=database_url_for(connection.settings_dict["NAME"]),
                                  redis_url=redis.url, **STRIPE_KEYS, NAGRA_ENDPOINT=topology.env["NAGRA_ENDPOINT"],
                                  STRIPE_API_BASE=topology.env["STRIPE_API_BASE"])
            try:
                services = [own.gunicorn(wait=False), own.worker(wait=False), own.beat(wait=False)]
                for service in services:
                    service.wait_ready()
                portal = Http.portal(own.url, username="maria@example.com", password=world.password)
                assert portal.post("/api/v1/orders/", {"title": lotr}, key="before").status_code == 201

                redis.stop()
                # The order is the database's: it is taken; only the after-commit messages
                # (delivery, collection) cannot be queued, and the beat dispatchers and
                # dunning find that work again from the rows.
                during = portal.post("/api/v1/orders/", {"title": lotr}, key="during", timeout=60)
                assert during.status_code == 201, during.text[:300]
                redis.restart()

                after = wait_until(lambda: (lambda r: r if r.status_code == 201 else None)(
                    portal.post("/api/v1/orders/", {"title": lotr}, key="after")), timeout=DEADLINE,
                    what="orders accepted again after Redis came back", services=tuple(own.services.values()))
                assert after.status_code == 201
                udrs = UsageDetailRecord.objects.filter(account=world.maria.account)
                expected_orders = 3
                commands = ProvisioningRequest.objects.filter(account=world.maria.account)
                wait_until(lambda: not commands.exclude(state="COMPLETED").exists() and not udrs.exclude(state="BILLED").exists(),
                           timeout=DEADLINE, what="queued work done after the restart", services=tuple(own.services.values()),
                           detail=lambda: (list(commands.values_list("kind", "state", "attempts", "error_code")),
                                           list(udrs.values_list("state", flat=True))))
            finally:
                own.stop()
    finally:
        redis.stop()
    assert udrs.count() == expected_orders
    assert commands.filter(kind="PURCHASE_PPV").count() == expected_orders
    assert InvoiceLine.objects.filter(udr__account=world.maria.account).count() == expected_orders
    ledger_balances()


REDIS_OUTAGE = 15.0  # longer than the worker's first reconnection attempts (after 2, 6 and 12 s)


def simulator_switch(topology, **switches) -> None:
    base = topology.env["NAGRA_ENDPOINT"].rsplit("/", 1)[0]
    requests.post(f"{base}/control", json=switches, timeout=5).raise_for_status()


def test_the_same_worker_and_beat_ride_out_a_redis_outage(topology, e2e_settings, tmp_path):
    """Redis vanishes while the worker runs a task (acknowledged late) and stays away while
    the worker's reconnection attempts fail; once it is back, the very same worker and beat
    processes carry on: nobody restarts them."""
    redis = OwnRedis(tmp_path)
    redis.start()
    try:
        with topology.paused("worker", "beat"):
            # The world is made while the shared worker is stopped, so no command of it is left
            # claimed by a worker stopped mid-delivery (it would wait out its lease).
            world = world_create()
            lotr = ContentTitle.objects.get(code="LOTR").pk
            commands = ProvisioningRequest.objects.filter(account=world.maria.account)
            own = Topology.create(tmp_path / "logs", database_url=database_url_for(connection.settings_dict["NAME"]),
                                  redis_url=redis.url, **STRIPE_KEYS, STRIPE_API_BASE=topology.env["STRIPE_API_BASE"],
                                  NAGRA_OPERATION_TIMEOUT="30")
            try:
                services = [own.simulator(wait=False), own.gunicorn(wait=False), own.worker(wait=False), own.beat(wait=False)]
                for service in services:
                    service.wait_ready()
                worker, beat = own.services["worker"], own.services["beat"]
                pids = (worker.process.pid, beat.process.pid)
                wait_until(lambda: not ProvisioningRequest.objects.exclude(state="COMPLETED").exists(), timeout=DEADLINE,
                           what="the customers' first commands delivered", services=(worker, beat))

                # Given a worker in the middle of a delivery: Nagra applied it and takes its time to answer.
                simulator_switch(own, latency_after_apply=8.0)
                portal = Http.portal(own.url, username="maria@example.com", password=world.password)
                assert portal.post("/api/v1/orders/", {"title": lotr}, key="before").status_code == 201
                purchase = commands.get(kind="PURCHASE_PPV")
                wait_until(lambda: str(purchase.request_id) in {item["requestId"] for item in simulator_applied(own)},
                           timeout=DEADLINE, what="the purchase sent to Nagra", services=(worker,))

                # When Redis goes away for longer than the worker's first reconnection attempts, then comes back.
                log_start = worker.log_path.stat().st_size
                redis.stop()
                clock.sleep(REDIS_OUTAGE)
                simulator_switch(own, latency_after_apply=0.0)
                redis.restart()

                # Then the same processes work on: a new order is delivered and billed.
                assert portal.post("/api/v1/orders/", {"title": lotr}, key="after").status_code == 201
                udrs = UsageDetailRecord.objects.filter(account=world.maria.account)
                wait_until(lambda: commands.filter(kind="PURCHASE_PPV", state="COMPLETED").count() == 2
                           and not udrs.exclude(state="BILLED").exists(), timeout=DEADLINE,
                           what="the order placed after the outage delivered and billed", services=(worker, beat),
                           detail=lambda: list(commands.values_list("kind", "state", "attempts", "error_code")))
                worker_log = worker.log_path.read_text(errors="replace")[log_start:]
                assert "Connection to broker lost" in worker_log, worker.tail()  # the outage did reach the worker
                assert (worker.alive, beat.alive) == (True, True), own.logs()
                assert (worker.process.pid, beat.process.pid) == pids and worker.restarts == beat.restarts == 0, own.logs()
                applied = [item["requestId"] for item in simulator_applied(own)]
            finally:
                own.stop()
    finally:
        redis.stop()
    ours = [str(request_id) for request_id in commands.values_list("request_id", flat=True)]
    assert sorted(request_id for request_id in applied if request_id in ours) == sorted(ours)  # each exactly once
    assert udrs.count() == 2 and InvoiceLine.objects.filter(udr__account=world.maria.account).count() == 2
    ledger_balances()


# --- 5. PostgreSQL stopped (its own throwaway PostgreSQL) --------------------------------------

def own_counts(url: str) -> dict:
    with psycopg.connect(url.replace("postgres://", "postgresql://")) as db:
        one = lambda sql: db.execute(sql).fetchone()[0]  # noqa: E731
        return {
            "udrs": one("select count(*) from billing_usagedetailrecord"),
            "unbilled": one("select count(*) from billing_usagedetailrecord where state <> 'BILLED'"),
            "lines": one("select count(*) from billing_invoiceline where udr_id is not null"),
            "lines_distinct": one("select count(distinct udr_id) from billing_invoiceline where udr_id is not null"),
            "commands_open": one("select count(*) from provisioning_provisioningrequest where state <> 'COMPLETED'"),
            "ledger_sum": one("select coalesce(sum(amount), 0) from billing_posting"),
        }


def test_requests_fail_cleanly_while_postgres_is_down_and_recover(topology, e2e_settings, tmp_path):
    world = world_create()
    lotr = ContentTitle.objects.get(code="LOTR").pk
    postgres = OwnPostgres()
    try:
        postgres.start()
        postgres.copy_from(database_url_for(connection.settings_dict["NAME"]))
        own = Topology.create(tmp_path / "logs", database_url=postgres.url,
                              redis_url=topology.env["REDIS_URL"].rsplit("/", 1)[0] + "/12", **STRIPE_KEYS,
                              NAGRA_ENDPOINT=topology.env["NAGRA_ENDPOINT"], STRIPE_API_BASE=topology.env["STRIPE_API_BASE"])
        try:
            for service in [own.gunicorn(wait=False), own.worker(wait=False), own.beat(wait=False)]:
                service.wait_ready()
            portal = Http.portal(own.url, username="maria@example.com", password=world.password)
            assert portal.post("/api/v1/orders/", {"title": lotr}, key="before").status_code == 201
            # Quiet first: a command claimed when the database vanished would wait for its
            # lease (30 s and more) before being sent again — correct, but slow for a test.
            wait_until(lambda: (lambda c: c["unbilled"] == 0 and c["commands_open"] == 0)(own_counts(postgres.url)),
                       timeout=DEADLINE, what="the first order's work done", services=tuple(own.services.values()))

            postgres.stop()
            started = clock.monotonic()
            down = portal.post("/api/v1/orders/", {"title": lotr}, key="down", timeout=60)
            assert clock.monotonic() - started < 30
            assert down.status_code == 503, down.text[:300]  # the API's error format, and "try again shortly"
            assert down.json()["error"]["code"] == "service_unavailable" and down.headers["Retry-After"]
            postgres.restart()

            # Neither gunicorn nor the worker is restarted: their next connections just work.
            wait_until(lambda: portal.post("/api/v1/orders/", {"title": lotr}, key="after").status_code == 201,
                       timeout=DEADLINE, what="orders accepted again", services=tuple(own.services.values()))
            wait_until(lambda: (lambda c: c["unbilled"] == 0 and c["commands_open"] == 0)(own_counts(postgres.url)),
                       timeout=DEADLINE, what="the worker finished the queued work", services=tuple(own.services.values()))
        finally:
            own.stop()
        counts = own_counts(postgres.url)
    finally:
        postgres.remove()
    assert counts["udrs"] == counts["lines"] == counts["lines_distinct"] == 2  # before + after; the refused one left nothing
    assert counts["ledger_sum"] == 0
