"""Reference data remembered in each process, never stale.

Rating reads the same few rows — the EFFECTIVE usage catalogs, their conditions, services
and tiers — for every order and every chunk of usage; building those queries cost more
than the rest of an order. ``reference_cached(group, key, load)`` keeps ``load()``'s result
per process and returns it again as long as the group's version has not moved.

The version lives in ``core_referenceversion`` and is bumped by a statement-level trigger
on every table of the group (``reference_triggers``, installed by a migration of the app
owning the tables), in the writer's own transaction. So:

* a change is seen by the next read of any process once it commits, and at once by the
  transaction that made it (it reads its own bump);
* a rolled-back change (a transaction or a savepoint) leaves a version no later change can
  repeat: each bump takes a number from a sequence, and sequences never go back;
* reading the version is one primary-key lookup per use — the price of being exact —
  except inside ``versions_read_once()`` (the middleware wraps every GET and HEAD request
  in it, and an order is placed in it): there every group's version is read at the first
  look, in one query, and holds for the rest of the block, as a request that only reads
  sees the reference data of the moment it looked first.

On databases without the triggers (the SQLite default of ``make run``) nothing is kept:
``load()`` runs every time, which is correct and only slower.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from typing import Any, TypeVar

from django.db import connection

from core.sql import fetch_all, fetch_one

T = TypeVar("T")

_memo: dict[tuple[str, str, str], tuple[tuple[int, int], Any]] = {}
_READ = "(read)"  # not a group name
_read_once: ContextVar[dict[str, tuple[int, int]] | None] = ContextVar("refcache_read_once", default=None)

BUMP_FUNCTION = """
CREATE SEQUENCE IF NOT EXISTS core_reference_bump_seq;
CREATE OR REPLACE FUNCTION core_reference_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO core_referenceversion (name, counter, writer) VALUES (TG_ARGV[0], 1, nextval('core_reference_bump_seq'))
    ON CONFLICT (name) DO UPDATE SET counter = core_referenceversion.counter + 1, writer = nextval('core_reference_bump_seq');
    RETURN NULL;
END
$$;
"""


def reference_triggers(group: str, tables: Sequence[str]) -> tuple[str, str]:
    """SQL installing (and removing) the version triggers of ``group`` on ``tables``."""
    create = [BUMP_FUNCTION]
    drop = []
    for table in tables:
        name = f"{table}_refversion_{group}"
        create.append(f"DROP TRIGGER IF EXISTS {name} ON {table};")
        create.append(
            f"CREATE TRIGGER {name} AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION core_reference_bump('{group}');"
        )
        drop.append(f"DROP TRIGGER IF EXISTS {name} ON {table};")
    return "\n".join(create), "\n".join(drop)


def reference_version(group: str) -> tuple[int, int] | None:
    """The group's current version, or None where versions are not kept (not PostgreSQL)."""
    if connection.vendor != "postgresql":
        return None
    seen = _read_once.get()
    if seen is not None:
        if not seen:  # the block's first look reads every group's version (a handful of rows): one query, not one per group
            _remember(seen, fetch_all(_VERSIONS_SQL, []))
        return seen.get(group, (0, 0))
    row = fetch_one("SELECT counter, writer FROM core_referenceversion WHERE name = %s", [group])
    return (row[0], row[1]) if row else (0, 0)


def fetch_one_reading_versions(sql: str, params: Sequence) -> tuple | None:
    """``fetch_one(sql, params)``. Inside a ``versions_read_once()`` block that has not read
    its versions yet, they are read in the same statement (``sql`` wrapped with a lateral
    read of every group's version; when ``sql`` finds no row they are left for the next
    look). For a first query of requests that go on to read reference data (a device's
    key: every entitlement check looks its title up): a second query's ~0.4 ms of Python
    saved per request, and ~0.13 ms more than sending the two in pipeline mode did."""
    seen = _read_once.get()
    if connection.vendor != "postgresql" or seen is None or seen:
        return fetch_one(sql, params)
    row = fetch_one(_with_versions_sql(sql), params)
    if row is None:
        return None
    *row, names, counters, writers = row
    _remember(seen, list(zip(names or [], counters or [], writers or [])))
    return tuple(row)


@functools.lru_cache(maxsize=64)
def _with_versions_sql(sql: str) -> str:
    """``sql`` (one row at most) with every group's version in the same statement: one
    round trip without pipeline mode, whose set-up and sync cost ~0.2 ms of Python."""
    return (f"SELECT q.*, v.names, v.counters, v.writers FROM ({sql}) q CROSS JOIN LATERAL "
            f"(SELECT array_agg(name) AS names, array_agg(counter) AS counters, array_agg(writer) AS writers "
            f"FROM core_referenceversion) v")


_VERSIONS_SQL = "SELECT name, counter, writer FROM core_referenceversion"


def _remember(seen: dict[str, tuple[int, int]], versions: list[tuple]) -> None:
    seen.update({name: (counter, writer) for name, counter, writer in versions})
    seen[_READ] = (0, 0)  # marks the block's versions as read (even with no group bumped yet)


@contextlib.contextmanager
def versions_read_once() -> Iterator[None]:
    """Within the block, each group's version is read from the database once. Only for work
    that changes no reference data (a read-only request): a change it made would not be
    seen by its own later reads. Within such a block already, it changes nothing."""
    if _read_once.get() is not None:
        yield
        return
    token = _read_once.set({})
    try:
        yield
    finally:
        _read_once.reset(token)


def reference_cached(group: str, key: str, load: Callable[[], T]) -> T:
    """``load()``, or what it returned before if ``group`` has not changed since.

    What is returned is shared by every caller of the process: treat it as read-only.
    """
    version = reference_version(group)
    if version is None:
        return load()
    slot = (connection.settings_dict["NAME"], group, key)
    remembered = _memo.get(slot)
    if remembered is not None and remembered[0] == version:
        return remembered[1]
    value = load()
    _memo[slot] = (version, value)
    return value


def reference_forget() -> None:
    """Drop everything remembered (tests that swap databases)."""
    _memo.clear()
