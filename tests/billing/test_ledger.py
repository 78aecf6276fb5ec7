"""The double-entry ledger: balanced entries only, append-only, reversals, derived balances —
checked by the service and, on PostgreSQL, by the database itself."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.models import JournalEntry, LedgerAccount, Posting
from billing.selectors import account_statement, ar_balance, trial_balance
from billing.services.ledger import Leg, journal_post, journal_reverse
from core.exceptions import ApplicationError, Conflict, ValidationFailed
from tests.factories import customer_create

pytestmark = pytest.mark.django_db
D = Decimal


def invoice_entry(account, reference="invoice:INV1", net="8.40", tax="1.60") -> JournalEntry:
    total = D(net) + D(tax)
    return journal_post(kind="INVOICE", reference=reference, currency="EUR", account=account, legs=[
        Leg("AR", total, account), Leg("REVENUE_PPV", -D(net)), Leg("TAX_PAYABLE", -D(tax))])


def payment_entry(account, reference, amount) -> JournalEntry:
    return journal_post(kind="PAYMENT", reference=reference, currency="EUR", account=account,
                        legs=[Leg("CASH", D(amount)), Leg("AR", -D(amount), account)])


def test_a_balanced_entry_moves_the_balances(customer):
    invoice_entry(customer)
    assert ar_balance(account=customer) == D("10.00")
    balances = trial_balance()
    assert (balances["AR"], balances["REVENUE_PPV"], balances["TAX_PAYABLE"]) == (D("10.00"), D("-8.40"), D("-1.60"))
    assert sum(balances.values()) == 0


@pytest.mark.parametrize("legs, problem", [
    ([Leg("AR", D("10.00")), Leg("REVENUE_PPV", D("-9.99"))], "Debits and credits differ by 0.01."),
    ([Leg("AR", D("10.001")), Leg("REVENUE_PPV", D("-10.001"))], "AR: 10.001 has more than 2 decimals."),
    ([Leg("AR", D("0")), Leg("REVENUE_PPV", D("0"))], "AR: a leg cannot be zero."),
    ([Leg("AR", D("5"))], "An entry needs at least two legs."),
    ([Leg("AR", D("5")), Leg("NOPE", D("-5"))], "Unknown ledger accounts: NOPE."),
])
def test_the_service_refuses_bad_entries_and_writes_nothing(legs, problem):
    with pytest.raises(ValidationFailed) as raised:
        journal_post(kind="INVOICE", reference="bad", legs=legs, currency="EUR")
    assert problem in raised.value.fields["legs"]
    assert not JournalEntry.objects.exists() and not Posting.objects.exists()


def test_the_same_reference_posts_once(customer):
    first = invoice_entry(customer)
    assert invoice_entry(customer) == first
    assert Posting.objects.count() == 3
    with pytest.raises(Conflict):
        payment_entry(customer, "invoice:INV1", "10.00")


def test_a_reversal_cancels_an_entry_once(customer):
    entry = invoice_entry(customer)
    reversal = journal_reverse(entry=entry)
    assert journal_reverse(entry=entry) == reversal
    assert ar_balance(account=customer) == 0
    assert all(balance == 0 for balance in trial_balance().values())
    with pytest.raises(ApplicationError):
        journal_reverse(entry=reversal)


def test_the_statement_runs_the_balance(customer):
    invoice_entry(customer, "invoice:1")
    payment_entry(customer, "payment:1", "4.00")
    invoice_entry(customer, "invoice:2", net="4.20", tax="0.80")
    lines = account_statement(account=customer)
    assert [(line.debit, line.credit, line.balance) for line in lines] == [
        (D("10.00"), D("0.00"), D("10.00")), (D("0.00"), D("4.00"), D("6.00")), (D("5.00"), D("0.00"), D("11.00"))]


def require_postgresql():
    assert connection.vendor == "postgresql", "make test runs this on PostgreSQL: it proves the database's own rules"


def test_postgresql_refuses_an_unbalanced_entry(customer):
    require_postgresql()
    entry = JournalEntry.objects.create(kind="INVOICE", reference="raw", currency="EUR")
    ar, revenue = LedgerAccount.objects.get(code="AR"), LedgerAccount.objects.get(code="REVENUE_PPV")
    with pytest.raises(IntegrityError, match="does not balance"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS billing_posting_balanced IMMEDIATE")
        Posting.objects.bulk_create([Posting(entry=entry, ledger_account=ar, account=customer, amount=D("10.00")),
                                     Posting(entry=entry, ledger_account=revenue, amount=D("-9.00"))])


def test_postgresql_keeps_the_ledger_append_only(customer):
    require_postgresql()
    entry = invoice_entry(customer)
    posting = entry.postings.first()
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        Posting.objects.filter(pk=posting.pk).update(amount=D("99.00"))
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        JournalEntry.objects.filter(pk=entry.pk).update(description="edited")
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        Posting.objects.filter(pk=posting.pk).delete()
    assert ar_balance(account=customer) == D("10.00")


@pytest.mark.django_db(transaction=True)
def test_postgresql_checks_the_balance_at_commit():
    require_postgresql()
    ar, revenue = LedgerAccount.objects.get(code="AR"), LedgerAccount.objects.get(code="REVENUE_PPV")
    with pytest.raises(IntegrityError, match="does not balance"):
        with transaction.atomic():
            entry = JournalEntry.objects.create(kind="INVOICE", reference="one-legged", currency="EUR")
            Posting.objects.create(entry=entry, ledger_account=ar, amount=D("10.00"))
            Posting.objects.create(entry=entry, ledger_account=revenue, amount=D("-1.00"))
    assert not JournalEntry.objects.filter(reference="one-legged").exists()


amounts = st.decimals(min_value=D("0.01"), max_value=D("999.99"), places=2)
operations = st.lists(st.tuples(st.sampled_from(["invoice", "payment", "reverse"]), st.integers(0, 2), amounts), max_size=25)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=operations)
def test_any_sequence_of_entries_keeps_the_ledger_balanced(operations):
    accounts = [customer_create(portal=False) for _ in range(3)]
    expected = {account.pk: D("0") for account in accounts}
    posted: list[tuple[JournalEntry, object, Decimal]] = []
    for number, (operation, who, amount) in enumerate(operations):
        account = accounts[who]
        if operation == "invoice":
            posted.append((invoice_entry(account, f"i{number}-{account.pk}", net=str(amount), tax="0.50"), account, amount + D("0.50")))
            expected[account.pk] += amount + D("0.50")
        elif operation == "payment":
            posted.append((payment_entry(account, f"p{number}-{account.pk}", amount), account, -amount))
            expected[account.pk] -= amount
        elif posted:
            entry, owner, effect = posted.pop(0)
            journal_reverse(entry=entry)
            expected[owner.pk] -= effect
    assert sum(trial_balance().values()) == 0
    for account in accounts:
        assert ar_balance(account=account) == expected[account.pk]
    for entry in JournalEntry.objects.prefetch_related("postings"):
        assert sum(p.amount for p in entry.postings.all()) == 0


def test_balances_are_shown_to_the_cent(customer):
    payment_entry(customer, "payment:round", "5.00")
    assert str(ar_balance(account=customer)) == "-5.00"
    assert str(account_statement(account=customer)[0].balance) == "-5.00"
