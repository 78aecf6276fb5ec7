"""Payments: payment methods, payments and their allocation to invoices, refunds,
chargebacks, write-offs, gateway webhook events and dunning.

Money is a Decimal with 2 places plus the account's currency; minor units exist only at the
Stripe boundary (``payments/gateways/stripe.py``). Every amount that moves money has a
balanced journal entry in the ledger (``billing.JournalEntry``); balances are derived.

PCI scope (SAQ A): a card is entered in Stripe's own element in the customer's browser.
We store only Stripe's ids and the display details Stripe gives back (brand, last four
digits, expiry month/year) — never a card number or CVC.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q

from core.choices import Channel

MONEY = {"max_digits": 14, "decimal_places": 2}
CENT = Decimal("0.01")


class MethodKind(models.TextChoices):
    CARD = "CARD", "Card (Stripe)"
    CASH = "CASH", "Cash"
    CHEQUE = "CHEQUE", "Cheque"
    BANK_TRANSFER = "BANK_TRANSFER", "Bank transfer"
    WALLET = "WALLET", "Wallet (prepaid balance)"
    VOUCHER = "VOUCHER", "Voucher"


class GatewayCustomer(models.Model):
    """The account's customer object at a gateway (Stripe ``cus_...``), made once."""

    account = models.ForeignKey("accounts.AccountsReceivable", on_delete=models.PROTECT, related_name="gateway_customers")
    gateway = models.CharField(max_length=20, default="stripe")
    external_id = models.CharField(max_length=100, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "gateway"], name="one_gateway_customer_per_account")]

    def __str__(self) -> str:
        return f"{self.gateway} {self.external_id}"


class PaymentMethod(models.Model):
    """How an account pays. A card is PENDING while the customer enters it in Stripe's
    element (a SetupIntent) and ACTIVE once Stripe confirmed it. One method per account is
    the default: automatic collection charges it when an invoice is posted."""

    class State(models.TextChoices):
        PENDING = "PENDING", "Pending (card being added)"
        ACTIVE = "ACTIVE", "Active"
        REMOVED = "REMOVED", "Removed"

    account = models.ForeignKey("accounts.AccountsReceivable", on_delete=models.PROTECT, related_name="payment_methods")
    kind = models.CharField(max_length=16, choices=MethodKind.choices)
    state = models.CharField(max_length=10, choices=State.choices, default=State.ACTIVE, editable=False)
    is_default = models.BooleanField(default=False)
    label = models.CharField(max_length=100, blank=True, help_text="E.g. the bank or cheque account.")
    gateway = models.CharField(max_length=20, blank=True)
    setup_intent_id = models.CharField(max_length=100, null=True, blank=True, unique=True, editable=False)
    gateway_method_id = models.CharField(max_length=100, null=True, blank=True, unique=True, editable=False,
                                         help_text="Stripe PaymentMethod id (pm_...).")
    card_brand = models.CharField(max_length=20, blank=True, editable=False)
    card_last4 = models.CharField(max_length=4, blank=True, editable=False)
    card_exp_month = models.PositiveSmallIntegerField(null=True, blank=True, editable=False)
    card_exp_year = models.PositiveSmallIntegerField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["account", "-is_default", "-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["account"], condition=Q(is_default=True), name="one_default_payment_method"),
        ]

    def __str__(self) -> str:
        if self.kind == MethodKind.CARD:
            return f"{self.card_brand or 'card'} •••• {self.card_last4 or '????'}"
        return self.label or self.get_kind_display()


class Payment(models.Model):
    """Money received from (or attempted to be taken from) a customer.

    A card payment is written PENDING *before* Stripe is called: its pk is the idempotency
    key, so a retry after a timeout can never charge twice. SUCCEEDED payments are posted
    (Dr cash/bank/gateway/vouchers, Cr AR) and allocated to invoices; CANCELLED ones were
    reversed by an opposite entry; FAILED ones never moved money."""

    class State(models.TextChoices):
        PENDING = "PENDING", "Pending"
        REQUIRES_ACTION = "REQUIRES_ACTION", "Waiting for the customer (3-D Secure)"
        SUCCEEDED = "SUCCEEDED", "Succeeded"
        FAILED = "FAILED", "Failed"
        CANCELLED = "CANCELLED", "Cancelled (reversed)"

    class Purpose(models.TextChoices):
        INVOICE = "INVOICE", "Invoice payment"
        TOP_UP = "TOP_UP", "Wallet top-up"

    account = models.ForeignKey("accounts.AccountsReceivable", on_delete=models.PROTECT, related_name="payments")
    method = models.ForeignKey(PaymentMethod, null=True, blank=True, on_delete=models.PROTECT, related_name="payments")
    kind = models.CharField(max_length=16, choices=MethodKind.choices)
    purpose = models.CharField(max_length=10, choices=Purpose.choices, default=Purpose.INVOICE)
    invoice = models.ForeignKey("billing.Invoice", null=True, blank=True, on_delete=models.PROTECT, related_name="payments",
                                help_text="The invoice chosen to pay; empty: oldest open invoices first.")
    amount = models.DecimalField(**MONEY, validators=[MinValueValidator(CENT)])
    currency = models.CharField(max_length=3)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING, editable=False)
    reference = models.CharField(max_length=100, blank=True, help_text="Cheque number, bank reference, voucher code.")
    gateway_payment_id = models.CharField(max_length=100, null=True, blank=True, unique=True, editable=False,
                                          help_text="Stripe PaymentIntent id (pi_...).")
    gateway_charge_id = models.CharField(max_length=100, null=True, blank=True, editable=False)
    client_secret = models.CharField(max_length=200, blank=True, editable=False,
                                     help_text="Given to the customer's browser to finish 3-D Secure.")
    failure_reason = models.CharField(max_length=300, blank=True, editable=False)
    journal_entry = models.OneToOneField("billing.JournalEntry", null=True, blank=True, on_delete=models.PROTECT,
                                         related_name="payment", editable=False)
    reversal_entry = models.OneToOneField("billing.JournalEntry", null=True, blank=True, on_delete=models.PROTECT,
                                          related_name="cancelled_payment", editable=False)
    channel = models.CharField(max_length=16, choices=Channel.choices, default=Channel.SYSTEM)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    succeeded_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["account", "-created_at"], name="payment_account_recent_idx")]

    def __str__(self) -> str:
        return f"Payment {self.pk} {self.amount} {self.currency} ({self.get_kind_display()})"

    @property
    def idempotency_key(self) -> str:
        return f"payment-{self.pk}"



class Allocation(models.Model):
    """Part of a payment applied to an invoice. Append-only: releasing money (a refund, a
    chargeback, a cancellation) adds a negative row, so the history stays readable."""

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="allocations")
    invoice = models.ForeignKey("billing.Invoice", on_delete=models.PROTECT, related_name="allocations")
    amount = models.DecimalField(**MONEY)
    reason = models.CharField(max_length=100, default="payment")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [models.CheckConstraint(condition=~Q(amount=0), name="allocation_not_zero")]

    def __str__(self) -> str:
        return f"{self.amount} of payment {self.payment_id} to invoice {self.invoice_id}"


class Refund(models.Model):
    """Money given back on a payment: through Stripe for cards (PENDING until Stripe says
    so), recorded at once for cash, cheque, transfer and vouchers. Posted Dr AR / Cr the
    payment's money account when it succeeds."""

    class State(models.TextChoices):
        PENDING = "PENDING", "Pending"
        SUCCEEDED = "SUCCEEDED", "Succeeded"
        FAILED = "FAILED", "Failed"

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    amount = models.DecimalField(**MONEY, validators=[MinValueValidator(CENT)])
    reason = models.CharField(max_length=300)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING, editable=False)
    gateway_refund_id = models.CharField(max_length=100, null=True, blank=True, unique=True, editable=False)
    journal_entry = models.OneToOneField("billing.JournalEntry", null=True, blank=True, on_delete=models.PROTECT,
                                         related_name="refund", editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"Refund {self.pk} of {self.amount} on payment {self.payment_id}"

    @property
    def idempotency_key(self) -> str:
        return f"refund-{self.pk}"


class Chargeback(models.Model):
    """A card dispute. Opening it posts the funds Stripe withdrew (Dr AR / Cr GATEWAY: the
    customer owes the money again and the invoice reopens); WON reverses that entry; LOST
    leaves it (finance may then write the debt off)."""

    class State(models.TextChoices):
        OPEN = "OPEN", "Open"
        WON = "WON", "Won"
        LOST = "LOST", "Lost"

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="chargebacks")
    gateway_dispute_id = models.CharField(max_length=100, unique=True)
    amount = models.DecimalField(**MONEY)
    reason = models.CharField(max_length=100, blank=True)
    state = models.CharField(max_length=8, choices=State.choices, default=State.OPEN, editable=False)
    journal_entry = models.OneToOneField("billing.JournalEntry", null=True, blank=True, on_delete=models.PROTECT,
                                         related_name="chargeback", editable=False)
    reversal_entry = models.OneToOneField("billing.JournalEntry", null=True, blank=True, on_delete=models.PROTECT,
                                          related_name="won_chargeback", editable=False)
    opened_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_at", "-pk"]

    def __str__(self) -> str:
        return f"Chargeback {self.gateway_dispute_id} ({self.get_state_display()})"


class WriteOff(models.Model):
    """Finance gives up on (part of) an invoice: Dr WRITE_OFF / Cr AR."""

    invoice = models.ForeignKey("billing.Invoice", on_delete=models.PROTECT, related_name="write_offs")
    amount = models.DecimalField(**MONEY, validators=[MinValueValidator(CENT)])
    reason = models.CharField(max_length=300)
    journal_entry = models.OneToOneField("billing.JournalEntry", on_delete=models.PROTECT, related_name="write_off")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"Write-off {self.pk}: {self.amount} on {self.invoice}"


class WebhookEvent(models.Model):
    """A gateway event, stored once by its id: a redelivery finds the row and does nothing."""

    class Status(models.TextChoices):
        PROCESSED = "PROCESSED", "Processed"
        IGNORED = "IGNORED", "Ignored (nothing to do)"
        FAILED = "FAILED", "Failed"

    gateway = models.CharField(max_length=20, default="stripe")
    event_id = models.CharField(max_length=100, unique=True)
    type = models.CharField(max_length=100)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices)
    detail = models.CharField(max_length=500, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


# --- Dunning -------------------------------------------------------------------------------

class DunningSchedule(models.Model):
    """What happens, day by day, after a payment fails or an invoice stays unpaid. Exactly
    one schedule is active; its steps run on the day they name (counted from the case's
    opening)."""

    name = models.CharField(max_length=100, unique=True)
    is_active = models.BooleanField(default=False)
    overdue_after_days = models.PositiveSmallIntegerField(
        default=14, help_text="An invoice still open this many days after it was issued opens a dunning case.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["is_active"], condition=Q(is_active=True), name="one_active_dunning_schedule")]

    def __str__(self) -> str:
        return self.name


class DunningStep(models.Model):
    class Action(models.TextChoices):
        RETRY = "RETRY", "Retry the default payment method"
        REMINDER = "REMINDER", "Send a reminder e-mail"
        REST = "REST", "Rest (suspend) the subscriptions"

    schedule = models.ForeignKey(DunningSchedule, on_delete=models.CASCADE, related_name="steps")
    day = models.PositiveSmallIntegerField(help_text="Days after the case opened.")
    action = models.CharField(max_length=10, choices=Action.choices)

    class Meta:
        ordering = ["schedule", "day", "pk"]
        constraints = [models.UniqueConstraint(fields=["schedule", "day", "action"], name="dunning_step_unique")]

    def __str__(self) -> str:
        return f"day {self.day}: {self.get_action_display()}"


class DunningCase(models.Model):
    """One account's overdue balance being chased. RESOLVED when the balance is paid (the
    subscriptions dunning rested are resumed then)."""

    class State(models.TextChoices):
        OPEN = "OPEN", "Open"
        RESOLVED = "RESOLVED", "Resolved (paid)"

    account = models.ForeignKey("accounts.AccountsReceivable", on_delete=models.PROTECT, related_name="dunning_cases")
    schedule = models.ForeignKey(DunningSchedule, on_delete=models.PROTECT, related_name="cases")
    state = models.CharField(max_length=10, choices=State.choices, default=State.OPEN, editable=False)
    reason = models.CharField(max_length=300)
    opened_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_at", "-pk"]
        constraints = [models.UniqueConstraint(fields=["account"], condition=Q(state="OPEN"), name="one_open_dunning_case")]

    def __str__(self) -> str:
        return f"Dunning {self.pk} ({self.get_state_display()})"


class DunningEvent(models.Model):
    """Each step taken (or attempted) on a case — shown on the customer page."""

    case = models.ForeignKey(DunningCase, on_delete=models.CASCADE, related_name="events")
    step = models.ForeignKey(DunningStep, null=True, blank=True, on_delete=models.SET_NULL, related_name="events")
    kind = models.CharField(max_length=20)
    detail = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [models.UniqueConstraint(fields=["case", "step"], name="dunning_step_once_per_case")]

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}"
