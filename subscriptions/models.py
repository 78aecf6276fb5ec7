"""What a customer has and does: subscriptions, their services and installed items, the
actions that change them, PPV rentals, devices, stream sessions and viewing events."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from core.choices import Channel, Screen


class Subscription(models.Model):
    class State(models.TextChoices):
        DRAFT = "DRAFT", "Draft"
        EFFECTIVE = "EFFECTIVE", "Effective"
        NOT_EFFECTIVE = "NOT_EFFECTIVE", "Not effective"
        IN_RESTING = "IN_RESTING", "In resting (suspended)"
        CANCELLED = "CANCELLED", "Cancelled"

    number = models.CharField(max_length=20, unique=True, editable=False)
    account = models.ForeignKey("accounts.AccountsReceivable", on_delete=models.PROTECT, related_name="subscriptions")
    billing_term_scheme = models.ForeignKey("billing.BillingTermScheme", on_delete=models.PROTECT, related_name="subscriptions")
    state = models.CharField(max_length=16, choices=State.choices, default=State.DRAFT, editable=False)
    state_changed_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["account", "state"], name="subscription_account_idx")]
        permissions = [
            ("act_subscription", "Can run actions on subscriptions (activate, rest, add services, ...)"),
            ("order_usage", "Can place PPV orders for customers (Add Service Usage)"),
        ]

    def __str__(self) -> str:
        return self.number


class SubscriptionService(models.Model):
    """A termed service (a package, "PPV Service") on a subscription, with its own state."""

    State = Subscription.State

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="services")
    product = models.ForeignKey("catalogs.Product", on_delete=models.PROTECT, related_name="subscription_services")
    price_plan = models.ForeignKey("catalogs.PricePlan", null=True, blank=True, on_delete=models.PROTECT, related_name="subscription_services")
    state = models.CharField(max_length=16, choices=Subscription.State.choices, default=Subscription.State.DRAFT)
    start_date = models.DateField(null=True, blank=True)
    end_date = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(fields=["subscription", "product"], condition=~Q(state="CANCELLED"),
                                    name="service_once_per_subscription",
                                    violation_error_message="The subscription already has this service."),
        ]
        indexes = [models.Index(fields=["product", "state"], name="subscription_service_idx")]

    def __str__(self) -> str:
        return f"{self.product} on {self.subscription}"


class InstalledItem(models.Model):
    """A physical good (a decoder) installed for a subscription, by serial number."""

    class State(models.TextChoices):
        INSTALLED = "INSTALLED", "Installed"
        REMOVED = "REMOVED", "Removed"

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="installed_items")
    product = models.ForeignKey("catalogs.Product", on_delete=models.PROTECT, related_name="installed_items")
    serial_number = models.CharField(max_length=64)
    state = models.CharField(max_length=10, choices=State.choices, default=State.INSTALLED)
    installed_at = models.DateTimeField(auto_now_add=True)
    removed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["serial_number"], condition=Q(state="INSTALLED"), name="serial_installed_once",
                                    violation_error_message="This serial number is installed on another subscription."),
        ]

    def __str__(self) -> str:
        return f"{self.product} {self.serial_number}"


class SubscriptionAction(models.Model):
    """Every change to a subscription, as CRM.COM records it: a behavior code, a state,
    who did it through which channel, an optional schedule date and a unique transaction
    reference (a repeat returns the first result). Rejections keep their reasons."""

    class Behavior(models.TextChoices):
        ACTIVATE = "ACTIVATE", "Activate"
        DEACTIVATE = "DEACTIVATE", "Deactivate"
        ADD_SERVICE = "ADD_SERVICE", "Add service"
        REMOVE_SERVICE = "REMOVE_SERVICE", "Remove service"
        SWAP_SERVICE = "SWAP_SERVICE", "Swap service"
        REST = "REST", "Rest (suspend)"
        END_RESTING = "END_RESTING", "End resting (resume)"
        TERMINATE = "TERMINATE", "Terminate"
        ADD_INSTALLED_ITEM = "ADD_INSTALLED_ITEM", "Add installed item"
        REMOVE_INSTALLED_ITEM = "REMOVE_INSTALLED_ITEM", "Remove installed item"
        SWAP_INSTALLED_ITEM = "SWAP_INSTALLED_ITEM", "Swap installed item"
        ADD_SERVICE_USAGE = "ADD_SERVICE_USAGE", "Add service usage (PPV order)"

    class State(models.TextChoices):
        SCHEDULED = "SCHEDULED", "Scheduled"
        EXECUTED = "EXECUTED", "Executed"
        REJECTED = "REJECTED", "Rejected"
        CANCELLED = "CANCELLED", "Cancelled"

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="actions")
    behavior = models.CharField(max_length=24, choices=Behavior.choices)
    state = models.CharField(max_length=10, choices=State.choices)
    performed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    scheduled_for = models.DateTimeField(null=True, blank=True)
    executed_at = models.DateTimeField(null=True, blank=True)
    transaction_reference = models.CharField(max_length=100, unique=True)
    parameters = models.JSONField(default=dict, blank=True)
    reasons = models.JSONField(default=list, blank=True)
    result = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["state", "scheduled_for"], name="action_due_idx"),
            models.Index(fields=["subscription", "-created_at"], name="action_recent_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_behavior_display()} {self.subscription} ({self.state})"


class Rental(models.Model):
    """A PPV movie the account may watch within a window (from the order)."""

    account = models.ForeignKey("accounts.AccountsReceivable", on_delete=models.PROTECT, related_name="rentals")
    title = models.ForeignKey("catalogs.ContentTitle", on_delete=models.PROTECT, related_name="rentals")
    udr = models.OneToOneField("billing.UsageDetailRecord", on_delete=models.PROTECT, related_name="rental")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()

    class Meta:
        ordering = ["-starts_at"]
        indexes = [models.Index(fields=["account", "title", "ends_at"], name="rental_lookup_idx")]

    def __str__(self) -> str:
        return f"{self.title} until {self.ends_at:%Y-%m-%d %H:%M}"


class Device(models.Model):
    """A decoder, TV, phone or browser registered to an account, with its own key."""

    class State(models.TextChoices):
        ACTIVE = "ACTIVE", "Active"
        REMOVED = "REMOVED", "Removed"

    account = models.ForeignKey("accounts.AccountsReceivable", on_delete=models.PROTECT, related_name="devices")
    name = models.CharField(max_length=100)
    screen = models.CharField(max_length=16, choices=Screen.choices)
    identifier = models.CharField(max_length=100, blank=True, help_text="Serial number or app install id.")
    credential = models.OneToOneField("accounts.DeviceCredential", null=True, blank=True, on_delete=models.SET_NULL, related_name="device")
    state = models.CharField(max_length=8, choices=State.choices, default=State.ACTIVE)
    registered_at = models.DateTimeField(auto_now_add=True)
    removed_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["registered_at"]
        indexes = [models.Index(fields=["account", "state"], name="device_account_idx")]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_screen_display()})"


class PairingCode(models.Model):
    """A short code a TV shows on screen; the customer enters it in the portal to pair."""

    code = models.CharField(max_length=8, unique=True)
    poll_token = models.CharField(max_length=64, unique=True)
    screen = models.CharField(max_length=16, choices=Screen.choices)
    suggested_name = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    device = models.OneToOneField(Device, null=True, blank=True, on_delete=models.CASCADE, related_name="pairing")
    delivered_key = models.CharField(max_length=100, blank=True, help_text="Held until the TV collects it once, then erased.")

    def __str__(self) -> str:
        return self.code


class StreamSession(models.Model):
    """A playback in progress; counts against the account's concurrent-stream limit until
    stopped or stale (no heartbeat for a while)."""

    account = models.ForeignKey("accounts.AccountsReceivable", on_delete=models.PROTECT, related_name="stream_sessions")
    device = models.ForeignKey(Device, on_delete=models.PROTECT, related_name="stream_sessions")
    title = models.ForeignKey("catalogs.ContentTitle", on_delete=models.PROTECT, related_name="stream_sessions")
    started_at = models.DateTimeField(auto_now_add=True)
    last_heartbeat_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["account", "ended_at", "last_heartbeat_at"], name="stream_active_idx")]

    def __str__(self) -> str:
        return f"{self.title} on {self.device}"


class ViewingEvent(models.Model):
    """Play start / progress / stop reported by devices; written in bulk, read by analytics."""

    class Kind(models.TextChoices):
        START = "START", "Start"
        PROGRESS = "PROGRESS", "Progress"
        STOP = "STOP", "Stop"

    account = models.ForeignKey("accounts.AccountsReceivable", on_delete=models.DO_NOTHING, related_name="+", db_constraint=False)
    device = models.ForeignKey(Device, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False)
    title = models.ForeignKey("catalogs.ContentTitle", on_delete=models.DO_NOTHING, related_name="+", db_constraint=False)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    position_seconds = models.PositiveIntegerField(default=0)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["title", "occurred_at"], name="viewing_title_idx"),
            models.Index(fields=["account", "occurred_at"], name="viewing_account_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.title_id} at {self.position_seconds}s"
