"""Every write to price plans, promotions and coupons.

The admin, the API and tests call these functions. Each owns its transaction, locks the
row it changes, reports every problem with the input at once (``ValidationFailed`` with
per-field messages), and writes an ``AuditEntry`` in the same transaction, rate amounts
included (old → new). A refused change is itself recorded (``rejected: <action>`` with
the reasons) in its own transaction, since the refused one was rolled back.

Price plans and promotions are edited only while DRAFT: once one has been EFFECTIVE,
charges and grants refer to its terms, so changing them in place would rewrite history.
A new price takes a new plan. State changes are ``core.actions.Action`` subclasses.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Model
from django.utils import timezone

from accounts.models import AccountsReceivable, Classification
from core.actions import Action, Cancel, SetEffective, SetNotEffective, actions_by_code
from core.choices import Channel, LifecycleState
from core.exceptions import ApplicationError, Conflict, ValidationFailed
from core.validation import Errors, error_add, model_errors
from core.services import audit_record

from ..models import Coupon, CouponRedemption, PricePlan, PricePlanRate, Product, ProductType, Promotion


PRICE_PLAN_FIELDS = ("code", "name", "currency", "valid_from", "valid_until", "prices_include_tax")
PROMOTION_FIELDS = ("code", "name", "kind", "value", "periods", "valid_from", "valid_until", "requires_coupon")
COUPON_EDITABLE_FIELDS = ("max_redemptions", "max_per_account", "is_active")
RATE_PLACES = Decimal("0.0001")
RATE_LIMIT = Decimal("100000000")  # 12 digits, 4 of them decimals
COUPON_CODE = re.compile(r"^[A-Z0-9][A-Z0-9_-]*$")


# --- Shared checks ---------------------------------------------------------------------------

def _rate_value(value: Any, errors: Errors, field: str) -> Decimal | None:
    """A price with at most 4 decimals, not negative; floats are refused because binary
    floating point cannot hold most cent amounts exactly."""
    if isinstance(value, float):
        error_add(errors, field, "Give the amount as text or a Decimal, not a float.")
        return None
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        error_add(errors, field, "Enter a number.")
        return None
    if not amount.is_finite():
        error_add(errors, field, "Enter a number.")
        return None
    if amount < 0:
        error_add(errors, field, "An amount cannot be negative.")
    if amount >= RATE_LIMIT:
        error_add(errors, field, "An amount must be below 100,000,000.")
        return None
    if amount != amount.quantize(RATE_PLACES):
        error_add(errors, field, "Rates keep at most 4 decimal places.")
        return None
    return amount.quantize(RATE_PLACES)


def _currency_check(currency: str, errors: Errors) -> None:
    if currency not in settings.CURRENCIES:
        error_add(errors, "currency", f"{currency or 'An empty currency'} is not one of the operator's currencies ({', '.join(settings.CURRENCIES)}).")


def _validity_check(valid_from: datetime | None, valid_until: datetime | None, errors: Errors) -> None:
    if valid_from is not None and valid_until is not None and valid_until <= valid_from:
        error_add(errors, "valid_until", "The validity must end after it starts.")


def _code_check(model: type[Model], code: str, errors: Errors, *, exclude_pk: int | None = None) -> None:
    if code and model._default_manager.filter(code=code).exclude(pk=exclude_pk).exists():
        error_add(errors, "code", f"Another {model._meta.verbose_name} has the code {code}.")


def _classifications_resolve(values: Iterable[Classification | str], errors: Errors) -> list[Classification]:
    """Classification objects, or their codes (e.g. ``"VIP"``)."""
    found, unknown = [], []
    for value in values or ():
        if isinstance(value, Classification):
            found.append(value)
            continue
        match = Classification.objects.filter(code=value).first()
        if match is None:
            unknown.append(str(value))
        else:
            found.append(match)
    if unknown:
        error_add(errors, "classifications", f"No such classification: {', '.join(unknown)}.")
    return found


def _codes(objects: Iterable[Any]) -> list[str]:
    return sorted(obj.code for obj in objects)


def _plain(value: Any) -> Any:
    return value if value is None or isinstance(value, (bool, int, str)) else str(value)


def _changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    """``{field: [old, new]}`` for what changed; a missing ``before`` key means new."""
    return {name: [_plain(before.get(name)), _plain(value)] for name, value in after.items() if before.get(name) != value}


def _reasons(error: ApplicationError) -> list[str]:
    if not error.fields:
        return [error.message]
    return [f"{name}: {message}" for name, messages in error.fields.items() for message in messages]


@contextmanager
def _rejection_recorded(*, target: Model, action: str, performed_by, channel: str) -> Iterator[None]:
    """Keep a refused change in the audit log: written after the refused transaction has
    rolled back, in its own (when called inside an outer transaction, that one decides)."""
    try:
        yield
    except ApplicationError as error:
        with transaction.atomic():
            audit_record(target=target, action=f"rejected: {action}", reasons=_reasons(error),
                         performed_by=performed_by, channel=channel)
        raise


def _only_while_draft(obj: PricePlan | Promotion, what: str) -> None:
    if obj.state != LifecycleState.DRAFT:
        raise Conflict(
            f"{obj} is {obj.state}: {what} can be changed only while it is DRAFT. Once effective, "
            f"its terms are what customers were charged or granted, so they are never edited in place; "
            f"create a new one with the new terms, make it effective, and set this one NOT_EFFECTIVE.",
            code="not_draft",
        )


def _validity_not_over(obj: PricePlan | Promotion) -> Iterator[str]:
    if obj.valid_until is not None and obj.valid_until <= timezone.now():
        yield f"Its validity ended at {timezone.localtime(obj.valid_until):%Y-%m-%d %H:%M}; extend it first."


# --- Price plans ---------------------------------------------------------------------------

def _price_plan_values(plan: PricePlan, classifications: Iterable[Classification]) -> dict[str, Any]:
    return {**{name: getattr(plan, name) for name in PRICE_PLAN_FIELDS}, "classifications": ", ".join(_codes(classifications))}


def _price_plan_check(plan: PricePlan, errors: Errors) -> None:
    model_errors(plan, errors)
    _currency_check(plan.currency, errors)
    _validity_check(plan.valid_from, plan.valid_until, errors)
    _code_check(PricePlan, plan.code, errors, exclude_pk=plan.pk)


def price_plan_create(
    *, code: str, name: str, currency: str | None = None, valid_from: datetime | None = None,
    valid_until: datetime | None = None, classifications: Iterable[Classification | str] = (),
    prices_include_tax: bool = True, performed_by=None, channel: str = Channel.CALL_CENTER,
) -> PricePlan:
    """A new DRAFT price plan (no rates yet). ``classifications`` is its condition: only
    accounts of these classifications (empty: every account)."""
    plan = PricePlan(code=code, name=name, currency=currency or settings.CURRENCIES[0], valid_from=valid_from,
                     valid_until=valid_until, prices_include_tax=prices_include_tax)
    errors: Errors = {}
    _price_plan_check(plan, errors)
    chosen = _classifications_resolve(classifications, errors)
    if errors:
        raise ValidationFailed("The price plan could not be created.", fields=errors)
    try:
        with transaction.atomic():
            plan.save()
            plan.classifications.set(chosen)
            audit_record(target=plan, action="created", changes=_changes({}, _price_plan_values(plan, chosen)),
                         performed_by=performed_by, channel=channel)
    except IntegrityError as error:  # a concurrent create took the code
        raise ValidationFailed("The price plan could not be created.", fields={"code": [f"Another price plan has the code {code}."]}) from error
    return plan


def price_plan_update(*, price_plan: PricePlan, data: dict[str, Any], performed_by=None, channel: str = Channel.CALL_CENTER) -> PricePlan:
    """Change a DRAFT plan's terms (``PRICE_PLAN_FIELDS`` and ``classifications``).
    An EFFECTIVE (or once effective) plan is refused: see ``_only_while_draft``."""
    unknown = set(data) - set(PRICE_PLAN_FIELDS) - {"classifications"}
    if unknown:
        raise ValidationFailed("These fields cannot be changed here.", fields={name: ["Not editable."] for name in sorted(unknown)})
    with _rejection_recorded(target=price_plan, action="update", performed_by=performed_by, channel=channel), transaction.atomic():
        plan = PricePlan.objects.select_for_update().get(pk=price_plan.pk)
        _only_while_draft(plan, "its terms and rates")
        current = list(plan.classifications.all())
        before = _price_plan_values(plan, current)
        for name in PRICE_PLAN_FIELDS:
            if name in data:
                setattr(plan, name, data[name])
        errors: Errors = {}
        _price_plan_check(plan, errors)
        chosen = _classifications_resolve(data["classifications"], errors) if "classifications" in data else current
        if errors:
            raise ValidationFailed("The price plan could not be updated.", fields=errors)
        changes = _changes(before, _price_plan_values(plan, chosen))
        if changes:
            plan.save()
            plan.classifications.set(chosen)
            audit_record(target=plan, action="updated", changes=changes, performed_by=performed_by, channel=channel)
    return plan


def _rate_key(product: Product, charge_type: str) -> str:
    return f"{product.code}/{charge_type.lower()}"


def _rate_values(rate: PricePlanRate) -> dict[str, Any]:
    key = _rate_key(rate.product, rate.charge_type)
    return {f"{key}.amount": rate.amount, f"{key}.billing_period": rate.billing_period or None,
            f"{key}.free_trial_days": rate.free_trial_days}


def _rate_rules(rate: PricePlanRate, errors: Errors) -> None:
    """Which product takes which kind of rate."""
    product_type = rate.product.product_type
    kind = product_type.get_service_type_display().lower() or product_type.get_classification_display().lower()
    recurring = rate.charge_type == PricePlanRate.ChargeType.RECURRING
    if rate.product.is_usage_service:
        error_add(errors, "product", "Usage services are added in usage service catalogs, not price plans.")
    elif recurring and not rate.product.is_termed_service:
        error_add(errors, "charge_type", f"Recurring rates are for termed services; {rate.product} is a {kind} product.")
    elif not recurring and not (
        product_type.service_type == ProductType.ServiceType.ONE_TIME
        or product_type.classification == ProductType.Classification.PHYSICAL_GOOD
    ):
        error_add(errors, "charge_type", f"One-time rates are for one-time services and physical goods; {rate.product} is a {kind} product.")
    if recurring and not rate.billing_period:
        error_add(errors, "billing_period", "A recurring rate needs a billing period.")
    if not recurring and rate.billing_period:
        error_add(errors, "billing_period", "A one-time rate has no billing period.")
    if not recurring and rate.free_trial_days:
        error_add(errors, "free_trial_days", "Free trials apply to recurring rates only.")


def price_plan_rate_set(
    *, price_plan: PricePlan, product: Product, charge_type: str, amount: Decimal | str | int,
    billing_period: str = "", free_trial_days: int = 0, performed_by=None, channel: str = Channel.CALL_CENTER,
) -> PricePlanRate:
    """Add the plan's rate for (product, charge type), or change it; DRAFT plans only.

    ``amount`` is per billing period for recurring rates; 0 makes it free (freemium);
    ``free_trial_days`` gives new subscribers that many days free before charging starts.
    The plan row is locked, so concurrent edits of its rates are applied one after another.
    """
    with _rejection_recorded(target=price_plan, action="rate_set", performed_by=performed_by, channel=channel), transaction.atomic():
        plan = PricePlan.objects.select_for_update().get(pk=price_plan.pk)
        _only_while_draft(plan, "its rates")
        rate = (PricePlanRate.objects.filter(price_plan=plan, product=product, charge_type=charge_type).first()
                or PricePlanRate(price_plan=plan, product=product, charge_type=charge_type))
        before = _rate_values(rate) if rate.pk else {}
        errors: Errors = {}
        rate.amount = _rate_value(amount, errors, "amount")
        rate.billing_period = billing_period or ""
        rate.free_trial_days = free_trial_days
        model_errors(rate, errors, exclude=["amount"])
        if not errors.get("charge_type"):
            _rate_rules(rate, errors)
        if errors:
            raise ValidationFailed("The rate could not be set.", fields=errors)
        changes = _changes(before, _rate_values(rate))
        if changes:
            rate.save()
            audit_record(target=plan, action="rate_set", changes=changes, performed_by=performed_by, channel=channel)
    return rate


def price_plan_rate_remove(*, rate: PricePlanRate, performed_by=None, channel: str = Channel.CALL_CENTER) -> None:
    """Take a rate off a DRAFT plan."""
    plan = rate.price_plan
    with _rejection_recorded(target=plan, action="rate_remove", performed_by=performed_by, channel=channel), transaction.atomic():
        locked = PricePlan.objects.select_for_update().get(pk=plan.pk)
        _only_while_draft(locked, "its rates")
        current = PricePlanRate.objects.select_related("product").filter(pk=rate.pk).first()
        if current is None:
            return
        changes = {name: [_plain(value), None] for name, value in _rate_values(current).items() if value is not None}
        current.delete()
        audit_record(target=locked, action="rate_removed", changes=changes, performed_by=performed_by, channel=channel)


class PricePlanSetEffective(SetEffective):
    def validate(self, plan: PricePlan, **params: Any) -> Iterator[str]:
        rates = list(plan.rates.select_related("product"))
        if not rates:
            yield "It has no rates; add at least one."
        yield from _validity_not_over(plan)
        inactive = _codes({rate.product for rate in rates if not rate.product.is_active})
        if inactive:
            yield f"These products are not active: {', '.join(inactive)}."


PRICE_PLAN_ACTIONS: dict[str, Action] = actions_by_code(PricePlanSetEffective, SetNotEffective, Cancel)


def price_plan_act(*, price_plan: PricePlan, action: str, performed_by=None, channel: str = Channel.CALL_CENTER) -> PricePlan:
    """Run a life cycle action by its code (``PRICE_PLAN_ACTIONS``)."""
    return PRICE_PLAN_ACTIONS[action].execute(price_plan, performed_by=performed_by, channel=channel)


def price_plan_set_effective(*, price_plan: PricePlan, performed_by=None, channel: str = Channel.CALL_CENTER) -> PricePlan:
    """DRAFT or NOT_EFFECTIVE → EFFECTIVE: its rates are offered from now on."""
    return price_plan_act(price_plan=price_plan, action="set_effective", performed_by=performed_by, channel=channel)


def price_plan_set_not_effective(*, price_plan: PricePlan, performed_by=None, channel: str = Channel.CALL_CENTER) -> PricePlan:
    """EFFECTIVE → NOT_EFFECTIVE: no longer offered; may be made effective again."""
    return price_plan_act(price_plan=price_plan, action="set_not_effective", performed_by=performed_by, channel=channel)


def price_plan_cancel(*, price_plan: PricePlan, performed_by=None, channel: str = Channel.CALL_CENTER) -> PricePlan:
    """DRAFT → CANCELLED: abandoned before it was ever offered. Final."""
    return price_plan_act(price_plan=price_plan, action="cancel", performed_by=performed_by, channel=channel)


# --- Promotions ----------------------------------------------------------------------------

def _products_resolve(values: Iterable[Product | str], errors: Errors) -> list[Product]:
    """Products (or their codes) a promotion covers: termed services only, since promotions
    discount recurring charges."""
    found, unknown = [], []
    for value in values or ():
        product = value if isinstance(value, Product) else Product.objects.filter(code=value).first()
        if product is None:
            unknown.append(str(value))
        else:
            found.append(product)
    if unknown:
        error_add(errors, "products", f"No such product: {', '.join(unknown)}.")
    not_termed = _codes(product for product in found if not product.is_termed_service)
    if not_termed:
        error_add(errors, "products", f"Promotions discount recurring charges, so they cover termed services only; not: {', '.join(not_termed)}.")
    return found


def _promotion_values(promotion: Promotion, products: Iterable[Product]) -> dict[str, Any]:
    return {**{name: getattr(promotion, name) for name in PROMOTION_FIELDS}, "products": ", ".join(_codes(products))}


def _promotion_check(promotion: Promotion, raw_value: Any, errors: Errors) -> None:
    promotion.value = _rate_value(raw_value, errors, "value")
    model_errors(promotion, errors, exclude=["value"])
    if promotion.value is not None and promotion.kind == Promotion.Kind.PERCENT and promotion.value > 100:
        error_add(errors, "value", "A percentage is between 0 and 100.")
    if promotion.periods == 0:
        error_add(errors, "periods", "A promotion lasts at least one period; leave it empty for ever.")
    _validity_check(promotion.valid_from, promotion.valid_until, errors)
    _code_check(Promotion, promotion.code, errors, exclude_pk=promotion.pk)


def promotion_create(
    *, code: str, name: str, kind: str, value: Decimal | str | int, periods: int | None = None,
    valid_from: datetime | None = None, valid_until: datetime | None = None, products: Iterable[Product | str] = (),
    requires_coupon: bool = False, performed_by=None, channel: str = Channel.CALL_CENTER,
) -> Promotion:
    """A new DRAFT promotion: ``value`` percent (0–100) or amount off each recurring charge
    of ``products`` (empty: every termed service) for its first ``periods`` periods,
    granted within [valid_from, valid_until), by coupon if ``requires_coupon``."""
    promotion = Promotion(code=code, name=name, kind=kind, periods=periods, valid_from=valid_from,
                          valid_until=valid_until, requires_coupon=requires_coupon)
    errors: Errors = {}
    _promotion_check(promotion, value, errors)
    chosen = _products_resolve(products, errors)
    if errors:
        raise ValidationFailed("The promotion could not be created.", fields=errors)
    try:
        with transaction.atomic():
            promotion.save()
            promotion.products.set(chosen)
            audit_record(target=promotion, action="created", changes=_changes({}, _promotion_values(promotion, chosen)),
                         performed_by=performed_by, channel=channel)
    except IntegrityError as error:
        raise ValidationFailed("The promotion could not be created.", fields={"code": [f"Another promotion has the code {code}."]}) from error
    return promotion


def promotion_update(*, promotion: Promotion, data: dict[str, Any], performed_by=None, channel: str = Channel.CALL_CENTER) -> Promotion:
    """Change a DRAFT promotion's terms (``PROMOTION_FIELDS`` and ``products``)."""
    unknown = set(data) - set(PROMOTION_FIELDS) - {"products"}
    if unknown:
        raise ValidationFailed("These fields cannot be changed here.", fields={name: ["Not editable."] for name in sorted(unknown)})
    with _rejection_recorded(target=promotion, action="update", performed_by=performed_by, channel=channel), transaction.atomic():
        locked = Promotion.objects.select_for_update().get(pk=promotion.pk)
        _only_while_draft(locked, "its terms")
        current = list(locked.products.all())
        before = _promotion_values(locked, current)
        for name in PROMOTION_FIELDS:
            if name in data and name != "value":
                setattr(locked, name, data[name])
        errors: Errors = {}
        _promotion_check(locked, data.get("value", locked.value), errors)
        chosen = _products_resolve(data["products"], errors) if "products" in data else current
        if not locked.requires_coupon and locked.coupons.exists():
            error_add(errors, "requires_coupon", "It has coupons; it must keep requiring one.")
        if errors:
            raise ValidationFailed("The promotion could not be updated.", fields=errors)
        changes = _changes(before, _promotion_values(locked, chosen))
        if changes:
            locked.save()
            locked.products.set(chosen)
            audit_record(target=locked, action="updated", changes=changes, performed_by=performed_by, channel=channel)
    return locked


class PromotionSetEffective(SetEffective):
    def validate(self, promotion: Promotion, **params: Any) -> Iterator[str]:
        yield from _validity_not_over(promotion)
        inactive = _codes(product for product in promotion.products.all() if not product.is_active)
        if inactive:
            yield f"These products are not active: {', '.join(inactive)}."
        if promotion.requires_coupon and not promotion.coupons.filter(is_active=True).exists():
            yield "It requires a coupon but has no active coupon; add one."


PROMOTION_ACTIONS: dict[str, Action] = actions_by_code(PromotionSetEffective, SetNotEffective, Cancel)


def promotion_act(*, promotion: Promotion, action: str, performed_by=None, channel: str = Channel.CALL_CENTER) -> Promotion:
    """Run a life cycle action by its code (``PROMOTION_ACTIONS``)."""
    return PROMOTION_ACTIONS[action].execute(promotion, performed_by=performed_by, channel=channel)


def promotion_set_effective(*, promotion: Promotion, performed_by=None, channel: str = Channel.CALL_CENTER) -> Promotion:
    """DRAFT or NOT_EFFECTIVE → EFFECTIVE: it may be granted (and its coupons redeemed)."""
    return promotion_act(promotion=promotion, action="set_effective", performed_by=performed_by, channel=channel)


def promotion_set_not_effective(*, promotion: Promotion, performed_by=None, channel: str = Channel.CALL_CENTER) -> Promotion:
    """EFFECTIVE → NOT_EFFECTIVE: no new grants; those already granted run their course."""
    return promotion_act(promotion=promotion, action="set_not_effective", performed_by=performed_by, channel=channel)


def promotion_cancel(*, promotion: Promotion, performed_by=None, channel: str = Channel.CALL_CENTER) -> Promotion:
    """DRAFT → CANCELLED. Final."""
    return promotion_act(promotion=promotion, action="cancel", performed_by=performed_by, channel=channel)


# --- Coupons -------------------------------------------------------------------------------

def coupon_code_normalize(code: str) -> str:
    """What the customer typed, as stored: trimmed, upper case."""
    return (code or "").strip().upper()


def _coupon_limits_check(coupon: Coupon, errors: Errors) -> None:
    if coupon.max_redemptions is not None and coupon.max_redemptions < 1:
        error_add(errors, "max_redemptions", "At least 1; leave it empty for unlimited.")
    if coupon.max_per_account is None or coupon.max_per_account < 1:
        error_add(errors, "max_per_account", "At least 1.")


def _coupon_values(coupon: Coupon) -> dict[str, Any]:
    return {f"coupon {coupon.code}.{name}": getattr(coupon, name) for name in COUPON_EDITABLE_FIELDS}


def coupon_create(
    *, promotion: Promotion, code: str, max_redemptions: int | None = None, max_per_account: int = 1,
    performed_by=None, channel: str = Channel.CALL_CENTER,
) -> Coupon:
    """A code that grants ``promotion``: stored upper case, unique whatever the case,
    redeemable ``max_redemptions`` times in all (empty: unlimited) and
    ``max_per_account`` times by one account. Audited on the promotion."""
    normalized = coupon_code_normalize(code)
    with _rejection_recorded(target=promotion, action="coupon_create", performed_by=performed_by, channel=channel), transaction.atomic():
        locked = Promotion.objects.select_for_update().get(pk=promotion.pk)
        if locked.state == LifecycleState.CANCELLED:
            raise Conflict(f"{locked} is cancelled; it takes no coupons.", code="promotion_cancelled")
        coupon = Coupon(promotion=locked, code=normalized, max_redemptions=max_redemptions, max_per_account=max_per_account)
        errors: Errors = {}
        model_errors(coupon, errors, exclude=["promotion"])
        if normalized and not COUPON_CODE.match(normalized):
            error_add(errors, "code", "Use letters, digits, hyphens and underscores, starting with a letter or digit.")
        if normalized and Coupon.objects.filter(code__iexact=normalized).exists():
            error_add(errors, "code", f"The coupon code {normalized} is taken.")
        _coupon_limits_check(coupon, errors)
        if not locked.requires_coupon:
            error_add(errors, "promotion", f"{locked} is granted without a coupon; make it require one first.")
        if errors:
            raise ValidationFailed("The coupon could not be created.", fields=errors)
        try:
            with transaction.atomic():
                coupon.save()
        except IntegrityError as error:
            raise ValidationFailed("The coupon could not be created.", fields={"code": [f"The coupon code {normalized} is taken."]}) from error
        audit_record(target=locked, action="coupon_created", changes=_changes({}, _coupon_values(coupon)),
                     performed_by=performed_by, channel=channel)
    return coupon


def coupon_update(*, coupon: Coupon, data: dict[str, Any], performed_by=None, channel: str = Channel.CALL_CENTER) -> Coupon:
    """Change a coupon's limits or switch it off/on, in any state of its promotion (a leaked
    code must be stoppable at once). Its code never changes."""
    unknown = set(data) - set(COUPON_EDITABLE_FIELDS)
    if unknown:
        raise ValidationFailed("These fields cannot be changed here.", fields={name: ["Not editable."] for name in sorted(unknown)})
    with _rejection_recorded(target=coupon.promotion, action="coupon_update", performed_by=performed_by, channel=channel), transaction.atomic():
        locked = Coupon.objects.select_for_update().get(pk=coupon.pk)
        before = _coupon_values(locked)
        for name, value in data.items():
            setattr(locked, name, value)
        errors: Errors = {}
        model_errors(locked, errors)
        _coupon_limits_check(locked, errors)
        if errors:
            raise ValidationFailed("The coupon could not be updated.", fields=errors)
        changes = _changes(before, _coupon_values(locked))
        if changes:
            locked.save()
            audit_record(target=locked.promotion, action="coupon_updated", changes=changes,
                         performed_by=performed_by, channel=channel)
    return locked


class CouponRefused(ApplicationError):
    """A coupon could not be redeemed; ``code`` says why (see ``coupon_redeem``)."""

    code = "coupon_refused"
    http_status = 409


def _redemption_repeat(redemption: CouponRedemption, *, code: str, account: AccountsReceivable) -> CouponRedemption:
    """A repeat of the same request gets the first redemption; a reference reused for
    another coupon or account is a client error, not a repeat."""
    if redemption.account_id != account.pk or redemption.coupon.code != code:
        raise Conflict("This reference was already used for another coupon redemption.", code="redemption_reference_reused")
    return redemption


def _redeemable_check(coupon: Coupon, *, account: AccountsReceivable, at: datetime) -> None:
    """Raise the first reason the coupon cannot be redeemed by ``account`` at ``at``."""
    promotion = coupon.promotion
    if account.state != AccountsReceivable.State.ACTIVE:
        raise CouponRefused(f"Account {account.number} is {account.state.lower()}; it cannot redeem coupons.", code="account_not_active")
    if not coupon.is_active:
        raise CouponRefused(f"The coupon {coupon.code} is no longer active.", code="coupon_inactive")
    if promotion.state != LifecycleState.EFFECTIVE:
        raise CouponRefused(f"The promotion of coupon {coupon.code} is not in effect.", code="coupon_inactive")
    if (promotion.valid_from and at < promotion.valid_from) or (promotion.valid_until and at >= promotion.valid_until):
        raise CouponRefused(f"The coupon {coupon.code} cannot be redeemed at this time: {_window(promotion)}.", code="coupon_outside_validity")
    if coupon.max_redemptions is not None and coupon.redemptions.count() >= coupon.max_redemptions:
        raise CouponRefused(f"The coupon {coupon.code} has been used up.", code="coupon_exhausted")
    if coupon.redemptions.filter(account=account).count() >= coupon.max_per_account:
        times = "once" if coupon.max_per_account == 1 else f"{coupon.max_per_account} times"
        raise CouponRefused(f"The coupon {coupon.code} can be used {times} per account, and this account has.", code="coupon_account_limit")


def _window(promotion: Promotion) -> str:
    start = f"from {timezone.localtime(promotion.valid_from):%Y-%m-%d %H:%M}" if promotion.valid_from else ""
    end = f"until {timezone.localtime(promotion.valid_until):%Y-%m-%d %H:%M}" if promotion.valid_until else ""
    return " ".join(part for part in (start, end) if part)


def coupon_redeem(
    *, code: str, account: AccountsReceivable, reference: str, at: datetime | None = None,
    performed_by=None, channel: str = Channel.CALL_CENTER,
) -> CouponRedemption:
    """Redeem a coupon for ``account``; idempotent by ``reference`` (a repeat returns the
    first redemption and creates nothing).

    Refusals are ``CouponRefused`` with a code, checked in this order: ``coupon_unknown``,
    ``account_not_active`` (suspended or terminated), ``coupon_inactive`` (coupon switched
    off, or its promotion not EFFECTIVE), ``coupon_outside_validity`` (``at``, default now,
    outside the promotion's [valid_from, valid_until)), ``coupon_exhausted`` (total limit
    reached), ``coupon_account_limit`` (per-account limit reached).

    The coupon row is locked before the redemptions are counted, so two concurrent
    redemptions of the last available use are serialized and only one succeeds.
    """
    reference = (reference or "").strip()
    if not reference or len(reference) > 64:
        raise ValidationFailed("A redemption needs a reference of 1 to 64 characters.", fields={"reference": ["1 to 64 characters."]})
    normalized = coupon_code_normalize(code)
    at = at or timezone.now()
    existing = CouponRedemption.objects.select_related("coupon").filter(reference=reference).first()
    if existing is not None:
        return _redemption_repeat(existing, code=normalized, account=account)
    with transaction.atomic():
        coupon = Coupon.objects.select_for_update(of=("self",)).select_related("promotion").filter(code=normalized).first()
        if coupon is None:
            raise CouponRefused(f"There is no coupon {normalized or '(empty)'}.", code="coupon_unknown")
        # A concurrent repeat of this request may have committed while we waited for the lock.
        existing = CouponRedemption.objects.select_related("coupon").filter(reference=reference).first()
        if existing is not None:
            return _redemption_repeat(existing, code=normalized, account=account)
        fresh_account = AccountsReceivable.objects.get(pk=account.pk)
        _redeemable_check(coupon, account=fresh_account, at=at)
        try:
            with transaction.atomic():
                redemption = CouponRedemption.objects.create(coupon=coupon, account=fresh_account, reference=reference)
        except IntegrityError:  # the same reference, redeemed concurrently for another coupon
            existing = CouponRedemption.objects.select_related("coupon").get(reference=reference)
            return _redemption_repeat(existing, code=normalized, account=account)
        audit_record(target=coupon, action="redeemed",
                     changes={"account": [None, fresh_account.number], "reference": [None, reference]},
                     performed_by=performed_by, channel=channel)
    return redemption
