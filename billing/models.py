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


# --- The ledger ----------------------------------------------------------------------------

class LedgerAccount(models.Model):
    """An account of the chart of accounts (receivables, revenue, tax, cash, ...)."""

    class Kind(models.TextChoices):
        ASSET = "ASSET", "Asset"
        LIABILITY = "LIABILITY", "Liability"
        REVENUE = "REVENUE", "Revenue"
        EXPENSE = "EXPENSE", "Expense"
        EQUITY = "EQUITY", "Equity"

    code = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=Kind.choices)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class JournalEntry(models.Model):
    """One balanced transaction: its postings' amounts sum to zero (debits = credits).

    Entries and postings are append-only: a mistake is corrected by a reversing entry. On
    PostgreSQL the database itself refuses an unbalanced entry (a deferred constraint
    trigger, checked at commit) and any change to a posted row (migration 0004).
    """

    class Kind(models.TextChoices):
        INVOICE = "INVOICE", "Invoice"
        CREDIT_NOTE = "CREDIT_NOTE", "Credit note"
        PAYMENT = "PAYMENT", "Payment"
        REFUND = "REFUND", "Refund"
        CHARGEBACK = "CHARGEBACK", "Chargeback"
        WRITE_OFF = "WRITE_OFF", "Write-off"
        RECOGNITION = "RECOGNITION", "Revenue recognition"
        REVERSAL = "REVERSAL", "Reversal"

    kind = models.CharField(max_length=12, choices=Kind.choices)
    reference = models.CharField(max_length=100, unique=True, help_text="What caused it (e.g. invoice:INV0000012); posting twice is impossible.")
    description = models.CharField(max_length=300, blank=True)
    currency = models.CharField(max_length=3)
    account = models.ForeignKey("accounts.AccountsReceivable", null=True, blank=True, on_delete=models.PROTECT,
                                related_name="journal_entries", help_text="The customer concerned, if any.")
    reversal_of = models.OneToOneField("self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversed_by")
    posted_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name_plural = "journal entries"
        ordering = ["-posted_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.reference}"


class Posting(models.Model):
    """One leg of a journal entry: a positive amount debits the ledger account, a negative
    one credits it. Receivable legs name the customer's account (the AR sub-ledger)."""

    entry = models.ForeignKey(JournalEntry, on_delete=models.PROTECT, related_name="postings")
    ledger_account = models.ForeignKey(LedgerAccount, on_delete=models.PROTECT, related_name="postings")
    account = models.ForeignKey("accounts.AccountsReceivable", null=True, blank=True, on_delete=models.PROTECT, related_name="postings")
    amount = models.DecimalField(max_digits=14, decimal_places=2)

    class Meta:
        constraints = [models.CheckConstraint(condition=~models.Q(amount=0), name="posting_not_zero")]
        indexes = [
            models.Index(fields=["account", "ledger_account"], name="posting_subledger_idx"),
            models.Index(fields=["ledger_account", "entry"], name="posting_ledger_idx"),
        ]

    def __str__(self) -> str:
        side = "Dr" if self.amount > 0 else "Cr"
        return f"{side} {self.ledger_account.code} {abs(self.amount)}"
