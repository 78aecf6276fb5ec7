"""Credit notes: in full or in part per line, each reversing exactly AR, revenue and tax for
what it credits; the invoice is cancelled once everything is credited; never more than was
invoiced; refusals list every reason and change nothing."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from billing.models import CreditNote, Invoice, JournalEntry
from billing.selectors import account_statement, ar_balance, trial_balance
from billing.services.invoicing import credit_note_issue, invoice_create_draft, invoice_line_add, invoice_post
from billing.services.taxes import tax_rate_create
from core.actions import ActionRejected
from core.admin import audit_entries_for
from tests.billing.test_invoicing import legs, product
from tests.factories import customer_create

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture
def invoice(db):
    """A posted invoice: Lord of the Rings €5.00 (PPV) and a Sports Pack €10.00 (recurring),
    both including 19% VAT."""
    tax_rate_create(country="CY", tax_class="SERVICE", rate=D("19.00"), valid_from=date(2020, 1, 1))
    account = customer_create(portal=False)
    draft = invoice_create_draft(account=account)
    invoice_line_add(invoice=draft, description="Lord of the Rings", unit_price=D("5.00"), product=product("lotr", "USAGE"))
    invoice_line_add(invoice=draft, description="Sports Pack", unit_price=D("10.00"), product=product("sports", "TERMED"))
    return invoice_post(invoice=draft)


def lines_of(invoice: Invoice):
    return list(invoice.lines.order_by("position"))


def test_a_full_credit_note_cancels_the_invoice_and_reverses_its_entry(invoice, finance_user):
    note = credit_note_issue(invoice=invoice, reason="Customer could not watch", performed_by=finance_user)

    year = invoice.number.split("-")[1]
    assert note.number == f"CN-{year}-000001"
    assert (note.net_total, note.tax_total, note.gross_total, note.issued_by) == (D("12.60"), D("2.40"), D("15.00"), finance_user)
    assert legs(note.journal_entry) == sorted([
        ("AR", invoice.account.number, D("-15.00")), ("REVENUE_PPV", None, D("4.20")), ("REVENUE_RECURRING", None, D("8.40")),
        ("TAX_PAYABLE", None, D("2.40"))])
    assert (note.journal_entry.kind, note.journal_entry.reference) == ("CREDIT_NOTE", f"credit_note:{note.number}")
    assert Invoice.objects.get(pk=invoice.pk).state == "CANCELLED"
    assert ar_balance(account=invoice.account) == 0
    assert all(balance == 0 for balance in trial_balance().values())
    entry = audit_entries_for(invoice).first()
    assert (entry.action, entry.changes["state"], entry.changes["credit_note"]) == ("credit", ["POSTED", "CANCELLED"], [None, note.number])
    assert [line.kind for line in account_statement(account=invoice.account)] == ["Invoice", "Credit note"]


def test_a_partial_credit_reverses_only_its_part_and_keeps_the_invoice_posted(invoice):
    lotr, sports = lines_of(invoice)

    note = credit_note_issue(invoice=invoice, reason="Sports Pack outage, two days", lines={sports: D("2.00")})

    assert [(line.invoice_line, line.net, line.tax, line.gross) for line in note.lines.all()] == [(sports, D("1.68"), D("0.32"), D("2.00"))]
    assert legs(note.journal_entry) == sorted([
        ("AR", invoice.account.number, D("-2.00")), ("REVENUE_RECURRING", None, D("1.68")), ("TAX_PAYABLE", None, D("0.32"))])
    assert Invoice.objects.get(pk=invoice.pk).state == "POSTED"
    assert ar_balance(account=invoice.account) == D("13.00")


def test_partial_credits_that_add_up_to_everything_cancel_the_invoice_to_the_cent(invoice):
    lotr, sports = lines_of(invoice)
    credit_note_issue(invoice=invoice, reason="first", lines={lotr.pk: D("0.03"), sports.pk: D("3.33")})
    credit_note_issue(invoice=invoice, reason="second", lines={lotr.pk: D("4.97")})
    last = credit_note_issue(invoice=invoice, reason="rest")  # everything left: 6.67 of the Sports Pack

    assert last.gross_total == D("6.67")
    notes = CreditNote.objects.filter(invoice=invoice)
    assert sum(n.net_total for n in notes) == invoice.net_total and sum(n.tax_total for n in notes) == invoice.tax_total
    assert Invoice.objects.get(pk=invoice.pk).state == "CANCELLED"
    assert all(balance == 0 for balance in trial_balance().values())


def test_crediting_more_than_is_left_is_refused_with_every_reason_and_changes_nothing(invoice):
    lotr, sports = lines_of(invoice)
    credit_note_issue(invoice=invoice, reason="goodwill", lines={lotr: D("4.00")})
    entries = JournalEntry.objects.count()

    with pytest.raises(ActionRejected) as raised:
        credit_note_issue(invoice=invoice, reason=" ", lines={lotr: D("1.01"), sports: D("0"), 999999: D("1.00")})

    assert raised.value.reasons == [
        "Give the reason for the credit note.",
        "Line 2: the amount to credit must be more than zero, in cents.",
        f"Line 999999 is not a line of invoice {invoice.number}.",
        "Line 1 (Lord of the Rings): 1.01 asked, only 1.00 left to credit.",
    ]
    assert (CreditNote.objects.count(), JournalEntry.objects.count()) == (1, entries)
    assert ar_balance(account=invoice.account) == D("11.00")
    assert audit_entries_for(invoice).first().action == "rejected: credit"


def test_a_draft_or_cancelled_invoice_cannot_be_credited(invoice):
    draft = invoice_create_draft(account=invoice.account)
    invoice_line_add(invoice=draft, description="Limitless", unit_price=D("10.00"), product=product("limitless", "USAGE"))
    with pytest.raises(ActionRejected) as raised:
        credit_note_issue(invoice=draft, reason="mistake")
    assert raised.value.reasons == ["It is DRAFT; issue credit note is allowed only from POSTED."]

    credit_note_issue(invoice=invoice, reason="all of it")
    with pytest.raises(ActionRejected) as raised:
        credit_note_issue(invoice=invoice, reason="again")
    assert raised.value.reasons[0] == "It is CANCELLED; issue credit note is allowed only from POSTED."
    assert CreditNote.objects.count() == 1
    assert ar_balance(account=invoice.account) == 0


def test_credit_notes_have_their_own_gapless_series(invoice):
    lotr, sports = lines_of(invoice)
    first = credit_note_issue(invoice=invoice, reason="a", lines={lotr: D("1.00")})
    second = credit_note_issue(invoice=invoice, reason="b", lines={sports: D("1.00")})
    assert [first.number[-6:], second.number[-6:]] == ["000001", "000002"]
    assert first.number.startswith("CN-") and invoice.number.startswith("INV-")
