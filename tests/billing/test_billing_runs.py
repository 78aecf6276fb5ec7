"""Billing runs: recurring charges in advance (prorated by days, free trials, promotions),
one-time charges and unbilled usage on one invoice per account; idempotent per (service,
period), also when two runs race; resumable; accounts that cannot be billed are left out
with their reason and nothing else changes."""

from __future__ import annotations

import threading
import time
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection

from billing.demo import demo_billing_load
from billing.models import (
    BilledPeriod, BillingRun, BillingRunChunk, BillingTermScheme, Invoice, InvoiceLine, JournalEntry, OneTimeCharge, Posting,
    TaxRate, UsageDetailRecord,
)
from billing.selectors import ar_balance, trial_balance
from billing.services.charges import one_time_charge_add, promotion_grant
from billing.services.runs import (
    billing_period_containing, billing_run_chunk_bill, billing_run_create, billing_run_errors, billing_run_execute,
    billing_run_plan, billing_runs_resume, service_periods_due,
)
from billing.services.schemes import billing_term_scheme_create, billing_term_scheme_set_effective
from billing.tasks import billing_runs_resume_task
from catalogs.models import PricePlan, Product
from core.exceptions import ValidationFailed
from subscriptions.models import SubscriptionService
from subscriptions.services.orders import usage_order_place
from tests.factories import customer_create
from tests.world import effective_subscription

pytestmark = pytest.mark.django_db
D = Decimal
NICOSIA = ZoneInfo("Europe/Nicosia")
SIGN_UP = datetime(2026, 1, 15, 10, 0, tzinfo=NICOSIA)
FEB_1 = datetime(2026, 2, 1, 6, 0, tzinfo=NICOSIA)


def monthly(name="Monthly", **terms) -> BillingTermScheme:
    """A pre-billed monthly scheme on the 1st, usage waiting for the run (no usage rules)."""
    return billing_term_scheme_set_effective(scheme=billing_term_scheme_create(name=name, **terms))


def sports_subscriber(scheme, *, classification="NORMAL", first_name="Eleni"):
    """A customer who signed up on 15 January with PPV Service (free) and Sports Pack
    (€9.99 a month, tax included, the first 7 days free) on the OTT Basic plan."""
    with time_machine.travel(SIGN_UP, tick=False):
        account = customer_create(first_name=first_name, classification=classification)
        subscription = effective_subscription(account, scheme, services=("PPV-SERVICE", "SPORTS-PACK"))
    SubscriptionService.objects.filter(subscription=subscription).update(price_plan=PricePlan.objects.get(code="OTT-BASIC"))
    return subscription


def run_on(day: date, scheme=None) -> BillingRun:
    with time_machine.travel(datetime.combine(day, datetime.min.time(), tzinfo=NICOSIA).replace(hour=6), tick=False):
        run = BillingRun.objects.create(run_date=day, scheme=scheme)
        return billing_run_execute(run=run)


def lines_of(invoice: Invoice) -> list[tuple[str, D, D, D]]:
    return [(line.description, line.net, line.tax, line.gross) for line in invoice.lines.order_by("position")]


def counts() -> dict[str, int]:
    return {model.__name__: model.objects.count()
            for model in (Invoice, InvoiceLine, JournalEntry, Posting, BilledPeriod, OneTimeCharge)}


# --- periods ------------------------------------------------------------------------------

def test_billing_periods_start_on_the_billing_day(billing_scheme):
    scheme = BillingTermScheme(billing_frequency="MONTHLY", billing_day=5)
    assert billing_period_containing(scheme=scheme, day=date(2026, 3, 4)) == (date(2026, 2, 5), date(2026, 3, 5))
    assert billing_period_containing(scheme=scheme, day=date(2026, 3, 5)) == (date(2026, 3, 5), date(2026, 4, 5))
    scheme.billing_frequency = "QUARTERLY"
    assert billing_period_containing(scheme=scheme, day=date(2026, 6, 30)) == (date(2026, 4, 5), date(2026, 7, 5))
    assert billing_period_containing(scheme=scheme, day=date(2026, 1, 2)) == (date(2025, 10, 5), date(2026, 1, 5))
    scheme.billing_frequency = "YEARLY"
    assert billing_period_containing(scheme=scheme, day=date(2026, 1, 5)) == (date(2026, 1, 5), date(2027, 1, 5))


def test_in_advance_the_current_period_is_due_and_in_arrears_only_the_ended_ones(billing_scheme):
    scheme = BillingTermScheme(billing_frequency="MONTHLY", billing_day=1, pre_bill=True)
    due = service_periods_due(scheme=scheme, service_start=date(2026, 1, 15), billed_through=None, service_end=None,
                              run_date=date(2026, 2, 1), rate_period="MONTH")
    assert due == [(date(2026, 1, 15), date(2026, 2, 1)), (date(2026, 2, 1), date(2026, 3, 1))]
    scheme.pre_bill = False
    due = service_periods_due(scheme=scheme, service_start=date(2026, 1, 15), billed_through=None, service_end=None,
                              run_date=date(2026, 2, 1), rate_period="MONTH")
    assert due == [(date(2026, 1, 15), date(2026, 2, 1))]


def test_a_service_is_billed_up_to_its_end_and_a_monthly_rate_month_by_month_on_a_quarterly_scheme(billing_scheme):
    scheme = BillingTermScheme(billing_frequency="QUARTERLY", billing_day=1, pre_bill=True)
    due = service_periods_due(scheme=scheme, service_start=date(2026, 2, 10), billed_through=None,
                              service_end=date(2026, 3, 20), run_date=date(2026, 3, 1), rate_period="MONTH")
    assert due == [(date(2026, 2, 10), date(2026, 3, 10)), (date(2026, 3, 10), date(2026, 3, 20))]


# --- what a run bills ---------------------------------------------------------------------

def test_a_mid_month_sign_up_pays_its_days_after_the_free_trial_and_the_next_month_in_advance(zx_catalog, billing_scheme):
    scheme = monthly()
    subscription = sports_subscriber(scheme)

    run = run_on(date(2026, 2, 1))

    invoice = Invoice.objects.get(account=subscription.account)
    assert lines_of(invoice) == [
        # 17 of the 31 days from 15 Jan to 15 Feb: 9.99 × 17/31 = 5.48; the first 7 days free: 2.26.
        ("Sports Pack, 15 Jan 2026 – 31 Jan 2026 (prorated 17 days: 5.48) (free trial −2.26)", D("2.71"), D("0.51"), D("3.22")),
        ("Sports Pack, 01 Feb 2026 – 28 Feb 2026", D("8.39"), D("1.60"), D("9.99")),
    ]
    assert (invoice.state, invoice.number, invoice.gross_total) == ("POSTED", "INV-2026-000001", D("13.21"))
    assert (run.state, run.invoices_created, run.invoiced_total, run.accounts_done) == ("COMPLETED", 1, D("13.21"), 1)
    assert ar_balance(account=subscription.account) == D("13.21")
    balances = trial_balance()
    assert sum(balances.values()) == 0
    assert balances["DEFERRED_REVENUE"] == D("-11.10") and balances["TAX_PAYABLE"] == D("-2.11")
    # The free PPV Service's periods are recorded as billed too, at no charge.
    assert BilledPeriod.objects.filter(service__product__code="PPV-SERVICE", invoice_line__isnull=True).count() == 2


def test_a_coupon_halves_two_periods_then_the_full_price_applies(zx_catalog, billing_scheme):
    scheme = monthly()
    subscription = sports_subscriber(scheme)
    with time_machine.travel(SIGN_UP, tick=False):
        promotion_grant(subscription=subscription, coupon_code="welcome50", reference="signup-coupon")

    run_on(date(2026, 2, 1))
    run_on(date(2026, 3, 1))

    february, march = Invoice.objects.filter(account=subscription.account).order_by("number")
    assert [line.gross for line in february.lines.order_by("position")] == [D("1.61"), D("4.99")]
    assert "Welcome: half price sports for 2 months −1.61" in february.lines.get(position=1).description
    assert lines_of(march) == [("Sports Pack, 01 Mar 2026 – 31 Mar 2026", D("8.39"), D("1.60"), D("9.99"))]


def test_unbilled_usage_and_one_time_charges_go_on_the_same_invoice_as_the_subscriptions(zx_catalog, billing_scheme, movie):
    scheme = monthly()
    subscription = sports_subscriber(scheme)
    second = effective_subscription(subscription.account, scheme, services=())
    with time_machine.travel(datetime(2026, 1, 20, 21, 0, tzinfo=NICOSIA), tick=False):
        usage_order_place(subscription=subscription, title=movie("LIMITLESS"))
        one_time_charge_add(account=subscription.account, subscription=second, product=Product.objects.get(code="THOMSON-DECODER"),
                            reference="decoder-1")
    with time_machine.travel(datetime(2026, 2, 1, 2, 0, tzinfo=NICOSIA), tick=False):  # after the run's day: next run
        usage_order_place(subscription=subscription, title=movie("LOTR"))

    run_on(date(2026, 1, 31))

    invoice = Invoice.objects.get(account=subscription.account)
    descriptions = [line.description for line in invoice.lines.order_by("position")]
    assert descriptions[0].startswith("Sports Pack, 15 Jan 2026 – 31 Jan 2026")
    assert descriptions[1:] == ["Thomson decoder", "Limitless (2026-01-20 21:00) — base rate in catalog 'Normal subscribers' "
                                                   "(no tier matches 21:00 Europe/Nicosia)"]
    assert [line.revenue_ledger for line in invoice.lines.order_by("position")] == [
        "DEFERRED_REVENUE", "REVENUE_ONE_TIME", "REVENUE_PPV"]
    assert invoice.gross_total == D("3.22") + D("49.00") + D("10.00")
    assert OneTimeCharge.objects.get(reference="decoder-1").state == "BILLED"
    assert list(UsageDetailRecord.objects.order_by("usage_at").values_list("state", flat=True)) == ["BILLED", "RATED"]


def test_a_second_run_of_the_same_day_creates_nothing(zx_catalog, billing_scheme):
    scheme = monthly()
    for name in ("Eleni", "Nikos", "Sofia"):
        sports_subscriber(scheme, first_name=name)
    run_on(date(2026, 2, 1))
    before = counts()

    rerun = run_on(date(2026, 2, 1))

    assert counts() == before
    assert (rerun.state, rerun.invoices_created, rerun.invoiced_total, rerun.accounts_total) == ("COMPLETED", 0, D("0.00"), 0)


def test_an_account_that_cannot_be_taxed_is_left_out_with_its_reason_and_billed_once_fixed(zx_catalog, billing_scheme):
    scheme = monthly()
    billed = sports_subscriber(scheme, first_name="Eleni")
    with time_machine.travel(SIGN_UP, tick=False):
        greek = customer_create(first_name="Kostas", country="GR")
    subscription = effective_subscription(greek, scheme, services=("SPORTS-PACK",))
    SubscriptionService.objects.filter(subscription=subscription).update(start_date=date(2026, 1, 15))

    run = run_on(date(2026, 2, 1))

    assert run.state == "COMPLETED_WITH_ERRORS" and run.errors_count == 1
    assert billing_run_errors(run=run) == [{"account": greek.pk, "reason":
                                            "No tax rate for Service in GR on 2026-01-15; finance must add one before this can be invoiced."}]
    assert Invoice.objects.filter(account=billed.account).count() == 1
    assert not Invoice.objects.filter(account=greek).exists()
    assert not BilledPeriod.objects.filter(service__subscription=subscription).exists()

    TaxRate.objects.create(country="GR", tax_class="SERVICE", name="ΦΠΑ", rate=D("24.00"), valid_from=date(2020, 1, 1))
    run_on(date(2026, 2, 1))
    assert Invoice.objects.filter(account=greek).count() == 1
    assert Invoice.objects.filter(account=billed.account).count() == 1


def wait_for(run: BillingRun, state: str, seconds: float = 30.0) -> BillingRun:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.state == state:
            return run
        time.sleep(0.1)
    raise AssertionError(f"{run} is still {run.state} after {seconds} s")


@pytest.mark.django_db(transaction=True)
def test_a_run_stopped_half_way_is_resumed_by_beat_without_billing_anyone_twice(zx_catalog, celery_worker):
    demo_billing_load()
    scheme = monthly()
    accounts = [sports_subscriber(scheme, first_name=f"C{n}").account for n in range(5)]
    with time_machine.travel(FEB_1, tick=False):
        run = billing_run_plan(run=BillingRun.objects.create(run_date=date(2026, 2, 1)), chunk_accounts=2)
        billing_run_chunk_bill(run=run)  # the worker dies after its first chunk
        run.refresh_from_db()
        assert (run.state, run.accounts_done, run.progress_percent) == ("RUNNING", 2, 40)

        assert billing_runs_resume_task.apply_async(ignore_result=False).get(timeout=30) == 1  # beat finds the run and gives it a worker
        run = wait_for(run, "COMPLETED")

    assert (run.accounts_done, run.invoices_created, run.progress_percent) == (5, 5, 100)
    assert list(BillingRunChunk.objects.filter(run=run).values_list("state", flat=True)) == ["DONE"] * 3
    assert [Invoice.objects.filter(account=account).count() for account in accounts] == [1] * 5


def test_a_run_for_a_day_not_yet_come_or_a_scheme_not_effective_is_refused_and_creates_nothing(zx_catalog, billing_scheme):
    draft = billing_term_scheme_create(name="Draft scheme")
    with time_machine.travel(FEB_1, tick=False), pytest.raises(ValidationFailed) as refused:
        billing_run_create(run_date=date(2026, 2, 2), scheme=draft)
    assert refused.value.fields == {
        "run_date": ["A billing run cannot be for a day that has not come yet."],
        "scheme": ["The billing term scheme Draft scheme is draft, not effective."],
    }
    assert not BillingRun.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_run_started_by_finance_is_billed_by_the_workers(zx_catalog, celery_worker):
    demo_billing_load()
    sports_subscriber(monthly())
    with time_machine.travel(FEB_1, tick=False):
        run = billing_run_create(run_date=date(2026, 2, 1))  # the start task is sent when this commits
        run = wait_for(run, "COMPLETED")
    assert (run.invoices_created, run.invoiced_total) == (1, D("13.21"))


@pytest.mark.django_db(transaction=True)
def test_a_run_whose_start_message_was_lost_is_started_by_beat(zx_catalog, celery_worker):
    """A PENDING run nobody started (its message lost in a broker outage) is started by the
    beat's resume once it is two minutes old, and billed once."""
    demo_billing_load()
    sports_subscriber(monthly())
    with time_machine.travel(FEB_1, tick=False):
        run = BillingRun.objects.create(run_date=date(2026, 2, 1))  # as if the start message never reached Redis
    with time_machine.travel(FEB_1 + timedelta(minutes=1), tick=False):
        assert billing_runs_resume() == 0  # too young: its start may still be on its way
    with time_machine.travel(FEB_1 + timedelta(minutes=3), tick=False):
        assert billing_runs_resume() == 1
        run = wait_for(run, "COMPLETED")
        billing_runs_resume()  # a second start of a finished run plans and bills nothing
    assert (run.invoices_created, run.invoiced_total) == (1, D("13.21"))
    assert Invoice.objects.count() == 1


def test_a_broker_outage_does_not_fail_the_work_that_committed(caplog):
    """Queueing after commit against a broker that is down logs and returns: the rows are
    the record, and the dispatchers find them again."""
    from celery import Celery

    from core.queueing import signature_queue

    down = Celery("down", set_as_current=False, broker="redis://127.0.0.1:1/0", broker_connection_retry=False, broker_connection_max_retries=0,
                  broker_transport_options={"max_retries": 0, "socket_connect_timeout": 0.5})

    @down.task(name="down.noop")
    def noop():  # pragma: no cover - never delivered
        return None

    assert signature_queue(noop.s(), recovered_by="the dispatcher") is False
    assert "will pick the work up" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_runs_of_the_same_day_bill_each_account_once(zx_catalog):
    """Real concurrent transactions on PostgreSQL, each run on its own connection."""
    assert connection.vendor == "postgresql", "make test runs this on PostgreSQL"
    demo_billing_load()
    scheme = monthly()
    accounts = [sports_subscriber(scheme, first_name=f"C{n}").account for n in range(6)]
    runs = [BillingRun.objects.create(run_date=date(2026, 2, 1)) for _ in range(2)]
    barrier = threading.Barrier(2)
    failures: list[Exception] = []

    def bill(run):
        try:
            barrier.wait()
            billing_run_execute(run=run)
        except Exception as error:  # noqa: BLE001 - asserted below
            failures.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=bill, args=(run,)) for run in runs]
    with time_machine.travel(FEB_1, tick=False):
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert failures == []
    assert [Invoice.objects.filter(account=account).count() for account in accounts] == [1] * 6
    assert sum(BillingRun.objects.filter(pk__in=[r.pk for r in runs]).values_list("invoices_created", flat=True)) == 6
    assert sum(trial_balance().values()) == 0


def test_a_sold_decoder_is_charged_once_on_the_next_bill_and_a_swap_costs_nothing(zx_catalog, billing_scheme):
    from subscriptions.models import InstalledItem
    from subscriptions.services.lifecycle import installed_item_add, installed_item_swap

    subscription = sports_subscriber(monthly())
    with time_machine.travel(datetime(2026, 1, 16, 11, 0, tzinfo=NICOSIA), tick=False):
        installed_item_add(subscription=subscription, product=Product.objects.get(code="THOMSON-DECODER"),
                           serial_number="TH-0001", transaction_reference="install-1")
        installed_item_add(subscription=subscription, product=Product.objects.get(code="THOMSON-DECODER"),
                           serial_number="TH-0001", transaction_reference="install-1")  # a repeat of the same action
        installed_item_swap(subscription=subscription, item=InstalledItem.objects.get(serial_number="TH-0001"),
                            serial_number="TH-0002")

    run_on(date(2026, 2, 1))

    assert list(OneTimeCharge.objects.values_list("description", "amount", "state")) == [("Thomson decoder", D("49.0000"), "BILLED")]
    decoder = InvoiceLine.objects.get(product__code="THOMSON-DECODER")
    assert (decoder.gross, decoder.net, decoder.tax, decoder.revenue_ledger) == (D("49.00"), D("41.18"), D("7.82"), "REVENUE_ONE_TIME")
    assert decoder.invoice.account == subscription.account
