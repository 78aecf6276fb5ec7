"""Shared write services: document numbering and Idempotency-Key bookkeeping."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from core.exceptions import ApplicationError, Conflict, ValidationFailed
from core.models import AuditEntry, IdempotencyRecord, NumberSequence
from core.sql import execute as sql_execute
from core.sql import fetch_all, fetch_together


def audit_record(
    *, target, action: str, changes: dict | None = None, reasons: list[str] | None = None,
    performed_by=None, channel: str = "SYSTEM",
) -> AuditEntry:
    """Write one audit row for a change to ``target`` (in the caller's transaction)."""
    from django.contrib.contenttypes.models import ContentType

    user = performed_by if performed_by is not None and getattr(performed_by, "is_authenticated", False) else None
    return AuditEntry.objects.create(
        content_type=ContentType.objects.get_for_model(type(target)),
        object_pk=str(target.pk),
        object_repr=str(target)[:200],
        action=action,
        changes=changes or {},
        reasons=reasons or [],
        performed_by=user,
        channel=channel,
    )


def audit_changes(before: dict, after: dict) -> dict:
    """``{field: [old, new]}`` for the fields whose value changed (as strings)."""
    return {name: [_plain(before.get(name)), _plain(value)] for name, value in after.items() if before.get(name) != value}


def _plain(value):
    return value if value is None or isinstance(value, (bool, int, str)) else str(value)


def sequence_next(*, name: str, prefix: str = "", padding: int = 6) -> str:
    """Take the next number of the named sequence inside the caller's transaction.

    The row lock is held until the caller commits, so two concurrent callers get
    consecutive numbers and a rollback leaves no gap.
    """
    return sequence_take(name=name, prefix=prefix, padding=padding, count=1)[0]


def sequence_take(*, name: str, prefix: str = "", padding: int = 6, count: int) -> list[str]:
    """Take the next ``count`` numbers of the named sequence at once (a billing run numbers
    a chunk of invoices with one row lock); gapless like ``sequence_next``."""
    return sequence_take_with(name=name, prefix=prefix, padding=padding, count=count)[0]


def sequence_take_with(*, name: str, prefix: str = "", padding: int = 6, count: int,
                       also: tuple[str, Sequence] | None = None) -> tuple[list[str], list[tuple]]:
    """``sequence_take``, and the rows of ``also`` (a read, ``(sql, params)``) fetched in
    the same round trip (``core.sql.fetch_together``), sent just before the numbers are
    taken: the numbers' row lock is then held for one round trip less (an instant invoice
    reserves its rows' ids this way)."""
    if count < 1:
        return [], fetch_all(*also) if also else []
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("sequence numbers are taken inside the transaction that uses them")
    table = NumberSequence._meta.db_table
    # One statement takes the numbers and the row lock (held until the caller commits).
    take = (f'UPDATE "{table}" SET "next_value" = "next_value" + %s WHERE "name" = %s '
            f'RETURNING "prefix", "padding", "next_value" - %s', [count, name, count])
    if also:
        rows, taken = fetch_together([also, take])
    else:
        rows, taken = [], fetch_all(*take)
    if not taken:  # the series' first number (e.g. the year's first invoice)
        NumberSequence.objects.get_or_create(name=name, defaults={"prefix": prefix, "padding": padding})
        return sequence_take(name=name, prefix=prefix, padding=padding, count=count), rows
    prefix, padding, first = taken[0]
    return [f"{prefix}{value:0{padding}d}" for value in range(first, first + count)], rows


def idempotency_records_purge() -> int:
    """Delete stored Idempotency-Key responses older than the replay window; returns how many."""
    expired_before = timezone.now() - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=expired_before).delete()
    return deleted


def idempotent_call_atomic(
    *, scope: str, key: str, fingerprint: str, call: Callable[[], tuple[int, Any]]
) -> tuple[int, Any, bool]:
    """``idempotent_call`` in one transaction with the work, for handlers whose work is all
    in the database (a PPV order): the key is claimed, the work done and the response
    stored in one commit — one transaction instead of three.

    A concurrent repeat waits on the key's unique index until the first commits, then gets
    its response (not a 409); if the first fails, the repeat runs instead. A refusal
    (``ApplicationError``: a rejected order keeps its REJECTED action row) commits the work
    without keeping the key, so a corrected retry may use it again; any other error rolls
    everything back.
    """
    key = key.strip()
    if not key or len(key) > 255:
        raise ValidationFailed("The Idempotency-Key header must be 1 to 255 characters.", fields={"Idempotency-Key": ["Invalid length."]})
    expired_before = timezone.now() - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)
    table = IdempotencyRecord._meta.db_table
    refusal = None
    with transaction.atomic():
        with connection.cursor() as cursor:
            # Claims the key, or takes over an expired record of it, in one statement.
            cursor.execute(
                f'INSERT INTO "{table}" ("scope", "key", "fingerprint", "state", "created_at") VALUES (%s, %s, %s, %s, %s) '
                f'ON CONFLICT ("scope", "key") DO UPDATE SET "fingerprint" = EXCLUDED."fingerprint", "state" = EXCLUDED."state", '
                f'"created_at" = EXCLUDED."created_at", "response_status" = NULL, "response_body" = NULL '
                f'WHERE "{table}"."created_at" < %s RETURNING "id"',
                [scope, key, fingerprint, IdempotencyRecord.State.IN_PROGRESS, timezone.now(), expired_before])
            claimed = cursor.fetchone()
        if claimed is None:
            return _replay_recorded(scope, key, fingerprint)
        record = IdempotencyRecord.objects.filter(pk=claimed[0])
        try:
            status, body = call()
        except ApplicationError as error:
            record.delete()
            refusal = error
        else:
            if status >= 500:
                record.delete()
            else:
                _record_complete(claimed[0], status, body)
    if refusal is not None:
        raise refusal
    return status, body, False


def _record_complete(pk: int, status: int, body: Any) -> None:
    """Keep the response on the claimed record: a prepared UPDATE (``core.sql``), as every
    order with an Idempotency-Key ends with it."""
    body_field = IdempotencyRecord._meta.get_field("response_body")
    sql_execute(f"UPDATE {IdempotencyRecord._meta.db_table} SET state = %s, response_status = %s, response_body = %s WHERE id = %s",
                [IdempotencyRecord.State.COMPLETED.value, status, body_field.get_db_prep_save(body, connection=connection), pk])


def _replay_recorded(scope: str, key: str, fingerprint: str) -> tuple[int, Any, bool]:
    existing = IdempotencyRecord.objects.get(scope=scope, key=key)
    if existing.fingerprint != fingerprint:
        raise Conflict("This Idempotency-Key was already used with a different request.", code="idempotency_key_reused")
    if existing.state == IdempotencyRecord.State.IN_PROGRESS:
        raise Conflict("A request with this Idempotency-Key is still being processed; retry shortly.",
                       code="idempotency_in_progress")
    return existing.response_status, existing.response_body, True


def request_fingerprint(*, method: str, path: str, body: Any) -> str:
    payload = json.dumps([method.upper(), path, body], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def idempotent_call(
    *, scope: str, key: str, fingerprint: str, call: Callable[[], tuple[int, Any]]
) -> tuple[int, Any, bool]:
    """Run ``call`` once per (scope, key); a repeat gets the first (status, body) back.

    Returns ``(status, body, replayed)``. The key is claimed in its own committed
    transaction before ``call`` runs, so a concurrent repeat sees it and gets a 409 instead
    of doing the work twice. Server errors (5xx) release the key so the client may retry.
    """
    key = key.strip()
    if not key or len(key) > 255:
        raise ValidationFailed("The Idempotency-Key header must be 1 to 255 characters.", fields={"Idempotency-Key": ["Invalid length."]})
    expired_before = timezone.now() - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)
    try:
        with transaction.atomic():
            IdempotencyRecord.objects.filter(scope=scope, key=key, created_at__lt=expired_before).delete()
            IdempotencyRecord.objects.create(scope=scope, key=key, fingerprint=fingerprint)
    except IntegrityError:
        return _replay_recorded(scope, key, fingerprint)

    try:
        status, body = call()
    except BaseException:
        IdempotencyRecord.objects.filter(scope=scope, key=key).delete()
        raise
    if status >= 500:
        IdempotencyRecord.objects.filter(scope=scope, key=key).delete()
    else:
        IdempotencyRecord.objects.filter(scope=scope, key=key).update(
            state=IdempotencyRecord.State.COMPLETED, response_status=status, response_body=body
        )
    return status, body, False
