"""Whole model rows from hand-written SQL, for the few hottest reads.

The ORM spends about a millisecond of Python building and compiling a query with a join or
two; on paths called hundreds of times a second (a device's key on every entitlement check)
that is most of the request. There the SQL is written once, with the columns of whole
rows listed from the models (``select_columns``), and each row is turned back into model
instances exactly as the ORM would (``instance_from_row``: the database converters run, so
SQLite's text datetimes and decimals come back typed). Everything else uses the ORM.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TypeVar

from django.db import connection
from django.db.models import Model

M = TypeVar("M", bound=Model)


def select_columns(model: type[Model], alias: str) -> str:
    """``alias."col1", alias."col2", ...``: every concrete column of ``model``, in field order."""
    quote = connection.ops.quote_name
    return ", ".join(f"{alias}.{quote(field.column)}" for field in model._meta.concrete_fields)


def column_count(model: type[Model]) -> int:
    return len(model._meta.concrete_fields)


def instance_from_row(model: type[M], values: Sequence) -> M:
    """A ``model`` instance from the values of ``select_columns(model, ...)``, converted by the
    database backend's and the fields' converters as a queryset would."""
    attnames, converters = _conversions(connection.vendor, model)
    converted = []
    for value, (column, field_converters) in zip(values, converters, strict=True):
        for converter in field_converters:
            value = converter(value, column, connection)
        converted.append(value)
    return model.from_db(connection.alias, attnames, converted)


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
