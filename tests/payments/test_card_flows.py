"""End to end against localstripe, through the portal API and the webhook path: a
customer saves a card, orders a PPV movie, and the invoice it produces is collected."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core import mail

from billing.models import Invoice, JournalEntry
from billing.selectors import ar_balance, trial_balance
from payments.models import DunningCase, Payment, WebhookEvent
from payments.selectors import invoice_is_paid, invoice_open_amount
from payments.services.dunning import dunning_run

from .flows import DECLINED_ON_CHARGE, NEEDS_3DS, VISA, order_movie, save_card

pytestmark = pytest.mark.django_db

def assert_books_balance():
    assert sum(trial_balance().values()) == 0


def test_a_saved_card_pays_a_ppv_order_automatically(world, browser, stripe_sender, django_capture_on_commit_callbacks):
    card = save_card(world["portal"], browser, VISA)
    assert (card["card_brand"], card["card_last4"], card["is_default"], card["state"]) == ("visa", "4242", True, "ACTIVE")

    invoice = order_movie(world, django_capture_on_commit_callbacks)

    payment = Payment.objects.get(invoice=invoice)
    assert payment.state == Payment.State.SUCCEEDED and payment.amount == invoice.gross_total > 0
    assert invoice_is_paid(invoice=invoice)
    assert ar_balance(account=world["account"]) == Decimal("0.00")
    assert_books_balance()
    # Stripe's own events then arrive: payment_intent.succeeded finds the payment already settled.
    entries = JournalEntry.objects.count()
    assert set(stripe_sender.deliver_all()) == {200}
    assert WebhookEvent.objects.get(type="payment_intent.succeeded").status == WebhookEvent.Status.PROCESSED
    assert JournalEntry.objects.count() == entries
    listed = world["portal"].get("/api/v1/payments/").json()["results"]
    assert [(row["state"], row["invoice"]) for row in listed] == [("SUCCEEDED", invoice.number)]


@pytest.mark.parametrize("batch", [100, 2], ids=["one message", "split by a worker"])
def test_every_invoice_a_rating_chunk_posts_is_collected(world, browser, django_capture_on_commit_callbacks, monkeypatch, batch):
    """A chunk's instant invoices go out in one collection message; past ``COLLECT_BATCH``
    invoices the worker that takes it splits it into messages of that many."""
    from billing.services import invoicing
    from billing.services.ingestion import udr_ingest
    from billing.services.rating_runs import udr_rating_claim_and_rate
    from tests.conftest import portal_client_for
    from tests.factories import customer_create
    from tests.world import effective_subscription

    monkeypatch.setattr(invoicing, "COLLECT_BATCH", batch)
    scheme = world["subscription"].billing_term_scheme
    subscriptions = [world["subscription"]] + [effective_subscription(customer_create(first_name=name), scheme)
                                               for name in ("Maria", "Andreas")]
    for subscription in subscriptions:
        save_card(portal_client_for(subscription.account), browser, VISA)
    udr_ingest(source="NAGRA", records=[
        {"external_id": f"C-{n}", "account": subscription.account.number, "subscription": subscription.number,
         "product": "LOTR", "usage_at": "2026-11-20T14:00:00+02:00"} for n, subscription in enumerate(subscriptions)])

    with django_capture_on_commit_callbacks(execute=True):
        assert udr_rating_claim_and_rate() == 3

    invoices = list(Invoice.objects.filter(subscription__in=subscriptions))
    assert len(invoices) == 3 and all(invoice_is_paid(invoice=invoice) for invoice in invoices)
    assert sorted(Payment.objects.values_list("invoice", "state")) == sorted((invoice.pk, "SUCCEEDED") for invoice in invoices)
    assert_books_balance()


def test_webhook_redelivery_does_nothing(world, browser, stripe_sender, django_capture_on_commit_callbacks):
    save_card(world["portal"], browser, VISA)
    order_movie(world, django_capture_on_commit_callbacks)
    stripe_sender.deliver_all()
    before = (WebhookEvent.objects.count(), JournalEntry.objects.count(), list(Payment.objects.values_list("state", flat=True)))

    assert set(stripe_sender.deliver_all()) == {200}

    assert (WebhookEvent.objects.count(), JournalEntry.objects.count(), list(Payment.objects.values_list("state", flat=True))) == before


def test_a_declined_card_leaves_the_invoice_open_and_starts_dunning(world, browser, stripe_sender,
                                                                    django_capture_on_commit_callbacks):
    save_card(world["portal"], browser, DECLINED_ON_CHARGE)

    invoice = order_movie(world, django_capture_on_commit_callbacks)

    payment = Payment.objects.get(invoice=invoice)
    assert payment.state == Payment.State.FAILED and "declined" in payment.failure_reason
    assert invoice_open_amount(invoice=invoice) == invoice.gross_total
    assert ar_balance(account=world["account"]) == invoice.gross_total
    case = DunningCase.objects.get(account=world["account"])
    assert case.state == DunningCase.State.OPEN
    # Stripe's payment_intent.payment_failed: recognised by the payment id in its metadata; nothing more changes.
    entries = JournalEntry.objects.count()
    assert set(stripe_sender.deliver_all()) == {200}
    assert WebhookEvent.objects.get(type="payment_intent.payment_failed").status == WebhookEvent.Status.PROCESSED
    assert JournalEntry.objects.count() == entries
    assert_books_balance()


def test_a_card_requiring_authentication_is_paid_once_the_customer_passes_3ds(world, browser, stripe_sender,
                                                                              django_capture_on_commit_callbacks):
    save_card(world["portal"], browser, NEEDS_3DS, authenticate=True)

    invoice = order_movie(world, django_capture_on_commit_callbacks)

    payment = Payment.objects.get(invoice=invoice)
    assert payment.state == Payment.State.REQUIRES_ACTION and not invoice_is_paid(invoice=invoice)
    shown = world["portal"].get("/api/v1/payments/").json()["results"][0]
    assert shown["state"] == "REQUIRES_ACTION" and shown["client_secret"]
    browser.payment_authenticate(payment_intent=payment.gateway_payment_id, client_secret=shown["client_secret"])
    # Only the webhook tells us it went through.
    assert set(stripe_sender.deliver_all()) == {200}

    payment.refresh_from_db()
    assert payment.state == Payment.State.SUCCEEDED
    assert invoice_is_paid(invoice=invoice)
    assert ar_balance(account=world["account"]) == Decimal("0.00")
    assert_books_balance()


def test_dunning_reminds_rests_and_resumes_when_the_balance_is_paid(world, browser, agent, django_capture_on_commit_callbacks):
    from django.utils import timezone

    from payments.services.collection import payment_record

    save_card(world["portal"], browser, DECLINED_ON_CHARGE)
    invoice = order_movie(world, django_capture_on_commit_callbacks)
    case = DunningCase.objects.get(account=world["account"])
    start = timezone.now()

    dunning_run(now=start + timezone.timedelta(days=1))
    assert len(mail.outbox) == 1 and "eleni@example.com" in mail.outbox[0].to and invoice.number in mail.outbox[0].body

    dunning_run(now=start + timezone.timedelta(days=3))  # the retry is declined again
    assert Payment.objects.filter(invoice=invoice, state="FAILED").count() == 2

    dunning_run(now=start + timezone.timedelta(days=14))
    world["subscription"].refresh_from_db()
    assert world["subscription"].state == "IN_RESTING"
    assert [event.kind for event in case.events.all()] == ["OPENED", "REMINDER", "RETRY", "RETRY", "REMINDER", "REST"]

    payment_record(account=world["account"], kind="CASH", amount=invoice.gross_total, performed_by=agent)

    case.refresh_from_db()
    world["subscription"].refresh_from_db()
    assert case.state == DunningCase.State.RESOLVED
    assert world["subscription"].state == "EFFECTIVE"
    assert invoice_is_paid(invoice=invoice)
    assert_books_balance()
