"""What a billing run bills besides recurring charges and usage: one-time charges, and the
promotions granted to subscriptions.

- ``one_time_charge_add`` queues a one-time charge (an installation, a decoder) priced from
  the account's one-time price plan rate; the next billing run invoices it. Idempotent by
  reference.
- ``promotion_grant`` gives a subscription a promotion, directly (an agent, for promotions
  that need no coupon) or through a coupon the customer redeems (``coupon_code``); the
  billing run then deducts it from the subscription's recurring charges for the
  promotion's number of periods. One grant per promotion and subscription; idempotent by
  reference.
"""

from __future__ import annotations

from datetime import date

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import AccountsReceivable
from catalogs.models import PricePlanRate, Product, Promotion
from catalogs.pricing import money, price_plan_rate_for
from catalogs.services.pricing import coupon_redeem
from core.choices import Channel, LifecycleState
from core.exceptions import Conflict
from core.services import audit_record
from core.validation import Errors, error_add, errors_raise
from subscriptions.models import Subscription

from ..models import OneTimeCharge, PromotionGrant


def _reference(reference: str | None, errors: Errors) -> str:
    reference = (reference or "").strip()
    if not reference or len(reference) > 100:
        error_add(errors, "reference", "Give a reference of 1 to 100 characters (it makes a repeat harmless).")
    return reference


def one_time_charge_add(*, account: AccountsReceivable, product: Product, reference: str, subscription: Subscription | None = None,
                        charged_on: date | None = None, performed_by=None, channel: str = Channel.CALL_CENTER) -> OneTimeCharge:
    """Queue a one-time charge for ``product`` at the account's one-time rate; a repeat of
    ``reference`` returns the first charge."""
    errors: Errors = {}
    reference = _reference(reference, errors)
    existing = OneTimeCharge.objects.filter(reference=reference).first() if reference else None
    if existing is not None:
        return existing
    rate = price_plan_rate_for(product=product, classification=account.classification,
                               charge_type=PricePlanRate.ChargeType.ONE_TIME)
    if rate is None:
        error_add(errors, "product", f"{product} has no one-time rate in an effective price plan for this customer.")
    elif rate.price_plan.currency != account.currency:
        error_add(errors, "product", f"{product} is priced in {rate.price_plan.currency}, the account is in {account.currency}.")
    if subscription is not None and subscription.account_id != account.pk:
        error_add(errors, "subscription", f"The subscription {subscription} belongs to another account.")
    errors_raise(errors, "The one-time charge cannot be added.")
    try:
        with transaction.atomic():
            charge = OneTimeCharge.objects.create(
                account=account, subscription=subscription, product=product, description=product.name,
                amount=rate.amount, currency=account.currency, prices_include_tax=rate.price_plan.prices_include_tax,
                reference=reference, charged_on=charged_on or timezone.localdate())
            audit_record(target=account, action="one-time charge added",
                         changes={"charge": [None, f"{product.name} {money(rate.amount)} {account.currency}"]},
                         performed_by=performed_by, channel=channel)
    except IntegrityError:  # the same reference, added concurrently
        return OneTimeCharge.objects.get(reference=reference)
    return charge


def _promotion_problems(promotion: Promotion, subscription: Subscription, *, by_coupon: bool):
    now = timezone.now()
    if promotion.state != LifecycleState.EFFECTIVE:
        yield f"The promotion {promotion} is not effective."
    if (promotion.valid_from and now < promotion.valid_from) or (promotion.valid_until and now >= promotion.valid_until):
        yield f"The promotion {promotion} cannot be granted now (outside its validity)."
    if promotion.requires_coupon and not by_coupon:
        yield f"The promotion {promotion} is granted with a coupon code only."
    if subscription.state == Subscription.State.CANCELLED:
        yield f"The subscription {subscription} is cancelled."
    if PromotionGrant.objects.filter(subscription=subscription, promotion=promotion).exists():
        yield f"The subscription {subscription} already has the promotion {promotion}."


def promotion_grant(*, subscription: Subscription, reference: str, promotion: Promotion | None = None,
                    coupon_code: str | None = None, starts_on: date | None = None, performed_by=None,
                    channel: str = Channel.CALL_CENTER) -> PromotionGrant:
    """Give ``subscription`` a promotion, or the promotion of ``coupon_code`` (redeemed for
    the subscription's account). A repeat of ``reference`` returns the first grant."""
    errors: Errors = {}
    reference = _reference(reference, errors)
    existing = PromotionGrant.objects.filter(reference=reference).first() if reference else None
    if existing is not None:
        return existing
    if (promotion is None) == (not coupon_code):
        error_add(errors, "promotion", "Give either a promotion or a coupon code.")
    errors_raise(errors, "The promotion cannot be granted.")
    with transaction.atomic():
        subscription = Subscription.objects.select_for_update().select_related("account").get(pk=subscription.pk)
        redemption = None
        if coupon_code:
            # Refusals (unknown, exhausted, ...) raise CouponRefused and roll everything back.
            redemption = coupon_redeem(code=coupon_code, account=subscription.account, reference=reference[:64],
                                       performed_by=performed_by, channel=channel)
            promotion = redemption.coupon.promotion
        for problem in _promotion_problems(promotion, subscription, by_coupon=redemption is not None):
            error_add(errors, "promotion", problem)
        errors_raise(errors, "The promotion cannot be granted.")
        try:
            with transaction.atomic():
                grant = PromotionGrant.objects.create(
                    subscription=subscription, promotion=promotion, redemption=redemption,
                    starts_on=starts_on or timezone.localdate(), reference=reference, granted_by=_user(performed_by),
                    channel=channel)
        except IntegrityError as error:
            raise Conflict(f"The subscription {subscription} already has the promotion {promotion}.",
                           code="promotion_already_granted") from error
        audit_record(target=subscription, action="promotion granted",
                     changes={"promotion": [None, promotion.name], "coupon": [None, coupon_code or None]},
                     performed_by=performed_by, channel=channel)
    return grant


def _user(performed_by):
    return performed_by if performed_by is not None and getattr(performed_by, "is_authenticated", False) else None
