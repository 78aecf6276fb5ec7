"""Property: whatever sequence of PPV orders, bulk usage (valid, invalid, replayed), billing
runs, credit notes, payments and refunds happens, in whatever order, the money stays right:

- the ledger balances (debits = credits);
- every customer's AR balance equals what they were invoiced, minus what was credited and
  paid, plus what was refunded;
- every invoice's totals are the sums of its lines, and lines add up (net + tax = gross);
- every usage record ends RATED, BILLED or REJECTED with a reason, a priced BILLED record
  is on exactly one invoice line, and no (service, period) is billed twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db.models import Count, Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.models import BilledPeriod, BillingRun, CreditNote, Invoice, InvoiceLine, UsageDetailRecord
from billing.selectors import ar_balance, trial_balance
from billing.services.ingestion import udr_ingest
from billing.services.invoicing import credit_note_issue
from billing.services.rating_runs import udr_rating_claim_and_rate
from billing.services.runs import billing_run_execute
from billing.services.schemes import billing_term_scheme_create, billing_term_scheme_set_effective
from catalogs.models import PricePlan, Product
from core.actions import ActionRejected
from core.exceptions import ApplicationError
from payments.models import Payment, Refund
from payments.services.adjustments import refund_create
from payments.services.collection import payment_record
from subscriptions.models import SubscriptionService
from subscriptions.services.orders import usage_order_place
from tests.factories import customer_create
from tests.world import effective_subscription

pytestmark = pytest.mark.django_db
ZERO = Decimal("0.00")
NICOSIA = ZoneInfo("Europe/Nicosia")
START = datetime(2026, 1, 5, 9, 0, tzinfo=NICOSIA)
MOVIES = ("LOTR", "LIMITLESS", "SERENDIPITY")


@pytest.fixture
def customers(billing_scheme):
    """An instantly billed normal customer, an instantly billed VIP, and a customer whose
    usage waits for the billing run and who pays for the Sports Pack."""
    periodic = billing_term_scheme_set_effective(scheme=billing_term_scheme_create(name="Periodic"))
    with time_machine.travel(START, tick=False):
        subscriptions = [
            effective_subscription(customer_create(first_name="Normal"), billing_scheme),
            effective_subscription(customer_create(first_name="Vip", classification="VIP"), billing_scheme),
            effective_subscription(customer_create(first_name="Periodic"), periodic, services=("PPV-SERVICE", "SPORTS-PACK")),
        ]
    SubscriptionService.objects.update(price_plan=PricePlan.objects.get(code="OTT-BASIC"))
    return subscriptions


moments = st.builds(lambda day, minute: START + timedelta(days=day, minutes=minute),
                    st.integers(min_value=0, max_value=85), st.integers(min_value=0, max_value=24 * 60 - 1))
order = st.tuples(st.just("order"), st.integers(0, 2), st.sampled_from(MOVIES), moments)
bulk = st.tuples(st.just("bulk"), st.integers(0, 2), st.sampled_from((*MOVIES, "NO-SUCH-MOVIE")), moments,
                 st.integers(0, 5))
run = st.tuples(st.just("run"), st.integers(0, 85))
credit = st.tuples(st.just("credit"), st.integers(0, 50), st.booleans())
pay = st.tuples(st.just("pay"), st.integers(0, 2), st.integers(1, 3000), st.sampled_from(("CASH", "BANK_TRANSFER")))
refund = st.tuples(st.just("refund"), st.integers(0, 50), st.booleans())
operations = st.lists(st.one_of(order, bulk, run, credit, pay, refund), min_size=1, max_size=14)


def apply(operation: tuple, subscriptions: list, serial: list[int], finance) -> None:
    kind = operation[0]
    if kind == "order":
        _, who, code, when = operation
        with time_machine.travel(when, tick=False):
            usage_order_place(subscription=subscriptions[who], product=Product.objects.get(code=code))
    elif kind == "bulk":
        _, who, code, when, external = operation
        subscription = subscriptions[who]
        with time_machine.travel(when + timedelta(minutes=5), tick=False):
            udr_ingest(source="PLATFORM", records=[{
                "external_id": f"ev-{external}", "account": subscription.account.number, "subscription": subscription.number,
                "product": code, "usage_at": when.isoformat()}])
            udr_rating_claim_and_rate(chunk_size=100)
    elif kind == "run":
        day = START.date() + timedelta(days=operation[1])
        with time_machine.travel(datetime.combine(day, datetime.min.time(), tzinfo=NICOSIA).replace(hour=6), tick=False):
            billing_run_execute(run=BillingRun.objects.create(run_date=day))
    elif kind == "pay":
        _, who, cents, method = operation
        payment_record(account=subscriptions[who].account, kind=method, amount=Decimal(cents) / 100)
    elif kind == "refund":
        _, pick, everything = operation
        payments = list(Payment.objects.filter(state=Payment.State.SUCCEEDED).order_by("pk"))
        if not payments:
            return
        payment = payments[pick % len(payments)]
        try:
            refund_create(payment=payment, amount=None if everything else Decimal("0.01"), reason="Goodwill", performed_by=finance)
        except ApplicationError:
            pass  # nothing left to refund on it: refused, nothing changed
    else:
        _, pick, everything = operation
        posted = list(Invoice.objects.filter(state=Invoice.State.POSTED).order_by("pk"))
        if not posted:
            return
        invoice = posted[pick % len(posted)]
        line = invoice.lines.order_by("position").first()
        serial[0] += 1
        lines = None if everything else {line.pk: max(Decimal("0.01"), (line.gross / 2).quantize(Decimal("0.01")))}
        try:
            credit_note_issue(invoice=invoice, reason=f"Goodwill {serial[0]}", lines=lines)
        except ActionRejected:
            pass  # nothing left to credit on that line: refused, and nothing changed (checked below)


def assert_money_is_right(subscriptions) -> None:
    assert sum(trial_balance().values(), ZERO) == 0
    for subscription in subscriptions:
        account = subscription.account
        invoiced = Invoice.objects.filter(account=account).exclude(state=Invoice.State.DRAFT).aggregate(
            total=Sum("gross_total"))["total"] or ZERO
        credited = CreditNote.objects.filter(account=account).aggregate(total=Sum("gross_total"))["total"] or ZERO
        paid = Payment.objects.filter(account=account, state=Payment.State.SUCCEEDED).aggregate(total=Sum("amount"))["total"] or ZERO
        refunded = Refund.objects.filter(payment__account=account, state=Refund.State.SUCCEEDED).aggregate(
            total=Sum("amount"))["total"] or ZERO
        assert ar_balance(account=account) == invoiced - credited - paid + refunded
    for invoice in Invoice.objects.prefetch_related("lines"):
        lines = list(invoice.lines.all())
        assert (invoice.net_total, invoice.tax_total, invoice.gross_total) == (
            sum((line.net for line in lines), ZERO), sum((line.tax for line in lines), ZERO), sum((line.gross for line in lines), ZERO))
    states = set(UsageDetailRecord.objects.values_list("state", flat=True))
    assert states <= {"RATED", "BILLED", "REJECTED"}
    assert not UsageDetailRecord.objects.filter(state="REJECTED", rejection_reason="").exists()
    assert not UsageDetailRecord.objects.filter(state="BILLED", amount__gt=0, invoice_line__isnull=True).exists()
    assert not InvoiceLine.objects.exclude(udr=None).values("udr").annotate(n=Count("pk")).filter(n__gt=1).exists()
    assert not BilledPeriod.objects.values("service", "period_start").annotate(n=Count("pk")).filter(n__gt=1).exists()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=operations)
def test_any_sequence_of_orders_usage_runs_credit_notes_payments_and_refunds_keeps_the_money_right(customers, finance_user, steps):
    serial = [0]
    for step in steps:
        apply(step, customers, serial, finance_user)
    assert_money_is_right(customers)
