"""Agents find customers by account number, name, company, e-mail or phone, through indexes."""

from __future__ import annotations

import pytest
from django.db import connection

from accounts.models import AccountsReceivable, Classification, Contact
from accounts.selectors import customer_search
from tests.factories import customer_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def people():
    return {
        "maria": customer_create(first_name="Maria", last_name="Georgiou", email="maria@example.com", mobile_phone="99123456"),
        "marios": customer_create(first_name="Marios", last_name="Pavlou", email="marios@example.com", mobile_phone="+306912345678"),
        "giorgos": customer_create(first_name="Giorgos", last_name="Mariou", email="g@example.com", mobile_phone="96000000"),
        "bar": customer_create(kind="COMPANY", first_name="", last_name="", company_name="Sports Bar Ltd", email="bar@example.com", portal=False),
    }


def found(query: str, people) -> set[str]:
    by_pk = {account.pk: name for name, account in people.items()}
    return {by_pk[pk] for pk in customer_search(query=query).values_list("pk", flat=True)}


@pytest.mark.parametrize(
    "query, expected",
    [
        ("georgiou", {"maria"}),
        ("GEOR", {"maria"}),
        ("mari", {"maria", "marios", "giorgos"}),  # first names Maria/Marios, last name Mariou
        ("maria georgiou", {"maria"}),
        ("georgiou maria", {"maria"}),
        ("marios@example.com", {"marios"}),
        ("MARIA@", {"maria"}),
        ("99 123 456", {"maria"}),
        ("+357 99 12", {"maria"}),
        ("0030 691", {"marios"}),
        ("sports", {"bar"}),
        ("nobody", set()),
        ("   ", {"maria", "marios", "giorgos", "bar"}),
    ],
)
def test_search(people, query, expected):
    assert found(query, people) == expected


def test_search_by_account_number_is_exact(people):
    number = people["giorgos"].number
    assert found(number.lower(), people) == {"giorgos"}
    assert found(number[:-1] + "9", people) == set()


def full_scans(plan: str) -> list[str]:
    """Plan nodes that read a whole table or index: sequential scans, and index scans with
    no ``Index Cond`` (which PostgreSQL picks when no index fits and seq scans are off)."""
    lines = plan.splitlines()
    scans = []
    for number, line in enumerate(lines):
        if "Seq Scan" in line:
            scans.append(line.strip())
        elif "Index Scan" in line or "Index Only Scan" in line:
            following = lines[number + 1].strip() if number + 1 < len(lines) else ""
            if not following.startswith("Index Cond"):
                scans.append(line.strip())
    return scans


def explain(query: str) -> str:
    sql, params = customer_search(query=query).query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


def at_operator_scale() -> None:
    """Thousands of other customers and fresh statistics, in the test's transaction (rolled
    back with it, statistics included). On a handful of rows the plan depended on whether
    autovacuum had analyzed the tiny tables yet: walking a whole index was then cheapest."""
    classification = Classification.objects.get(code="NORMAL")
    contacts = Contact.objects.bulk_create(
        Contact(first_name=f"Other{n}", last_name=f"Customer{n}", email=f"other{n}@example.net", mobile_phone=f"+3579{n:07d}")
        for n in range(3000))
    AccountsReceivable.objects.bulk_create(
        AccountsReceivable(number=f"AR8{n:07d}", contact=contact, currency="EUR", classification=classification)
        for n, contact in enumerate(contacts))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE accounts_contact, accounts_accountsreceivable")


def test_search_uses_indexes_not_table_scans(people):
    if connection.vendor != "postgresql":
        pytest.fail("run the suite with make test: this proves the PostgreSQL plan")
    at_operator_scale()
    for query in ("geor", "maria georgiou", "maria@example.com", "99123456", people["maria"].number):
        plan = explain(query)
        assert not full_scans(plan), f"{query!r} reads a whole table or index:\n{plan}"


def test_the_plan_check_catches_a_missing_index(people):
    if connection.vendor != "postgresql":
        pytest.fail("run the suite with make test: this proves the PostgreSQL plan")
    with connection.cursor() as cursor:
        cursor.execute("DROP INDEX contact_last_name_search")
    assert full_scans(explain("geor"))
