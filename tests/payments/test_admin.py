"""The payments admin per role: agents take payments, only Finance refunds and writes off."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from payments.models import Payment, Refund, WriteOff
from payments.selectors import invoice_is_paid

from .flows import order_movie

pytestmark = pytest.mark.django_db


def test_an_agent_takes_a_cash_payment_from_the_customer_page(client, agent, world, django_capture_on_commit_callbacks):
    invoice = order_movie(world, django_capture_on_commit_callbacks)
    client.force_login(agent)
    page = client.get(reverse("admin:accounts_accountsreceivable_change", args=[world["account"].pk]))
    assert b"Take a payment" in page.content

    response = client.post(reverse("admin:payments_payment_add"), {"account": world["account"].number, "kind": "CASH",
                                                                    "amount": str(invoice.gross_total), "reference": "", "invoice": ""})

    assert response.status_code == 302
    assert Payment.objects.get().state == "SUCCEEDED" and invoice_is_paid(invoice=invoice)
    page = client.get(reverse("admin:accounts_accountsreceivable_change", args=[world["account"].pk]))
    assert b"Cash" in page.content


def test_refund_and_write_off_pages_are_for_finance_only(client, agent, finance_user, world,
                                                         django_capture_on_commit_callbacks):
    from payments.services.collection import payment_record

    invoice = order_movie(world, django_capture_on_commit_callbacks)
    payment = payment_record(account=world["account"], kind="CASH", amount=invoice.gross_total, performed_by=agent)
    refund_url = reverse("admin:payments_payment_refund", args=[payment.pk])
    form = {"amount": "1.00", "reason": "Goodwill", "confirm": "on"}

    client.force_login(agent)
    assert client.post(refund_url, form).status_code == 403
    assert client.get(reverse("admin:payments_writeoff_add")).status_code == 403
    assert Refund.objects.count() == 0

    client.force_login(finance_user)
    assert client.post(refund_url, form).status_code == 302
    assert Refund.objects.get().amount == Decimal("1.00")
    response = client.post(reverse("admin:payments_writeoff_add"), {"invoice": invoice.number, "amount": "", "reason": "Goodwill",
                                                                     "confirm": "on"})
    assert response.status_code == 302 and WriteOff.objects.get().amount == Decimal("1.00")


def test_a_refused_refund_shows_the_reason_and_changes_nothing(client, finance_user, agent, world,
                                                               django_capture_on_commit_callbacks):
    from payments.services.collection import payment_record

    invoice = order_movie(world, django_capture_on_commit_callbacks)
    payment = payment_record(account=world["account"], kind="CASH", amount=invoice.gross_total, performed_by=agent)
    client.force_login(finance_user)

    response = client.post(reverse("admin:payments_payment_refund", args=[payment.pk]),
                           {"amount": "999.00", "reason": "Too much", "confirm": "on"})

    assert response.status_code == 200 and b"left to refund" in response.content
    assert Refund.objects.count() == 0
