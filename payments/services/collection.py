"""Taking payments: recording offline ones, charging a saved card, posting them to the
ledger, allocating them to invoices, cancelling them by reversal, and automatic
collection when an invoice is posted.

Ledger: a payment is **Dr <money account> / Cr AR** — CASH for cash, BANK for cheques and
transfers, GATEWAY (Stripe clearing) for cards, VOUCHERS (prepaid vouchers sold, a
liability) for vouchers. Money not allocated to an invoice stays as a credit on the
account: its wallet, spent first on the next invoice.

Card charges never run inside a database lock: the PENDING payment is committed first
(its pk is Stripe's idempotency key, so a retry cannot charge twice), Stripe is called,
then the result is applied in a new transaction — by us from the response, or by the
webhook, whichever comes first; both are idempotent.
"""

from __future__ import annotations

import logging
from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.utils import timezone

from accounts.models import AccountsReceivable
from billing.models import Invoice, JournalEntry
from billing.services.ledger import Leg, journal_post, journal_reverse
from core.choices import Channel
from core.exceptions import Conflict, NotFound, ValidationFailed
from core.services import audit_record
from core.validation import Errors, error_add, errors_raise

from ..gateways import GatewayError, gateway_get
from ..models import MethodKind, Payment, PaymentMethod
from ..selectors import invoice_open_amount, payment_method_default
from .allocation import allocations_release, credit_apply, payment_allocate

logger = logging.getLogger(__name__)
ZERO = Decimal("0.00")
MONEY_LEDGER = {MethodKind.CARD: "GATEWAY", MethodKind.CASH: "CASH", MethodKind.CHEQUE: "BANK",
                MethodKind.BANK_TRANSFER: "BANK", MethodKind.VOUCHER: "VOUCHERS"}
RECORDED_KINDS = (MethodKind.CASH, MethodKind.CHEQUE, MethodKind.BANK_TRANSFER, MethodKind.VOUCHER)
NEEDS_REFERENCE = (MethodKind.CHEQUE, MethodKind.VOUCHER)


def _amount(value, errors: Errors) -> Decimal | None:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, TypeError, ValueError):
        error_add(errors, "amount", "Enter an amount.")
        return None
    if not amount.is_finite() or amount <= 0 or amount != amount.quantize(Decimal("0.01")):
        error_add(errors, "amount", "An amount is more than zero, in cents.")
        return None
    return amount


def _check_invoice(invoice: Invoice | None, account: AccountsReceivable, errors: Errors) -> None:
    if invoice is None:
        return
    if invoice.account_id != account.pk:
        error_add(errors, "invoice", "The invoice belongs to another account.")
    elif invoice.state != Invoice.State.POSTED:
        error_add(errors, "invoice", f"The invoice is {invoice.get_state_display()}; only posted invoices are paid.")
    elif invoice_open_amount(invoice=invoice) == 0:
        error_add(errors, "invoice", f"Invoice {invoice.number} is already paid.")


def _lock_account(account_id: int) -> AccountsReceivable:
    return AccountsReceivable.objects.select_for_update().get(pk=account_id)


# --- recorded (offline) payments ------------------------------------------------------------

def payment_record(*, account: AccountsReceivable, kind: str, amount, reference: str = "", invoice: Invoice | None = None,
                   purpose: str = Payment.Purpose.INVOICE, performed_by=None, channel: str = Channel.CALL_CENTER) -> Payment:
    """Record money an agent received (cash, cheque, bank transfer, voucher): posted and
    allocated at once — to ``invoice`` first, then the oldest open invoices; the rest is credit."""
    errors: Errors = {}
    if kind not in RECORDED_KINDS:
        error_add(errors, "kind", "Cash, cheque, bank transfer or voucher; cards are charged through Stripe.")
    value = _amount(amount, errors)
    reference = (reference or "").strip()
    if kind in NEEDS_REFERENCE and not reference:
        error_add(errors, "reference", "Give the cheque number or voucher code.")
    _check_invoice(invoice, account, errors)
    if account.state == AccountsReceivable.State.TERMINATED:
        error_add(errors, "account", "The account is terminated.")
    errors_raise(errors, "The payment cannot be recorded.")
    with transaction.atomic():
        _lock_account(account.pk)
        payment = Payment.objects.create(account=account, kind=kind, amount=value, currency=account.currency, reference=reference[:100],
                                         invoice=invoice, purpose=purpose, channel=channel,
                                         created_by=performed_by if getattr(performed_by, "is_authenticated", False) else None)
        _post_and_allocate(payment, performed_by=performed_by, channel=channel)
    dunning_after_payment(account=account)
    return payment


def _post_and_allocate(payment: Payment, *, performed_by, channel: str) -> None:
    """SUCCEEDED: the journal entry and the allocations (the account row is locked)."""
    payment.journal_entry = journal_post(
        kind=JournalEntry.Kind.PAYMENT, reference=f"payment:{payment.pk}", currency=payment.currency, account=payment.account,
        legs=[Leg(MONEY_LEDGER[payment.kind], payment.amount), Leg("AR", -payment.amount, payment.account)],
        description=f"{payment.get_kind_display()} payment {payment.pk}" + (f" ({payment.reference})" if payment.reference else ""))
    payment.state, payment.succeeded_at = Payment.State.SUCCEEDED, timezone.now()
    payment.save()
    if payment.purpose == Payment.Purpose.INVOICE:
        payment_allocate(payment=payment, invoice=payment.invoice)
    audit_record(target=payment, action="succeeded", changes={"amount": [None, str(payment.amount)]},
                 performed_by=performed_by, channel=channel)


# --- card payments ---------------------------------------------------------------------------

UNDER_WAY = (Payment.State.PENDING, Payment.State.REQUIRES_ACTION)


def _outcome_unknown(payment: Payment, *, method: PaymentMethod, amount: Decimal) -> bool:
    """The payment's charge call failed without an answer (Stripe timed out or was
    unreachable): the same charge may be sent again with the payment's idempotency key,
    which Stripe applies at most once. Without this a timed-out charge would block the
    invoice's collection until a webhook that may never come."""
    return (payment.state == Payment.State.PENDING and not payment.gateway_payment_id and bool(payment.failure_reason)
            and payment.method_id == method.pk and payment.amount == amount)


def payment_card_charge(*, account: AccountsReceivable, amount, method: PaymentMethod | None = None, invoice: Invoice | None = None,
                        purpose: str = Payment.Purpose.INVOICE, performed_by=None, channel: str = Channel.CALL_CENTER) -> Payment:
    """Charge a saved card (the default when ``method`` is None). Returns the payment:
    SUCCEEDED, FAILED (declined: the reason is kept), or REQUIRES_ACTION (the customer
    must authenticate; ``client_secret`` lets the portal finish it with Stripe.js)."""
    errors: Errors = {}
    value = _amount(amount, errors)
    method = method or payment_method_default(account=account)
    if method is None or method.kind != MethodKind.CARD or method.state != PaymentMethod.State.ACTIVE:
        error_add(errors, "payment_method", "The account has no active saved card to charge.")
    elif method.account_id != account.pk:
        error_add(errors, "payment_method", "The card belongs to another account.")
    _check_invoice(invoice, account, errors)
    errors_raise(errors, "The card cannot be charged.")
    customer = account.gateway_customers.filter(gateway=method.gateway or "stripe").first()
    if customer is None:
        raise Conflict("The account has no Stripe customer; add the card again.", code="no_gateway_customer")
    with transaction.atomic():
        # Under the account lock, so two collections of one invoice (a redelivered task, an
        # agent clicking while the automatic charge runs) cannot both start a charge.
        _lock_account(account.pk)
        under_way = Payment.objects.filter(invoice=invoice, state__in=UNDER_WAY).first() if invoice is not None else None
        if under_way is not None and not _outcome_unknown(under_way, method=method, amount=value):
            raise Conflict(f"A card charge for invoice {invoice} is already under way.", code="charge_under_way")
        payment = under_way or Payment.objects.create(
            account=account, method=method, kind=MethodKind.CARD, amount=value, currency=account.currency, invoice=invoice,
            purpose=purpose, channel=channel, created_by=performed_by if getattr(performed_by, "is_authenticated", False) else None)
        audit_record(target=payment, action="charge re-sent" if under_way else "charge started", performed_by=performed_by,
                     channel=channel)
    try:
        result = gateway_get().charge(customer_id=customer.external_id, method_id=method.gateway_method_id, amount=value,
                                      currency=payment.currency, idempotency_key=payment.idempotency_key,
                                      metadata={"payment": str(payment.pk), "account": account.number})
    except GatewayError as error:
        # Unknown outcome (e.g. a timeout): the payment stays PENDING; the webhook or a retry
        # with the same idempotency key settles it.
        logger.warning("Card charge for payment %s: %s", payment.pk, error)
        Payment.objects.filter(pk=payment.pk).update(failure_reason=str(error)[:300])
        payment.refresh_from_db()
        return payment
    return payment_gateway_result_apply(payment=payment, status=result.status, gateway_payment_id=result.payment_id,
                                        charge_id=result.charge_id, client_secret=result.client_secret,
                                        failure_reason=result.failure_reason)


def payment_gateway_result_apply(*, payment: Payment, status: str, gateway_payment_id: str | None = None, charge_id: str | None = None,
                                 client_secret: str = "", failure_reason: str = "", channel: str = Channel.SYSTEM) -> Payment:
    """Apply what Stripe said about a card payment (from the API response or a webhook).
    Idempotent and order-independent: SUCCEEDED and CANCELLED are final; a success after a
    failure wins (Stripe holds the money)."""
    with transaction.atomic():
        _lock_account(payment.account_id)
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        if gateway_payment_id and not payment.gateway_payment_id:
            payment.gateway_payment_id = gateway_payment_id
        if charge_id:
            payment.gateway_charge_id = charge_id
        if payment.state in (Payment.State.SUCCEEDED, Payment.State.CANCELLED):
            payment.save(update_fields=["gateway_payment_id", "gateway_charge_id"])
            return payment
        failed_now = False
        if status == "succeeded":
            payment.failure_reason = ""
            _post_and_allocate(payment, performed_by=None, channel=channel)
        elif status == "requires_action" and payment.state != Payment.State.FAILED:
            payment.state, payment.client_secret = Payment.State.REQUIRES_ACTION, client_secret or payment.client_secret
            payment.save()
            audit_record(target=payment, action="requires authentication", channel=channel)
        elif status == "failed" and payment.state != Payment.State.FAILED:
            payment.state, payment.failure_reason = Payment.State.FAILED, (failure_reason or "Declined.")[:300]
            payment.save()
            audit_record(target=payment, action="failed", reasons=[payment.failure_reason], channel=channel)
            failed_now = True
        else:
            payment.save()
    if payment.state == Payment.State.SUCCEEDED:
        dunning_after_payment(account=payment.account)
    elif failed_now and payment.purpose == Payment.Purpose.INVOICE:
        from .dunning import dunning_case_open

        dunning_case_open(account=payment.account, reason=f"Card payment {payment.pk} failed: {payment.failure_reason}")
    return payment


# --- wallet, cancellation, automatic collection ---------------------------------------------

def wallet_pay(*, account: AccountsReceivable, invoice: Invoice, performed_by=None, channel: str = Channel.PORTAL) -> Decimal:
    """Spend the account's credit on an invoice; returns the amount applied."""
    errors: Errors = {}
    _check_invoice(invoice, account, errors)
    errors_raise(errors, "The invoice cannot be paid from the wallet.")
    with transaction.atomic():
        _lock_account(account.pk)
        applied = sum((allocation.amount for allocation in credit_apply(account=account, invoice=invoice)
                       if allocation.invoice_id == invoice.pk), ZERO)
        if applied == 0:
            raise Conflict("The wallet is empty; top it up first.", code="wallet_empty")
        audit_record(target=invoice, action="paid from wallet", changes={"amount": [None, str(applied)]},
                     performed_by=performed_by, channel=channel)
    dunning_after_payment(account=account)
    return applied


def payment_cancel(*, payment: Payment, reason: str, performed_by=None, channel: str = Channel.CALL_CENTER) -> Payment:
    """Cancel a recorded payment entered by mistake (a bounced cheque): an opposite journal
    entry, and its allocations released (the invoices reopen). Card payments are refunded
    instead, since Stripe holds that money."""
    reason = (reason or "").strip()
    with transaction.atomic():
        _lock_account(payment.account_id)
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        problems = []
        if payment.state != Payment.State.SUCCEEDED:
            problems.append(f"The payment is {payment.get_state_display()}; only succeeded payments are cancelled.")
        if payment.kind == MethodKind.CARD:
            problems.append("Card payments are refunded, not cancelled.")
        if payment.refunds.exists():
            problems.append("The payment has refunds.")
        if not reason:
            problems.append("Give a reason.")
        if problems:
            raise Conflict("The payment cannot be cancelled.", code="payment_not_cancellable", fields={"payment": problems})
        payment.reversal_entry = journal_reverse(entry=payment.journal_entry, description=f"Payment {payment.pk} cancelled: {reason}"[:300])
        payment.state = Payment.State.CANCELLED
        payment.save(update_fields=["reversal_entry", "state"])
        allocations_release(payment=payment, reason="cancelled")
        audit_record(target=payment, action="cancelled", changes={"state": [Payment.State.SUCCEEDED, Payment.State.CANCELLED]},
                     reasons=[reason], performed_by=performed_by, channel=channel)
    return payment


def invoice_collect(*, invoice_id: int) -> Payment | None:
    """Automatic collection, run after an invoice is posted: spend the wallet's credit on
    it, then charge the default method for the rest when that method is a saved card.
    Any other default (cash, transfer, ...) waits for the customer; overdue invoices are
    picked up by dunning."""
    invoice = Invoice.objects.select_related("account").filter(pk=invoice_id).first()
    if invoice is None:
        raise NotFound(f"No invoice {invoice_id}.")
    if invoice.state != Invoice.State.POSTED:
        return None
    with transaction.atomic():
        _lock_account(invoice.account_id)
        credit_apply(account=invoice.account, invoice=invoice)
    remaining = invoice_open_amount(invoice=invoice)
    method = payment_method_default(account=invoice.account)
    if remaining == 0 or method is None or method.kind != MethodKind.CARD:
        return None
    try:
        return payment_card_charge(account=invoice.account, amount=remaining, method=method, invoice=invoice, channel=Channel.SYSTEM)
    except (ValidationFailed, Conflict) as error:  # e.g. a charge for it already under way
        logger.info("Automatic collection of %s skipped: %s", invoice, error)
        return None


def dunning_after_payment(*, account: AccountsReceivable) -> None:
    from .dunning import dunning_resolve_if_paid

    dunning_resolve_if_paid(account=account)
