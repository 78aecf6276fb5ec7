"""Refunds, chargebacks, write-offs and cancellations: each balanced in the ledger, the
AR balance right, Finance only where money goes back."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing.models import JournalEntry
from billing.selectors import ar_balance, trial_balance
from core.exceptions import PermissionDenied, ValidationFailed
from payments.models import Chargeback, Payment, Refund, WebhookEvent
from payments.selectors import account_credit, invoice_is_paid, invoice_open_amount
from payments.services.adjustments import refund_create, write_off_create
from payments.services.collection import payment_cancel, payment_record

from .flows import VISA, order_movie, save_card

pytestmark = pytest.mark.django_db


@pytest.fixture
def paid_by_card(world, browser, django_capture_on_commit_callbacks):
    save_card(world["portal"], browser, VISA)
    invoice = order_movie(world, django_capture_on_commit_callbacks)
    return {**world, "invoice": invoice, "payment": Payment.objects.get(invoice=invoice, state="SUCCEEDED")}


def balanced() -> bool:
    return sum(trial_balance().values()) == 0


def test_finance_refunds_part_of_a_card_payment_through_stripe(paid_by_card, finance_user, stripe_sender):
    payment, invoice, account = paid_by_card["payment"], paid_by_card["invoice"], paid_by_card["account"]
    gateway_before = trial_balance()["GATEWAY"]

    refund = refund_create(payment=payment, amount="2.00", reason="Stream kept buffering", performed_by=finance_user)

    assert refund.state == Refund.State.SUCCEEDED and refund.gateway_refund_id.startswith("re_")
    assert ar_balance(account=account) == Decimal("2.00")  # the money went back; that much of the invoice is open again
    assert invoice_open_amount(invoice=invoice) == Decimal("2.00")
    assert trial_balance()["GATEWAY"] == gateway_before - Decimal("2.00")
    assert balanced()
    # Stripe's charge.refunded for it later changes nothing.
    charge = {"id": payment.gateway_charge_id, "object": "charge", "payment_intent": payment.gateway_payment_id,
              "refunds": {"data": [{"id": refund.gateway_refund_id, "object": "refund", "amount": 200, "currency": "eur",
                                    "status": "succeeded", "payment_intent": payment.gateway_payment_id}]}}
    entries = JournalEntry.objects.count()
    assert stripe_sender.send(stripe_sender.event("charge.refunded", charge)).status_code == 200
    assert JournalEntry.objects.count() == entries


def test_a_full_refund_reopens_the_invoice(paid_by_card, finance_user):
    refund_create(payment=paid_by_card["payment"], reason="Ordered by mistake", performed_by=finance_user)

    assert ar_balance(account=paid_by_card["account"]) == paid_by_card["invoice"].gross_total
    assert not invoice_is_paid(invoice=paid_by_card["invoice"])
    assert balanced()


def test_an_agent_may_not_refund_and_nothing_changes(paid_by_card, agent):
    entries = JournalEntry.objects.count()

    with pytest.raises(PermissionDenied):
        refund_create(payment=paid_by_card["payment"], reason="Asked nicely", performed_by=agent)

    assert (Refund.objects.count(), JournalEntry.objects.count()) == (0, entries)


def test_a_refund_larger_than_the_payment_is_refused_with_every_reason(paid_by_card, finance_user):
    with pytest.raises(ValidationFailed) as refusal:
        refund_create(payment=paid_by_card["payment"], amount="999.00", reason="", performed_by=finance_user)

    assert set(refusal.value.fields) == {"amount", "reason"}
    assert Refund.objects.count() == 0


def dispute(payment: Payment, status: str, dispute_id: str = "dp_test_1") -> dict:
    return {"id": dispute_id, "object": "dispute", "amount": int(payment.amount * 100), "currency": "eur",
            "charge": payment.gateway_charge_id, "payment_intent": payment.gateway_payment_id, "reason": "fraudulent",
            "status": status}


def test_a_lost_chargeback_stays_and_the_customer_owes_the_invoice_again(paid_by_card, stripe_sender):
    payment, invoice, account = paid_by_card["payment"], paid_by_card["invoice"], paid_by_card["account"]

    stripe_sender.send(stripe_sender.event("charge.dispute.created", dispute(payment, "needs_response")))
    assert ar_balance(account=account) == invoice.gross_total
    assert not invoice_is_paid(invoice=invoice)
    assert balanced()

    stripe_sender.send(stripe_sender.event("charge.dispute.closed", dispute(payment, "lost")))

    assert Chargeback.objects.get().state == Chargeback.State.LOST
    assert ar_balance(account=account) == invoice.gross_total
    assert balanced()


def test_a_won_chargeback_is_reversed_even_when_closed_arrives_first(paid_by_card, stripe_sender):
    payment, invoice, account = paid_by_card["payment"], paid_by_card["invoice"], paid_by_card["account"]

    stripe_sender.send(stripe_sender.event("charge.dispute.closed", dispute(payment, "won")))
    stripe_sender.send(stripe_sender.event("charge.dispute.created", dispute(payment, "needs_response")))

    chargeback = Chargeback.objects.get()
    assert chargeback.state == Chargeback.State.WON and chargeback.reversal_entry is not None
    assert ar_balance(account=account) == Decimal("0.00")
    assert invoice_is_paid(invoice=invoice)
    assert balanced()


def test_finance_writes_off_what_an_agent_may_not(world, agent, finance_user, browser, django_capture_on_commit_callbacks):
    invoice = order_movie(world, django_capture_on_commit_callbacks)  # no card: the invoice stays open
    with pytest.raises(PermissionDenied):
        write_off_create(invoice=invoice, reason="Uncollectable", performed_by=agent)

    write_off_create(invoice=invoice, reason="Uncollectable", performed_by=finance_user)

    assert invoice_is_paid(invoice=invoice)
    assert ar_balance(account=world["account"]) == Decimal("0.00")
    assert trial_balance()["WRITE_OFF"] == invoice.gross_total
    assert balanced()


def test_an_overpayment_becomes_credit_spent_on_the_next_invoice(world, agent, django_capture_on_commit_callbacks):
    first = order_movie(world, django_capture_on_commit_callbacks)
    payment_record(account=world["account"], kind="CASH", amount=first.gross_total + Decimal("20.00"), performed_by=agent)
    assert account_credit(account=world["account"]) == Decimal("20.00")
    assert ar_balance(account=world["account"]) == Decimal("-20.00")

    second = order_movie(world, django_capture_on_commit_callbacks, code="LIMITLESS")

    assert invoice_is_paid(invoice=second)  # automatic collection spent the wallet first
    assert account_credit(account=world["account"]) == Decimal("20.00") - second.gross_total
    assert balanced()


def test_a_bounced_cheque_is_cancelled_by_reversal(world, agent, finance_user, django_capture_on_commit_callbacks):
    invoice = order_movie(world, django_capture_on_commit_callbacks)
    cheque = payment_record(account=world["account"], kind="CHEQUE", amount=invoice.gross_total, reference="000123",
                            invoice=invoice, performed_by=agent)
    assert invoice_is_paid(invoice=invoice)

    payment_cancel(payment=cheque, reason="Cheque bounced", performed_by=finance_user)

    cheque.refresh_from_db()
    assert cheque.state == Payment.State.CANCELLED and cheque.reversal_entry.reversal_of == cheque.journal_entry
    assert invoice_open_amount(invoice=invoice) == invoice.gross_total
    assert ar_balance(account=world["account"]) == invoice.gross_total
    assert balanced()


def test_a_cheque_without_its_number_is_refused_with_every_reason(world, agent):
    with pytest.raises(ValidationFailed) as refusal:
        payment_record(account=world["account"], kind="CHEQUE", amount="-5", performed_by=agent)

    assert set(refusal.value.fields) == {"amount", "reference"}
    assert Payment.objects.count() == 0


def test_webhook_with_a_bad_signature_or_a_stale_timestamp_is_refused(paid_by_card, stripe_sender):
    event = stripe_sender.event("charge.dispute.created", dispute(paid_by_card["payment"], "needs_response"))
    entries = JournalEntry.objects.count()

    assert stripe_sender.send(event, secret="whsec_someone_else").status_code == 400
    assert stripe_sender.send(event, timestamp=1_600_000_000).status_code == 400

    assert (WebhookEvent.objects.count(), Chargeback.objects.count(), JournalEntry.objects.count()) == (0, 0, entries)
