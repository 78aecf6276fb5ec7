"""Invoices: drafts with taxed lines, posting (a gapless number, the ledger legs exactly,
usage BILLED), refusals that change nothing, and numbering under rollback and concurrency
on PostgreSQL."""

from __future__ import annotations

import threading
import time
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection, connections, transaction

from billing.models import Invoice, InvoiceLine, JournalEntry, Posting, UsageDetailRecord
from billing.selectors import ar_balance, trial_balance
from billing.services.invoicing import invoice_create_draft, invoice_line_add, invoice_post
from billing.services.taxes import tax_rate_create
from catalogs.models import Product, ProductType
from core.actions import ActionRejected
from core.admin import audit_entries_for
from core.exceptions import TransitionNotAllowed, ValidationFailed
from tests.factories import customer_create

pytestmark = pytest.mark.django_db
D = Decimal
NICOSIA = ZoneInfo("Europe/Nicosia")


@pytest.fixture
def cy_vat(db):
    return tax_rate_create(country="CY", tax_class="SERVICE", rate=D("19.00"), valid_from=date(2020, 1, 1))


def product(code: str, service_type: str) -> Product:
    product_type, _ = ProductType.objects.get_or_create(name=f"{service_type} services",
                                                        defaults={"classification": "SERVICE", "service_type": service_type})
    return Product.objects.get_or_create(code=code, defaults={"name": code.title(), "product_type": product_type})[0]


def draft_with(account, *charges: tuple[str, str, str]) -> Invoice:
    """A draft with one line per (product code, service type, tax-inclusive price)."""
    invoice = invoice_create_draft(account=account)
    for code, service_type, price in charges:
        invoice_line_add(invoice=invoice, description=code, unit_price=D(price), product=product(code, service_type))
    return invoice


def legs(entry: JournalEntry) -> list[tuple[str, str | None, Decimal]]:
    return sorted((p.ledger_account.code, p.account.number if p.account else None, p.amount)
                  for p in entry.postings.select_related("ledger_account", "account"))


def test_a_posted_invoice_is_numbered_and_posted_to_the_ledger_exactly(cy_vat, finance_user):
    account = customer_create(portal=False)
    invoice = draft_with(account, ("lotr", "USAGE", "5.00"), ("sports", "TERMED", "10.00"), ("install", "ONE_TIME", "3.00"))

    with time_machine.travel(datetime(2026, 11, 20, 10, 0, tzinfo=NICOSIA)):
        posted = invoice_post(invoice=invoice, performed_by=finance_user)

    assert (posted.number, posted.state) == ("INV-2026-000001", "POSTED")
    assert (posted.net_total, posted.tax_total, posted.gross_total) == (D("15.12"), D("2.88"), D("18.00"))
    assert legs(posted.journal_entry) == sorted([
        ("AR", account.number, D("18.00")), ("REVENUE_PPV", None, D("-4.20")), ("REVENUE_RECURRING", None, D("-8.40")),
        ("REVENUE_ONE_TIME", None, D("-2.52")), ("TAX_PAYABLE", None, D("-2.88"))])
    assert (posted.journal_entry.reference, posted.journal_entry.kind) == ("invoice:INV-2026-000001", "INVOICE")
    assert ar_balance(account=account) == D("18.00")
    assert sum(trial_balance().values()) == 0
    entry = next(entry for entry in audit_entries_for(posted) if entry.action == "post")
    assert (entry.performed_by, entry.changes["state"], entry.changes["number"]) == (
        finance_user, ["DRAFT", "POSTED"], [None, "INV-2026-000001"])


def test_numbers_follow_each_other_per_series_and_year(cy_vat):
    account = customer_create(portal=False)
    with time_machine.travel(datetime(2026, 12, 31, 23, 30, tzinfo=NICOSIA)):
        first = invoice_post(invoice=draft_with(account, ("lotr", "USAGE", "5.00")))
        second = invoice_post(invoice=draft_with(account, ("lotr", "USAGE", "5.00")))
    with time_machine.travel(datetime(2027, 1, 1, 0, 30, tzinfo=NICOSIA)):  # the operator's new year, still 2026 in UTC
        third = invoice_post(invoice=draft_with(account, ("lotr", "USAGE", "5.00")))
    assert [first.number, second.number, third.number] == ["INV-2026-000001", "INV-2026-000002", "INV-2027-000001"]


def test_a_number_taken_in_a_rolled_back_transaction_is_given_back(cy_vat):
    account = customer_create(portal=False)
    dropped, kept = draft_with(account, ("lotr", "USAGE", "5.00")), draft_with(account, ("lotr", "USAGE", "10.00"))

    with pytest.raises(RuntimeError), transaction.atomic():
        assert invoice_post(invoice=dropped).number.endswith("000001")
        raise RuntimeError("something later in the same transaction failed")

    assert Invoice.objects.get(pk=dropped.pk).state == "DRAFT" and not JournalEntry.objects.exists()
    assert invoice_post(invoice=kept).number.endswith("000001")
    assert invoice_post(invoice=dropped).number.endswith("000002")


def test_usage_on_an_invoice_becomes_billed_when_it_is_posted(cy_vat):
    account = customer_create(portal=False)
    lotr = product("lotr", "USAGE")
    udr = UsageDetailRecord.objects.create(account=account, product=lotr, usage_at=datetime(2026, 11, 20, 2, 0, tzinfo=NICOSIA),
                                           channel="PORTAL", external_id="u1", amount=D("5.0000"), currency="EUR", state="RATED")
    invoice = invoice_create_draft(account=account)
    invoice_line_add(invoice=invoice, description="LOTR", unit_price=udr.amount, product=lotr, udr=udr)
    assert UsageDetailRecord.objects.get(pk=udr.pk).state == "RATED"

    invoice_post(invoice=invoice)

    assert UsageDetailRecord.objects.get(pk=udr.pk).state == "BILLED"
    with pytest.raises(TransitionNotAllowed):
        invoice_line_add(invoice=invoice, description="more", unit_price=D("1"), product=lotr)
    other = invoice_create_draft(account=account)
    with pytest.raises(ValidationFailed) as raised:
        invoice_line_add(invoice=other, description="again", unit_price=udr.amount, product=lotr, udr=udr)
    assert raised.value.fields["udr"] == ["The usage record is BILLED; only RATED usage is invoiced.",
                                          "The usage record is already on an invoice."]


def test_a_tax_exclusive_price_is_taxed_on_top(cy_vat):
    invoice = invoice_create_draft(account=customer_create(portal=False))
    line = invoice_line_add(invoice=invoice, description="Sports Pack", unit_price=D("4.2000"), quantity=D("2"),
                            product=product("sports", "TERMED"), prices_include_tax=False)
    assert (line.net, line.tax, line.gross, line.tax_rate, line.tax_name) == (D("8.40"), D("1.60"), D("10.00"), D("19.00"), "VAT")


def test_every_problem_with_a_line_is_reported_and_nothing_is_added(cy_vat):
    account = customer_create(portal=False)
    invoice = invoice_create_draft(account=account)
    foreign = UsageDetailRecord.objects.create(account=customer_create(portal=False), product=product("lotr", "USAGE"),
                                               usage_at=datetime(2026, 11, 20, tzinfo=NICOSIA), channel="PORTAL",
                                               external_id="f1", amount=D("5"), currency="USD", state="RATED")
    with pytest.raises(ValidationFailed) as raised:
        invoice_line_add(invoice=invoice, description=" ", unit_price=D("-1"), quantity=D("0"), udr=foreign,
                         revenue_ledger="CASH")
    assert set(raised.value.fields) == {"description", "unit_price", "quantity", "tax_class", "revenue_ledger", "udr"}
    assert not InvoiceLine.objects.exists()


def test_an_empty_draft_is_not_posted_and_keeps_no_number(cy_vat):
    invoice = invoice_create_draft(account=customer_create(portal=False))
    with pytest.raises(ActionRejected) as raised:
        invoice_post(invoice=invoice)
    assert raised.value.reasons == ["The invoice has no lines."]
    assert Invoice.objects.get(pk=invoice.pk).number is None
    assert audit_entries_for(invoice).first().action == "rejected: post"
    with pytest.raises(ActionRejected):
        invoice_post(invoice=invoice_post(invoice=draft_with(invoice.account, ("lotr", "USAGE", "5"))))  # posted twice
    assert Invoice.objects.filter(state="POSTED").count() == 1


def test_a_free_invoice_is_posted_without_a_ledger_entry(cy_vat):
    account = customer_create(portal=False)
    posted = invoice_post(invoice=draft_with(account, ("lotr", "USAGE", "0.00")))
    assert posted.number == f"INV-{timezone_year()}-000001" and posted.journal_entry is None
    assert not Posting.objects.exists()


# --- concurrency (PostgreSQL) ----------------------------------------------------------------

def run_in_threads(*targets):
    errors = []

    def wrap(target):
        try:
            target()
        except Exception as error:  # noqa: BLE001 (reported below)
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=wrap, args=(target,)) for target in targets]
    for thread in threads:
        thread.start()
        time.sleep(0.2)  # the first holds the sequence row before the next asks for it
    for thread in threads:
        thread.join(timeout=30)
    return errors


@pytest.mark.django_db(transaction=True)
def test_two_workers_posting_at_once_get_consecutive_numbers():
    assert connection.vendor == "postgresql", "make test runs this on PostgreSQL"
    tax_rate_create(country="CY", tax_class="SERVICE", rate=D("19.00"), valid_from=date(2020, 1, 1))
    account = customer_create(portal=False)
    drafts = [draft_with(account, ("lotr", "USAGE", "5.00")) for _ in range(3)]

    def post_slowly(invoice):
        def work():
            with transaction.atomic():
                invoice_post(invoice=invoice)
                time.sleep(0.5)  # still holding the number when the other asks
        return work

    errors = run_in_threads(*(post_slowly(invoice) for invoice in drafts))

    assert errors == []
    year = timezone_year()
    assert sorted(Invoice.objects.values_list("number", flat=True)) == [f"INV-{year}-00000{n}" for n in (1, 2, 3)]


@pytest.mark.django_db(transaction=True)
def test_a_worker_that_rolls_back_leaves_no_gap_for_the_one_waiting():
    assert connection.vendor == "postgresql", "make test runs this on PostgreSQL"
    tax_rate_create(country="CY", tax_class="SERVICE", rate=D("19.00"), valid_from=date(2020, 1, 1))
    account = customer_create(portal=False)
    failing, waiting = draft_with(account, ("lotr", "USAGE", "5.00")), draft_with(account, ("lotr", "USAGE", "10.00"))

    def fail():
        with pytest.raises(RuntimeError), transaction.atomic():
            invoice_post(invoice=failing)
            time.sleep(0.5)
            raise RuntimeError("crash after taking the number")

    errors = run_in_threads(fail, lambda: invoice_post(invoice=waiting))

    assert errors == []
    assert Invoice.objects.get(pk=failing.pk).number is None
    assert Invoice.objects.get(pk=waiting.pk).number == f"INV-{timezone_year()}-000001"


def timezone_year() -> int:
    from django.utils import timezone

    return timezone.localdate().year
