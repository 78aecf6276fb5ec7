"""PPV orders over HTTP benchmark (``make bench``; not part of the test suite).

Needs PostgreSQL and Redis: ``scripts/testenv.py -- .venv/bin/python bench/orders_http.py``
(what ``make bench`` runs) gives it throwaway servers. Steps:

1. migrate and load a Company ZX-like world: the ZX catalog, the "Normal" billing term
   scheme (every order invoiced at once, CY VAT), and CUSTOMERS portal customers (one in
   five VIP) each with an EFFECTIVE subscription holding the PPV Service, and their portal
   API tokens;
2. start gunicorn (``config.wsgi`` as in the Procfile, production settings, 2 × CPUs + 1
   sync workers) on a free loopback port;
3. drive an open-loop load generator (asyncio on uvloop, in this process): RATE orders per
   second for DURATION seconds, each a ``POST /api/v1/orders/`` of a PPV title by the next
   customer, with a unique ``Idempotency-Key``. Open loop: request *i* is due at
   ``start + i / RATE`` whether or not earlier ones have answered, and its latency is
   counted from when it was due, so a slow server cannot hide its queueing (no
   coordinated omission);
4. print orders/s achieved, p50/p95/p99 latency, errors, and the target (DESIGN.md §5:
   p99 < 150 ms at ≥ 100 orders/s); check in the database that every order left its UDR,
   invoice (or free BILLED record), ledger entry and provisioning request.

Every order takes the full path: validate, rate, UDR, instant invoice and ledger posting,
rental, PURCHASE_PPV outbox row, idempotency record.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
os.environ.setdefault("DEBUG", "false")  # the set-up process: no query log kept in memory

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from accounts.services import portal_login  # noqa: E402
from billing.demo import demo_billing_load  # noqa: E402
from billing.models import Invoice, JournalEntry, UsageDetailRecord  # noqa: E402
from catalogs.demo import demo_catalog_load  # noqa: E402
from catalogs.models import ContentTitle  # noqa: E402
from httpload import Call, cpu_report, cpu_snapshot, gunicorn_start, gunicorn_stop, machine, open_loop, report  # noqa: E402
from provisioning.models import ProvisioningRequest  # noqa: E402
from tests.factories import customer_create  # noqa: E402
from tests.world import effective_subscription  # noqa: E402

TARGET_RATE, TARGET_P99_MS = 100, 150
TITLES = ("LOTR", "LIMITLESS", "SERENDIPITY")
PASSWORD = "bench-password-1"


def world(customers: int, *, prefix: str = "bench-order") -> tuple[list[str], list[int]]:
    """Portal tokens of ``customers`` subscribers (e-mails ``<prefix>N@example.com``: each
    benchmark its own, as they share the database) and the PPV titles' ids."""
    call_command("migrate", verbosity=0)
    demo_catalog_load()
    scheme = demo_billing_load()["scheme"]
    # Set-up speed only: the portal passwords of this throwaway database are hashed cheaply.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    tokens = []
    for n in range(customers):
        email = f"{prefix}{n}@example.com"
        account = customer_create(first_name=f"Order{n}", email=email, password=PASSWORD,
                                  classification="VIP" if n % 5 == 0 else "NORMAL")
        effective_subscription(account, scheme)
        tokens.append(portal_login(username=email, password=PASSWORD).key)
    titles = list(ContentTitle.objects.filter(code__in=TITLES).values_list("pk", flat=True))
    return tokens, titles


def order_call(tokens: list[str], titles: list[int]):
    """Order i: the next customer orders the next title, with a unique Idempotency-Key."""
    def call_for(i: int) -> Call:
        return Call("POST", "/api/v1/orders/", {"Authorization": f"Token {tokens[i % len(tokens)]}",
                                                "Idempotency-Key": str(uuid.uuid4())}, {"title": titles[i % len(titles)]})
    return call_for


def check(created: int) -> None:
    """What the orders left in the database: one UDR, invoice or free BILLED record, ledger
    entry and outbox row per order."""
    udrs = UsageDetailRecord.objects.filter(channel="PORTAL")  # other benchmarks' rows share the database
    paid = udrs.filter(amount__gt=0)
    invoices = Invoice.objects.filter(state="POSTED", lines__udr__channel="PORTAL").distinct()
    print(f"database: {udrs.count()} portal UDRs ({udrs.filter(state='BILLED').count()} BILLED), "
          f"{invoices.count()} posted invoices for {paid.count()} paid orders, "
          f"{JournalEntry.objects.filter(kind='INVOICE', invoice__in=invoices).count()} invoice ledger entries, "
          f"{ProvisioningRequest.objects.filter(kind='PURCHASE_PPV', action__channel='PORTAL').count()} PURCHASE_PPV requests "
          f"(orders created, warm-up included: {created})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100.0, help="Orders offered per second.")
    parser.add_argument("--duration", type=float, default=25.0, help="Seconds of load.")
    parser.add_argument("--customers", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 2) + 1, help="gunicorn workers.")
    parser.add_argument("--threads", type=int, default=1, help="Threads per gunicorn worker (1: sync workers).")
    args = parser.parse_args()
    if connection.vendor != "postgresql" or not os.environ.get("REDIS_URL"):
        print("bench/orders_http.py needs PostgreSQL and Redis: run it through scripts/testenv.py (make bench).")
        return 2
    started = time.perf_counter()
    tokens, titles = world(args.customers)
    print(f"machine: {machine(connection)}")
    print(f"setup: {args.customers} portal customers (1 in 5 VIP) with the PPV Service in {time.perf_counter() - started:.1f}s; "
          f"gunicorn {args.workers} sync workers, production settings")
    connection.close()
    process, base = gunicorn_start(args.workers, threads=args.threads)
    try:
        # Warm-up, not counted: every worker opens its database connection and loads the code.
        warm_up, _start = open_loop(base, order_call(tokens, titles), rate=20, duration=2)
        cpu_before = cpu_snapshot()
        results, start = open_loop(base, order_call(tokens, titles), rate=args.rate, duration=args.duration)
        cpu_after = cpu_snapshot()
    finally:
        gunicorn_stop(process)
    created, _errors = report(results, start, what="orders", ok_status=201, rate=args.rate, duration=args.duration,
                              target_rate=TARGET_RATE, target_p99_ms=TARGET_P99_MS)
    cpu_report(cpu_before, cpu_after, created)
    check(created + sum(1 for _due, _done, status in warm_up if status == 201))
    return 0


if __name__ == "__main__":
    sys.exit(main())
