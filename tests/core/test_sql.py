"""core.sql: the hot hand-written queries, prepared once per connection on PostgreSQL."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import AccountsReceivable
from core.sql import column_count, fetch_one, instance_from_row, select_columns
from tests.factories import customer_create

pytestmark = pytest.mark.django_db

SQL = f"SELECT {select_columns(AccountsReceivable, 'a')} FROM accounts_accountsreceivable a WHERE a.number = %s"


def prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def test_a_hot_query_is_prepared_once_and_reused():
    account = customer_create()
    for _ in range(3):
        row = fetch_one(SQL, [account.number])

    assert [statement for statement in prepared_statements() if "accounts_accountsreceivable a WHERE" in statement] == [
        SQL.replace("%s", "$1")]
    assert instance_from_row(AccountsReceivable, row) == account
    assert fetch_one(SQL, ["AR-none"]) is None


def test_it_is_logged_like_any_query_with_its_parameters():
    account = customer_create()
    with CaptureQueriesContext(connection) as captured:
        fetch_one(SQL, [account.number])

    assert len(captured.captured_queries) == 1
    assert captured.captured_queries[0]["sql"].endswith(f"WHERE a.number = '{account.number}'")


def test_a_whole_row_comes_back_typed_as_the_orm_loads_it():
    account = customer_create()
    loaded = instance_from_row(AccountsReceivable, fetch_one(SQL, [account.number]))
    fresh = AccountsReceivable.objects.get(pk=account.pk)

    assert column_count(AccountsReceivable) == len(AccountsReceivable._meta.concrete_fields)
    assert {field.attname: getattr(loaded, field.attname) for field in AccountsReceivable._meta.concrete_fields} == {
        field.attname: getattr(fresh, field.attname) for field in AccountsReceivable._meta.concrete_fields}
    assert not loaded._state.adding
