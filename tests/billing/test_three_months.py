"""Three months of one Company ZX customer, clock travelled: a sign-up in the middle of
January with the Sports Pack and a WELCOME50 coupon, PPV orders by day and by night
(invoiced at once), monthly billing runs, a reclassification to VIP, and a cancellation.
Every invoice's lines and totals are checked to the cent."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine

from accounts.services import account_update
from billing.models import BillingRun, Invoice, UsageDetailRecord
from billing.selectors import ar_balance, trial_balance
from billing.services.charges import promotion_grant
from billing.services.runs import billing_run_execute
from catalogs.models import Product
from subscriptions.services.actions import subscription_create
from subscriptions.services.lifecycle import subscription_activate, subscription_service_add, subscription_terminate
from subscriptions.services.orders import usage_order_place
from tests.factories import customer_create

pytestmark = pytest.mark.django_db
D = Decimal
NICOSIA = ZoneInfo("Europe/Nicosia")


def at(*when: int) -> datetime:
    return datetime(*when, tzinfo=NICOSIA)


def billing_run(day: date) -> BillingRun:
    with time_machine.travel(at(day.year, day.month, day.day, 6, 0), tick=False):
        return billing_run_execute(run=BillingRun.objects.create(run_date=day))


def order(subscription, code: str, when: datetime) -> UsageDetailRecord:
    with time_machine.travel(when, tick=False):
        action = usage_order_place(subscription=subscription, product=Product.objects.get(code=code))
    return UsageDetailRecord.objects.get(pk=action.result["udr"])


def invoice_lines(invoice: Invoice) -> list[tuple[str, D, D, D]]:
    return [(line.description, line.net, line.tax, line.gross) for line in invoice.lines.order_by("position")]


def totals(invoice: Invoice) -> tuple[str, D, D, D]:
    return invoice.number, invoice.net_total, invoice.tax_total, invoice.gross_total


def test_three_months_of_a_customer_are_invoiced_to_the_cent(billing_scheme):
    # 15 January: Eleni signs up in the middle of the month with the Sports Pack and a coupon.
    with time_machine.travel(at(2026, 1, 15, 10, 0), tick=False):
        account = customer_create(first_name="Eleni", last_name="Charalambous")
        subscription = subscription_create(account=account, billing_term_scheme=billing_scheme)
        subscription_service_add(subscription=subscription, product=Product.objects.get(code="PPV-SERVICE"))
        subscription_service_add(subscription=subscription, product=Product.objects.get(code="SPORTS-PACK"))
        subscription_activate(subscription=subscription)
        promotion_grant(subscription=subscription, coupon_code="WELCOME50", reference="eleni-welcome")

    # January: a movie in the evening (€10.00) and one at night (€5.00), each invoiced at once.
    evening = order(subscription, "LIMITLESS", at(2026, 1, 20, 21, 0))
    night = order(subscription, "LOTR", at(2026, 1, 25, 2, 30))
    limitless, lotr = Invoice.objects.order_by("number")
    assert totals(limitless) == ("INV-2026-000001", D("8.40"), D("1.60"), D("10.00"))
    assert totals(lotr) == ("INV-2026-000002", D("4.20"), D("0.80"), D("5.00"))
    assert (evening.state, evening.amount, night.state, night.amount) == ("BILLED", D("10.0000"), "BILLED", D("5.0000"))

    # 1 February: the run bills 15–31 January (17 days of 31, 7 of them free, half price)
    # and February in advance at half price.
    run = billing_run(date(2026, 2, 1))
    february = Invoice.objects.get(number="INV-2026-000003")
    assert invoice_lines(february) == [
        ("Sports Pack, 15 Jan 2026 – 31 Jan 2026 (prorated 17 days: 5.48) "
         "(free trial −2.26; Welcome: half price sports for 2 months −1.61)", D("1.35"), D("0.26"), D("1.61")),
        ("Sports Pack, 01 Feb 2026 – 28 Feb 2026 (Welcome: half price sports for 2 months −5.00)", D("4.19"), D("0.80"), D("4.99")),
    ]
    assert totals(february) == ("INV-2026-000003", D("5.54"), D("1.06"), D("6.60"))
    assert (run.invoices_created, run.invoiced_total) == (1, D("6.60"))

    # 10 February: Eleni becomes a VIP; her movies are free from now on (no invoice at all).
    with time_machine.travel(at(2026, 2, 10, 9, 0), tick=False):
        account_update(account=account, data={"classification": "VIP"})
    free = order(subscription, "SERENDIPITY", at(2026, 2, 12, 22, 0))
    assert (free.state, free.amount) == ("BILLED", D("0.0000"))
    assert Invoice.objects.count() == 3

    # 1 March: the promotion's two periods are used; the Sports Pack keeps the price she
    # bought it at (the plan she was sold), VIP or not.
    billing_run(date(2026, 3, 1))
    march = Invoice.objects.get(number="INV-2026-000004")
    assert invoice_lines(march) == [("Sports Pack, 01 Mar 2026 – 31 Mar 2026", D("8.39"), D("1.60"), D("9.99"))]
    assert totals(march) == ("INV-2026-000004", D("8.39"), D("1.60"), D("9.99"))

    # 15 March: she cancels. March was billed in advance; nothing is billed after it.
    with time_machine.travel(at(2026, 3, 15, 12, 0), tick=False):
        subscription_terminate(subscription=subscription, reason="Moving abroad")
    april = billing_run(date(2026, 4, 1))
    assert (april.invoices_created, Invoice.objects.count()) == (0, 4)

    # What she owes is what she was invoiced; the ledger balances.
    assert ar_balance(account=account) == D("10.00") + D("5.00") + D("6.60") + D("9.99")
    assert sum(trial_balance().values()) == 0
