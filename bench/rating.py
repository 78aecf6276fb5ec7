"""Rating pipeline benchmark (``make bench``; not part of the test suite).

Needs PostgreSQL: ``scripts/testenv.py -- .venv/bin/python bench/rating.py`` (what
``make bench`` runs) gives it a throwaway server. Steps:

1. migrate, load the Company ZX catalog, and create ACCOUNTS accounts with an EFFECTIVE
   subscription holding the PPV Service (a fifth of them VIP);
2. generate N PENDING usage records with COPY (movies, day and night, over a week);
3. time the rating pipeline as the Celery task runs it — claim (FOR UPDATE SKIP LOCKED) →
   rate (the one rating function) → write (one set-based UPDATE per chunk) → charge what
   is due — until nothing is PENDING, with the subscriptions on a scheme without usage
   rules (usage waits for the billing run, so nothing is charged);
4. time the reference DESIGN.md §5 names: a hand-written psycopg COPY of the same final
   rated rows into the same table (the rows deleted first, untimed; the COPY's transaction
   and commit timed, deferred foreign-key checks included), and beside it a stricter one:
   the same COPY into an empty scratch copy of the table (indexes and checks, no foreign keys);
5. the same backlog again, reset to PENDING, with one worker process per CPU;
6. end to end with charging: BILLED accounts get a second subscription, on the Company ZX
   "Normal" scheme (every usage invoiced at once, CY VAT), BILLED PENDING records are
   generated for those (after 50 charged as an untimed warm-up: a worker's first charge
   imports and connects the broker transport, ~0.1 s), and
   claim → rate → charge (instant invoice) → ledger (its journal entry) is timed, against
   a psycopg COPY of every row that run wrote (records, invoices, lines, journal entries,
   postings, audit rows, ...) into the same tables (and, stricter, into scratch copies),
   in three rounds of new records (the verdict takes the median round);
7. end to end again with one worker process per CPU, one round of a chunk per worker from
   one backlog (accounts added so that each record has its own: still one invoice per
   record), against one connection's COPY of every row it wrote;
8. print UDRs/s, reference rows/s and the ratios against the targets (DESIGN.md §5).
"""

from __future__ import annotations

import argparse
import gc
import io
import multiprocessing
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.db.models import Count  # noqa: E402
from django.utils import timezone  # noqa: E402

from accounts.models import AccountsReceivable  # noqa: E402
from billing.demo import demo_billing_load  # noqa: E402
from billing.models import BillingTermScheme, UsageDetailRecord  # noqa: E402
from billing.services.rating_runs import udr_rating_claim_and_rate  # noqa: E402
from catalogs.demo import demo_catalog_load  # noqa: E402
from catalogs.models import Product  # noqa: E402
from subscriptions.models import Subscription, SubscriptionService  # noqa: E402
from subscriptions.services.actions import subscription_create  # noqa: E402
from tests.factories import customer_create  # noqa: E402

TARGET_RATE, TARGET_RATIO = 10_000, 0.5
CHARGE_TABLES = ("billing_invoice", "billing_invoiceline", "billing_journalentry", "billing_posting", "core_auditentry")
WARM_UP = 50  # records charged before the end-to-end run is timed
START = datetime(2026, 11, 16, tzinfo=ZoneInfo("Europe/Nicosia"))
TABLE = UsageDetailRecord._meta.db_table


def world(accounts: int) -> list[tuple[int, int]]:
    """(account id, subscription id) pairs, created through the services."""
    call_command("migrate", verbosity=0)
    demo_catalog_load()
    scheme = BillingTermScheme.objects.create(name="Bench periodic", kind="NORMAL", state="EFFECTIVE")
    accounts_made = [customer_create(first_name=f"Bench{n}", email=f"bench{n}@example.com", portal=False,
                                     classification="VIP" if n % 5 == 0 else "NORMAL") for n in range(accounts)]
    return _subscriptions(accounts_made, scheme)


def _subscriptions(accounts: list, scheme: BillingTermScheme) -> list[tuple[int, int]]:
    """An EFFECTIVE subscription on ``scheme`` holding the PPV Service for each account."""
    ppv = Product.objects.get(code="PPV-SERVICE")
    pairs = []
    for account in accounts:
        account = account if hasattr(account, "pk") else AccountsReceivable.objects.get(pk=account)
        subscription = subscription_create(account=account, billing_term_scheme=scheme)
        pairs.append((account.pk, subscription.pk))
    Subscription.objects.filter(pk__in=[sub for _, sub in pairs]).update(state="EFFECTIVE")
    SubscriptionService.objects.bulk_create(
        [SubscriptionService(subscription_id=sub, product=ppv, state="EFFECTIVE", start_date=START.date()) for _, sub in pairs])
    return pairs


def generate(pairs: list[tuple[int, int]], count: int, source: str = "BENCH") -> None:
    """``count`` PENDING records with COPY (fast, and what a source system's bulk load does)."""
    movies = list(Product.objects.filter(code__in=["LOTR", "LIMITLESS", "SERENDIPITY"]).values_list("pk", flat=True))
    rng = random.Random(5)
    now = timezone.now().isoformat()
    with connection.cursor() as cursor, cursor.cursor.copy(
            f"COPY {TABLE} (account_id, subscription_id, product_id, usage_at, channel, source, external_id, currency, "
            "rate_reason, state, rejection_reason, created_at) FROM STDIN") as copy:
        for n in range(count):
            account, subscription = pairs[n % len(pairs)]
            usage_at = START + timedelta(minutes=rng.randrange(7 * 24 * 60))
            copy.write_row((account, subscription, rng.choice(movies), usage_at, "SYSTEM", source, f"B-{n}", "", "",
                            "PENDING", "", now))
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {TABLE}")


def pipeline(chunk_size: int) -> tuple[int, float]:
    """What the Celery rating task runs, chunk after chunk: claim, rate, write, then charge
    what is due (nothing, on this scheme: usage waits for the billing run)."""
    started, processed = time.perf_counter(), 0
    while done := udr_rating_claim_and_rate(chunk_size=chunk_size):
        processed += done
    return processed, time.perf_counter() - started


def _worker(chunk_size: int) -> int:
    connection.close()  # a forked child opens its own connection
    processed, _elapsed = pipeline(chunk_size)
    connection.close()
    return processed


def pipeline_parallel(workers: int, chunk_size: int) -> tuple[int, float]:
    """The same pipeline in ``workers`` processes claiming from one backlog (SKIP LOCKED)."""
    connection.close()
    context = multiprocessing.get_context("fork")
    started = time.perf_counter()
    with context.Pool(workers) as pool:
        processed = sum(pool.map(_worker, [chunk_size] * workers))
    return processed, time.perf_counter() - started


def reset() -> None:
    """Back to PENDING for the next timed run (not timed)."""
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {TABLE} SET state = 'PENDING', amount = NULL, currency = '', catalog_id = NULL, "
                       "usage_service_id = NULL, tier_id = NULL, rate_reason = '', rejection_reason = '' WHERE source = 'BENCH'")
    connection.close()
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {TABLE}")


def reference(where: dict[str, str] | None = None) -> tuple[int, float]:
    """The reference DESIGN.md §5 names: a hand-written psycopg COPY of the same rows into
    the same tables. Untimed: read the rows, delete them in one transaction (the ledger's
    append-only triggers set aside for that delete only), VACUUM ANALYZE. Timed: one
    transaction that COPYs every row back, ids and all, and commits — so the tables' own
    indexes, foreign keys (deferred: checked at that commit) and the balanced-postings
    constraint trigger are paid as the pipeline pays them. Returns (rows, seconds)."""
    where = where or {TABLE: "source = 'BENCH'"}
    batches = []
    with connection.cursor() as cursor:
        for table, condition in where.items():
            cursor.execute(f'SELECT * FROM "{table}" WHERE {condition}')
            batches.append((table, [column.name for column in cursor.description], cursor.fetchall()))
        # The append-only triggers are set aside in their own transactions around the delete:
        # a table with pending (deferred) trigger events cannot be altered.
        triggers = _append_only_triggers([table for table, _columns, _rows in batches])
        for table, trigger in triggers:
            cursor.execute(f'ALTER TABLE "{table}" DISABLE TRIGGER "{trigger}"')
        try:
            with transaction.atomic():
                for table, condition in where.items():
                    cursor.execute(f'DELETE FROM "{table}" WHERE {condition}')
        finally:
            for table, trigger in triggers:
                cursor.execute(f'ALTER TABLE "{table}" ENABLE TRIGGER "{trigger}"')
    with connection.cursor() as cursor:
        for table, _columns, _rows in batches:
            cursor.execute(f'VACUUM ANALYZE "{table}"')
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        for table, columns, rows in batches:
            with cursor.cursor.copy(f'COPY "{table}" ({", ".join(columns)}) FROM STDIN') as copy:
                for row in rows:
                    copy.write_row(row)
    elapsed = time.perf_counter() - started
    return sum(len(rows) for _table, _columns, rows in batches), elapsed


def reference_scratch(where: dict[str, str] | None = None) -> tuple[int, float]:
    """A stricter reference, printed beside the one above: COPY the same rows into empty
    scratch copies of their tables (``LIKE ... INCLUDING DEFAULTS INCLUDING CONSTRAINTS
    INCLUDING INDEXES``: empty indexes, check constraints, no foreign keys, no triggers), by
    hand, in one transaction; rows are read before timing. Returns (rows, seconds)."""
    where = where or {TABLE: "source = 'BENCH'"}
    with connection.cursor() as cursor:
        batches = []
        for table, condition in where.items():
            scratch = f"bench_ref_{table}"[:63]
            cursor.execute(f"DROP TABLE IF EXISTS {scratch}")
            cursor.execute(f"CREATE TABLE {scratch} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES)")
            cursor.execute(f"SELECT * FROM {table} WHERE {condition}")
            batches.append((scratch, [column.name for column in cursor.description], cursor.fetchall()))
        started = time.perf_counter()
        with transaction.atomic():
            for scratch, columns, rows in batches:
                with cursor.cursor.copy(f"COPY {scratch} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
        elapsed = time.perf_counter() - started
        for scratch, _columns, _rows in batches:
            cursor.execute(f"DROP TABLE {scratch}")
    return sum(len(rows) for _scratch, _columns, rows in batches), elapsed


def _append_only_triggers(tables: list[str]) -> list[tuple[str, str]]:
    """The (table, trigger) pairs that refuse a DELETE on ``tables`` (the ledger's)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT DISTINCT event_object_table, trigger_name FROM information_schema.triggers "
                       "WHERE event_manipulation = 'DELETE' AND action_timing = 'BEFORE' AND event_object_table = ANY(%s)",
                       [tables])
        return cursor.fetchall()


def _id_tables() -> dict[str, int]:
    """Every table of the schema with an ``id`` column, and its highest id now."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT table_name FROM information_schema.columns WHERE table_schema = 'public' "
                       "AND column_name = 'id' AND table_name NOT LIKE 'bench_%' ORDER BY table_name")
        tables = [row[0] for row in cursor.fetchall()]
        marks = {}
        for table in tables:
            cursor.execute(f'SELECT coalesce(max(id), 0) FROM "{table}"')
            marks[table] = cursor.fetchone()[0]
    return marks


@dataclass
class Round:
    """One timed end-to-end round and its reference, measured one after the other."""

    records: int
    seconds: float
    written: dict
    reference_rows: int
    reference_seconds: float
    scratch_seconds: float

    @property
    def ratio(self) -> float:
        return self.reference_seconds / self.seconds


def end_to_end(pairs: list[tuple[int, int]], count: int, chunk_size: int, rounds: int) -> list[Round]:
    """Claim → rate → charge → ledger for ``count`` new records of subscriptions billed at
    once, ``rounds`` times (each round new records on the same subscriptions, then its
    references): one round is a single chunk of well under a second, so the machine's
    moment-to-moment speed moves one figure by ±30 %; the verdict takes the median."""
    scheme = demo_billing_load()["scheme"]
    billed_pairs = _subscriptions([account for account, _sub in pairs[:count]], scheme)
    # Warm-up, not timed: a worker's first charge pays one-off costs a long-lived worker
    # does not (importing the broker transport, opening its connection, ~0.1 s).
    generate(billed_pairs[:WARM_UP], WARM_UP, source="BENCH-WARM-UP")
    while udr_rating_claim_and_rate(chunk_size=chunk_size):
        pass
    results = []
    for number in range(1, rounds + 1):
        source = f"BENCH-BILLED-{number}"
        generate(billed_pairs, count, source=source)
        results.append(_timed_round(source, lambda: pipeline(chunk_size)[0]))
    return results


def _timed_round(source: str, run: Callable[[], int]) -> Round:
    """Time ``run()`` (it charges the records of ``source`` and returns how many), then the
    references: COPYs of every row it wrote. The reference COPYs into freshly vacuumed
    tables; so does the pipeline (autovacuum woken by a previous round's rows would
    otherwise share its CPUs)."""
    with connection.cursor() as cursor:
        for table in (TABLE, *CHARGE_TABLES):
            cursor.execute(f'VACUUM ANALYZE "{table}"')
    before = _id_tables()
    connection.close()
    started = time.perf_counter()
    processed = run()
    elapsed = time.perf_counter() - started
    after = _id_tables()
    written = {table: after[table] - mark for table, mark in before.items() if after.get(table, 0) > mark}
    where = {TABLE: f"source = '{source}'", **{table: f"id > {before[table]}" for table in written}}
    scratch_copied, scratch_elapsed = reference_scratch(where)
    copied, copy_elapsed = reference(where)
    assert copied == scratch_copied
    return Round(processed, elapsed, written, copied, copy_elapsed, scratch_elapsed)


def _warm(chunk_size: int) -> int:
    connection.close()  # a forked child opens its own connections (database, broker) here, untimed
    return udr_rating_claim_and_rate(chunk_size=chunk_size)


def end_to_end_parallel(pairs: list[tuple[int, int]], count: int, chunk_size: int, workers: int) -> Round:
    """One end-to-end round with ``workers`` processes claiming from one backlog of
    ``workers`` × ``count`` new records (one chunk each), as a deployment with a worker per
    CPU drains a bulk load. Each record has its own account and subscription (accounts are
    added for the workers beyond the first: two orders of one customer in one bulk load
    are rare), so every record is still its own invoice; the reference is the same
    single-connection COPY of every row the round wrote."""
    scheme = demo_billing_load()["scheme"]
    accounts = [account for account, _sub in pairs[:count]] + [
        customer_create(first_name=f"BenchP{n}", email=f"bench-parallel{n}@example.com", portal=False,
                        classification="VIP" if n % 5 == 0 else "NORMAL") for n in range(count * (workers - 1))]
    billed_pairs = _subscriptions(accounts, scheme)
    connection.close()
    context = multiprocessing.get_context("fork")
    with context.Pool(workers) as pool:
        generate(billed_pairs[:WARM_UP * workers], WARM_UP * workers, source="BENCH-PARALLEL-WARM-UP")
        connection.close()
        pool.map(_warm, [WARM_UP] * workers)
        generate(billed_pairs, workers * count, source="BENCH-BILLED-PARALLEL")
        return _timed_round("BENCH-BILLED-PARALLEL", lambda: sum(pool.map(_worker, [chunk_size] * workers)))


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in io.open("/proc/cpuinfo") if line.startswith("model name")), "?")
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0]
    return f"{os.cpu_count()} CPUs ({model}), PostgreSQL {version}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--accounts", type=int, default=2_000)
    parser.add_argument("--chunk-size", type=int, default=settings.RATING_CHUNK_SIZE,
                        help="Default: the rating task's own (RATING_CHUNK_SIZE).")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="Processes for the parallel run.")
    parser.add_argument("--billed", type=int, default=None,
                        help="Records per end-to-end round (default: one full chunk, as a worker claims from a backlog).")
    parser.add_argument("--billed-rounds", type=int, default=3, help="End-to-end rounds (the verdict takes the median).")
    args = parser.parse_args()
    args.billed = min(args.billed or args.chunk_size, args.accounts)  # one record per subscription, one per account
    if connection.vendor != "postgresql":
        print("bench/rating.py needs PostgreSQL: run it through scripts/testenv.py (make bench).")
        return 2
    t0 = time.perf_counter()
    pairs = world(args.accounts)
    # What a Celery pool process does when it starts (config.celery.freeze_startup_objects):
    # what exists so far lives on, and the cycle collector leaves it alone.
    gc.collect()
    gc.freeze()
    t1 = time.perf_counter()
    generate(pairs, args.records)
    t2 = time.perf_counter()
    processed, elapsed = pipeline(args.chunk_size)
    states = dict(UsageDetailRecord.objects.filter(source="BENCH").values_list("state").annotate(n=Count("pk")).order_by())
    _copied, scratch_elapsed = reference_scratch()
    copied, copy_elapsed = reference()
    reset()
    parallel, parallel_elapsed = pipeline_parallel(args.workers, args.chunk_size)
    rounds = end_to_end(pairs, args.billed, args.chunk_size, args.billed_rounds)
    billed_states = dict(UsageDetailRecord.objects.filter(source__startswith="BENCH-BILLED-").exclude(source="BENCH-BILLED-PARALLEL")
                         .values_list("state").annotate(n=Count("pk")).order_by())
    together = end_to_end_parallel(pairs, args.billed, args.chunk_size, args.workers) if args.workers > 1 else None
    together_states = dict(UsageDetailRecord.objects.filter(source="BENCH-BILLED-PARALLEL").values_list("state")
                           .annotate(n=Count("pk")).order_by())
    rate, reference_rate, scratch_rate = processed / elapsed, copied / copy_elapsed, copied / scratch_elapsed
    ratio, parallel_rate = rate / reference_rate, parallel / parallel_elapsed
    print(f"machine: {machine()}")
    print(f"setup: {args.accounts} accounts in {t1 - t0:.1f}s; {args.records} PENDING UDRs generated with COPY in {t2 - t1:.2f}s")
    print(f"pipeline (claim -> rate -> write -> charge what is due: nothing on this scheme, 1 worker, chunk {args.chunk_size}): "
          f"{processed} UDRs in {elapsed:.2f}s = {rate:,.0f} UDRs/s  [target >= {TARGET_RATE:,}] "
          f"{'OK' if rate >= TARGET_RATE else 'BELOW TARGET'}")
    print(f"final states: {states}")
    print(f"reference (psycopg COPY of the same {copied} rated rows into the same table, commit included): "
          f"{copy_elapsed:.2f}s = {reference_rate:,.0f} rows/s")
    print(f"ratio pipeline/reference: {ratio:.2f}  [target >= {TARGET_RATIO}] {'OK' if ratio >= TARGET_RATIO else 'BELOW TARGET'}")
    print(f"  stricter reference (COPY into an empty scratch copy: no foreign keys, empty indexes): {scratch_elapsed:.2f}s "
          f"= {scratch_rate:,.0f} rows/s; ratio {rate / scratch_rate:.2f}")
    print(f"pipeline with {args.workers} worker processes (same backlog, reset to PENDING): {parallel} UDRs in "
          f"{parallel_elapsed:.2f}s = {parallel_rate:,.0f} UDRs/s  [target >= {TARGET_RATE:,}] "
          f"{'OK' if parallel_rate >= TARGET_RATE else 'BELOW TARGET'}, ratio {parallel_rate / reference_rate:.2f}  "
          f"[target >= {TARGET_RATIO}] {'OK' if parallel_rate / reference_rate >= TARGET_RATIO else 'BELOW TARGET'}"
          f"{'' if parallel == args.records else '  WRONG COUNT'}")
    print(f"end to end with instant billing (claim -> rate -> charge -> ledger, 1 worker, chunk {args.chunk_size}), "
          f"{len(rounds)} rounds of {args.billed} new records; final states {billed_states}")
    print(f"  rows each round wrote: {', '.join(f'{table} {rows}' for table, rows in sorted(rounds[0].written.items()))}; "
          f"reference: psycopg COPY of those {rounds[0].reference_rows} rows into the same tables, commit included")
    for number, one in enumerate(rounds, start=1):
        print(f"  round {number}: {one.records} UDRs in {one.seconds:.3f}s = {one.records / one.seconds:,.0f} UDRs/s; "
              f"reference {one.reference_seconds:.3f}s, ratio {one.ratio:.3f}; scratch reference {one.scratch_seconds:.3f}s, "
              f"ratio {one.scratch_seconds / one.seconds:.3f}")
    billed_rate = statistics.median(one.records / one.seconds for one in rounds)
    billed_ratio = statistics.median(one.ratio for one in rounds)
    print(f"  median: {billed_rate:,.0f} UDRs/s  [target >= {TARGET_RATE:,}] {'OK' if billed_rate >= TARGET_RATE else 'BELOW TARGET'}; "
          f"ratio (reference time / pipeline time) {billed_ratio:.3f}  [target >= {TARGET_RATIO}] "
          f"{'OK' if billed_ratio >= TARGET_RATIO else 'BELOW TARGET'}; stricter ratio "
          f"{statistics.median(one.scratch_seconds / one.seconds for one in rounds):.3f}")
    if together is not None:
        together_rate = together.records / together.seconds
        print(f"end to end with {args.workers} worker processes (one chunk of {args.chunk_size} each, one backlog), one round: "
              f"{together.records} UDRs in {together.seconds:.3f}s = {together_rate:,.0f} UDRs/s  [target >= {TARGET_RATE:,}] "
              f"{'OK' if together_rate >= TARGET_RATE else 'BELOW TARGET'}; reference (one connection's COPY of the "
              f"{together.reference_rows} rows) {together.reference_seconds:.3f}s, ratio {together.ratio:.3f}  "
              f"[target >= {TARGET_RATIO}] {'OK' if together.ratio >= TARGET_RATIO else 'BELOW TARGET'}; final states {together_states}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
