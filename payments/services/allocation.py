"""Applying money to invoices. The caller holds the account's row lock, which serialises
every allocation of one account (two payments never claim the same open amount)."""

from __future__ import annotations

from decimal import Decimal

from billing.models import Invoice

from ..models import Allocation, Payment
from ..selectors import invoice_open_amount, invoices_open, payment_available

ZERO = Decimal("0.00")


def payment_allocate(*, payment: Payment, invoice: Invoice | None = None) -> list[Allocation]:
    """Allocate what is available of a succeeded payment: to ``invoice`` first (the one the
    customer chose) and then to the oldest open invoices. What is left stays as credit."""
    available = payment_available(payment=payment)
    allocations: list[Allocation] = []
    targets = []
    if invoice is not None and invoice.account_id == payment.account_id:
        targets.append((invoice, invoice_open_amount(invoice=invoice)))
    targets += [(other, amount) for other, amount in invoices_open(account=payment.account)
                if invoice is None or other.pk != invoice.pk]
    for target, open_amount in targets:
        if available <= 0:
            break
        share = min(available, open_amount)
        if share <= 0 or target.currency != payment.currency:
            continue
        allocations.append(Allocation.objects.create(payment=payment, invoice=target, amount=share))
        available -= share
    return allocations


def credit_apply(*, account, invoice: Invoice | None = None) -> list[Allocation]:
    """Spend the account's credit (its wallet: unallocated payments, oldest first) on open
    invoices — ``invoice`` first when given."""
    allocations: list[Allocation] = []
    for payment in Payment.objects.filter(account=account, state=Payment.State.SUCCEEDED).order_by("succeeded_at", "pk"):
        if payment_available(payment=payment) > 0:
            allocations += payment_allocate(payment=payment, invoice=invoice)
    return allocations


def allocations_release(*, payment: Payment, reason: str) -> Decimal:
    """After a refund, chargeback or cancellation took money off the payment, give back
    what its allocations now over-use, newest invoice first (that invoice reopens).
    Unallocated credit is used up first. Returns the amount released from invoices."""
    to_release = max(ZERO, -payment_available(payment=payment)) if payment.state == Payment.State.SUCCEEDED else \
        sum((a.amount for a in payment.allocations.all()), ZERO)
    released = ZERO
    per_invoice: dict[int, Decimal] = {}
    for allocation in payment.allocations.all():
        per_invoice[allocation.invoice_id] = per_invoice.get(allocation.invoice_id, ZERO) + allocation.amount
    for invoice_id in sorted(per_invoice, reverse=True):
        if released >= to_release:
            break
        share = min(per_invoice[invoice_id], to_release - released)
        if share > 0:
            Allocation.objects.create(payment=payment, invoice_id=invoice_id, amount=-share, reason=reason)
            released += share
    return released
