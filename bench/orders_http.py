"""PPV orders over HTTP benchmark (``make bench``; not part of the test suite).

Needs PostgreSQL and Redis: ``scripts/testenv.py -- .venv/bin/python bench/orders_http.py``
(what ``make bench`` runs) gives it throwaway servers. Steps:

1. migrate and load a Company ZX-like world: the ZX catalog, the "Normal" billing term
   scheme (every order invoiced at once, CY VAT), and CUSTOMERS portal customers (one in
   five VIP) each with an EFFECTIVE subscription holding the PPV Service, and their portal
   API tokens;
2. start gunicorn (``config.wsgi`` as in the Procfile, production settings, 2 × CPUs + 1
   sync workers) on a free loopback port;
3. drive an open-loop load generator (asyncio + aiohttp, in this process): RATE orders per
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
import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
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
from provisioning.models import ProvisioningRequest  # noqa: E402
from tests.factories import customer_create  # noqa: E402
from tests.world import effective_subscription  # noqa: E402

TARGET_RATE, TARGET_P99_MS = 100, 150
TITLES = ("LOTR", "LIMITLESS", "SERENDIPITY")
PASSWORD = "bench-password-1"


def world(customers: int) -> tuple[list[str], list[int]]:
    """Portal tokens of ``customers`` subscribers and the PPV titles' ids."""
    call_command("migrate", verbosity=0)
    demo_catalog_load()
    scheme = demo_billing_load()["scheme"]
    # Set-up speed only: the portal passwords of this throwaway database are hashed cheaply.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    tokens = []
    for n in range(customers):
        email = f"bench-order{n}@example.com"
        account = customer_create(first_name=f"Order{n}", email=email, password=PASSWORD,
                                  classification="VIP" if n % 5 == 0 else "NORMAL")
        effective_subscription(account, scheme)
        tokens.append(portal_login(username=email, password=PASSWORD).key)
    titles = list(ContentTitle.objects.filter(code__in=TITLES).values_list("pk", flat=True))
    return tokens, titles


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def gunicorn_start(workers: int) -> tuple[subprocess.Popen, str]:
    """gunicorn as the Procfile runs it, production settings, on a free loopback port."""
    port = free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.production",
           "SECRET_KEY": secrets.token_urlsafe(50), "ALLOWED_HOSTS": "127.0.0.1"}
    env.pop("DEBUG", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
         "--log-level", "warning"],
        cwd=ROOT, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with status {process.returncode}")
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:
                if response.status == 200:
                    return process, base
        except OSError:
            time.sleep(0.3)
    process.terminate()
    raise RuntimeError("gunicorn did not answer /healthz within 60 s")


def gunicorn_stop(process: subprocess.Popen) -> None:
    """Stop the gunicorn we started (its own process group: the master and its workers)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


async def _order(session, base: str, token: str, title: int, due: float, results: list) -> None:
    headers = {"Authorization": f"Token {token}", "Idempotency-Key": str(uuid.uuid4()),
               "X-Forwarded-Proto": "https"}  # what the TLS-terminating proxy adds in production
    status = 0
    try:
        async with session.post(f"{base}/api/v1/orders/", json={"title": title}, headers=headers) as response:
            await response.read()
            status = response.status
    except Exception as error:  # noqa: BLE001 - a failed request is a counted error, not a crash
        status = type(error).__name__
    results.append((due, time.perf_counter(), status))


async def load(base: str, tokens: list[str], titles: list[int], rate: float, duration: float) -> tuple[list, float]:
    """Open loop: order i is sent when due (start + i / rate); returns (due, done, status)."""
    import aiohttp

    results: list = []
    total = int(rate * duration)
    connector = aiohttp.TCPConnector(limit=1000)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
        tasks = []
        start = time.perf_counter() + 0.1
        for i in range(total):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(_order(session, base, tokens[i % len(tokens)], titles[i % len(titles)], due, results)))
        await asyncio.gather(*tasks)
    return results, start


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))] if ordered else float("nan")


def report(results: list, start: float, rate: float, duration: float) -> tuple[int, int]:
    ok = [(due, done) for due, done, status in results if status == 201]
    errors: dict = {}
    for _due, _done, status in results:
        if status != 201:
            errors[status] = errors.get(status, 0) + 1
    latencies = [(done - due) * 1000 for due, done in ok]
    elapsed = max(done for _due, done, _status in results) - start
    achieved = len(ok) / elapsed
    p50, p95, p99 = (percentile(latencies, share) for share in (0.50, 0.95, 0.99))
    print(f"load: {len(results)} orders offered at {rate:g}/s for {duration:g}s (open loop)")
    print(f"orders/s achieved: {achieved:,.1f} ({len(ok)} created in {elapsed:.1f}s)  [target >= {TARGET_RATE}] "
          f"{'OK' if achieved >= TARGET_RATE * 0.98 else 'BELOW TARGET'}")
    print(f"latency ms (from when due): p50 {p50:.1f}  p95 {p95:.1f}  p99 {p99:.1f}  max {max(latencies, default=0):.1f}  "
          f"[target p99 < {TARGET_P99_MS}] {'OK' if p99 < TARGET_P99_MS else 'BELOW TARGET'}")
    print(f"errors: {sum(errors.values())} {errors if errors else ''}")
    return len(ok), sum(errors.values())


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


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0]
    return f"{os.cpu_count()} CPUs ({model}), PostgreSQL {version}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100.0, help="Orders offered per second.")
    parser.add_argument("--duration", type=float, default=25.0, help="Seconds of load.")
    parser.add_argument("--customers", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 2) + 1, help="gunicorn sync workers.")
    args = parser.parse_args()
    if connection.vendor != "postgresql" or not os.environ.get("REDIS_URL"):
        print("bench/orders_http.py needs PostgreSQL and Redis: run it through scripts/testenv.py (make bench).")
        return 2
    started = time.perf_counter()
    tokens, titles = world(args.customers)
    print(f"machine: {machine()}")
    print(f"setup: {args.customers} portal customers (1 in 5 VIP) with the PPV Service in {time.perf_counter() - started:.1f}s; "
          f"gunicorn {args.workers} sync workers, production settings")
    connection.close()
    process, base = gunicorn_start(args.workers)
    try:
        # Warm-up, not counted: every worker opens its database connection and loads the code.
        warm_up, _start = asyncio.run(load(base, tokens, titles, rate=20, duration=2))
        results, start = asyncio.run(load(base, tokens, titles, rate=args.rate, duration=args.duration))
    finally:
        gunicorn_stop(process)
    created, _errors = report(results, start, args.rate, args.duration)
    check(created + sum(1 for _due, _done, status in warm_up if status == 201))
    return 0


if __name__ == "__main__":
    sys.exit(main())
