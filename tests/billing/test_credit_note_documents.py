"""Credit note documents: the HTML and the PDF say the same thing (who, which invoice, why,
what is given back, the totals); staff download them from the credit note page, customers
from the portal — only their own."""

from __future__ import annotations

import io
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.test import Client
from pypdf import PdfReader

from billing.documents import credit_note_html, credit_note_pdf
from billing.models import CreditNote
from billing.services.invoicing import credit_note_issue, invoice_create_draft, invoice_line_add, invoice_post
from billing.services.taxes import tax_rate_create
from tests.billing.test_invoicing import product
from tests.conftest import portal_client_for

pytestmark = pytest.mark.django_db
D = Decimal
NICOSIA = ZoneInfo("Europe/Nicosia")
NOTES = "/admin/billing/creditnote/"


def credit_note_for(account) -> CreditNote:
    """Lord of the Rings €5.00 and a Sports Pack €10.00 invoiced on 20 Nov 2026; €2.00 of the
    Sports Pack credited the next day."""
    with time_machine.travel(datetime(2026, 11, 20, 10, 0, tzinfo=NICOSIA), tick=False):
        draft = invoice_create_draft(account=account)
        invoice_line_add(invoice=draft, description="Lord of the Rings", unit_price=D("5.00"), product=product("lotr", "USAGE"))
        sports = invoice_line_add(invoice=draft, description="Sports Pack", unit_price=D("10.00"), product=product("sports", "TERMED"))
        invoice_post(invoice=draft)
    with time_machine.travel(datetime(2026, 11, 21, 10, 0, tzinfo=NICOSIA), tick=False):
        return credit_note_issue(invoice=draft, reason="Sports Pack outage, two days", lines={sports: D("2.00")})


@pytest.fixture
def note(customer) -> CreditNote:
    tax_rate_create(country="CY", tax_class="SERVICE", rate=D("19.00"), valid_from=date(2020, 1, 1))
    return credit_note_for(customer)


def pdf_text(content: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_html_document_shows_the_note_its_invoice_reason_lines_and_totals(note):
    html = credit_note_html(note)

    assert f"Credit note <strong>{note.number}</strong>" in html
    assert f"Corrects invoice: {note.invoice.number} of 2026-11-20" in html and "Date: 2026-11-21" in html
    assert "Maria Georgiou" in html and "Main Street" in html and note.account.number in html
    assert "Reason: Sports Pack outage, two days" in html
    assert "Sports Pack" in html and "Lord of the Rings" not in html  # only what is credited
    assert "VAT 19.00% on 1.68" in html and "0.32 EUR" in html and "2.00 EUR" in html


def test_the_pdf_says_the_same_as_the_html(note):
    content = credit_note_pdf(note)

    assert content.startswith(b"%PDF")
    text = pdf_text(content)
    for expected in (f"Credit note {note.number}", f"Corrects invoice {note.invoice.number} of 2026-11-20", "Maria Georgiou",
                     "Reason: Sports Pack outage, two days", "Sports Pack", "1.68", "0.32 (19.00%)", "Total credited", "2.00 EUR"):
        assert expected in text
    assert "Lord of the Rings" not in text


def test_staff_find_the_documents_on_the_credit_note_page_and_download_them(note, finance_user, agent):
    page = logged_in(finance_user).get(f"{NOTES}{note.pk}/change/").content.decode()
    assert f"{NOTES}{note.pk}/document/html/" in page and f"{NOTES}{note.pk}/document/pdf/" in page

    client = logged_in(agent)  # agents look at credit notes to answer callers
    pdf = client.get(f"{NOTES}{note.pk}/document/pdf/")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert f'filename="{note.number}.pdf"' in pdf["Content-Disposition"]
    html = client.get(f"{NOTES}{note.pk}/document/html/")
    assert html.status_code == 200 and note.number in html.content.decode()
    assert client.get(f"{NOTES}{note.pk}/document/docx/").status_code == 404


def test_staff_without_billing_access_cannot_download_credit_notes(note, marketing_user):
    assert logged_in(marketing_user).get(f"{NOTES}{note.pk}/document/pdf/").status_code == 403


def test_a_customer_lists_and_downloads_their_own_credit_notes(note, portal_client):
    listed = portal_client.get("/api/v1/credit-notes/")
    assert listed.status_code == 200
    assert [(row["id"], row["number"], row["invoice"], row["gross_total"]) for row in listed.json()["results"]] == [
        (note.pk, note.number, note.invoice.number, "2.00")]
    invoice = portal_client.get(f"/api/v1/invoices/{note.invoice.pk}/").json()
    assert [row["id"] for row in invoice["credit_notes"]] == [note.pk]  # the link from the invoice to its notes

    pdf = portal_client.get(f"/api/v1/credit-notes/{note.pk}/document/?format=pdf")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert f'attachment; filename="{note.number}.pdf"' == pdf["Content-Disposition"]
    assert "Sports Pack outage" in pdf_text(pdf.content)
    assert portal_client.get(f"/api/v1/credit-notes/{note.pk}/document/").content.startswith(b"%PDF")  # PDF by default
    html = portal_client.get(f"/api/v1/credit-notes/{note.pk}/document/?format=html")
    assert html.status_code == 200 and html["Content-Type"].startswith("text/html") and note.number in html.content.decode()


def test_a_customer_never_reaches_another_customers_credit_note(note, other_customer):
    theirs = credit_note_for(other_customer)
    client = portal_client_for(note.account)

    assert client.get(f"/api/v1/credit-notes/{theirs.pk}/document/").status_code == 404
    assert [row["number"] for row in client.get("/api/v1/credit-notes/").json()["results"]] == [note.number]
    assert portal_client_for(other_customer).get(f"/api/v1/credit-notes/{note.pk}/document/?format=html").status_code == 404


def test_a_wrong_format_or_no_login_is_refused(note, portal_client, api_client):
    wrong = portal_client.get(f"/api/v1/credit-notes/{note.pk}/document/?format=docx")
    assert wrong.status_code == 400 and wrong.json()["error"]["fields"] == {"format": ["pdf or html."]}
    assert api_client.get(f"/api/v1/credit-notes/{note.pk}/document/").status_code == 401
    assert api_client.get("/api/v1/credit-notes/").status_code == 401
