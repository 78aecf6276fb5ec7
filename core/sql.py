"""Whole model rows from hand-written SQL, for the few hottest reads.

The ORM spends about a millisecond of Python building and compiling a query with a join or
two; on paths called hundreds of times a second (a device's key on every entitlement check)
that is most of the request. There the SQL is written once, with the columns of whole
rows listed from the models (``select_columns``), and each row is turned back into model
instances exactly as the ORM would (``instance_from_row``: the database converters run, so
SQLite's text datetimes and decimals come back typed). Everything else uses the ORM.

``fetch_one`` runs such a query. On PostgreSQL it binds its parameters server-side, so the
statement is prepared once per connection (``prepare_threshold`` in the settings) and then
neither parsed nor planned again: planning a three-table join of whole rows cost
PostgreSQL 0.4–1 ms per request, executing it 0.15 ms. Django's own queries bind
client-side and are never prepared.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import TypeVar

import psycopg
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.models import Model

M = TypeVar("M", bound=Model)


def fetch_one(sql: str, params: Sequence) -> tuple | None:
    """The first row of ``sql`` (``%s`` placeholders), or None. Goes through the
    connection's execute wrappers and query log like any query (tests count it)."""
    return _run(sql, params, lambda cursor: cursor.fetchone())


def fetch_all(sql: str, params: Sequence, *, binary: bool = False) -> list[tuple]:
    """Every row of ``sql``, as ``fetch_one`` runs it. ``binary=True`` asks PostgreSQL for
    binary results: psycopg's C loaders read a timestamp in a fraction of the time of the
    text parser Django installs (9 µs a row), which counts when a query returns thousands;
    values come back as the same Python types (timestamps aware, in UTC)."""
    return _run(sql, params, lambda cursor: cursor.fetchall(), binary=binary)


def array_literal(values: Iterable) -> str:
    """The text form of a PostgreSQL array (``{1,NULL,"a \\"b\\""}``) of ints, Decimals,
    strings and Nones, for a parameter the SQL casts (``%s::bigint[]``). psycopg's array
    dumper adapts a list element by element in Python (~1.3 µs each, binary or text): for
    the ten arrays of 2,000 elements a rating chunk sends, 27 ms against 5 ms this way,
    with the server's parsing included."""
    parts = []
    for value in values:
        if value is None:
            parts.append("NULL")
        elif isinstance(value, str):
            parts.append('"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"')
        else:  # int, Decimal: their str() is PostgreSQL's literal
            parts.append(str(value))
    return "{" + ",".join(parts) + "}"


def execute(sql: str, params: Sequence) -> int:
    """Run a statement that returns no rows (an UPDATE with array parameters, say), bound
    server-side as ``fetch_one`` is; returns the rows it touched."""
    return _run(sql, params, lambda cursor: cursor.rowcount)


def execute_many(sql: str, params_seq: Sequence[Sequence]) -> None:
    """Run a statement once per parameter row, bound server-side and prepared as
    ``execute`` is; psycopg sends the rows in pipeline mode, so a few rows cost one round
    trip (a COPY costs two)."""
    _run(sql, params_seq, lambda cursor: None, many=True)


def fetch_together(queries: Sequence[tuple[str, Sequence]]) -> list[list[tuple]]:
    """Every row of each ``(sql, params)``, as ``fetch_all`` runs them, but on PostgreSQL
    all sent before any answer is read (psycopg's pipeline mode): one round trip to the
    server for the lot instead of one each. Elsewhere they run one after the other."""
    db = _db()
    if db.vendor != "postgresql":
        return [fetch_all(sql, params) for sql, params in queries]
    _connection_ready(db)
    cursors = []
    with db.wrap_database_errors:
        try:
            with db.connection.pipeline():
                for sql, params in queries:
                    cursor = psycopg.Cursor(db.connection)
                    cursors.append(cursor)
                    _execute(db, cursor, sql, params)
                return [cursor.fetchall() for cursor in cursors]  # the first fetch sends them all
        finally:
            for cursor in cursors:
                cursor.close()


@contextlib.contextmanager
def pipelined(enabled: bool = True) -> Iterator[None]:
    """Statements run in the block (``execute``, ``execute_many``: writes whose results the
    caller does not read) are sent without waiting for each answer, and the block's end
    waits once for them all (psycopg's pipeline mode): one round trip instead of one per
    statement. An error is raised at the block's end. PostgreSQL only (elsewhere, and with
    ``enabled`` false, the statements run one by one); no COPY inside."""
    db = _db()
    if not enabled or db.vendor != "postgresql":
        yield
        return
    _connection_ready(db)
    with db.wrap_database_errors, db.connection.pipeline():
        yield


def _db():
    """The default database's connection of this thread: looked up once per statement
    (``django.db.connection`` is a proxy that looks it up again at every attribute read,
    ~20 reads per statement here)."""
    return connections[DEFAULT_DB_ALIAS]


def _run(sql: str, params: Sequence, fetch, binary: bool = False, many: bool = False):
    db = _db()
    if db.vendor != "postgresql":
        with db.cursor() as cursor:
            (cursor.executemany if many else cursor.execute)(sql, params)
            return fetch(cursor)
    _connection_ready(db)
    with db.wrap_database_errors, psycopg.Cursor(db.connection) as cursor:
        _execute(db, cursor, sql, params, binary=binary, many=many)
        return fetch(cursor)


def _connection_ready(db) -> None:
    # What connection.cursor() does first; the cursor is psycopg's server-binding one
    # instead of Django's client-binding one (which cannot prepare).
    db.close_if_health_check_failed()
    db.ensure_connection()
    db.validate_thread_sharing()


def _execute(db, cursor: psycopg.Cursor, sql: str, params: Sequence, *, binary: bool = False, many: bool = False) -> None:
    """Run through the connection's execute wrappers, and into its query log."""
    def execute(sql, params, many, context):
        db.validate_no_broken_transaction()
        if many:
            return cursor.executemany(sql, params)
        return cursor.execute(sql, params, binary=binary)

    executor = execute
    for wrapper in reversed(db.execute_wrappers):
        executor = functools.partial(wrapper, executor)
    started = time.monotonic()
    try:
        executor(sql, params, many, {"connection": db, "cursor": cursor})
    finally:
        if db.queries_logged:  # an executemany is one entry, as Django logs its own
            logged = f"{len(params)} times: {sql}" if many else db.ops.compose_sql(sql, params)
            db.queries_log.append({"sql": logged, "time": f"{time.monotonic() - started:.3f}"})


def insert(instance: M) -> M:
    """INSERT a new model instance as ``instance.save()`` does — each field's ``pre_save``
    (``auto_now_add``, defaults already set by the constructor), its value prepared for the
    database — with the statement written once per model and, on PostgreSQL, prepared:
    the ORM's insert compiler cost ~0.3 ms of Python per row on the order path. No
    ``pre_save``/``post_save`` signals are sent (the project connects none). Sets the
    primary key and returns the instance."""
    model, db = type(instance), _db()
    fields = _insert_fields(model)
    values = [field.get_db_prep_save(field.pre_save(instance, True), connection=db) for field in fields]
    instance.pk = fetch_one(_insert_sql(model), values)[0]
    instance._state.adding, instance._state.db = False, db.alias
    return instance


@functools.cache
def _insert_fields(model: type[Model]) -> tuple:
    return tuple(field for field in model._meta.concrete_fields if field is not model._meta.auto_field)


@functools.cache
def _insert_sql(model: type[Model]) -> str:
    quote = connection.ops.quote_name
    fields = _insert_fields(model)
    return (f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(field.column) for field in fields)}) "
            f"VALUES ({', '.join(['%s'] * len(fields))}) RETURNING {quote(model._meta.pk.column)}")


class RowPages:
    """A hand-written list a paginator can page through: ``count()`` runs ``count_sql``,
    ``rows[a:b]`` runs ``page_sql`` with ``LIMIT``/``OFFSET`` parameters appended and turns
    each row into what ``build`` makes of it. Both statements take ``params`` first.
    Django's ``Paginator`` (and so DRF's page-number pagination) asks exactly these two."""

    ordered = True  # the SQL orders it: Paginator would warn about an unordered list

    def __init__(self, *, count_sql: str, page_sql: str, params: Sequence, build):
        self.count_sql, self.page_sql, self.params, self.build = count_sql, page_sql, list(params), build

    def count(self) -> int:
        return fetch_one(self.count_sql, self.params)[0]

    def __getitem__(self, window):
        if not isinstance(window, slice) or window.step is not None or (window.start or 0) < 0 or window.stop is None:
            raise TypeError("RowPages takes a [start:stop] window only.")
        start = window.start or 0
        if window.stop <= start:
            return []
        return [self.build(row) for row in fetch_all(self.page_sql, [*self.params, window.stop - start, start])]


def select_columns(model: type[Model], alias: str) -> str:
    """``alias."col1", alias."col2", ...``: every concrete column of ``model``, in field order."""
    quote = connection.ops.quote_name
    return ", ".join(f"{alias}.{quote(field.column)}" for field in model._meta.concrete_fields)


def column_count(model: type[Model]) -> int:
    return len(model._meta.concrete_fields)


def split_row(row: Sequence, models: Sequence[type[Model]]) -> list:
    """The instances of ``models`` whose ``select_columns`` follow one another in ``row``
    (None for a model whose primary key is NULL: an outer join that found nothing)."""
    instances, start = [], 0
    for model in models:
        end = start + column_count(model)
        found = row[start + model._meta.concrete_fields.index(model._meta.pk)] is not None
        instances.append(instance_from_row(model, row[start:end]) if found else None)
        start = end
    return instances


def instance_from_row(model: type[M], values: Sequence) -> M:
    """A ``model`` instance from the values of ``select_columns(model, ...)``, converted by the
    database backend's and the fields' converters as a queryset would."""
    db = _db()
    attnames, converters = _conversions(db.vendor, model)
    converted = []
    for value, (column, field_converters) in zip(values, converters, strict=True):
        for converter in field_converters:
            value = converter(value, column, db)
        converted.append(value)
    return model.from_db(db.alias, attnames, converted)


@functools.cache
def _conversions(vendor: str, model: type[Model]) -> tuple[list[str], list[tuple]]:
    """The attribute names of ``model``'s concrete fields and, per field, its column and the
    converters its values go through on this backend (computed once per model)."""
    fields = model._meta.concrete_fields
    converters = []
    for field in fields:
        column = field.get_col(model._meta.db_table)
        converters.append((column, connection.ops.get_db_converters(column) + field.get_db_converters(connection)))
    return [field.attname for field in fields], converters
