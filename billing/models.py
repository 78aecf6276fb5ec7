"""Billing: billing term schemes and usage detail records (UDRs).

The billing issue adds usage billing rules, billing runs, invoices, taxes and the ledger.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q, Value

from catalogs.models import ProductType
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
    # Usage service billing rules: when either is reached, the subscription's unbilled usage
    # is invoiced at once (billing.services.invoicing.usage_bill_if_due); with neither, usage
    # waits for the billing run. max_unbilled_udrs = 1 bills every order instantly.
    max_unbilled_udrs = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)],
        help_text="Invoice usage as soon as this many records are unbilled (1: every order is invoiced at once). Empty: no limit.")
    max_unbilled_amount = models.DecimalField(
        max_digits=12, decimal_places=2, null=True, blank=True, validators=[MinValueValidator(Decimal("0.01"))],
        help_text="Invoice usage as soon as the unbilled usage reaches this amount. Empty: no limit.")
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

    # No index of its own: udr_account_recent_idx (account, -usage_at) serves every lookup by
    # account, and each index on this, the busiest table, costs every insert and rating.
    account = models.ForeignKey("accounts.AccountsReceivable", on_delete=models.PROTECT, related_name="udrs", db_index=False)
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
            # external_id first: the same uniqueness, and the index also finds a record by
            # its external id alone (the admin's search) without a second index.
            models.UniqueConstraint(fields=["external_id", "source"], name="udr_unique_per_source"),
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


# --- Taxes ---------------------------------------------------------------------------------

class TaxRate(models.Model):
    """The tax on one class of products (the product type's classification) in one country,
    from ``valid_from`` through ``valid_until`` (inclusive; empty: until further notice).

    At most one rate applies to a (country, class) on any day: rates of the same country
    and class may not overlap (``clean``; the service also serialises concurrent writes). A
    change of rate is a new row starting the day after the old one ends, so invoices already
    issued keep the rate they were taxed at (each line stores its own copy).
    """

    country = models.CharField(max_length=2, help_text="ISO 3166 code of the customer's billing address, e.g. CY.")
    tax_class = models.CharField(max_length=16, choices=ProductType.Classification.choices,
                                 help_text="Matched against the product type's classification.")
    name = models.CharField(max_length=50, default="VAT", help_text="Shown on invoices, e.g. VAT.")
    rate = models.DecimalField(max_digits=5, decimal_places=2,
                               validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("100"))],
                               help_text="Percent, e.g. 19.00.")
    valid_from = models.DateField()
    valid_until = models.DateField(null=True, blank=True, help_text="Last day it applies (inclusive). Empty: open-ended.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["country", "tax_class", "-valid_from"]
        constraints = [
            models.CheckConstraint(condition=Q(valid_until__isnull=True) | Q(valid_until__gte=F("valid_from")),
                                   name="tax_rate_validity_ordered",
                                   violation_error_message="The last day cannot be before the first day."),
        ]
        indexes = [models.Index(fields=["country", "tax_class", "valid_from"], name="tax_rate_lookup_idx")]

    def __str__(self) -> str:
        until = f"–{self.valid_until}" if self.valid_until else "–"
        return f"{self.country} {self.get_tax_class_display()} {self.name} {self.rate}% ({self.valid_from}{until})"

    def overlapping(self) -> models.QuerySet[TaxRate]:
        """Other rates of the same country and class sharing at least one day with this one."""
        others = TaxRate.objects.filter(country=self.country, tax_class=self.tax_class).exclude(pk=self.pk)
        if self.valid_until is not None:
            others = others.filter(valid_from__lte=self.valid_until)
        return others.filter(Q(valid_until__isnull=True) | Q(valid_until__gte=self.valid_from))

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        from accounts.validators import validate_country

        errors: dict[str, list[str]] = {}
        self.country = (self.country or "").strip().upper()
        try:
            validate_country(self.country)
        except ValidationError as error:
            errors.setdefault("country", []).extend(error.messages)
        if self.valid_from and self.valid_until and self.valid_until < self.valid_from:
            errors.setdefault("valid_until", []).append("The last day cannot be before the first day.")
        elif self.valid_from and self.tax_class and not errors:
            clash = self.overlapping().first()
            if clash is not None:
                errors.setdefault("valid_from", []).append(f"It overlaps {clash}; end that rate first.")
        if errors:
            raise ValidationError(errors)


# --- Invoices and credit notes -------------------------------------------------------------

MONEY = {"max_digits": 14, "decimal_places": 2}
UNIT_PRICE = {"max_digits": 12, "decimal_places": 4}


def adds_up(*, total: str, gross: str, tax: str, name: str) -> models.CheckConstraint:
    """``total = gross − tax``, to the cent. Written as "within half a cent" because SQLite
    compares decimals as floating point (9.99 − 1.60 ≠ 8.39 there); on PostgreSQL's exact
    numeric(…, 2) columns it is the same as equality."""
    difference = F(gross) - F(tax)
    half_cent = Value(Decimal("0.005"), output_field=models.DecimalField(max_digits=4, decimal_places=3))
    return models.CheckConstraint(condition=Q(**{f"{total}__gt": difference - half_cent, f"{total}__lt": difference + half_cent}),
                                  name=name)


class Invoice(models.Model):
    """A bill to a customer: DRAFT while lines are added, POSTED (numbered, in the ledger,
    immutable), CANCELLED only by credit notes covering all of it.

    The number is taken from a gapless sequence when the invoice is posted, per series and
    year ("INV-2026-000001"), so drafts that are dropped leave no gap.
    """

    class State(models.TextChoices):
        DRAFT = "DRAFT", "Draft"
        POSTED = "POSTED", "Posted"
        CANCELLED = "CANCELLED", "Cancelled"

    number = models.CharField(max_length=32, unique=True, null=True, blank=True, editable=False)
    series = models.CharField(max_length=8, default="INV", editable=False)
    account = models.ForeignKey("accounts.AccountsReceivable", on_delete=models.PROTECT, related_name="invoices")
    subscription = models.ForeignKey("subscriptions.Subscription", null=True, blank=True, on_delete=models.PROTECT,
                                     related_name="invoices")
    currency = models.CharField(max_length=3)
    tax_country = models.CharField(max_length=2, help_text="Where the customer is taxed (their billing address).")
    state = models.CharField(max_length=10, choices=State.choices, default=State.DRAFT, editable=False)
    issued_at = models.DateTimeField(null=True, blank=True, editable=False)
    net_total = models.DecimalField(**MONEY, default=Decimal("0.00"), editable=False)
    tax_total = models.DecimalField(**MONEY, default=Decimal("0.00"), editable=False)
    gross_total = models.DecimalField(**MONEY, default=Decimal("0.00"), editable=False)
    journal_entry = models.OneToOneField(JournalEntry, null=True, blank=True, on_delete=models.PROTECT,
                                         related_name="invoice", editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(condition=Q(state="DRAFT") | (Q(number__isnull=False) & Q(issued_at__isnull=False)),
                                   name="issued_invoice_has_number"),
            adds_up(total="net_total", gross="gross_total", tax="tax_total", name="invoice_totals_add_up"),
        ]
        indexes = [
            models.Index(fields=["account", "-created_at"], name="invoice_account_recent_idx"),
            models.Index(fields=["state", "-created_at"], name="invoice_state_idx"),
        ]

    def __str__(self) -> str:
        return self.number or f"Draft invoice {self.pk}"


class InvoiceLine(models.Model):
    """One charge: unit price × quantity with its tax. Net, tax and gross are rounded to
    the cent per line (half-up) and always add up (a database constraint)."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveSmallIntegerField()
    description = models.CharField(max_length=300)
    product = models.ForeignKey("catalogs.Product", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    udr = models.OneToOneField(UsageDetailRecord, null=True, blank=True, on_delete=models.PROTECT, related_name="invoice_line",
                               help_text="The usage it bills; a usage record is billed on one line only.")
    quantity = models.DecimalField(max_digits=12, decimal_places=4, default=Decimal("1"))
    unit_price = models.DecimalField(**UNIT_PRICE)
    price_includes_tax = models.BooleanField(default=True)
    net = models.DecimalField(**MONEY)
    tax_rate = models.DecimalField(max_digits=5, decimal_places=2, help_text="Percent.")
    tax_name = models.CharField(max_length=50, blank=True)
    tax = models.DecimalField(**MONEY)
    gross = models.DecimalField(**MONEY)
    revenue_ledger = models.CharField(max_length=32, help_text="Ledger account credited with the net amount.")
    # What a recurring charge pays for: revenue recognition spreads it over these days.
    subscription_service = models.ForeignKey("subscriptions.SubscriptionService", null=True, blank=True, on_delete=models.PROTECT,
                                             related_name="invoice_lines")
    service_period_start = models.DateField(null=True, blank=True, help_text="First day the charge covers.")
    service_period_end = models.DateField(null=True, blank=True, help_text="Day after the last day the charge covers.")

    class Meta:
        ordering = ["invoice", "position"]
        constraints = [
            models.UniqueConstraint(fields=["invoice", "position"], name="invoice_line_position_unique"),
            adds_up(total="net", gross="gross", tax="tax", name="invoice_line_adds_up"),
            models.CheckConstraint(condition=Q(service_period_start__isnull=True, service_period_end__isnull=True)
                                   | Q(service_period_end__gt=F("service_period_start")), name="invoice_line_period_ordered"),
        ]

    def __str__(self) -> str:
        return f"{self.description}: {self.gross}"


class CreditNote(models.Model):
    """Money given back on a posted invoice, in full or in part per line. Numbered from its
    own gapless series ("CN-2026-000001") and posted to the ledger when issued."""

    number = models.CharField(max_length=32, unique=True, editable=False)
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="credit_notes")
    account = models.ForeignKey("accounts.AccountsReceivable", on_delete=models.PROTECT, related_name="credit_notes")
    currency = models.CharField(max_length=3)
    reason = models.CharField(max_length=500)
    issued_at = models.DateTimeField()
    issued_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    net_total = models.DecimalField(**MONEY)
    tax_total = models.DecimalField(**MONEY)
    gross_total = models.DecimalField(**MONEY)
    journal_entry = models.OneToOneField(JournalEntry, on_delete=models.PROTECT, related_name="credit_note")

    class Meta:
        ordering = ["-issued_at", "-pk"]
        constraints = [
            adds_up(total="net_total", gross="gross_total", tax="tax_total", name="credit_note_totals_add_up"),
            models.CheckConstraint(condition=Q(gross_total__gt=0), name="credit_note_not_empty"),
        ]
        indexes = [models.Index(fields=["account", "-issued_at"], name="credit_note_account_idx")]

    def __str__(self) -> str:
        return self.number


class CreditNoteLine(models.Model):
    """The part of one invoice line given back."""

    credit_note = models.ForeignKey(CreditNote, on_delete=models.CASCADE, related_name="lines")
    invoice_line = models.ForeignKey(InvoiceLine, on_delete=models.PROTECT, related_name="credit_lines")
    description = models.CharField(max_length=300)
    net = models.DecimalField(**MONEY)
    tax_rate = models.DecimalField(max_digits=5, decimal_places=2)
    tax = models.DecimalField(**MONEY)
    gross = models.DecimalField(**MONEY)
    revenue_ledger = models.CharField(max_length=32)

    class Meta:
        ordering = ["credit_note", "invoice_line__position"]
        constraints = [
            models.UniqueConstraint(fields=["credit_note", "invoice_line"], name="credit_line_once_per_note"),
            adds_up(total="net", gross="gross", tax="tax", name="credit_line_adds_up"),
            models.CheckConstraint(condition=Q(gross__gt=0), name="credit_line_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.description}: {self.gross}"


# --- Billing runs --------------------------------------------------------------------------

class BillingRun(models.Model):
    """Finance bills every subscription of a scheme (or all) for a date: recurring charges
    in advance, one-time charges and unbilled usage, one invoice per account.

    The work is split into chunks of accounts that Celery workers claim with
    ``FOR UPDATE SKIP LOCKED``; each account is billed in its own transaction, and each
    (service, period) is billed at most once (``BilledPeriod``), so a re-run, a concurrent
    run or a run resumed after a crash creates nothing twice.
    """

    class State(models.TextChoices):
        PENDING = "PENDING", "Pending"
        RUNNING = "RUNNING", "Running"
        COMPLETED = "COMPLETED", "Completed"
        COMPLETED_WITH_ERRORS = "COMPLETED_WITH_ERRORS", "Completed with errors"

    run_date = models.DateField(help_text="Bill everything due on this day: periods starting by it, usage before it.")
    scheme = models.ForeignKey(BillingTermScheme, null=True, blank=True, on_delete=models.PROTECT, related_name="billing_runs",
                               help_text="Only subscriptions on this scheme; empty: every scheme.")
    state = models.CharField(max_length=24, choices=State.choices, default=State.PENDING, editable=False)
    accounts_total = models.PositiveIntegerField(default=0, editable=False)
    accounts_done = models.PositiveIntegerField(default=0, editable=False)
    invoices_created = models.PositiveIntegerField(default=0, editable=False)
    invoiced_total = models.DecimalField(**MONEY, default=Decimal("0.00"), editable=False)
    errors_count = models.PositiveIntegerField(default=0, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True, editable=False)
    finished_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-pk"]
        permissions = [("run_billing", "Can start billing runs")]

    def __str__(self) -> str:
        return f"Billing run {self.pk} for {self.run_date}"

    @property
    def progress_percent(self) -> int:
        if not self.accounts_total:
            return 100 if self.state.startswith("COMPLETED") else 0
        return min(100, self.accounts_done * 100 // self.accounts_total)


class BillingRunChunk(models.Model):
    """A slice of a run's accounts (an id range) that one worker bills; DONE once billed,
    so a resumed run only redoes what was not finished."""

    class State(models.TextChoices):
        PENDING = "PENDING", "Pending"
        DONE = "DONE", "Done"

    run = models.ForeignKey(BillingRun, on_delete=models.CASCADE, related_name="chunks")
    first_account_id = models.BigIntegerField()
    last_account_id = models.BigIntegerField()
    accounts = models.PositiveIntegerField()
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING)
    invoices_created = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True, help_text="Accounts that could not be billed, with the reason.")
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "first_account_id"]
        indexes = [models.Index(fields=["run", "state"], name="billing_chunk_pending_idx")]

    def __str__(self) -> str:
        return f"{self.run} accounts {self.first_account_id}–{self.last_account_id}"


class BilledPeriod(models.Model):
    """A termed service's period that has been charged: unique per (service, period start),
    the guarantee that no period is ever billed twice."""

    service = models.ForeignKey("subscriptions.SubscriptionService", on_delete=models.PROTECT, related_name="billed_periods")
    period_start = models.DateField()
    period_end = models.DateField()
    invoice_line = models.OneToOneField(InvoiceLine, null=True, blank=True, on_delete=models.PROTECT, related_name="billed_period",
                                        help_text="Empty when the period cost nothing (a free trial, a free plan).")
    run = models.ForeignKey(BillingRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="billed_periods")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["service", "period_start"]
        constraints = [
            models.UniqueConstraint(fields=["service", "period_start"], name="service_period_billed_once"),
            models.CheckConstraint(condition=Q(period_end__gt=F("period_start")), name="billed_period_ordered"),
        ]

    def __str__(self) -> str:
        return f"{self.service} {self.period_start}–{self.period_end}"


class OneTimeCharge(models.Model):
    """A charge billed once on the next invoice: an installation, a decoder, a fee.

    Priced from the account's one-time price plan rate when it is added; billed by the
    next billing run (or at once when asked); unique by reference, so a repeat adds nothing.
    """

    class State(models.TextChoices):
        PENDING = "PENDING", "Not billed yet"
        BILLED = "BILLED", "Billed"
        CANCELLED = "CANCELLED", "Cancelled"

    account = models.ForeignKey("accounts.AccountsReceivable", on_delete=models.PROTECT, related_name="one_time_charges")
    subscription = models.ForeignKey("subscriptions.Subscription", null=True, blank=True, on_delete=models.PROTECT,
                                     related_name="one_time_charges")
    product = models.ForeignKey("catalogs.Product", on_delete=models.PROTECT, related_name="+")
    description = models.CharField(max_length=300)
    amount = models.DecimalField(**UNIT_PRICE)
    currency = models.CharField(max_length=3)
    prices_include_tax = models.BooleanField(default=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    reference = models.CharField(max_length=100, unique=True, help_text="What caused it; adding the same charge twice is impossible.")
    invoice_line = models.OneToOneField(InvoiceLine, null=True, blank=True, on_delete=models.PROTECT, related_name="one_time_charge")
    charged_on = models.DateField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [models.CheckConstraint(condition=Q(amount__gte=0), name="one_time_charge_not_negative")]
        indexes = [models.Index(fields=["account", "state"], name="one_time_charge_due_idx")]

    def __str__(self) -> str:
        return f"{self.description}: {self.amount} {self.currency}"


class PromotionGrant(models.Model):
    """A promotion given to a subscription (by an agent, or by a coupon the customer
    redeemed): its discount applies to the subscription's recurring charges for the
    promotion's number of periods, counted from the first period billed after ``starts_on``."""

    subscription = models.ForeignKey("subscriptions.Subscription", on_delete=models.PROTECT, related_name="promotion_grants")
    promotion = models.ForeignKey("catalogs.Promotion", on_delete=models.PROTECT, related_name="grants")
    redemption = models.OneToOneField("catalogs.CouponRedemption", null=True, blank=True, on_delete=models.PROTECT,
                                      related_name="grant")
    starts_on = models.DateField()
    reference = models.CharField(max_length=100, unique=True, help_text="Idempotency: granting twice is impossible.")
    granted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["subscription", "starts_on", "pk"]
        constraints = [models.UniqueConstraint(fields=["subscription", "promotion"], name="promotion_granted_once")]

    def __str__(self) -> str:
        return f"{self.promotion} on {self.subscription}"


# --- Revenue recognition -------------------------------------------------------------------

class RevenueAllocation(models.Model):
    """The part of a deferred invoice line's net that one component earns: the whole net
    for a plain service, a share by standalone selling price for a bundle.

    Written once, the first time the line is recognized or credited, so a later change of a
    bundle's standalone prices never moves revenue already invoiced between components.
    """

    invoice_line = models.ForeignKey(InvoiceLine, on_delete=models.PROTECT, related_name="revenue_allocations")
    component = models.ForeignKey("catalogs.Product", on_delete=models.PROTECT, related_name="+")
    amount = models.DecimalField(**MONEY)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["invoice_line", "component"]
        constraints = [models.UniqueConstraint(fields=["invoice_line", "component"], name="revenue_allocation_once")]

    def __str__(self) -> str:
        return f"{self.component} share of line {self.invoice_line_id}: {self.amount}"


class RevenueRecognition(models.Model):
    """A movement of one component's deferred revenue.

    RECOGNIZED: the recognition job moved ``amount`` from DEFERRED_REVENUE to
    REVENUE_RECURRING for the service days through ``recognized_through`` (unique per
    line, component and day, so a re-run recognizes nothing twice).
    CREDITED: a credit note took ``amount`` back from the deferred balance and
    ``revenue_reversed`` from revenue already recognized (``recognized_through`` is the day
    it was issued); recognition then stops recognizing that part.
    """

    class Kind(models.TextChoices):
        RECOGNIZED = "RECOGNIZED", "Recognized"
        CREDITED = "CREDITED", "Credited"

    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.RECOGNIZED)
    invoice_line = models.ForeignKey(InvoiceLine, on_delete=models.PROTECT, related_name="revenue_recognitions")
    component = models.ForeignKey("catalogs.Product", on_delete=models.PROTECT, related_name="+")
    recognized_through = models.DateField(help_text="The last service day this covers (inclusive).")
    amount = models.DecimalField(**MONEY, help_text="Moved out of deferred revenue.")
    revenue_reversed = models.DecimalField(**MONEY, default=Decimal("0.00"),
                                           help_text="Credit notes: recognized revenue taken back.")
    journal_entry = models.ForeignKey(JournalEntry, null=True, blank=True, on_delete=models.PROTECT,
                                      related_name="revenue_recognitions",
                                      help_text="Empty when nothing was left to move (the closing row of a credited line).")
    credit_note_line = models.ForeignKey(CreditNoteLine, null=True, blank=True, on_delete=models.PROTECT,
                                         related_name="revenue_credits")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["invoice_line", "component", "recognized_through", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["invoice_line", "component", "recognized_through"],
                                    condition=Q(kind="RECOGNIZED"), name="revenue_recognized_once_per_day"),
            models.UniqueConstraint(fields=["credit_note_line", "component"], condition=Q(kind="CREDITED"),
                                    name="revenue_credited_once"),
            models.CheckConstraint(condition=Q(amount__gte=0) & Q(revenue_reversed__gte=0), name="revenue_movement_not_negative"),
            models.CheckConstraint(condition=Q(kind="RECOGNIZED", credit_note_line__isnull=True, revenue_reversed=0)
                                   | Q(kind="CREDITED", credit_note_line__isnull=False), name="revenue_movement_kind_fields"),
        ]
        indexes = [models.Index(fields=["recognized_through"], name="revenue_recognized_day_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.amount} of line {self.invoice_line_id} through {self.recognized_through}"


class RevenueWaterfall(RevenueRecognition):
    """The revenue waterfall report in the admin (a proxy: no table of its own, just the
    admin entry and its ``view_revenuewaterfall`` permission)."""

    class Meta:
        proxy = True
        verbose_name = "revenue waterfall"
        verbose_name_plural = "revenue waterfall"
