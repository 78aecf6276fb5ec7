"""Reads of payments. An invoice's open amount and paid state are derived — from its
total, its credit notes, the payments allocated to it and write-offs — never stored."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import QuerySet, Sum

from accounts.models import AccountsReceivable
from billing.models import CreditNote, Invoice

from .models import Allocation, Chargeback, DunningCase, MethodKind, Payment, PaymentMethod, Refund, WriteOff

ZERO = Decimal("0.00")


def _sum(queryset, field: str = "amount") -> Decimal:
    return (queryset.aggregate(total=Sum(field))["total"] or ZERO).quantize(ZERO)


def invoice_allocated(*, invoice: Invoice) -> Decimal:
    return _sum(Allocation.objects.filter(invoice=invoice))


def invoice_open_amount(*, invoice: Invoice) -> Decimal:
    """What is still to pay on an invoice: its gross total less credit notes, allocated
    payments and write-offs (0 for drafts and cancelled invoices)."""
    if invoice.state != Invoice.State.POSTED:
        return ZERO
    credited = _sum(CreditNote.objects.filter(invoice=invoice), "gross_total")
    written_off = _sum(WriteOff.objects.filter(invoice=invoice))
    return max(ZERO, invoice.gross_total - credited - invoice_allocated(invoice=invoice) - written_off)


def invoice_is_paid(*, invoice: Invoice) -> bool:
    return invoice.state == Invoice.State.POSTED and invoice_open_amount(invoice=invoice) == ZERO


def invoices_open(*, account: AccountsReceivable) -> list[tuple[Invoice, Decimal]]:
    """The account's posted invoices with something left to pay, oldest first."""
    invoices = Invoice.objects.filter(account=account, state=Invoice.State.POSTED).order_by("issued_at", "pk")
    pairs = ((invoice, invoice_open_amount(invoice=invoice)) for invoice in invoices)
    return [(invoice, amount) for invoice, amount in pairs if amount > 0]


def payment_available(*, payment: Payment) -> Decimal:
    """The part of a succeeded payment not allocated to invoices, refunded or taken back by
    a chargeback: the customer's credit (their wallet) from this payment."""
    if payment.state != Payment.State.SUCCEEDED:
        return ZERO
    refunded = _sum(Refund.objects.filter(payment=payment, state__in=[Refund.State.SUCCEEDED, Refund.State.PENDING]))
    charged_back = _sum(Chargeback.objects.filter(payment=payment).exclude(state=Chargeback.State.WON))
    allocated = _sum(Allocation.objects.filter(payment=payment))
    return payment.amount - refunded - charged_back - allocated


def payment_refundable(*, payment: Payment) -> Decimal:
    """What may still be refunded: the amount less refunds (pending or done) and chargebacks."""
    if payment.state != Payment.State.SUCCEEDED:
        return ZERO
    refunded = _sum(Refund.objects.filter(payment=payment, state__in=[Refund.State.SUCCEEDED, Refund.State.PENDING]))
    charged_back = _sum(Chargeback.objects.filter(payment=payment).exclude(state=Chargeback.State.WON))
    return max(ZERO, payment.amount - refunded - charged_back)


def account_credit(*, account: AccountsReceivable) -> Decimal:
    """The wallet: money received and not yet applied to an invoice."""
    payments = Payment.objects.filter(account=account, state=Payment.State.SUCCEEDED)
    return sum((payment_available(payment=payment) for payment in payments), ZERO)


def payment_method_default(*, account: AccountsReceivable) -> PaymentMethod | None:
    return PaymentMethod.objects.filter(account=account, is_default=True, state=PaymentMethod.State.ACTIVE).first()


def payment_method_list_for_user(*, user) -> QuerySet[PaymentMethod]:
    return (PaymentMethod.objects.filter(account__contact__portal_user__user=user)
            .exclude(state=PaymentMethod.State.REMOVED).order_by("-is_default", "-created_at"))


def payment_list_for_user(*, user) -> QuerySet[Payment]:
    return (Payment.objects.filter(account__contact__portal_user__user=user).select_related("method", "invoice")
            .order_by("-created_at", "-pk"))


def card_methods(*, account: AccountsReceivable) -> QuerySet[PaymentMethod]:
    return PaymentMethod.objects.filter(account=account, kind=MethodKind.CARD, state=PaymentMethod.State.ACTIVE)


def customer_payments_overview(*, account: AccountsReceivable, limit: int = 10) -> dict:
    """The customer page's payments and dunning panel."""
    case = DunningCase.objects.filter(account=account).prefetch_related("events").first()
    return {
        "credit": account_credit(account=account),
        "methods": list(PaymentMethod.objects.filter(account=account).exclude(state=PaymentMethod.State.REMOVED)),
        "payments": list(Payment.objects.filter(account=account).select_related("method", "invoice")[:limit]),
        "open_invoices": invoices_open(account=account),
        "dunning_case": case,
        "dunning_events": list(case.events.all()) if case else [],
    }
