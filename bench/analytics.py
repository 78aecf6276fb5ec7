"""Analytics benchmark (``make bench``; not part of the test suite).

Needs PostgreSQL: ``scripts/testenv.py -- .venv/bin/python bench/analytics.py``. Steps:

1. migrate, load the Company ZX catalog and billing; create CUSTOMERS accounts signed up
   over the last MONTHS months, each with a device and a subscription to the Sports Pack
   (a quarter of them cancelled a few months later), and TITLES PPV titles in taste
   clusters (bulk inserts); then, in SQL with ``generate_series`` (not the ORM row by
   row), ≥ 1,000,000 PPV orders (UDRs) over the months and ≥ 1,000,000 viewing events
   (START / PROGRESS / STOP) over the last VIEWING_DAYS days, three quarters of each
   customer's titles from their own cluster;
2. time the rollups the hourly jobs run: the first fill (every month; every day of
   viewing; the recommendation tables) and the incremental re-run (the last two months
   and days, as the hourly task does); then, untimed, ``VACUUM ANALYZE`` the rollup tables,
   as autovacuum has them in production (right after a first fill of 210,000 rows it
   would be sharing the CPUs with the pages timed next);
3. time the admin dashboard (the Django test client logged in as Finance) with several
   filters, the usage records' admin change list (unfiltered, a far page, filters, a search;
   its COUNT and DISTINCT queries are listed: none may count the whole table) and the staff
   API: median and p95 of repeated requests (target < 500 ms);
4. print the offline evaluation of the recommendations (each customer's last watched
   title held out; precision@10 / recall@10 against the popularity baseline).

Other benchmarks may have left customers in the database (``make bench`` runs them
first); the rollups include them, as they would in production, and the counts are printed.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
os.environ.setdefault("DEBUG", "false")  # no query log: it would grow with millions of rows and slow every request

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import Group, User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from accounts.models import AccountsReceivable, Address, Classification, Contact  # noqa: E402
from accounts.roles import FINANCE  # noqa: E402
from analytics.models import AccountMonth, AccountViewingDay, MrrSnapshot, TitleSimilarity, ViewingDay  # noqa: E402
from analytics.services.recommendations import recommendations_evaluate, recommendations_rebuild  # noqa: E402
from analytics.services.rollups import analytics_rollup  # noqa: E402
from analytics.services.viewing import viewing_rollup  # noqa: E402
from billing.demo import demo_billing_load  # noqa: E402
from billing.models import UsageDetailRecord  # noqa: E402
from catalogs.demo import demo_catalog_load  # noqa: E402
from catalogs.models import ContentTitle, Genre, PricePlan, Product, ProductType, TitleAvailability  # noqa: E402
from catalogs.pricing import months_add  # noqa: E402
from subscriptions.models import Device, Subscription, SubscriptionService, ViewingEvent  # noqa: E402

TARGET_DASHBOARD_MS = 500
SOURCE = "BENCH_ANALYTICS"
PREFIX = "BAN"
CLUSTERS = 20
IN_CLUSTER_SHARE = 0.75
SCREENS = ("SMART_TV",) * 12 + ("MOBILE",) * 5 + ("WEB",) * 3


# --- the world (bulk inserts and SQL; not measured) ------------------------------------------

def _customers(customers: int, months: int, today: date) -> None:
    scheme = demo_billing_load()["scheme"]
    plan, sports = PricePlan.objects.get(code="OTT-BASIC"), Product.objects.get(code="SPORTS-PACK")
    normal, vip = Classification.objects.get(code="NORMAL"), Classification.objects.filter(code="VIP").first()
    first_month = months_add(today.replace(day=1), -(months - 1))
    batch = 5_000
    for offset in range(0, customers, batch):
        numbers = range(offset, min(customers, offset + batch))
        contacts = Contact.objects.bulk_create(
            Contact(first_name=f"Viewer{n}", last_name="Bench", email=f"bench-analytics{n}@example.com") for n in numbers)
        Address.objects.bulk_create(Address(contact=c, kind="BILLING", line1="1 Main Street", city="Nicosia",
                                            country="CY" if n % 10 else "GR") for n, c in zip(numbers, contacts))
        accounts = AccountsReceivable.objects.bulk_create(
            AccountsReceivable(number=f"{PREFIX}{n:08d}", contact=c, currency="EUR",
                               classification=vip if vip is not None and n % 25 == 0 else normal)
            for n, c in zip(numbers, contacts))
        Device.objects.bulk_create(Device(account=a, name="TV", screen=SCREENS[n % len(SCREENS)]) for n, a in zip(numbers, accounts))
        subscriptions = Subscription.objects.bulk_create(
            Subscription(number=f"{PREFIX}S{n:08d}", account=a, billing_term_scheme=scheme, state="EFFECTIVE")
            for n, a in zip(numbers, accounts))
        services = []
        for n, subscription in zip(numbers, subscriptions):
            start = months_add(first_month, n % months) + timedelta(days=n % 27)
            ended = months_add(start, 2 + n % 9) if n % 4 == 0 else None
            services.append(SubscriptionService(subscription=subscription, product=sports, price_plan=plan, start_date=start,
                                                end_date=ended if ended and ended <= today else None,
                                                state="CANCELLED" if ended and ended <= today else "EFFECTIVE"))
        SubscriptionService.objects.bulk_create(services)
    with connection.cursor() as cursor:  # sign-up dates as the services say (cohorts)
        cursor.execute("""
            UPDATE accounts_accountsreceivable a SET created_at = s.start_date + time '10:00'
            FROM subscriptions_subscription sub JOIN subscriptions_subscriptionservice s ON s.subscription_id = sub.id
            WHERE sub.account_id = a.id AND a.number LIKE %s""", [f"{PREFIX}%"])


def _titles(titles: int) -> None:
    usage = ProductType.objects.get(name="Usage Services")
    genres = Genre.objects.bulk_create(Genre(name=f"Bench genre {c}") for c in range(CLUSTERS))
    rows = ContentTitle.objects.bulk_create(
        ContentTitle(code=f"bench-title-{i}", title=f"Bench title {i}", duration_minutes=60 + i % 60, year=1990 + i % 35,
                     state=ContentTitle.State.PUBLISHED) for i in range(titles))
    ContentTitle.genres.through.objects.bulk_create(
        ContentTitle.genres.through(contenttitle_id=t.pk, genre_id=genres[i % CLUSTERS].pk) for i, t in enumerate(rows))
    TitleAvailability.objects.bulk_create(TitleAvailability(title=t, screen=screen) for i, t in enumerate(rows)
                                          for screen in ("SMART_TV", "WEB", "SET_TOP_BOX", *(() if i % 5 == 0 else ("MOBILE",))))
    products = Product.objects.bulk_create(Product(code=f"BENCH-T{i}", name=f"Bench title {i}", product_type=usage) for i in range(titles))
    Product.titles.through.objects.bulk_create(
        Product.titles.through(product_id=p.pk, contenttitle_id=t.pk) for p, t in zip(products, rows))


def _lookup_tables() -> tuple[int, int]:
    """Numbered customers (with their device) and titles (with their product, cluster and
    rank in it), so the SQL below can pick them by number."""
    with connection.cursor() as cursor:
        cursor.execute("""
            CREATE TEMP TABLE bench_customer AS
            SELECT (row_number() OVER (ORDER BY a.id) - 1)::int AS n, a.id AS account_id, d.id AS device_id
            FROM accounts_accountsreceivable a JOIN subscriptions_device d ON d.account_id = a.id
            WHERE a.number LIKE %s""", [f"{PREFIX}%"])
        cursor.execute("""
            CREATE TEMP TABLE bench_title AS
            SELECT (row_number() OVER (ORDER BY t.id) - 1)::int AS n, t.id AS title_id, pt.product_id
            FROM catalogs_contenttitle t JOIN catalogs_product_titles pt ON pt.contenttitle_id = t.id
            WHERE t.code LIKE 'bench-title-%%'""")
        cursor.execute("CREATE UNIQUE INDEX ON bench_customer (n); CREATE UNIQUE INDEX ON bench_title (n); ANALYZE bench_customer; ANALYZE bench_title")
        cursor.execute("SELECT count(*) FROM bench_customer")
        customers = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM bench_title")
        return customers, cursor.fetchone()[0]


# Title number for a pick: within the customer's cluster (c + CLUSTERS × rank, low ranks
# likelier), else anywhere (low numbers likelier: a few hits everyone watches).
TITLE_PICK = f"""CASE WHEN r_cluster < {IN_CLUSTER_SHARE}
    THEN (c.n %% {CLUSTERS}) + {CLUSTERS} * floor(power(r_title, 2) * (%(titles)s / {CLUSTERS}))::int
    ELSE floor(power(r_title, 3) * %(titles)s)::int END"""


def _udrs(count: int, months: int, titles: int, customers: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"""
            INSERT INTO billing_usagedetailrecord (account_id, product_id, title_id, usage_at, channel, source, external_id,
                                                   amount, currency, rate_reason, state, rejection_reason, created_at)
            SELECT c.account_id, t.product_id, t.title_id, p.usage_at,
                   (ARRAY['PORTAL', 'DEVICE', 'CALL_CENTER'])[1 + p.g %% 3], '{SOURCE}', 'ban-' || p.g,
                   CASE WHEN extract(hour FROM p.usage_at) < 7 THEN 5 ELSE 10 END, 'EUR', 'bench', 'BILLED', '', now()
            FROM (SELECT g, (g::bigint * 7919) %% %(customers)s AS customer, random() AS r_cluster, random() AS r_title,
                         now() - random() * (%(days)s * interval '1 day') AS usage_at
                  FROM generate_series(0, %(count)s - 1) AS g) p
            JOIN bench_customer c ON c.n = p.customer
            JOIN bench_title t ON t.n = {TITLE_PICK}""",
                       {"count": count, "customers": customers, "titles": titles, "days": months * 30 - 1})


def _viewing(events: int, days: int, titles: int, customers: int) -> None:
    views = -(-events // 3)
    with connection.cursor() as cursor:
        cursor.execute(f"""
            INSERT INTO subscriptions_viewingevent (account_id, device_id, title_id, kind, position_seconds, occurred_at, received_at)
            SELECT c.account_id, c.device_id, t.title_id, e.kind, e.position, p.started_at + e.after * interval '1 second', now()
            FROM (SELECT g, (g::bigint * 104729) %% %(customers)s AS customer, random() AS r_cluster, random() AS r_title,
                         date_trunc('minute', now() - random() * (%(days)s * interval '1 day')) AS started_at,
                         600 + floor(random() * 5400)::int AS watched
                  FROM generate_series(0, %(views)s - 1) AS g) p
            JOIN bench_customer c ON c.n = p.customer
            JOIN bench_title t ON t.n = {TITLE_PICK}
            CROSS JOIN LATERAL (VALUES ('START', 0, 0), ('PROGRESS', p.watched / 2, p.watched / 2),
                                       ('STOP', p.watched, p.watched)) AS e(kind, position, after)""",
                       {"views": views, "customers": customers, "titles": titles, "days": days})


def world(args, today: date) -> None:
    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    demo_catalog_load()
    _customers(args.customers, args.months, today)
    _titles(args.titles)
    customers, titles = _lookup_tables()
    print(f"  customers and titles: {time.perf_counter() - started:.1f} s", flush=True)
    seconds, _ = timed(_udrs, args.udrs, args.months, titles, customers)
    print(f"  {args.udrs:,} UDRs (INSERT ... SELECT generate_series): {seconds:.1f} s", flush=True)
    seconds, _ = timed(_viewing, args.events, args.viewing_days, titles, customers)
    print(f"  {args.events:,} viewing events (INSERT ... SELECT generate_series): {seconds:.1f} s", flush=True)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


# --- measurements ---------------------------------------------------------------------------

def timed(function, *args, **kwargs) -> tuple[float, object]:
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - started, result


def latencies(client, url: str, repeat: int) -> tuple[float, float]:
    client.get(url)  # warm: templates, connection
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(url)
        samples.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"{url} answered {response.status_code}")
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]


def vacuum_rollups() -> None:
    from django.apps import apps

    with connection.cursor() as cursor:
        for model in apps.get_app_config("analytics").get_models():
            if not model._meta.proxy:
                cursor.execute(f"VACUUM ANALYZE {connection.ops.quote_name(model._meta.db_table)}")


def finance_user() -> User:
    user, _ = User.objects.get_or_create(username="bench-analytics-finance", defaults={"is_staff": True})
    user.groups.add(Group.objects.get(name=FINANCE))
    return user


def verdict(ms: float) -> str:
    return "met" if ms < TARGET_DASHBOARD_MS else "MISSED"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--titles", type=int, default=400)
    parser.add_argument("--udrs", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=1_020_000)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--viewing-days", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        raise SystemExit("The analytics benchmark needs PostgreSQL (run it through scripts/testenv.py or make bench).")
    today = timezone.localdate()
    logging.getLogger("ottbss.request").setLevel(logging.WARNING)  # one line per request would drown the figures

    print(f"Analytics benchmark: {args.customers:,} customers, {args.titles} titles, {args.udrs:,} UDRs over {args.months} months, "
          f"{args.events:,} viewing events over {args.viewing_days} days", flush=True)
    seconds, _ = timed(world, args, today)
    print(f"  world built in {seconds:.1f} s (bulk inserts and generate_series SQL, not measured): "
          f"{UsageDetailRecord.objects.count():,} UDRs, {ViewingEvent.objects.count():,} viewing events, "
          f"{AccountsReceivable.objects.count():,} accounts, {SubscriptionService.objects.count():,} services in the database", flush=True)

    print("Rollups (the scheduled jobs):", flush=True)
    # viewing first: the monthly rollup copies each customer's viewing totals into their months
    seconds, days = timed(viewing_rollup, through=today, days=args.viewing_days + 1)
    days = len(days)
    print(f"  viewing rollup, first fill: {days} days in {seconds:.1f} s ({seconds / days * 1000:.0f} ms a day) → "
          f"{ViewingDay.objects.count():,} title days, {AccountViewingDay.objects.count():,} customer viewing rows", flush=True)
    first_month = months_add(today.replace(day=1), -(args.months - 1))
    seconds, months = timed(analytics_rollup, through=today, since=first_month)
    print(f"  monthly rollup, first fill: {len(months)} months in {seconds:.1f} s ({seconds / len(months):.2f} s a month) → "
          f"{AccountMonth.objects.count():,} customer months, {MrrSnapshot.objects.count():,} MRR snapshots", flush=True)
    seconds, rebuilt = timed(recommendations_rebuild, today=today)
    print(f"  recommendations rebuild: {rebuilt.customers:,} customers → {rebuilt.similarities:,} similarities, "
          f"{rebuilt.popular_titles} popular titles in {seconds:.1f} s", flush=True)
    seconds, _ = timed(analytics_rollup, through=today)
    print(f"  hourly re-run, monthly (the last two months): {seconds:.1f} s", flush=True)
    seconds, _ = timed(viewing_rollup, through=today, days=2)
    print(f"  hourly re-run, viewing (today and yesterday): {seconds:.2f} s", flush=True)
    seconds, _ = timed(recommendations_rebuild, today=today)
    print(f"  recommendations rebuild again (same rows): {seconds:.1f} s; {TitleSimilarity.objects.count():,} rows", flush=True)

    # The pages are timed on the rollup tables as production has them: long since vacuumed
    # and analyzed by autovacuum (the hourly jobs rewrite two months, not 210,000 rows at
    # once). Right after the first fill, autovacuum would share the CPUs with the pages.
    seconds, _ = timed(vacuum_rollups)
    print(f"  VACUUM ANALYZE of the rollup tables (not measured, as autovacuum would): {seconds:.1f} s", flush=True)

    user = finance_user()
    admin, api = Client(SERVER_NAME="localhost"), APIClient(SERVER_NAME="localhost")
    admin.force_login(user)
    api.force_login(user)
    last, year_ago = today.replace(day=1), months_add(today.replace(day=1), -11)
    whole = f"first={first_month:%Y-%m}&last={last:%Y-%m}"
    print(f"Admin dashboard (Finance, {args.repeat} requests each; target < {TARGET_DASHBOARD_MS} ms):", flush=True)
    for label, query in (("last 12 months (default)", ""), (f"all {args.months} months", whole),
                         ("12 months, classification Normal", "classification=Normal"),
                         ("12 months, channel PORTAL, country CY", "channel=PORTAL&country=CY"),
                         ("one month", f"first={last:%Y-%m}&last={last:%Y-%m}")):
        median, p95 = latencies(admin, f"/admin/analytics/analyticsdashboard/?{query}", args.repeat)
        print(f"  {label:<40} median {median:6.0f} ms, p95 {p95:6.0f} ms ({verdict(p95)})", flush=True)
    print(f"Admin change lists over {UsageDetailRecord.objects.count():,} UDRs (Finance, {args.repeat} requests each; "
          f"target < {TARGET_DASHBOARD_MS} ms, no full-table COUNT or DISTINCT):", flush=True)
    external_id = UsageDetailRecord.objects.order_by("pk").values_list("external_id", flat=True)[500_000 if args.udrs > 500_000 else 0]
    for label, query in (("usage records, newest first", ""), ("page 50", "p=50"), ("state BILLED", "state__exact=BILLED"),
                         ("state REJECTED (none)", "state__exact=REJECTED"), ("channel PORTAL, page 2", "channel__exact=PORTAL&p=2"),
                         ("search by external id", f"q={external_id}")):
        url = f"/admin/billing/usagedetailrecord/?{query}"
        median, p95 = latencies(admin, url, args.repeat)
        with CaptureQueriesContext(connection) as captured:
            admin.get(url)
        counts = [q["sql"] for q in captured.captured_queries if "COUNT(" in q["sql"].upper() or "DISTINCT" in q["sql"].upper()]
        uncapped = [sql for sql in counts if " LIMIT " not in sql]
        print(f"  {label:<40} median {median:6.0f} ms, p95 {p95:6.0f} ms ({verdict(p95)}); "
              f"{len(captured.captured_queries)} queries, {len(uncapped)} uncapped COUNT/DISTINCT"
              f"{'' if not uncapped else ': ' + uncapped[0][:120]}", flush=True)
    print(f"Staff API ({args.repeat} requests each; reference: the dashboard's {TARGET_DASHBOARD_MS} ms):", flush=True)
    number = AccountsReceivable.objects.filter(number__startswith=PREFIX).values_list("number", flat=True).first()
    for label, path in (("months (12)", f"months/?first={year_ago:%Y-%m}&last={last:%Y-%m}"),
                        ("mrr-breakdown by plan", "mrr-breakdown/?dimension=plan"),
                        (f"cohorts ({args.months} months)", f"cohorts/?{whole}"),
                        ("customer-value", f"customer-value/?account={number}"),
                        ("insights, at risk (first page)", "insights/?kind=at_risk"),
                        ("insights, all customers (first page)", "insights/?kind=all"),
                        ("insights, all customers (page 100)", "insights/?kind=all&page=100"),
                        ("top-titles (30 days)", "top-titles/")):
        median, p95 = latencies(api, f"/api/v1/analytics/{path}", args.repeat)
        print(f"  {label:<40} median {median:6.0f} ms, p95 {p95:6.0f} ms ({verdict(p95)})", flush=True)

    seconds, evaluation = timed(recommendations_evaluate, today=today)
    print(f"Recommendations, offline (each customer's last watched title held out; {evaluation.customers:,} customers, "
          f"{seconds:.1f} s):", flush=True)
    print(f"  item-to-item:      precision@{evaluation.k} {evaluation.precision}, recall@{evaluation.k} {evaluation.recall}")
    print(f"  popularity only:   precision@{evaluation.k} {evaluation.baseline_precision}, "
          f"recall@{evaluation.k} {evaluation.baseline_recall} (the reference to beat)")
    lift = evaluation.recall / evaluation.baseline_recall if evaluation.baseline_recall else None
    print(f"  recall lift over popularity: {f'{lift:.2f}×' if lift is not None else '–'}")


if __name__ == "__main__":
    main()
