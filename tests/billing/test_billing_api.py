"""The customer's invoices, documents and statement through the portal API: their own only
(another customer's are simply not found), issued ones only, paginated."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine

from billing.models import Invoice
from billing.services.invoicing import credit_note_issue, invoice_create_draft, invoice_line_add
from subscriptions.services.orders import usage_order_place
from tests.conftest import portal_client_for
from tests.world import effective_subscription
from tests.factories import customer_create

pytestmark = pytest.mark.django_db
D = Decimal
NIGHT = datetime(2026, 11, 20, 2, 30, tzinfo=ZoneInfo("Europe/Nicosia"))


@pytest.fixture
def invoiced(subscriber, movie):
    """Maria ordered Lord of the Rings at night (€5.00) and Limitless in the evening
    (€10.00); each was invoiced at once. The second was then credited in full."""
    with time_machine.travel(NIGHT):
        usage_order_place(subscription=subscriber, title=movie("LOTR"))
    with time_machine.travel(NIGHT.replace(hour=21)):
        usage_order_place(subscription=subscriber, title=movie("LIMITLESS"))
    first, second = Invoice.objects.order_by("number")
    credit_note_issue(invoice=second, reason="Did not play")
    return first, second


@pytest.fixture
def client(subscriber):
    return portal_client_for(subscriber.account)


@pytest.fixture
def stranger(zx_catalog, billing_scheme, movie):
    """Another customer, with an invoice of their own."""
    account = customer_create(first_name="Nikos", email="nikos@example.com")
    usage_order_place(subscription=effective_subscription(account, billing_scheme), title=movie("SERENDIPITY"))
    return portal_client_for(account)


def test_my_invoices_are_listed_newest_first_with_their_totals(client, invoiced, stranger):
    first, second = invoiced
    body = client.get("/api/v1/invoices/").json()
    assert body["count"] == 2
    assert [(row["number"], row["state"], row["gross_total"]) for row in body["results"]] == [
        (second.number, "CANCELLED", "10.00"), (first.number, "POSTED", "5.00")]
    assert body["results"][1]["account"] == first.account.number
    assert [row["number"] for row in client.get("/api/v1/invoices/?state=POSTED").json()["results"]] == [first.number]
    assert client.get("/api/v1/invoices/?page_size=1").json()["next"] is not None


def test_my_invoices_filter_by_the_day_they_were_issued_in_the_operators_time_zone(client, subscriber, movie):
    """Issued at 01:30 in Nicosia on the 21st is 23:30 UTC on the 20th: it is the 21st's."""
    with time_machine.travel(datetime(2026, 11, 21, 1, 30, tzinfo=ZoneInfo("Europe/Nicosia"))):
        usage_order_place(subscription=subscriber, title=movie("LOTR"))
    with time_machine.travel(datetime(2026, 11, 22, 23, 50, tzinfo=ZoneInfo("Europe/Nicosia"))):
        usage_order_place(subscription=subscriber, title=movie("LIMITLESS"))
    early, late = Invoice.objects.order_by("number")

    def numbers(query: str) -> list[str]:
        response = client.get(f"/api/v1/invoices/?{query}")
        assert response.status_code == 200, response.content
        return [row["number"] for row in response.json()["results"]]

    assert numbers("issued_after=2026-11-21&issued_before=2026-11-21") == [early.number]
    assert numbers("issued_before=2026-11-20") == []
    assert numbers("issued_after=2026-11-22") == [late.number]
    assert numbers("issued_after=2026-11-21") == [late.number, early.number]
    assert numbers("issued_after=2026-11-21&state=CANCELLED") == []
    body = client.get("/api/v1/invoices/?issued_after=2026-11-21&page_size=1&page=2").json()
    assert (body["count"], [row["number"] for row in body["results"]]) == (2, [early.number])


def test_a_bad_invoice_filter_is_refused_with_its_reason(client, invoiced):
    response = client.get("/api/v1/invoices/?state=DRAFT&issued_after=yesterday")
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"state", "issued_after"}
    assert client.get("/api/v1/invoices/?page=3").status_code == 404


def test_one_invoice_shows_its_lines_and_credit_notes(client, invoiced):
    first, second = invoiced
    body = client.get(f"/api/v1/invoices/{first.pk}/").json()
    assert [(line["product"], line["net"], line["tax"], line["gross"], line["tax_rate"]) for line in body["lines"]] == [
        ("LOTR", "4.20", "0.80", "5.00", "19.00")]
    assert body["credit_notes"] == []
    credited = client.get(f"/api/v1/invoices/{second.pk}/").json()
    assert [(note["gross_total"], note["reason"]) for note in credited["credit_notes"]] == [("10.00", "Did not play")]


def test_the_invoice_document_downloads_as_pdf_or_html(client, invoiced):
    first, _second = invoiced
    pdf = client.get(f"/api/v1/invoices/{first.pk}/document/?format=pdf")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    assert f'filename="{first.number}.pdf"' in pdf["Content-Disposition"]
    assert client.get(f"/api/v1/invoices/{first.pk}/document/").content.startswith(b"%PDF")  # PDF unless asked otherwise
    html = client.get(f"/api/v1/invoices/{first.pk}/document/?format=html")
    assert html.status_code == 200 and html["Content-Type"].startswith("text/html")
    page = html.content.decode()
    assert first.number in page and "Maria Georgiou" in page and "VAT 19.00% on 4.20" in page and "5.00 EUR" in page
    wrong = client.get(f"/api/v1/invoices/{first.pk}/document/?format=docx")
    assert wrong.status_code == 400 and wrong.json()["error"]["fields"] == {"format": ["pdf or html."]}


def test_the_statement_runs_the_balance(client, subscriber, invoiced):
    first, second = invoiced
    body = client.get(f"/api/v1/accounts/{subscriber.account.number}/statement/").json()
    assert (body["account"], body["currency"], body["balance"]) == (subscriber.account.number, "EUR", "5.00")
    assert [(line["kind"], line["debit"], line["credit"], line["balance"]) for line in body["lines"]] == [
        ("Invoice", "5.00", "0.00", "5.00"), ("Invoice", "10.00", "0.00", "15.00"), ("Credit note", "0.00", "10.00", "5.00")]
    assert body["lines"][0]["reference"] == f"invoice:{first.number}"
    assert len(client.get(f"/api/v1/accounts/{subscriber.account.number}/statement/?limit=1").json()["lines"]) == 1
    refused = client.get(f"/api/v1/accounts/{subscriber.account.number}/statement/?limit=0")
    assert refused.status_code == 400 and "limit" in refused.json()["error"]["fields"]


def test_another_customers_invoices_and_statement_are_not_found(client, subscriber, invoiced, stranger):
    first, _second = invoiced
    assert stranger.get("/api/v1/invoices/").json()["count"] == 1
    for url in (f"/api/v1/invoices/{first.pk}/", f"/api/v1/invoices/{first.pk}/document/?format=pdf",
                f"/api/v1/invoices/{first.pk}/document/?format=html", f"/api/v1/accounts/{subscriber.account.number}/statement/"):
        response = stranger.get(url)
        assert response.status_code == 404, url
        assert response.json()["error"]["code"] == "not_found"


def test_a_draft_invoice_is_not_shown_to_the_customer(client, subscriber, invoiced):
    draft = invoice_create_draft(account=subscriber.account)
    invoice_line_add(invoice=draft, description="Installation", unit_price=D("20.00"), tax_class="SERVICE")
    assert draft.pk not in [row["id"] for row in client.get("/api/v1/invoices/").json()["results"]]
    assert client.get(f"/api/v1/invoices/{draft.pk}/").status_code == 404
    assert client.get(f"/api/v1/invoices/{draft.pk}/document/").status_code == 404


def test_invoices_need_a_portal_login(invoiced):
    from rest_framework.test import APIClient

    assert APIClient().get("/api/v1/invoices/").status_code == 401
