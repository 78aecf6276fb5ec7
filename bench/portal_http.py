"""Portal reads and entitlement checks over HTTP benchmark (``make bench``; not a test).

Needs PostgreSQL and Redis: ``scripts/testenv.py -- .venv/bin/python bench/portal_http.py``
(what ``make bench`` runs) gives it throwaway servers. Steps:

1. migrate and load a Company ZX-like world: CUSTOMERS portal customers (one in five VIP)
   with an EFFECTIVE subscription holding the PPV Service, ORDERS PPV orders each (so their
   order and invoice lists have rows), and one registered Smart TV each with its device key;
2. query counts: each portal list read at page sizes 5 and 50 through Django's test client
   (DESIGN.md §5: the count must not depend on the page size);
3. start gunicorn (``config.wsgi``, production settings, 2 × CPUs + 1 workers, request logs
   at WARNING so the terminal stays readable) on a free loopback port;
4. portal reads, open loop (``bench/httpload.py``): READ_RATE requests/s for DURATION s, in
   turn ``GET /api/v1/catalog/titles/``, ``/api/v1/orders/``, ``/api/v1/invoices/`` and
   ``/api/v1/me/`` by the next customer's token; target p99 < 100 ms at ≥ 250 req/s;
5. entitlement checks, open loop: CHECK_RATE requests/s for DURATION s,
   ``GET /api/v1/device/entitlements/<title>/`` by the next TV's key for a title it bought
   or not; target p99 < 20 ms at ≥ 500 req/s;
6. the reference of the same run: ``GET /healthz`` (no authentication, one query) at the
   check rate, the floor of the stack on this machine at that moment (its speed varies).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
os.environ.setdefault("DEBUG", "false")  # the set-up process: no query log kept in memory

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from accounts.models import AccountsReceivable  # noqa: E402
from catalogs.models import ContentTitle  # noqa: E402
from httpload import Call, cpu_report, cpu_snapshot, gunicorn_start, gunicorn_stop, machine, open_loop, report  # noqa: E402
from orders_http import world  # noqa: E402
from subscriptions.models import Subscription  # noqa: E402
from subscriptions.services.devices import device_register  # noqa: E402
from subscriptions.services.orders import usage_order_place  # noqa: E402

PREFIX = "bench-portal"
READ_TARGET_RATE, READ_TARGET_P99_MS = 250, 100
CHECK_TARGET_RATE, CHECK_TARGET_P99_MS = 500, 20
READS = ("/api/v1/catalog/titles/", "/api/v1/orders/", "/api/v1/invoices/", "/api/v1/me/")
LISTS = ("/api/v1/catalog/titles/", "/api/v1/orders/", "/api/v1/invoices/", "/api/v1/subscriptions/", "/api/v1/entitlements/")


def devices_and_orders(orders_each: int, titles: list[int]) -> list[str]:
    """One Smart TV per bench customer (its raw key) and ``orders_each`` orders each."""
    keys = []
    by_pk = ContentTitle.objects.in_bulk(titles)
    accounts = AccountsReceivable.objects.filter(contact__email__startswith=PREFIX).order_by("pk")
    for n, account in enumerate(accounts):
        _device, raw_key = device_register(account=account, name="Living room TV", screen="SMART_TV")
        keys.append(raw_key)
        subscription = Subscription.objects.get(account=account)
        for k in range(orders_each):
            usage_order_place(subscription=subscription, title=by_pk[titles[(n + k) % len(titles)]], channel="PORTAL",
                              transaction_reference=f"bench-portal-{account.pk}-{k}")
    return keys


def query_counts(token: str) -> None:
    """Each list's query count at page sizes 5 and 50 (must be equal)."""
    client = Client()
    for path in LISTS:
        auth = f"Token {token}"
        # Warm what every process remembers (reference data, the first page of a list) with
        # another page size, so both counts below are of a page not yet remembered.
        client.get(path, {"page_size": 1}, HTTP_AUTHORIZATION=auth, HTTP_X_FORWARDED_PROTO="https", SERVER_NAME="127.0.0.1")
        counts = []
        for size in (5, 50):
            with CaptureQueriesContext(connection) as captured:
                response = client.get(path, {"page_size": size}, HTTP_AUTHORIZATION=auth, HTTP_X_FORWARDED_PROTO="https",
                                      SERVER_NAME="127.0.0.1")
            counts.append((len(captured.captured_queries), response.status_code))
        same = counts[0][0] == counts[1][0]
        print(f"queries {path}: page_size 5 -> {counts[0][0]}, 50 -> {counts[1][0]} (status {counts[1][1]})  "
              f"[target: independent of page size] {'OK' if same else 'GROWS'}")


def read_call(tokens: list[str]):
    def call_for(i: int) -> Call:
        return Call("GET", READS[i % len(READS)], {"Authorization": f"Token {tokens[(i // len(READS)) % len(tokens)]}"})
    return call_for


def check_call(keys: list[str], titles: list[int]):
    def call_for(i: int) -> Call:
        return Call("GET", f"/api/v1/device/entitlements/{titles[i % len(titles)]}/",
                    {"Authorization": f"Device {keys[(i // len(titles)) % len(keys)]}"})
    return call_for


def floor_call(i: int) -> Call:
    return Call("GET", "/healthz", {})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--read-rate", type=float, default=250.0, help="Portal reads offered per second.")
    parser.add_argument("--check-rate", type=float, default=500.0, help="Entitlement checks offered per second.")
    parser.add_argument("--duration", type=float, default=15.0, help="Seconds of load for each.")
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--orders", type=int, default=3, help="PPV orders per customer before the load.")
    parser.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 2) + 1, help="gunicorn workers.")
    parser.add_argument("--threads", type=int, default=1, help="Threads per gunicorn worker (1: sync workers).")
    args = parser.parse_args()
    if connection.vendor != "postgresql" or not os.environ.get("REDIS_URL"):
        print("bench/portal_http.py needs PostgreSQL and Redis: run it through scripts/testenv.py (make bench).")
        return 2
    started = time.perf_counter()
    tokens, titles = world(args.customers, prefix=PREFIX)
    keys = devices_and_orders(args.orders, titles)
    print(f"machine: {machine(connection)}")
    print(f"setup: {args.customers} portal customers (1 in 5 VIP), {args.orders} orders and a Smart TV each, "
          f"in {time.perf_counter() - started:.1f}s; gunicorn {args.workers} workers × {args.threads} threads, production settings")
    query_counts(tokens[1])
    connection.close()
    process, base = gunicorn_start(args.workers, threads=args.threads)
    try:
        open_loop(base, read_call(tokens), rate=50, duration=2)  # warm-up, not counted
        cpu_before = cpu_snapshot()
        results, start = open_loop(base, read_call(tokens), rate=args.read_rate, duration=args.duration)
        cpu_after = cpu_snapshot()
        print("-- portal reads (titles, orders, invoices, me in turn)")
        answered, _errors = report(results, start, what="reads", ok_status=200, rate=args.read_rate, duration=args.duration,
                                   target_rate=READ_TARGET_RATE, target_p99_ms=READ_TARGET_P99_MS)
        cpu_report(cpu_before, cpu_after, answered)
        open_loop(base, check_call(keys, titles), rate=50, duration=2)
        cpu_before = cpu_snapshot()
        results, start = open_loop(base, check_call(keys, titles), rate=args.check_rate, duration=args.duration)
        cpu_after = cpu_snapshot()
        print("-- entitlement checks (device key, a title bought or not)")
        answered, _errors = report(results, start, what="checks", ok_status=200, rate=args.check_rate, duration=args.duration,
                                   target_rate=CHECK_TARGET_RATE, target_p99_ms=CHECK_TARGET_P99_MS)
        cpu_report(cpu_before, cpu_after, answered)
        # The reference of the same run: the cheapest request the same stack answers, at the
        # same rate. The machine is shared and its speed varies between runs; the costs
        # above compare with this one, measured minutes apart on the same CPUs.
        open_loop(base, floor_call, rate=50, duration=2)
        cpu_before = cpu_snapshot()
        results, start = open_loop(base, floor_call, rate=args.check_rate, duration=args.duration / 2)
        cpu_after = cpu_snapshot()
        print("-- reference: GET /healthz (no authentication, one query), the floor of gunicorn + Django + PostgreSQL")
        answered, _errors = report(results, start, what="requests", ok_status=200, rate=args.check_rate,
                                   duration=args.duration / 2, target_rate=CHECK_TARGET_RATE, target_p99_ms=CHECK_TARGET_P99_MS)
        cpu_report(cpu_before, cpu_after, answered)
    finally:
        gunicorn_stop(process)
    return 0


if __name__ == "__main__":
    sys.exit(main())
