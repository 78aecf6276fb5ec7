"""Refunds, chargebacks and write-offs — each a balanced journal entry.

- Refund: **Dr AR / Cr <money account>** (the customer is owed nothing more for it; what
  the payment had paid reopens unless a credit note goes with it). Cards go through
  Stripe (PENDING until Stripe confirms, by response or webhook); others are recorded.
- Chargeback (a card dispute): opened → **Dr AR / Cr GATEWAY** (Stripe withdrew the
  funds, the customer owes them again); WON → that entry reversed and the money
  re-allocated; LOST → it stays (finance may write the debt off).
- Write-off: **Dr WRITE_OFF / Cr AR** on an invoice's open amount.

Only Finance may refund or write off: the services check ``payments.add_refund`` /
``payments.add_writeoff`` on the acting user, whichever door the request came through.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from billing.models import Invoice, JournalEntry
from billing.services.ledger import Leg, journal_post, journal_reverse
from core.choices import Channel
from core.exceptions import ApplicationError, PermissionDenied
from core.services import audit_record
from core.validation import Errors, error_add, errors_raise

from ..gateways import GatewayError, gateway_get
from ..models import Chargeback, MethodKind, Payment, Refund, WriteOff
from ..selectors import invoice_open_amount, payment_refundable
from .allocation import allocations_release, payment_allocate
from .collection import MONEY_LEDGER, _amount, _lock_account

logger = logging.getLogger(__name__)


def _require(user, permission: str, what: str) -> None:
    if user is not None and not user.has_perm(permission):
        raise PermissionDenied(f"Only Finance may {what}.", code="permission_denied")


# --- refunds ---------------------------------------------------------------------------------

def refund_create(*, payment: Payment, amount=None, reason: str, performed_by=None, channel: str = Channel.CALL_CENTER) -> Refund:
    """Refund all that is left of a payment (``amount=None``) or part of it."""
    _require(performed_by, "payments.add_refund", "refund payments")
    with transaction.atomic():
        _lock_account(payment.account_id)
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        errors: Errors = {}
        refundable = payment_refundable(payment=payment)
        value = refundable if amount is None else _amount(amount, errors)
        if payment.state != Payment.State.SUCCEEDED:
            error_add(errors, "payment", f"The payment is {payment.get_state_display()}; only succeeded payments are refunded.")
        elif value is not None and (value <= 0 or value > refundable):
            error_add(errors, "amount", f"At most {refundable} {payment.currency} is left to refund.")
        if not (reason or "").strip():
            error_add(errors, "reason", "Give a reason.")
        errors_raise(errors, "The refund is not possible.")
        refund = Refund.objects.create(payment=payment, amount=value, reason=reason.strip()[:300],
                                       created_by=performed_by if getattr(performed_by, "is_authenticated", False) else None)
        audit_record(target=payment, action="refund requested", changes={"refund": [None, str(value)]},
                     performed_by=performed_by, channel=channel)
        if payment.kind != MethodKind.CARD:
            _refund_post(refund)
            return refund
    # A card: Stripe is called after the refund row committed (its pk is the idempotency key).
    try:
        result = gateway_get().refund(payment_id=payment.gateway_payment_id, amount=value, currency=payment.currency,
                                      idempotency_key=refund.idempotency_key)
    except GatewayError as error:
        logger.warning("Refund %s: %s", refund.pk, error)
        raise ApplicationError(f"{error} The refund stays pending; it is settled when Stripe reports it.",
                               code="gateway_error") from error
    return refund_gateway_result_apply(refund=refund, status=result.status, gateway_refund_id=result.refund_id)


def refund_gateway_result_apply(*, refund: Refund, status: str, gateway_refund_id: str | None = None) -> Refund:
    """Apply Stripe's word on a refund (response or webhook; idempotent)."""
    with transaction.atomic():
        _lock_account(refund.payment.account_id)
        refund = Refund.objects.select_for_update().select_related("payment").get(pk=refund.pk)
        if gateway_refund_id and not refund.gateway_refund_id:
            refund.gateway_refund_id = gateway_refund_id
            refund.save(update_fields=["gateway_refund_id"])
        if refund.state == Refund.State.PENDING:
            if status == "succeeded":
                _refund_post(refund)
            elif status in ("failed", "canceled"):
                refund.state = Refund.State.FAILED
                refund.save(update_fields=["state"])
                audit_record(target=refund.payment, action="refund failed", reasons=[f"Stripe: {status}"])
    return refund


def _refund_post(refund: Refund) -> None:
    payment = refund.payment
    refund.journal_entry = journal_post(
        kind=JournalEntry.Kind.REFUND, reference=f"refund:{refund.pk}", currency=payment.currency, account=payment.account,
        legs=[Leg("AR", refund.amount, payment.account), Leg(MONEY_LEDGER[payment.kind], -refund.amount)],
        description=f"Refund {refund.pk} of payment {payment.pk}: {refund.reason}"[:300])
    refund.state = Refund.State.SUCCEEDED
    refund.save(update_fields=["journal_entry", "state"])
    allocations_release(payment=payment, reason="refund")
    audit_record(target=payment, action="refunded", changes={"refund": [None, str(refund.amount)]})


# --- chargebacks -------------------------------------------------------------------------------

def chargeback_open(*, payment: Payment, dispute_id: str, amount: Decimal, reason: str = "") -> Chargeback:
    """A dispute was opened: Stripe withdrew ``amount``. Idempotent per dispute id."""
    with transaction.atomic():
        _lock_account(payment.account_id)
        existing = Chargeback.objects.filter(gateway_dispute_id=dispute_id).first()
        if existing is not None:
            return existing
        amount = min(amount, payment.amount)
        chargeback = Chargeback.objects.create(payment=payment, gateway_dispute_id=dispute_id, amount=amount, reason=reason[:100])
        chargeback.journal_entry = journal_post(
            kind=JournalEntry.Kind.CHARGEBACK, reference=f"chargeback:{dispute_id}"[:100], currency=payment.currency,
            account=payment.account, legs=[Leg("AR", amount, payment.account), Leg("GATEWAY", -amount)],
            description=f"Chargeback {dispute_id} on payment {payment.pk} ({reason or 'dispute'})"[:300])
        chargeback.save(update_fields=["journal_entry"])
        allocations_release(payment=payment, reason="chargeback")
        audit_record(target=payment, action="chargeback opened", changes={"chargeback": [None, str(amount)]})
    return chargeback


def chargeback_close(*, chargeback: Chargeback, won: bool) -> Chargeback:
    """WON: the withdrawal is reversed and the money applied again; LOST: it stays."""
    with transaction.atomic():
        _lock_account(chargeback.payment.account_id)
        chargeback = Chargeback.objects.select_for_update().select_related("payment").get(pk=chargeback.pk)
        if chargeback.state != Chargeback.State.OPEN:
            return chargeback
        chargeback.closed_at = timezone.now()
        if won:
            chargeback.state = Chargeback.State.WON
            chargeback.reversal_entry = journal_reverse(entry=chargeback.journal_entry,
                                                        description=f"Chargeback {chargeback.gateway_dispute_id} won")
            chargeback.save()
            payment_allocate(payment=chargeback.payment)
        else:
            chargeback.state = Chargeback.State.LOST
            chargeback.save()
        audit_record(target=chargeback.payment, action=f"chargeback {chargeback.state.lower()}")
    if won:
        from .collection import dunning_after_payment

        dunning_after_payment(account=chargeback.payment.account)
    return chargeback


# --- write-offs ----------------------------------------------------------------------------------

def write_off_create(*, invoice: Invoice, reason: str, amount=None, performed_by=None, channel: str = Channel.CALL_CENTER) -> WriteOff:
    """Write off an invoice's open amount (all of it by default)."""
    _require(performed_by, "payments.add_writeoff", "write off debts")
    with transaction.atomic():
        _lock_account(invoice.account_id)
        invoice = Invoice.objects.get(pk=invoice.pk)
        errors: Errors = {}
        open_amount = invoice_open_amount(invoice=invoice)
        value = open_amount if amount is None else _amount(amount, errors)
        if open_amount == 0:
            error_add(errors, "invoice", "Nothing is open on this invoice.")
        elif value is not None and value > open_amount:
            error_add(errors, "amount", f"At most {open_amount} is open.")
        if not (reason or "").strip():
            error_add(errors, "reason", "Give a reason.")
        errors_raise(errors, "The write-off is not possible.")
        entry = journal_post(kind=JournalEntry.Kind.WRITE_OFF, reference=f"write_off:{invoice.number}:{WriteOff.objects.filter(invoice=invoice).count() + 1}",
                             currency=invoice.currency, account=invoice.account,
                             legs=[Leg("WRITE_OFF", value), Leg("AR", -value, invoice.account)],
                             description=f"Write-off on {invoice.number}: {reason}"[:300])
        write_off = WriteOff.objects.create(invoice=invoice, amount=value, reason=reason.strip()[:300], journal_entry=entry,
                                            created_by=performed_by if getattr(performed_by, "is_authenticated", False) else None)
        audit_record(target=invoice, action="written off", changes={"amount": [None, str(value)]}, reasons=[reason],
                     performed_by=performed_by, channel=channel)
    from .collection import dunning_after_payment

    dunning_after_payment(account=invoice.account)
    return write_off
