"""Billing: billing term schemes and usage detail records (UDRs).

The billing issue adds usage billing rules, billing runs, invoices, taxes and the ledger.
"""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from core.choices import Channel


class BillingTermScheme(models.Model):
    """How a subscription is billed: NORMAL (in arrears for usage, in advance for termed
    services when pre-billed) or PREPAID, how often, on which day."""

    class Kind(models.TextChoices):
        NORMAL = "NORMAL", "Normal"
        PREPAID = "PREPAID", "Prepaid"

    class Frequency(models.TextChoices):
        MONTHLY = "MONTHLY", "Monthly"
        QUARTERLY = "QUARTERLY", "Quarterly"
        YEARLY = "YEARLY", "Yearly"

    class State(models.TextChoices):
        DRAFT = "DRAFT", "Draft"
        EFFECTIVE = "EFFECTIVE", "Effective"
        TERMINATED = "TERMINATED", "Terminated"

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.NORMAL)
    billing_frequency = models.CharField(max_length=10, choices=Frequency.choices, default=Frequency.MONTHLY)
    billing_day = models.PositiveSmallIntegerField(default=1, validators=[MinValueValidator(1), MaxValueValidator(28)],
                                                   help_text="Day of the month bills are made (1–28, so every month has it).")
    pre_bill = models.BooleanField(default=True, help_text="Bill termed services in advance for the coming period.")
    state = models.CharField(max_length=12, choices=State.choices, default=State.DRAFT, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class UsageDetailRecord(models.Model):
    """One usage (a PPV order): what, when, where from, and the price it was rated at.

    Unique per (source, external_id), so a replayed record is never charged twice. Orders
    are rated when created (RATED); the billing issue bills them (BILLED).
    """

    class State(models.TextChoices):
        PENDING = "PENDING", "Pending rating"
        RATED = "RATED", "Rated, not billed"
        BILLED = "BILLED", "Billed"
        REJECTED = "REJECTED", "Rejected"
        CANCELLED = "CANCELLED", "Cancelled"

    account = models.ForeignKey("accounts.AccountsReceivable", on_delete=models.PROTECT, related_name="udrs")
    subscription = models.ForeignKey("subscriptions.Subscription", null=True, blank=True, on_delete=models.PROTECT, related_name="udrs")
    product = models.ForeignKey("catalogs.Product", on_delete=models.PROTECT, related_name="udrs")
    title = models.ForeignKey("catalogs.ContentTitle", null=True, blank=True, on_delete=models.PROTECT, related_name="udrs")
    catalog = models.ForeignKey("catalogs.UsageServiceCatalog", null=True, blank=True, on_delete=models.PROTECT, related_name="udrs")
    usage_service = models.ForeignKey("catalogs.UsageService", null=True, blank=True, on_delete=models.PROTECT, related_name="udrs")
    tier = models.ForeignKey("catalogs.UsageTier", null=True, blank=True, on_delete=models.SET_NULL, related_name="udrs")
    device = models.ForeignKey("subscriptions.Device", null=True, blank=True, on_delete=models.SET_NULL, related_name="udrs")
    usage_at = models.DateTimeField()
    channel = models.CharField(max_length=16, choices=Channel.choices)
    source = models.CharField(max_length=32, default="ORDER", help_text="The system the record came from.")
    external_id = models.CharField(max_length=100, help_text="Unique per source: a replay is recognised and ignored.")
    amount = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    rate_reason = models.CharField(max_length=300, blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    rejection_reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "usage detail record"
        ordering = ["-usage_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["source", "external_id"], name="udr_unique_per_source"),
            models.CheckConstraint(condition=~models.Q(state="RATED") | models.Q(amount__isnull=False), name="rated_udr_has_amount"),
        ]
        indexes = [
            models.Index(fields=["account", "-usage_at"], name="udr_account_recent_idx"),
            models.Index(fields=["state", "usage_at"], name="udr_state_idx"),
        ]

    def __str__(self) -> str:
        return f"UDR {self.pk} {self.product} {self.amount or ''} {self.currency}"
