"""The known history the analytics tests (and docs/analytics.md's worked example) use:
four Company ZX customers over January–May 2026, built through the real services with the
clock travelled. The Sports Pack costs €9.99 a month including 19% VAT (€8.39 net), with
a 7-day free trial; WELCOME50 halves two periods (€4.99, €4.19 net)."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import time_machine

from billing.models import BillingRun
from billing.services.charges import promotion_grant
from billing.services.recognition import revenue_recognize
from billing.services.runs import billing_run_execute
from catalogs.models import Product
from core.choices import Channel
from subscriptions.services.actions import subscription_create
from subscriptions.services.lifecycle import subscription_activate, subscription_service_add, subscription_terminate
from subscriptions.services.orders import usage_order_place
from tests.factories import customer_create

NICOSIA = ZoneInfo("Europe/Nicosia")


def at(*when: int) -> datetime:
    return datetime(*when, tzinfo=NICOSIA)


def sign_up(scheme, name: str, when: datetime, *, sports: bool = True, coupon: str | None = None, channel=Channel.CALL_CENTER,
            account=None):
    with time_machine.travel(when, tick=False):
        account = account or customer_create(first_name=name, last_name="Test")
        subscription = subscription_create(account=account, billing_term_scheme=scheme)
        subscription_service_add(subscription=subscription, product=Product.objects.get(code="PPV-SERVICE"))
        if sports:
            subscription_service_add(subscription=subscription, product=Product.objects.get(code="SPORTS-PACK"))
        subscription_activate(subscription=subscription, channel=channel)
        if coupon:
            promotion_grant(subscription=subscription, coupon_code=coupon, reference=f"{name}-{coupon}")
    return subscription


def coupon(subscription, code: str, when: datetime) -> None:
    with time_machine.travel(when, tick=False):
        promotion_grant(subscription=subscription, coupon_code=code, reference=f"{subscription.number}-{code}")


def terminate(subscription, when: datetime) -> None:
    with time_machine.travel(when, tick=False):
        subscription_terminate(subscription=subscription, reason="Leaving")


def order(subscription, code: str, when: datetime) -> None:
    with time_machine.travel(when, tick=False):
        usage_order_place(subscription=subscription, product=Product.objects.get(code=code))


def month_close(day: date) -> None:
    """The 1st of a month: the billing run, then recognition through the day before."""
    with time_machine.travel(at(day.year, day.month, day.day, 6, 0), tick=False):
        billing_run_execute(run=BillingRun.objects.create(run_date=day))
        revenue_recognize(through=date.fromordinal(day.toordinal() - 1))


def build(scheme, *, with_billing: bool = False) -> dict:
    """Anna (10 Jan, full price; WELCOME50 from March), Ben (15 Jan with WELCOME50; leaves
    10 April), Chris (25 Jan, on trial at January's end; leaves 5 March, back 2 May) and
    Dora (PPV only: €10 on 20 Jan evening, €5 on 3 Feb at night)."""
    anna = sign_up(scheme, "Anna", at(2026, 1, 10, 10, 0))
    ben = sign_up(scheme, "Ben", at(2026, 1, 15, 10, 0), coupon="WELCOME50", channel=Channel.PORTAL)
    chris = sign_up(scheme, "Chris", at(2026, 1, 25, 10, 0))
    dora = sign_up(scheme, "Dora", at(2026, 1, 18, 10, 0), sports=False, channel=Channel.PORTAL)
    order(dora, "LIMITLESS", at(2026, 1, 20, 21, 0))
    if with_billing:
        month_close(date(2026, 2, 1))
    order(dora, "LOTR", at(2026, 2, 3, 2, 30))
    coupon(anna, "WELCOME50", at(2026, 2, 20, 12, 0))
    if with_billing:
        month_close(date(2026, 3, 1))
    terminate(chris, at(2026, 3, 5, 12, 0))
    terminate(ben, at(2026, 4, 10, 12, 0))
    chris_again = sign_up(scheme, "Chris", at(2026, 5, 2, 10, 0), account=chris.account)
    return {"anna": anna.account, "ben": ben.account, "chris": chris.account, "dora": dora.account, "chris_again": chris_again}
