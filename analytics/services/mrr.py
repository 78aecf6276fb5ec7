"""The MRR of one termed service at a month's end (definitions: docs/analytics.md).

MRR is what the service would bill for a month, as a subscription analytics product
counts it: the recurring rate of the plan it was sold on, normalised to a month (a
quarterly rate ÷ 3, a yearly ÷ 12), less the promotion in force for the billing period
that contains the day, less tax (MRR is net revenue), and nothing while the free trial
lasts. It reuses the pricing functions billing uses, so MRR and invoices agree.
"""

from __future__ import annotations

from calendar import monthrange
from datetime import date, datetime, time
from decimal import Decimal

from django.utils import timezone

from billing.models import BillingTermScheme, PromotionGrant, TaxRate
from billing.services.runs import billing_period_containing
from billing.services.taxes import line_amounts
from catalogs.models import PricePlanRate
from catalogs.pricing import PERIOD_MONTHS, money, price_plan_rate_for, promotion_applies_to, promotion_discount
from subscriptions.models import Subscription, SubscriptionService

ZERO = Decimal("0.00")


def month_end(month: date) -> date:
    return month.replace(day=monthrange(month.year, month.month)[1])


def service_active_on(*, service: SubscriptionService, day: date) -> bool:
    """Started by ``day`` and not ended by it (a service cancelled on the 15th has no MRR at
    the month's end, even though the month was billed in advance)."""
    if service.state == Subscription.State.DRAFT or service.start_date is None:
        return False
    return service.start_date <= day and (service.end_date is None or service.end_date > day)


def service_rate(*, service: SubscriptionService, day: date, cache: dict | None = None) -> PricePlanRate | None:
    """The contracted rate (the plan the service was sold on), as billing charges it; a
    service recorded without a plan pays what is on offer to its account. ``cache`` (one
    per rollup) saves a query per service for the plan-less ones."""
    if service.price_plan_id is not None:
        return next((rate for rate in service.price_plan.rates.all()
                     if rate.product_id == service.product_id and rate.charge_type == PricePlanRate.ChargeType.RECURRING), None)
    cache = {} if cache is None else cache
    key = ("rate", service.product_id, service.subscription.account.classification_id, day)
    if key not in cache:
        at = timezone.make_aware(datetime.combine(day, time(12)))
        cache[key] = price_plan_rate_for(product=service.product, classification=service.subscription.account.classification, at=at)
    return cache[key]


def _period_start(*, scheme: BillingTermScheme, service_start: date, day: date) -> date:
    """Where the service's billing period containing ``day`` starts (the first one starts
    with the service)."""
    return max(service_start, billing_period_containing(scheme=scheme, day=day)[0])


def _period_number(*, scheme: BillingTermScheme, service_start: date, grant_start: date, period_start: date) -> int:
    """The number of the period starting on ``period_start`` counted from the grant, as
    billing counts it: the service's periods starting on or after the grant's start."""
    number, start = 0, service_start
    while start <= period_start:
        if start >= grant_start:
            number += 1
        start = billing_period_containing(scheme=scheme, day=start)[1]
    return number


def _discount(*, service: SubscriptionService, rate: PricePlanRate, grants: list[PromotionGrant], day: date) -> Decimal:
    """The discount billing gives the period containing ``day``: the oldest grant started
    by the period's start whose periods are not used up (promotions do not stack)."""
    scheme = service.subscription.billing_term_scheme
    period_start = _period_start(scheme=scheme, service_start=service.start_date, day=day)
    for grant in grants:
        if grant.starts_on > period_start or not promotion_applies_to(promotion=grant.promotion, product=service.product_id):
            continue
        number = _period_number(scheme=scheme, service_start=service.start_date, grant_start=grant.starts_on,
                                period_start=period_start)
        if grant.promotion.periods is None or number <= grant.promotion.periods:
            return promotion_discount(promotion=grant.promotion, amount=money(rate.amount), period_number=number)
    return ZERO


def _tax_rate(*, country: str, rate: PricePlanRate, day: date, cache: dict) -> Decimal:
    """The VAT rate billing would apply; none configured counts as 0 (billing would refuse
    to invoice, so the figure is the price as it stands)."""
    tax_class = rate.product.product_type.classification
    key = ("tax", country, tax_class, day)
    if key not in cache:
        tax = (TaxRate.objects.filter(country=country, tax_class=tax_class, valid_from__lte=day)
               .exclude(valid_until__lt=day).order_by("-valid_from").values_list("rate", flat=True).first())
        cache[key] = tax if tax is not None else Decimal("0")
    return cache[key]


def service_mrr(*, service: SubscriptionService, grants: list[PromotionGrant], country: str, day: date,
                cache: dict | None = None) -> tuple[Decimal, int | None]:
    """(MRR on ``day``, the price plan id) of one service; 0 when inactive, on trial or unpriced."""
    cache = {} if cache is None else cache
    if not service_active_on(service=service, day=day):
        return ZERO, None
    rate = service_rate(service=service, day=day, cache=cache)
    if rate is None:
        return ZERO, None
    if (day - service.start_date).days < rate.free_trial_days:
        return ZERO, rate.price_plan_id
    charge = money(rate.amount) - _discount(service=service, rate=rate, grants=grants, day=day)
    net = line_amounts(unit_price=charge, quantity=Decimal("1"), rate=_tax_rate(country=country, rate=rate, day=day, cache=cache),
                       prices_include_tax=rate.price_plan.prices_include_tax).net
    return money(net / PERIOD_MONTHS[rate.billing_period]), rate.price_plan_id
