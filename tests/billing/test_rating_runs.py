"""Bulk rating of ingested usage: the Company ZX prices through the one rating function,
REJECTED with a reason when a record cannot be priced, instant billing afterwards (a
chunk's subscriptions charged together, as an order would charge each), a bounded number
of queries per chunk, and parallel workers that never rate a record twice."""

from __future__ import annotations

import itertools
import threading
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.models import Invoice, UsageDetailRecord
from billing.services.ingestion import udr_ingest
from billing.services.rating_runs import udr_rate_chunk, udr_rating_claim_and_rate
from billing.tasks import udr_rating_dispatch_task, udr_rating_task
from catalogs.models import Product, ProductType
from tests.factories import customer_create
from tests.world import effective_subscription

pytestmark = pytest.mark.django_db
D = Decimal
NICOSIA = ZoneInfo("Europe/Nicosia")
NIGHT = datetime(2026, 11, 20, 2, 30, tzinfo=NICOSIA)
DAY = datetime(2026, 11, 20, 14, 0, tzinfo=NICOSIA)
serial = itertools.count(1)


def ingest(subscription, product="LOTR", at=NIGHT, *, with_subscription=True, account=None) -> UsageDetailRecord:
    external_id = f"N-{next(serial)}"
    record = {"external_id": external_id, "account": (account or subscription.account).number, "product": product,
              "usage_at": at.isoformat()}
    if with_subscription:
        record["subscription"] = subscription.number
    result = udr_ingest(source="NAGRA", records=[record])
    assert result.accepted == 1, result.rejected
    return UsageDetailRecord.objects.get(source="NAGRA", external_id=external_id)


def rated(udr) -> tuple:
    udr.refresh_from_db()
    return udr.state, udr.amount, udr.currency


def test_company_zx_prices_night_day_vip_and_the_older_movie(subscriber, vip_subscriber):
    night, day = ingest(subscriber, at=NIGHT), ingest(subscriber, at=DAY)
    older, vip = ingest(subscriber, "SERENDIPITY", at=NIGHT), ingest(vip_subscriber, at=DAY)

    result = udr_rate_chunk()

    assert sorted(result.rated) == sorted([night.pk, day.pk, older.pk, vip.pk]) and result.rejected == []
    assert rated(night) == ("RATED", D("5.0000"), "EUR")
    assert rated(day) == ("RATED", D("10.0000"), "EUR")
    assert rated(older) == ("RATED", D("3.0000"), "EUR")
    assert rated(vip) == ("RATED", D("0.0000"), "EUR")
    assert (night.catalog.name, night.usage_service.product.code, night.tier.rate) == ("Normal subscribers", "LOTR", D("5.00"))
    assert night.rate_reason.startswith("tier 00:01–06:59 (Europe/Nicosia wall clock 02:30)")
    assert (day.tier, day.rate_reason.startswith("base rate in catalog 'Normal subscribers'")) == (None, True)
    assert vip.catalog.name == "VIP subscribers"


def test_the_batch_price_is_the_price_of_the_one_rating_function(subscriber):
    from catalogs.rating import rate_usage
    from subscriptions.services.actions import effective_termed_products

    udrs = [ingest(subscriber, at=NIGHT + timedelta(minutes=37 * n)) for n in range(40)]
    udr_rate_chunk()

    for udr in udrs:
        udr.refresh_from_db()
        quote = rate_usage(product=udr.product, at=udr.usage_at, account=subscriber.account,
                           subscription_services=effective_termed_products(subscriber))
        assert (udr.amount, udr.catalog, udr.usage_service, udr.tier, udr.rate_reason) == (
            quote.amount, quote.catalog, quote.usage_service, quote.tier, quote.reason)


def test_instant_billing_invoices_each_rated_record(subscriber):
    night, day = ingest(subscriber, at=NIGHT), ingest(subscriber, at=DAY)

    assert udr_rating_claim_and_rate() == 2

    night.refresh_from_db(), day.refresh_from_db()
    assert (night.state, day.state) == ("BILLED", "BILLED")
    invoice = Invoice.objects.get(subscription=subscriber)
    assert (invoice.state, invoice.gross_total, invoice.lines.count()) == ("POSTED", D("15.00"), 2)


def test_without_the_ppv_service_a_record_naming_the_subscription_is_rejected(zx_catalog, billing_scheme):
    bare = effective_subscription(customer_create(), billing_scheme, services=())
    udr = ingest(bare)

    result = udr_rating_claim_and_rate()

    udr.refresh_from_db()
    assert (result, udr.state, udr.amount, udr.catalog) == (1, "REJECTED", None, None)
    assert udr.rejection_reason == f"Subscription {bare.number} does not hold an EFFECTIVE PPV Service, required to use Lord of the Rings."
    assert not Invoice.objects.filter(subscription=bare).exists()


def test_a_record_without_subscription_is_rated_for_its_account(subscriber):
    udr = ingest(subscriber, with_subscription=False)

    udr_rating_claim_and_rate()

    assert rated(udr) == ("RATED", D("5.0000"), "EUR")  # rated, left for the billing run (no subscription to bill)


def test_a_product_missing_from_the_catalog_is_rejected_with_the_reason(subscriber):
    usage = ProductType.objects.get(name="Usage Services")
    Product.objects.create(code="NEWFILM", name="New film", product_type=usage)
    udr, fine = ingest(subscriber, "NEWFILM"), ingest(subscriber)

    result = udr_rate_chunk()

    assert (result.rated, result.rejected) == ([fine.pk], [udr.pk])
    udr.refresh_from_db()
    assert (udr.state, udr.rejection_reason) == (
        "REJECTED", "New film is not in catalog 'Normal subscribers', the catalog that applies to classification NORMAL.")


def test_queries_per_chunk_do_not_grow_with_the_records(subscriber, vip_subscriber):
    def queries_to_rate(count):
        for n in range(count):
            ingest(subscriber if n % 2 else vip_subscriber, ("LOTR", "LIMITLESS", "SERENDIPITY")[n % 3], NIGHT + timedelta(minutes=n))
        with CaptureQueriesContext(connection) as context:
            assert len(udr_rate_chunk()) == count
        reads = [query for query in context.captured_queries if not query["sql"].startswith("UPDATE")]
        writes = len(context) - len(reads)
        return len(reads), writes if connection.vendor == "postgresql" else "one per record on SQLite"

    # Reads are fixed per chunk; on PostgreSQL so is the write (one set-based UPDATE). The
    # first chunk also loads the catalogs, which later chunks remember (core.refcache).
    queries_to_rate(1)
    assert queries_to_rate(6) == queries_to_rate(60)


def test_chunks_are_claimed_until_none_is_left(subscriber):
    for n in range(7):
        ingest(subscriber, at=NIGHT + timedelta(minutes=n))

    assert [udr_rating_claim_and_rate(chunk_size=3) for _ in range(4)] == [3, 3, 1, 0]
    assert set(UsageDetailRecord.objects.values_list("state", flat=True)) == {"BILLED"}


def test_the_task_rates_the_backlog_and_the_dispatcher_starts_tasks(subscriber, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    for n in range(5):
        ingest(subscriber, at=NIGHT + timedelta(minutes=n))

    assert udr_rating_task(chunk_size=2) == 5
    assert udr_rating_dispatch_task() == 0  # nothing pending: no task started
    assert UsageDetailRecord.objects.filter(state="BILLED").count() == 5


@pytest.mark.django_db(transaction=True)
def test_two_workers_rate_the_same_backlog_each_record_exactly_once(zx_catalog, billing_scheme):
    assert connection.vendor == "postgresql", "make test runs this on PostgreSQL"
    subscription = effective_subscription(customer_create(), billing_scheme)
    records = [{"external_id": f"W-{n}", "account": subscription.account.number, "product": "LOTR",
                "usage_at": (NIGHT + timedelta(minutes=n)).isoformat()} for n in range(400)]
    assert udr_ingest(source="NAGRA", records=records).accepted == 400
    start = threading.Barrier(2)
    done: list[list[int]] = [[], []]
    errors: list[BaseException] = []

    def worker(mine: list[int]):
        try:
            start.wait()
            while chunk := udr_rate_chunk(chunk_size=25):
                mine.extend(chunk.rated + chunk.rejected)
        except BaseException as error:  # reported below, not lost in the thread
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(ids,)) for ids in done]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    first, second = set(done[0]), set(done[1])
    assert len(done[0]) + len(done[1]) == 400 and not first & second
    assert first | second == set(UsageDetailRecord.objects.values_list("pk", flat=True))
    assert UsageDetailRecord.objects.filter(state="RATED").count() == 400


RECORD_KINDS = st.sampled_from(["normal", "vip", "no-service", "no-subscription", "not-in-catalog", "older"])


@settings(deadline=None, max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kinds=st.lists(st.tuples(RECORD_KINDS, st.integers(min_value=0, max_value=7 * 24 * 60)), min_size=1, max_size=12),
       chunk=st.integers(min_value=1, max_value=5))
def test_every_record_ends_rated_billed_or_rejected_with_a_reason(world, kinds, chunk):
    udrs = []
    for kind, minutes in kinds:
        at = NIGHT + timedelta(minutes=minutes)
        udrs.append({
            "normal": lambda: ingest(world["normal"], at=at),
            "vip": lambda: ingest(world["vip"], at=at),
            "no-service": lambda: ingest(world["bare"], at=at),
            "no-subscription": lambda: ingest(world["normal"], at=at, with_subscription=False),
            "not-in-catalog": lambda: ingest(world["normal"], "NEWFILM", at=at),
            "older": lambda: ingest(world["normal"], "SERENDIPITY", at=at),
        }[kind]())

    while udr_rating_claim_and_rate(chunk_size=chunk):
        pass

    for udr in udrs:
        udr.refresh_from_db()
        assert udr.state in {"RATED", "BILLED", "REJECTED"}
        if udr.state == "REJECTED":
            assert udr.rejection_reason and udr.amount is None
        else:
            assert udr.amount is not None and udr.catalog_id and udr.rate_reason
    assert not UsageDetailRecord.objects.filter(state="PENDING").exists()


@pytest.fixture
def world(subscriber, vip_subscriber, billing_scheme):
    Product.objects.create(code="NEWFILM", name="New film", product_type=ProductType.objects.get(name="Usage Services"))
    return {"normal": subscriber, "vip": vip_subscriber,
            "bare": effective_subscription(customer_create(first_name="Eleni"), billing_scheme, services=())}


# --- charging a chunk: set-based instant billing on PostgreSQL ----------------------------

def test_a_chunk_charges_each_due_subscription_like_an_order_would(zx_catalog, billing_scheme):
    from billing.selectors import ar_balance, trial_balance
    from billing.services.invoicing import usage_bill_if_due

    maria, eleni = (effective_subscription(customer_create(first_name=name), billing_scheme) for name in ("Maria", "Eleni"))
    vip = effective_subscription(customer_create(first_name="Andreas", classification="VIP"), billing_scheme)
    second = effective_subscription(maria.account, billing_scheme)  # Maria's second subscription
    ingest(maria, at=NIGHT), ingest(maria, at=DAY), ingest(eleni, "SERENDIPITY"), ingest(vip, at=DAY), ingest(second, at=DAY)

    assert udr_rating_claim_and_rate() == 5

    invoices = {invoice.subscription: invoice for invoice in Invoice.objects.filter(state="POSTED").prefetch_related("lines")}
    assert sorted(invoices, key=lambda sub: sub.pk) == [maria, eleni, second]  # the VIP's free order needs no invoice
    lines = invoices[maria].lines.order_by("position")
    assert [(line.unit_price, line.gross, line.net, line.tax, line.revenue_ledger) for line in lines] == [
        (D("5.0000"), D("5.00"), D("4.20"), D("0.80"), "REVENUE_PPV"),
        (D("10.0000"), D("10.00"), D("8.40"), D("1.60"), "REVENUE_PPV"),
    ]
    assert [(i.gross_total, i.net_total, i.tax_total) for i in (invoices[maria], invoices[eleni], invoices[second])] == [
        (D("15.00"), D("12.60"), D("2.40")), (D("3.00"), D("2.52"), D("0.48")), (D("10.00"), D("8.40"), D("1.60"))]
    numbers = sorted(int(invoice.number.rsplit("-", 1)[1]) for invoice in invoices.values())
    assert numbers == list(range(numbers[0], numbers[0] + 3))  # one gapless block
    for invoice in invoices.values():  # each its own entry: Dr AR (the customer's) / Cr revenue / Cr tax
        legs = sorted((p.ledger_account.code, p.account_id, p.amount) for p in invoice.journal_entry.postings.all())
        assert legs == [("AR", invoice.account_id, invoice.gross_total), ("REVENUE_PPV", None, -invoice.net_total),
                        ("TAX_PAYABLE", None, -invoice.tax_total)]
    assert (ar_balance(account=maria.account), ar_balance(account=eleni.account), ar_balance(account=vip.account)) == (
        D("25.00"), D("3.00"), D("0.00"))
    assert sum(trial_balance().values(), D("0")) == 0
    assert set(UsageDetailRecord.objects.values_list("state", flat=True)) == {"BILLED"}
    assert usage_bill_if_due(subscription=maria) is None  # nothing left to bill


def test_a_threshold_counts_the_records_rated_in_earlier_chunks(zx_catalog, billing_scheme):
    from billing.services.schemes import billing_term_scheme_create, billing_term_scheme_set_effective

    every_third = billing_term_scheme_set_effective(scheme=billing_term_scheme_create(name="Every third order", max_unbilled_udrs=3))
    subscription = effective_subscription(customer_create(), every_third)
    first, second = ingest(subscription, at=NIGHT), ingest(subscription, "SERENDIPITY", at=NIGHT + timedelta(minutes=1))
    assert udr_rating_claim_and_rate() == 2
    assert (rated(first)[0], rated(second)[0], Invoice.objects.count()) == ("RATED", "RATED", 0)  # 2 of 3: usage waits

    third = ingest(subscription, at=DAY)
    assert udr_rating_claim_and_rate() == 1

    invoice = Invoice.objects.get()
    assert [(line.udr_id, line.gross) for line in invoice.lines.order_by("position")] == [
        (first.pk, D("5.00")), (second.pk, D("3.00")), (third.pk, D("10.00"))]  # oldest first, one invoice
    assert {rated(udr)[0] for udr in (first, second, third)} == {"BILLED"}
    assert invoice.journal_entry.postings.get(ledger_account__code="AR").amount == D("18.00")


def test_usage_waiting_for_the_billing_run_stays_rated_beside_a_chunk_billed_at_once(zx_catalog, billing_scheme):
    from billing.services.schemes import billing_term_scheme_create, billing_term_scheme_set_effective

    monthly = billing_term_scheme_set_effective(scheme=billing_term_scheme_create(name="Monthly in arrears"))
    waiting, instant = effective_subscription(customer_create(), monthly), effective_subscription(customer_create(), billing_scheme)
    earlier = ingest(waiting, at=NIGHT)
    assert udr_rating_claim_and_rate() == 1
    later, now = ingest(waiting, at=DAY), ingest(instant, at=DAY)

    assert udr_rating_claim_and_rate() == 2

    assert [rated(udr)[0] for udr in (earlier, later, now)] == ["RATED", "RATED", "BILLED"]
    assert list(Invoice.objects.values_list("subscription", "gross_total")) == [(instant.pk, D("10.00"))]


def test_rating_and_charging_a_chunk_takes_the_same_queries_for_3_or_30_subscriptions(zx_catalog, billing_scheme):
    assert connection.vendor == "postgresql", "make test runs this on PostgreSQL"

    def queries_to_rate_and_charge(count):
        subscriptions = [effective_subscription(customer_create(), billing_scheme) for _ in range(count)]
        for subscription in subscriptions:
            ingest(subscription, at=DAY)
        with CaptureQueriesContext(connection) as context:
            assert udr_rating_claim_and_rate() == count
        assert Invoice.objects.filter(subscription__in=subscriptions).count() == count
        return len(context)

    queries_to_rate_and_charge(1)  # the year's invoice number series is created once
    assert queries_to_rate_and_charge(3) == queries_to_rate_and_charge(30)


def test_a_subscription_that_cannot_be_charged_with_the_others_is_billed_on_its_own(zx_catalog, billing_scheme):
    from accounts.models import AccountsReceivable

    usd = effective_subscription(customer_create(first_name="Sam"), billing_scheme)
    AccountsReceivable.objects.filter(pk=usd.account_id).update(currency="USD")  # its usage is priced in EUR
    eur = effective_subscription(customer_create(first_name="Eva"), billing_scheme)
    ingest(usd, at=DAY), ingest(eur, at=DAY)

    udr_rating_claim_and_rate()

    assert sorted(Invoice.objects.values_list("subscription", "currency", "gross_total")) == sorted([
        (usd.pk, "EUR", D("10.00")), (eur.pk, "EUR", D("10.00"))])  # one invoice per currency, as for an order


def test_a_chunk_rates_with_the_cycle_collector_paused_and_restores_it(subscriber, collector_watch):
    """core.memory: the chunk's objects are left to reference counting; the collector is
    back on once the chunk (rating and charging) is done."""
    import gc

    from billing.services import rating_runs

    seen = collector_watch(rating_runs, "_claim")
    record = ingest(subscriber)

    assert udr_rating_claim_and_rate() == 1
    assert seen == [False] and gc.isenabled()
    assert rated(record)[0] in ("RATED", "BILLED")
