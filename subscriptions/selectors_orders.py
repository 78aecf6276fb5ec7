"""Reads behind orders: which subscription an order goes to, and a customer's orders."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import AccountsReceivable
from billing.models import UsageDetailRecord
from core.exceptions import ApplicationError

from .models import Subscription


def subscription_for_orders(*, account: AccountsReceivable, number: str | None = None) -> Subscription:
    """The subscription an order is placed on: the one named, else the account's oldest
    EFFECTIVE subscription (else its oldest open one, so the order is refused with the
    subscription's state as the reason)."""
    subscriptions = Subscription.objects.filter(account=account).select_related("account")
    if number:
        subscription = subscriptions.filter(number=number).first()
        if subscription is None:
            raise ApplicationError(f"No subscription {number} on this account.", code="not_found")
        return subscription
    subscription = (subscriptions.filter(state=Subscription.State.EFFECTIVE).order_by("created_at").first()
                    or subscriptions.exclude(state=Subscription.State.CANCELLED).order_by("created_at").first())
    if subscription is None:
        raise ApplicationError("This account has no subscription to order on.", code="no_subscription")
    return subscription


def order_list_for_account(*, account: AccountsReceivable) -> QuerySet[UsageDetailRecord]:
    return (UsageDetailRecord.objects.filter(account=account, source="ORDER")
            .select_related("product", "title", "subscription", "rental").order_by("-usage_at", "-pk"))
