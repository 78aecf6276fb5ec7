"""Billing run benchmark (``make bench``; not part of the test suite).

Needs PostgreSQL: ``scripts/testenv.py -- .venv/bin/python bench/billing_run.py``. Steps:

1. migrate, load the Company ZX catalog and billing (CY VAT), a pre-billed monthly scheme;
   create SUBSCRIPTIONS accounts, each with one EFFECTIVE subscription holding the free PPV
   Service and the Sports Pack (€9.99 a month, OTT Basic plan) since 1 October, already
   billed for October and November (bulk inserts: the world is not what is measured), a tenth of
   them with a WELCOME50 coupon grant and a pending one-time installation charge;
2. time a billing run for 1 December: every account gets one invoice for December
   (recurring, the promotion, the one-time charge), with ``--workers``
   processes claiming chunks with SKIP LOCKED, as Celery workers do;
3. time a second run of the same day and count the rows it added to invoices, lines,
   journal entries, postings, billed periods and audit entries (the target: none, in at
   most 10% of the first run's time);
4. print invoices/s against the target (DESIGN.md §5: ≥ 1,000 invoices/s).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from datetime import date
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, connections  # noqa: E402

from accounts.models import AccountsReceivable, Address, Classification, Contact  # noqa: E402
from billing.demo import demo_billing_load  # noqa: E402
from billing.models import (  # noqa: E402
    BilledPeriod, BillingRun, BillingTermScheme, Invoice, InvoiceLine, JournalEntry, OneTimeCharge, Posting, PromotionGrant,
)
from billing.selectors import trial_balance  # noqa: E402
from billing.services.runs import billing_run_chunk_bill, billing_run_finish, billing_run_plan  # noqa: E402
from catalogs.demo import demo_catalog_load  # noqa: E402
from catalogs.models import PricePlan, Product, Promotion  # noqa: E402
from core.models import AuditEntry  # noqa: E402
from subscriptions.models import Subscription, SubscriptionService  # noqa: E402

TARGET_INVOICES_PER_SECOND, TARGET_RERUN_SHARE = 1_000, 0.10
NICOSIA = ZoneInfo("Europe/Nicosia")
STARTED, BILLED_THROUGH, RUN_DATE = date(2026, 10, 1), date(2026, 12, 1), date(2026, 12, 1)
SCHEME = "Bench monthly"
COUNTED = (Invoice, InvoiceLine, JournalEntry, Posting, BilledPeriod, AuditEntry)


def world(subscriptions: int) -> None:
    call_command("migrate", verbosity=0)
    demo_catalog_load()
    demo_billing_load()
    scheme = BillingTermScheme.objects.create(name=SCHEME, kind="NORMAL", state="EFFECTIVE", billing_day=1, pre_bill=True)
    plan = PricePlan.objects.get(code="OTT-BASIC")
    ppv, sports = Product.objects.get(code="PPV-SERVICE"), Product.objects.get(code="SPORTS-PACK")
    installation, welcome = Product.objects.get(code="INSTALLATION"), Promotion.objects.get(code="WELCOME50")
    normal = Classification.objects.get(code="NORMAL")
    batch = 5_000
    for offset in range(0, subscriptions, batch):
        count = min(batch, subscriptions - offset)
        contacts = Contact.objects.bulk_create(
            Contact(first_name=f"Bench{n}", last_name="Customer", email=f"bench{n}@example.com")
            for n in range(offset, offset + count))
        Address.objects.bulk_create(Address(contact=c, kind="BILLING", line1="1 Main Street", city="Nicosia", country="CY")
                                    for c in contacts)
        accounts = AccountsReceivable.objects.bulk_create(
            AccountsReceivable(number=f"BENCH{n:08d}", contact=c, currency="EUR", classification=normal)
            for n, c in zip(range(offset, offset + count), contacts))
        subs = Subscription.objects.bulk_create(
            Subscription(number=f"BSUB{n:08d}", account=a, billing_term_scheme=scheme, state="EFFECTIVE")
            for n, a in zip(range(offset, offset + count), accounts))
        services = SubscriptionService.objects.bulk_create(
            SubscriptionService(subscription=s, product=product, price_plan=plan, state="EFFECTIVE", start_date=STARTED)
            for s in subs for product in (ppv, sports))
        BilledPeriod.objects.bulk_create(BilledPeriod(service=service, period_start=start, period_end=end)
                                         for service in services
                                         for start, end in ((STARTED, date(2026, 11, 1)), (date(2026, 11, 1), BILLED_THROUGH)))
        tenth = subs[::10]
        PromotionGrant.objects.bulk_create(
            PromotionGrant(subscription=s, promotion=welcome, starts_on=BILLED_THROUGH, reference=f"bench-grant-{s.pk}",
                           channel="SYSTEM") for s in tenth)
        OneTimeCharge.objects.bulk_create(
            OneTimeCharge(account_id=s.account_id, subscription=s, product=installation, description="Installation",
                          amount=Decimal("25.00"), currency="EUR", reference=f"bench-install-{s.pk}", charged_on=BILLED_THROUGH)
            for s in tenth)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def _worker(run_pk: int) -> None:
    connections.close_all()
    run = BillingRun.objects.get(pk=run_pk)
    while billing_run_chunk_bill(run=run) is not None:
        pass
    billing_run_finish(run=run)
    connections.close_all()


def timed_run(workers: int) -> tuple[float, BillingRun]:
    """A run of the benchmark's scheme only (``make bench`` runs other benchmarks in the same
    database first; their customers are not this benchmark's business)."""
    started = time.perf_counter()
    scheme = BillingTermScheme.objects.get(name=SCHEME)
    run = billing_run_plan(run=BillingRun.objects.create(run_date=RUN_DATE, scheme=scheme))
    connections.close_all()
    processes = [multiprocessing.Process(target=_worker, args=(run.pk,)) for _ in range(workers)]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
        if process.exitcode != 0:
            raise SystemExit(f"a billing worker failed (exit {process.exitcode})")
    elapsed = time.perf_counter() - started
    run.refresh_from_db()
    return elapsed, run


def counts() -> dict[str, int]:
    """Rows of what a run writes per account (audit rows of invoices; the run's own row and
    its "completed" audit entry are bookkeeping of the re-run itself)."""
    found = {model.__name__: model.objects.count() for model in COUNTED if model is not AuditEntry}
    found["AuditEntry"] = AuditEntry.objects.filter(content_type__model="invoice").count()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscriptions", type=int, default=50_000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        raise SystemExit("The billing run benchmark needs PostgreSQL (run it through scripts/testenv.py or make bench).")

    print(f"Billing run benchmark: {args.subscriptions:,} subscriptions, {args.workers} worker process(es)", flush=True)
    started = time.perf_counter()
    world(args.subscriptions)
    print(f"  world built in {time.perf_counter() - started:.1f} s (bulk inserts, not measured)", flush=True)

    first_time, first = timed_run(args.workers)
    if first.state != BillingRun.State.COMPLETED:
        raise SystemExit(f"the run ended {first.state}")
    before = counts()
    rerun_time, rerun = timed_run(args.workers)
    added = {name: counts()[name] - before[name] for name in before}
    balance = sum(trial_balance().values())

    rate = first.invoices_created / first_time
    share = rerun_time / first_time
    print(f"  first run:  {first.invoices_created:,} invoices, €{first.invoiced_total:,} in {first_time:.2f} s "
          f"= {rate:,.0f} invoices/s (target ≥ {TARGET_INVOICES_PER_SECOND:,}/s: {'met' if rate >= TARGET_INVOICES_PER_SECOND else 'MISSED'})")
    print(f"  re-run:     {rerun.invoices_created} invoices in {rerun_time:.3f} s = {share:.1%} of the first run "
          f"(target ≤ {TARGET_RERUN_SHARE:.0%}: {'met' if share <= TARGET_RERUN_SHARE else 'MISSED'})")
    print(f"  rows the re-run added: {sum(added.values())} ({', '.join(f'{k} {v}' for k, v in added.items())}); "
          "besides its own run row")
    print(f"  ledger: debits − credits = {balance}")


if __name__ == "__main__":
    main()
