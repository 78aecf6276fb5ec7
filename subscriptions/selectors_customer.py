"""What the customer page in the admin shows about a customer's subscriptions, devices,
orders and actions, in a fixed handful of queries."""

from __future__ import annotations

from django.db.models import Prefetch

from accounts.models import AccountsReceivable
from billing.models import UsageDetailRecord

from .models import Device, Subscription, SubscriptionAction, SubscriptionService


def customer_overview(*, account: AccountsReceivable, recent: int = 10) -> dict:
    subscriptions = list(
        Subscription.objects.filter(account=account).select_related("billing_term_scheme")
        .prefetch_related(Prefetch("services", queryset=SubscriptionService.objects.select_related("product").order_by("pk")))
        .order_by("-created_at")
    )
    return {
        "subscriptions": subscriptions,
        "devices": list(Device.objects.filter(account=account, state=Device.State.ACTIVE).order_by("registered_at")),
        "orders": list(UsageDetailRecord.objects.filter(account=account).select_related("title", "product", "rental")
                       .order_by("-usage_at", "-pk")[:recent]),
        "actions": list(SubscriptionAction.objects.filter(subscription__account=account).select_related("subscription", "performed_by")
                        .order_by("-created_at", "-pk")[:recent]),
    }
