"""Prices: which rate applies, and what a charge comes to.

Pure calculations and read-only selectors for billing to call; nothing here writes. The
rules (documented with a worked example in ``docs/pricing.md``):

- Rates keep 4 decimals; every amount computed here is rounded to the cent, half-up
  (``ROUND_HALF_UP``), once per line: gross, trial and discount are each rounded from
  their exact values, and the net is their exact difference, so the lines of an invoice
  always add up.
- A recurring rate is the price of one full billing period. A shorter period is
  prorated by days against the nominal period that starts on the same day
  (10 March to 1 April of a monthly rate: 22 of the 31 days from 10 March to 10 April).
- A free trial waives the days of the charged period that fall within ``free_trial_days``
  of the service start.
- A promotion discounts what remains after the trial, for its first ``periods`` billing
  periods; it never takes a charge below zero.
- A bundle's price is allocated across its components in proportion to their standalone
  selling prices (IFRS 15), to the cent, the leftover cents going by largest remainder.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from django.db.models import BooleanField, Exists, OuterRef, Q, Value
from django.utils import timezone

from accounts.models import Classification
from core.choices import LifecycleState
from core.exceptions import ApplicationError

from .models import BundleComponent, PricePlan, PricePlanRate, Product, ProductType, Promotion

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
PERIOD_MONTHS = {
    PricePlanRate.Period.MONTH: 1,
    PricePlanRate.Period.QUARTER: 3,
    PricePlanRate.Period.YEAR: 12,
}


def money(value: Decimal | int | str) -> Decimal:
    """Round to the cent, half-up."""
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def _exact_cents(value: Fraction) -> Decimal:
    """Round an exact fraction (a prorated rate) to the cent, half-up, without first
    rounding it to some number of decimal places."""
    cents = value * 100
    whole, rest = divmod(cents.numerator, cents.denominator)
    if 2 * rest >= cents.denominator:
        whole += 1
    return (Decimal(whole) / 100).quantize(CENT)


# --- Which rate applies --------------------------------------------------------------------

def _valid_at(at: datetime) -> Q:
    """Validity windows are [valid_from, valid_until); an empty end is open."""
    return (Q(price_plan__valid_from__isnull=True) | Q(price_plan__valid_from__lte=at)) & (
        Q(price_plan__valid_until__isnull=True) | Q(price_plan__valid_until__gt=at)
    )


def price_plan_rate_for(
    *, product: Product, classification: Classification | None, at: datetime | None = None,
    charge_type: str = PricePlanRate.ChargeType.RECURRING,
) -> PricePlanRate | None:
    """The rate an account of ``classification`` pays for ``product`` at ``at``, or None.

    Candidates are rates of EFFECTIVE plans valid at ``at`` whose classification condition
    is empty or names ``classification``. Several may match (a VIP plan and a general one,
    two overlapping general plans), so the choice is deterministic:

    1. a plan that names the classification beats an unconditioned one (the operator
       configured it for exactly these customers);
    2. then the lowest amount (the customer is never charged more than a price on offer);
    3. then the lowest rate pk (the oldest rate), so the answer never changes by chance.
    """
    at = at or timezone.now()
    conditions = PricePlan.classifications.through.objects.filter(priceplan_id=OuterRef("price_plan_id"))
    if classification is None:
        names_classification = Value(False, output_field=BooleanField())
    else:
        names_classification = Exists(conditions.filter(classification_id=classification.pk))
    return (
        PricePlanRate.objects.select_related("price_plan", "product")
        .filter(product=product, charge_type=charge_type, price_plan__state=LifecycleState.EFFECTIVE)
        .filter(_valid_at(at))
        .annotate(names_classification=names_classification)
        .filter(Q(names_classification=True) | ~Exists(conditions))
        .order_by("-names_classification", "amount", "pk")
        .first()
    )


def price_plan_is_free(*, price_plan: PricePlan) -> bool:
    """Freemium: a free plan has rates, and every one of them is 0.00."""
    amounts = [rate.amount for rate in price_plan.rates.all()]
    return bool(amounts) and all(amount == 0 for amount in amounts)


# --- Promotions ----------------------------------------------------------------------------

def promotion_applies_to(*, promotion: Promotion, product: Product | int) -> bool:
    """A promotion without products covers every recurring charge; otherwise only its own.
    Reads ``promotion.products.all()`` so a prefetch makes it free."""
    if promotion.pk is None:  # not saved, so it names no products
        return True
    product_pk = product if isinstance(product, int) else product.pk
    products = list(promotion.products.all())
    return not products or any(candidate.pk == product_pk for candidate in products)


def promotion_discount(*, promotion: Promotion, amount: Decimal, period_number: int) -> Decimal:
    """The discount on ``amount`` (a charge in cents) for billing period ``period_number``.

    Periods count from 1. After ``promotion.periods`` periods (if set) it gives nothing.
    A percentage is rounded half-up to the cent; an amount off is capped at the amount, so
    the charge never goes below zero. Whether the promotion was granted (state, window,
    coupon) is decided when it is granted, not here.
    """
    if period_number < 1:
        raise ValueError("Billing periods are numbered from 1.")
    amount = money(amount)
    if amount < 0:
        raise ValueError("A discount applies to a charge, not to a credit.")
    if promotion.periods is not None and period_number > promotion.periods:
        return ZERO
    if promotion.kind == Promotion.Kind.PERCENT:
        discount = money(amount * Decimal(promotion.value) / 100)
    else:
        discount = money(promotion.value)
    return min(discount, amount)


# --- Charges -------------------------------------------------------------------------------

@dataclass(frozen=True)
class ChargeBreakdown:
    """One charge line: ``net = gross - trial - discount``, every amount to the cent.

    ``trial`` is the part of ``gross`` waived by the free trial (all of it while the whole
    period is within the trial); ``discount`` is the promotion's reduction of the rest.
    """

    gross: Decimal
    trial: Decimal
    discount: Decimal
    net: Decimal


def _as_date(value: date) -> date:
    if isinstance(value, datetime):
        return timezone.localdate(value) if timezone.is_aware(value) else value.date()
    return value


def months_add(day: date, months: int) -> date:
    """The same day ``months`` later, clamped to the end of a shorter month (31 Jan + 1 = 28/29 Feb)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return day.replace(year=year, month=month, day=min(day.day, calendar.monthrange(year, month)[1]))


def _overlap_days(start: date, end: date, other_start: date, other_end: date) -> int:
    return max(0, (min(end, other_end) - max(start, other_start)).days)


def recurring_charge(
    *, rate: PricePlanRate, period_start: date, period_end: date, service_start: date,
    promotion: Promotion | None = None, period_number: int = 1,
) -> ChargeBreakdown:
    """The charge for ``rate`` over [period_start, period_end), the end excluded.

    - gross: the rate for a full billing period; a shorter period is prorated by days
      against the nominal period starting on ``period_start``. A charge covers at most one
      period.
    - trial: the days of the period within ``free_trial_days`` of ``service_start`` are free.
    - discount: ``promotion_discount`` of (gross - trial) for ``period_number``; ignored if
      the promotion does not cover the rate's product.
    """
    if rate.charge_type != PricePlanRate.ChargeType.RECURRING:
        raise ValueError("Only recurring rates are charged per period; use one_time_charge.")
    period_start, period_end, service_start = _as_date(period_start), _as_date(period_end), _as_date(service_start)
    if not period_start < period_end:
        raise ValueError("A charged period must end after it starts.")
    if period_start < service_start:
        raise ValueError("A charged period cannot start before the service does.")
    nominal_end = months_add(period_start, PERIOD_MONTHS[rate.billing_period])
    if period_end > nominal_end:
        raise ValueError(f"A charge covers at most one {rate.billing_period.lower()}; split the period.")

    amount = Fraction(rate.amount)
    nominal_days = (nominal_end - period_start).days
    charged_days = (period_end - period_start).days
    trial_end = service_start + timedelta(days=rate.free_trial_days)
    trial_days = _overlap_days(period_start, period_end, service_start, trial_end)

    # Whole periods and no trial days need no fraction (the common case in a billing run).
    gross = money(rate.amount) if charged_days == nominal_days else _exact_cents(amount * charged_days / nominal_days)
    trial = ZERO if trial_days == 0 else _exact_cents(amount * trial_days / nominal_days)
    discount = ZERO
    if promotion is not None and promotion_applies_to(promotion=promotion, product=rate.product_id):
        discount = promotion_discount(promotion=promotion, amount=gross - trial, period_number=period_number)
    return ChargeBreakdown(gross=gross, trial=trial, discount=discount, net=gross - trial - discount)


def one_time_charge(*, rate: PricePlanRate) -> ChargeBreakdown:
    """A one-time charge (installation, a decoder): the rate rounded to the cent.
    Promotions and trials apply to recurring charges only."""
    if rate.charge_type != PricePlanRate.ChargeType.ONE_TIME:
        raise ValueError("Recurring rates are charged per period; use recurring_charge.")
    gross = money(rate.amount)
    return ChargeBreakdown(gross=gross, trial=ZERO, discount=ZERO, net=gross)


# --- Bundles -------------------------------------------------------------------------------

def bundle_allocate(*, bundle_price: Decimal, components: Mapping[int, Decimal]) -> dict[int, Decimal]:
    """Split ``bundle_price`` across ``components`` ({component product pk: standalone
    price}) in proportion to their standalone prices (relative standalone selling price).

    Each part is the exact share rounded down to the cent; the cents left over go one each
    to the parts with the largest remainders (ties: the higher standalone price, then the
    lower pk), so the parts always add up to the bundle price (rounded half-up to the cent
    first) and a component that sells for more never gets less. When every standalone
    price is zero the price is split evenly, leftover cents to the lowest pks.
    """
    if not components:
        raise ValueError("A bundle needs at least one component to allocate its price to.")
    total_cents = int(money(bundle_price) * 100)
    if total_cents < 0 or any(Decimal(price) < 0 for price in components.values()):
        raise ValueError("Prices cannot be negative.")
    weights = {pk: Fraction(Decimal(price)) for pk, price in components.items()}
    weight_total = sum(weights.values())
    if weight_total == 0:
        weights = {pk: Fraction(1) for pk in components}
        weight_total = Fraction(len(components))

    shares = {pk: total_cents * weight / weight_total for pk, weight in weights.items()}
    cents = {pk: share.numerator // share.denominator for pk, share in shares.items()}
    leftover = total_cents - sum(cents.values())
    by_remainder = sorted(shares, key=lambda pk: (-(shares[pk] - cents[pk]), -weights[pk], pk))
    for pk in by_remainder[:leftover]:
        cents[pk] += 1
    return {pk: (Decimal(value) / 100).quantize(CENT) for pk, value in cents.items()}


def bundle_allocation_for(*, bundle: Product, bundle_price: Decimal) -> dict[int, Decimal]:
    """``bundle_allocate`` over the bundle's BundleComponent rows (for revenue recognition)."""
    if bundle.product_type.composition != ProductType.Composition.BUNDLE:
        raise ApplicationError(f"{bundle} is not a bundle.", code="not_a_bundle")
    components = dict(BundleComponent.objects.filter(bundle=bundle).values_list("component_id", "standalone_price"))
    if not components:
        raise ApplicationError(f"The bundle {bundle} has no components.", code="bundle_without_components")
    return bundle_allocate(bundle_price=bundle_price, components=components)
