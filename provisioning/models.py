"""Provisioning providers: the content platforms (Nagra) that receive what customers buy.

The provisioning issue adds credentials, distributors, requests (the outbox) and the SOAP
client; catalogs already need to name the provider their services are provisioned on.
"""

from django.db import models

from core.choices import LifecycleState


class ProvisioningProvider(models.Model):
    class Protocol(models.TextChoices):
        NAGRA_MEDIA_LIVE = "NAGRA_MEDIA_LIVE", "Nagra Media Live Platform"

    name = models.CharField(max_length=100, unique=True)
    protocol = models.CharField(max_length=32, choices=Protocol.choices, default=Protocol.NAGRA_MEDIA_LIVE)
    endpoint = models.URLField(max_length=300, help_text="WSDL address, e.g. .../smsservice_1.2?wsdl")
    encoding = models.CharField(max_length=16, default="UTF-8")
    state = models.CharField(max_length=16, choices=[(LifecycleState.EFFECTIVE, "Effective"), (LifecycleState.NOT_EFFECTIVE, "Not effective")], default=LifecycleState.EFFECTIVE)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ProvisioningRequest(models.Model):
    """A command for the content platform, written in the same transaction as the change
    that causes it (the outbox). The provisioning issue sends them in order per
    subscription, with retries, and records the platform's answer."""

    class State(models.TextChoices):
        PENDING = "PENDING", "Pending"
        COMPLETED = "COMPLETED", "Completed"
        REJECTED = "REJECTED", "Rejected"
        CANCELLED = "CANCELLED", "Cancelled"

    class Kind(models.TextChoices):
        CREATE_ACCOUNT = "CREATE_ACCOUNT", "Create account"
        SUSPEND_ACCOUNT = "SUSPEND_ACCOUNT", "Suspend account"
        CANCEL_ACCOUNT = "CANCEL_ACCOUNT", "Cancel account"
        ADD_ENTITLEMENT = "ADD_ENTITLEMENT", "Add entitlement"
        REMOVE_ENTITLEMENT = "REMOVE_ENTITLEMENT", "Remove entitlement"
        PURCHASE_PPV = "PURCHASE_PPV", "Purchase PPV event"
        PAIR_DEVICE = "PAIR_DEVICE", "Pair device"
        UNPAIR_DEVICE = "UNPAIR_DEVICE", "Unpair device"
        SWAP_DEVICE = "SWAP_DEVICE", "Swap device"

    provider = models.ForeignKey(ProvisioningProvider, null=True, blank=True, on_delete=models.PROTECT, related_name="requests")
    account = models.ForeignKey("accounts.AccountsReceivable", on_delete=models.PROTECT, related_name="provisioning_requests")
    subscription = models.ForeignKey("subscriptions.Subscription", null=True, blank=True, on_delete=models.PROTECT,
                                     related_name="provisioning_requests")
    action = models.ForeignKey("subscriptions.SubscriptionAction", null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="provisioning_requests")
    kind = models.CharField(max_length=24, choices=Kind.choices)
    parameters = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]
        indexes = [models.Index(fields=["state", "subscription", "id"], name="provisioning_pending_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for {self.account_id} ({self.state})"
