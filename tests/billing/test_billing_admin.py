"""The finance screens: invoices with their documents, the credit note page (finance only,
with a reason and a confirmation), the journal, the trial balance, tax rates, and the
billing panel on the customer page."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.test import Client

from billing.models import CreditNote, Invoice, TaxRate
from billing.selectors import ar_balance
from subscriptions.services.orders import usage_order_place

pytestmark = pytest.mark.django_db
D = Decimal
INVOICES = "/admin/billing/invoice/"


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def invoice(subscriber, movie) -> Invoice:
    """Maria's Lord of the Rings at night, invoiced at once: €5.00 incl. €0.80 VAT."""
    with time_machine.travel(datetime(2026, 11, 20, 2, 30, tzinfo=ZoneInfo("Europe/Nicosia"))):
        usage_order_place(subscription=subscriber, title=movie("LOTR"))
    return Invoice.objects.get()


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def test_finance_sees_the_invoice_with_its_lines_documents_and_the_credit_button(invoice, finance_user):
    page = logged_in(finance_user).get(f"{INVOICES}{invoice.pk}/change/").content.decode()
    assert invoice.number in page and "Lord of the Rings" in page and "4.20" in page and "0.80" in page
    assert f"{INVOICES}{invoice.pk}/document/pdf/" in page and f"{INVOICES}{invoice.pk}/document/html/" in page
    assert f"{INVOICES}{invoice.pk}/credit/" in page
    assert 'name="_save"' not in page  # read-only


def test_the_invoice_list_finds_an_invoice_by_its_number(invoice, agent):
    response = logged_in(agent).get(INVOICES, {"q": invoice.number})
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [invoice]
    assert list(logged_in(agent).get(INVOICES, {"q": "INV-1999-000001"}).context["cl"].result_list) == []


def test_staff_download_the_documents(invoice, agent):
    client = logged_in(agent)
    pdf = client.get(f"{INVOICES}{invoice.pk}/document/pdf/")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    html = client.get(f"{INVOICES}{invoice.pk}/document/html/")
    assert invoice.number in html.content.decode()


def test_finance_issues_a_partial_credit_note_with_a_reason_and_confirmation(invoice, finance_user):
    client = logged_in(finance_user)
    line = invoice.lines.get()
    form = client.get(f"{INVOICES}{invoice.pk}/credit/")
    assert form.status_code == 200 and "5.00 of 5.00 left to credit" in form.content.decode()

    unconfirmed = client.post(f"{INVOICES}{invoice.pk}/credit/", {"reason": "Poor picture", "scope": "lines", f"line_{line.pk}": "2.00"})
    assert unconfirmed.status_code == 200 and "confirm" in unconfirmed.context["form"].errors
    assert not CreditNote.objects.exists()

    response = client.post(f"{INVOICES}{invoice.pk}/credit/", {"reason": "Poor picture", "scope": "lines",
                                                                f"line_{line.pk}": "2.00", "confirm": "on"}, follow=True)

    note = CreditNote.objects.get()
    assert (note.gross_total, note.reason, note.issued_by) == (D("2.00"), "Poor picture", finance_user)
    assert f"Credit note {note.number} issued: 2.00 EUR." in messages_of(response)
    assert ar_balance(account=invoice.account) == D("3.00")
    assert Invoice.objects.get(pk=invoice.pk).state == "POSTED"


def test_a_refused_credit_note_shows_every_reason_and_changes_nothing(invoice, finance_user):
    line = invoice.lines.get()
    response = logged_in(finance_user).post(f"{INVOICES}{invoice.pk}/credit/", {
        "reason": "Too much", "scope": "lines", f"line_{line.pk}": "6.00", "confirm": "on"})
    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == ["Line 1 (" + line.description + "): 6.00 asked, only 5.00 left to credit."]
    assert "Nothing was changed." in response.content.decode()
    assert not CreditNote.objects.exists() and ar_balance(account=invoice.account) == D("5.00")


def test_a_full_credit_note_cancels_the_invoice(invoice, finance_user):
    client = logged_in(finance_user)
    client.post(f"{INVOICES}{invoice.pk}/credit/", {"reason": "Ordered by mistake", "scope": "all", "confirm": "on"})
    assert Invoice.objects.get(pk=invoice.pk).state == "CANCELLED"
    page = client.get(f"{INVOICES}{invoice.pk}/change/").content.decode()
    assert CreditNote.objects.get().number in page and f"{INVOICES}{invoice.pk}/credit/" not in page


def test_agents_see_invoices_but_may_not_credit_them(invoice, agent):
    client = logged_in(agent)
    page = client.get(f"{INVOICES}{invoice.pk}/change/")
    assert page.status_code == 200 and f"{INVOICES}{invoice.pk}/credit/" not in page.content.decode()
    assert client.get(f"{INVOICES}{invoice.pk}/credit/").status_code == 403
    assert client.post(f"{INVOICES}{invoice.pk}/credit/", {"reason": "x", "scope": "all", "confirm": "on"}).status_code == 403
    assert not CreditNote.objects.exists()


def test_the_customer_page_shows_the_balance_and_the_last_invoices(invoice, agent):
    page = logged_in(agent).get(f"/admin/accounts/accountsreceivable/{invoice.account.pk}/change/").content.decode()
    assert "Billing — balance 5.00 EUR" in page
    assert f"{INVOICES}{invoice.pk}/change/" in page and f"invoice:{invoice.number}" in page


def test_finance_reads_the_journal_and_the_trial_balance(invoice, finance_user):
    client = logged_in(finance_user)
    entry = client.get(f"/admin/billing/journalentry/{invoice.journal_entry.pk}/change/").content.decode()
    assert f"invoice:{invoice.number}" in entry and "Tax payable" in entry and "4.20" in entry
    ledger = client.get("/admin/billing/ledgeraccount/")
    balances = {row.code: row.balance for row in ledger.context["cl"].result_list}
    assert (balances["AR"], balances["REVENUE_PPV"], balances["TAX_PAYABLE"]) == (D("5.00"), D("-4.20"), D("-0.80"))
    assert "the balances sum to 0.00" in ledger.content.decode()


def test_finance_adds_a_tax_rate_and_an_overlap_is_shown_on_the_form(billing_scheme, finance_user):
    client = logged_in(finance_user)
    added = client.post("/admin/billing/taxrate/add/", {"country": "gr", "tax_class": "SERVICE", "name": "VAT", "rate": "24.00",
                                                        "valid_from": "2026-01-01", "valid_until": ""})
    assert added.status_code == 302
    assert TaxRate.objects.get(country="GR").rate == D("24.00")
    clash = client.post("/admin/billing/taxrate/add/", {"country": "CY", "tax_class": "SERVICE", "name": "VAT", "rate": "20.00",
                                                        "valid_from": "2026-01-01", "valid_until": ""})
    assert clash.status_code == 200
    assert clash.context["adminform"].form.errors["valid_from"][0].startswith("It overlaps CY Service VAT 19.00%")
    assert TaxRate.objects.filter(country="CY", tax_class="SERVICE").count() == 1
