"""The portal's payments API and PCI scope."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest
from django.apps import apps
from django.db import connection, models

from billing.selectors import ar_balance
from payments.models import Payment
from payments.selectors import invoice_is_paid

from .flows import VISA, order_movie, save_card

pytestmark = pytest.mark.django_db


def test_a_customer_tops_up_the_wallet_and_pays_an_invoice_from_it(world, browser, django_capture_on_commit_callbacks):
    portal = world["portal"]
    invoice = order_movie(world, django_capture_on_commit_callbacks)  # no card yet: stays open
    save_card(portal, browser, VISA)

    top_up = portal.post("/api/v1/wallet/top-up/", {"amount": "30.00"}, format="json")
    assert top_up.status_code == 201 and top_up.json()["state"] == "SUCCEEDED"
    assert portal.get("/api/v1/wallet/").json()["credit"] == "30.00"

    paid = portal.post(f"/api/v1/invoices/{invoice.pk}/pay/", {}, format="json")

    assert paid.status_code == 200, paid.content
    assert paid.json()["paid"] is True and paid.json()["payment"] is None
    assert Decimal(paid.json()["wallet_applied"]) == invoice.gross_total
    assert invoice_is_paid(invoice=invoice)
    assert ar_balance(account=world["account"]) == invoice.gross_total - Decimal("30.00")


def test_paying_an_invoice_honours_the_idempotency_key(world, browser, django_capture_on_commit_callbacks):
    portal = world["portal"]
    invoice = order_movie(world, django_capture_on_commit_callbacks)
    save_card(portal, browser, VISA)

    first = portal.post(f"/api/v1/invoices/{invoice.pk}/pay/", {}, format="json", HTTP_IDEMPOTENCY_KEY="pay-once")
    again = portal.post(f"/api/v1/invoices/{invoice.pk}/pay/", {}, format="json", HTTP_IDEMPOTENCY_KEY="pay-once")

    assert first.json() == again.json() and again["Idempotent-Replayed"] == "true"
    assert Payment.objects.filter(invoice=invoice).count() == 1


def test_another_customers_invoice_cannot_be_paid(world, browser, other_customer, django_capture_on_commit_callbacks):
    from tests.conftest import portal_client_for

    invoice = order_movie(world, django_capture_on_commit_callbacks)

    response = portal_client_for(other_customer).post(f"/api/v1/invoices/{invoice.pk}/pay/", {}, format="json")

    assert response.status_code == 404
    assert Payment.objects.count() == 0


def text_values_in_database() -> list[str]:
    """Every text and JSON column of every table, as text."""
    values = []
    with connection.cursor() as cursor:
        for model in apps.get_models():
            columns = [field.column for field in model._meta.concrete_fields
                       if isinstance(field, (models.CharField, models.TextField, models.JSONField))]
            if not columns:
                continue
            table = connection.ops.quote_name(model._meta.db_table)
            selects = ", ".join(f"CAST({connection.ops.quote_name(column)} AS TEXT)" for column in columns)
            cursor.execute(f"SELECT {selects} FROM {table}")
            values += [str(value) for row in cursor.fetchall() for value in row if value is not None]
    return values


def test_no_card_number_reaches_our_logs_or_database(world, browser, stripe_sender, caplog,
                                                     django_capture_on_commit_callbacks, finance_user):
    from payments.services.adjustments import refund_create

    caplog.set_level(logging.DEBUG)
    save_card(world["portal"], browser, VISA)
    invoice = order_movie(world, django_capture_on_commit_callbacks)
    stripe_sender.deliver_all()
    refund_create(payment=Payment.objects.get(invoice=invoice), amount="1.00", reason="Goodwill", performed_by=finance_user)
    world["portal"].get("/api/v1/payment-methods/")

    assert caplog.records, "the flow was logged"
    assert VISA not in caplog.text
    values = text_values_in_database()
    assert any("4242" == value for value in values), "the last four digits are kept for display"
    assert not [value for value in values if VISA in value]
