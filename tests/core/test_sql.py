"""core.sql: the hot hand-written queries, prepared once per connection on PostgreSQL."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

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


def test_insert_writes_the_row_save_would_and_leaves_an_instance_the_orm_can_save():
    from decimal import Decimal

    from core.models import IdempotencyRecord
    from core.sql import insert

    record = insert(IdempotencyRecord(scope="user:1", key="k-1", fingerprint="f" * 64, response_status=201,
                                      response_body={"amount": Decimal("10.00"), "lines": [1, 2]}))
    stored = IdempotencyRecord.objects.get(pk=record.pk)

    assert record.pk is not None and not record._state.adding
    assert (stored.scope, stored.key, stored.state, stored.response_status) == ("user:1", "k-1", "IN_PROGRESS", 201)
    assert stored.response_body == {"amount": "10.00", "lines": [1, 2]}  # the field's encoder ran
    assert stored.created_at is not None and stored.created_at == record.created_at  # auto_now_add (pre_save) ran
    record.state = IdempotencyRecord.State.COMPLETED
    record.save()  # an UPDATE of that row, not a second INSERT
    assert list(IdempotencyRecord.objects.values_list("key", "state")) == [("k-1", "COMPLETED")]


def test_execute_many_writes_every_row_and_is_logged_once():
    from core.models import IdempotencyRecord
    from core.sql import execute_many

    with CaptureQueriesContext(connection) as captured:
        execute_many("INSERT INTO core_idempotencyrecord (scope, key, fingerprint, state, created_at) VALUES (%s, %s, %s, %s, now())",
                     [("user:2", f"k-{n}", "f" * 64, "COMPLETED") for n in range(3)])

    assert sorted(IdempotencyRecord.objects.filter(scope="user:2").values_list("key", flat=True)) == ["k-0", "k-1", "k-2"]
    assert len(captured.captured_queries) == 1 and captured.captured_queries[0]["sql"].startswith("3 times: INSERT")


def test_fetch_together_answers_each_query_in_order_and_logs_each():
    from core.sql import fetch_together

    customer_create(first_name="Ada")
    with CaptureQueriesContext(connection) as captured:
        numbers, empty = fetch_together([("SELECT number FROM accounts_accountsreceivable ORDER BY id", []),
                                         ("SELECT id FROM accounts_accountsreceivable WHERE id < %s", [0])])

    assert numbers == [(number,) for number in AccountsReceivable.objects.order_by("id").values_list("number", flat=True)]
    assert empty == []
    assert [query["sql"].split()[1] for query in captured.captured_queries] == ["number", "id"]


def test_statements_in_a_pipelined_block_all_land_and_an_error_surfaces_as_djangos():
    from django.db import IntegrityError, transaction

    from core.models import IdempotencyRecord
    from core.sql import execute, execute_many, pipelined

    insert = "INSERT INTO core_idempotencyrecord (scope, key, fingerprint, state, created_at) VALUES (%s, %s, %s, %s, %s)"
    now = timezone.now()
    with transaction.atomic(), pipelined():
        execute_many(insert, [("user:3", f"k-{n}", "f" * 64, "IN_PROGRESS", now) for n in range(2)])
        execute("UPDATE core_idempotencyrecord SET state = %s WHERE scope = %s", ["COMPLETED", "user:3"])
    assert sorted(IdempotencyRecord.objects.filter(scope="user:3").values_list("key", "state")) == [
        ("k-0", "COMPLETED"), ("k-1", "COMPLETED")]

    with pytest.raises(IntegrityError), transaction.atomic(), pipelined():
        execute_many(insert, [("user:4", "k-0", "f" * 64, "IN_PROGRESS", now)])
        execute_many(insert, [("user:3", "k-0", "f" * 64, "IN_PROGRESS", now)])  # the key is taken
    assert not IdempotencyRecord.objects.filter(scope="user:4").exists()  # the block's writes are undone with it


def test_an_array_literal_carries_every_value_back_exactly():
    from decimal import Decimal

    from core.sql import array_literal

    assert connection.vendor == "postgresql", "make test runs this on PostgreSQL"
    texts = ['Night tier 02:30 — "VIP", 50% off', "back\\slash, {braces}", "", "NULL", None]
    numbers = [Decimal("5.0000"), Decimal("-0.01"), None, Decimal("1E+2")]
    ids = [9_007_199_254_740_993, None, 1]
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::varchar[], %s::numeric[], %s::bigint[]", [array_literal(texts), array_literal(numbers), array_literal(ids)])
        assert cursor.fetchone() == (texts, numbers, ids)
