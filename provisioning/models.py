"""Provisioning: the content platforms (Nagra) that receive what customers buy.

A provider is where commands go (its protocol, endpoint, credentials by name, distributors
and the physical goods it pairs). A ``ProvisioningRequest`` is one command, written in the
same transaction as the change that causes it (the outbox) and sent by Celery in order per
account; ``ReconciliationRun`` compares our entitlements with the platform's.
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from core.choices import LifecycleState


class ProvisioningProvider(models.Model):
    class Protocol(models.TextChoices):
        NAGRA_MEDIA_LIVE = "NAGRA_MEDIA_LIVE", "Nagra Media Live Platform"

    name = models.CharField(max_length=100, unique=True)
    protocol = models.CharField(max_length=32, choices=Protocol.choices, default=Protocol.NAGRA_MEDIA_LIVE)
    endpoint = models.URLField(max_length=300, help_text="WSDL address, e.g. .../smsservice_1.2?wsdl")
    encoding = models.CharField(max_length=16, default="UTF-8")
    state = models.CharField(max_length=16, choices=[(LifecycleState.EFFECTIVE, "Effective"), (LifecycleState.NOT_EFFECTIVE, "Not effective")], default=LifecycleState.EFFECTIVE)
    credentials_name = models.CharField(
        max_length=40, blank=True, default="NAGRA",
        help_text="Which credentials in the server's settings sign in to the platform (NAGRA: the NAGRA_USERNAME and "
                  "NAGRA_PASSWORD environment variables). Secrets are never stored in the database or shown here.")
    physical_goods = models.ManyToManyField("catalogs.Product", blank=True, related_name="provisioning_providers",
                                            limit_choices_to={"product_type__classification": "PHYSICAL_GOOD"},
                                            help_text="The devices (e.g. Thomson decoders) this platform pairs.")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def credentials(self) -> tuple[str, str] | None:
        """(username, password) from settings, or None when the platform needs none."""
        entry = settings.PROVISIONING_CREDENTIALS.get(self.credentials_name) if self.credentials_name else None
        if not entry or not entry.get("username"):
            return None
        return entry["username"], entry.get("password", "")


class ProvisioningDistributor(models.Model):
    """A distributor of the platform (Nagra's "Nagra Media Live Main")."""

    provider = models.ForeignKey(ProvisioningProvider, on_delete=models.CASCADE, related_name="distributors")
    name = models.CharField(max_length=100)
    code = models.CharField(max_length=40, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["provider", "name"], name="distributor_name_once_per_provider")]

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
        UPDATE_ACCOUNT = "UPDATE_ACCOUNT", "Update account"
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
    cause = models.CharField(max_length=32, blank=True, help_text="What caused it: the subscription action, account "
                                                                   "change or reconciliation (see provisioning/commands.py).")
    parameters = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    request_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False,
                                  help_text="Sent with the command; the platform applies a request id once.")
    sequence = models.PositiveIntegerField(null=True, blank=True, help_text="Order within the subscription (1, 2, ...).")
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now, help_text="Not sent before this time (backoff, or a "
                                                                           "worker's claim while it sends).")
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    raw_request = models.TextField(blank=True)
    raw_response = models.TextField(blank=True)
    platform_reference = models.CharField(max_length=100, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    error_description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    rejected_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["pk"]
        indexes = [
            # the dispatcher: due PENDING requests; the head-of-line check: earlier PENDING of the account
            models.Index(fields=["state", "next_attempt_at"], name="provisioning_due_idx"),
            models.Index(fields=["account", "state", "id"], name="provisioning_account_idx"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["subscription", "sequence"], condition=Q(sequence__isnull=False),
                                    name="provisioning_sequence_once_per_subscription"),
        ]
        permissions = [("manage_provisioningrequest", "Can retry or cancel provisioning requests and run reconciliations")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} ({self.state})"

    @property
    def exhausted(self) -> bool:
        return self.state == self.State.REJECTED and self.error_code == "retries_exhausted"


class ProvisioningDeadLetter(ProvisioningRequest):
    """The dead-letter queue: REJECTED requests (refused, or retries exhausted), which
    Finance and Administrators retry or cancel in the admin."""

    class Meta:
        proxy = True
        verbose_name = "dead letter"
        verbose_name_plural = "dead letters (rejected provisioning requests)"


class ReconciliationRun(models.Model):
    """One comparison of our entitlements with the platform's, and what it repaired."""

    class State(models.TextChoices):
        RUNNING = "RUNNING", "Running"
        DONE = "DONE", "Done"
        FAILED = "FAILED", "Failed"

    provider = models.ForeignKey(ProvisioningProvider, on_delete=models.PROTECT, related_name="reconciliation_runs")
    state = models.CharField(max_length=10, choices=State.choices, default=State.RUNNING)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    accounts_checked = models.PositiveIntegerField(default=0)
    accounts_skipped = models.PositiveIntegerField(default=0)
    differences_found = models.PositiveIntegerField(default=0)
    requests_created = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-pk"]

    def __str__(self) -> str:
        return f"Reconciliation {self.started_at:%Y-%m-%d %H:%M} ({self.state})"


class ReconciliationDifference(models.Model):
    class Kind(models.TextChoices):
        MISSING_ON_PLATFORM = "MISSING_ON_PLATFORM", "Missing on the platform"
        EXTRA_ON_PLATFORM = "EXTRA_ON_PLATFORM", "Extra on the platform"
        ACCOUNT_UNREACHABLE = "ACCOUNT_UNREACHABLE", "Account could not be listed"
        SKIPPED = "SKIPPED", "Skipped: commands in flight"

    run = models.ForeignKey(ReconciliationRun, on_delete=models.CASCADE, related_name="differences")
    account = models.ForeignKey("accounts.AccountsReceivable", on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=24, choices=Kind.choices)
    provisioning_id = models.CharField(max_length=64, blank=True)
    entitlement_kind = models.CharField(max_length=16, blank=True, help_text="SUBSCRIPTION or PPV")
    detail = models.TextField(blank=True)
    repair = models.ForeignKey(ProvisioningRequest, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.provisioning_id or self.detail}"
