"""Bulk rating: price PENDING usage records in chunks, on as many workers as you like.

A chunk is claimed with ``SELECT ... FOR UPDATE SKIP LOCKED LIMIT n``: a worker locks the
rows it takes and every other worker skips them, so N workers rate N disjoint chunks in
parallel and no record is rated twice (the claim, the rating and the write are one
transaction; a worker that dies releases its rows for the next one).

Prices come from the one rating function (``catalogs.rating``): for each group of records
that share the account classification, the subscription's held services and the catalog
validity interval, ``usage_quotes_for`` chooses the catalog and usage services once, and
``usage_service_quote`` prices each record at its own instant (tiers by wall clock) without
a query. A record that cannot be priced is REJECTED with the rating function's reason (no
catalog, not in the catalog, the subscription lacks a required service, not a usage
service); nothing is priced silently.

The subscriptions a chunk touched are charged if their scheme's usage rules say so
("billed instantly" schemes invoice at once), counting their RATED records from earlier
chunks or orders with the chunk's. On PostgreSQL that happens in the chunk's own
transaction, all of them together, set-based, with the billing run's writer (one block of
invoice numbers, bulk INSERTs of invoices, lines, journal entries and postings), and the
chunk's results are written with one set-based ``UPDATE ... FROM unnest(...)`` (rows
fetched by primary key, in table order) in which the records invoiced now go from PENDING
straight to BILLED: claim, rate, charge and ledger commit together or not at all. On
SQLite the chunk is written one UPDATE per record and commits, then each subscription is
charged with ``usage_bill_if_due`` as an order is; so is, after the chunk, a subscription
the set-based path cannot bill (usage in another currency than its account's). Either way
each subscription gets one POSTED invoice for its usage and its own journal entry (the AR
leg names the customer's account). A crash between a SQLite chunk and its charging leaves
RATED usage that the next order, chunk or billing run bills.
"""

from __future__ import annotations

import functools
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import AccountsReceivable
from catalogs.models import ContentTitle, Product, UsageServiceCatalog
from catalogs.rating import RateQuote, operator_time_zone, rate_usage, usage_quotes_for, usage_service_quote
from core.choices import LifecycleState
from core.exceptions import ApplicationError
from core.memory import cycle_collector_paused
from core.sql import array_literal, fetch_all, fetch_together
from core.sql import execute as sql_execute
from subscriptions.models import Subscription, SubscriptionService

from ..models import BillingTermScheme, Invoice, UsageDetailRecord
from ..selectors import billing_countries_for
from .invoicing import _rules_met, usage_bill_if_due

State = UsageDetailRecord.State
# Records per claimed chunk. Each chunk pays fixed costs (the claim's and context queries,
# the commit and its deferred checks), so larger chunks rate faster — one worker on the
# benchmark (docs/benchmarks.md): 500 → 9,700 UDRs/s, 1,000 → ~10,000, 5,000 → 14,000 —
# while holding more row locks for longer (~0.15 s at 2,000) and redoing more after a crash.
DEFAULT_CHUNK = 2_000
MAX_RATE_REASON = UsageDetailRecord._meta.get_field("rate_reason").max_length
MAX_REJECTION = UsageDetailRecord._meta.get_field("rejection_reason").max_length


@dataclass(frozen=True)
class _Pending:
    pk: int
    account_id: int
    subscription_id: int | None
    product_id: int
    usage_at: datetime
    classification: str  # the account's, read with the claim (no second query per chunk)
    title_id: int | None


@dataclass
class ChunkResult:
    """The ids this worker rated and rejected in one chunk, and the subscriptions touched."""

    rated: list[int] = field(default_factory=list)
    rejected: list[int] = field(default_factory=list)
    subscription_ids: set[int] = field(default_factory=set)

    def __len__(self) -> int:
        return len(self.rated) + len(self.rejected)


@dataclass
class _Context:
    """What rating a chunk needs, loaded with a fixed number of queries."""

    products: dict[int, Product]
    held: dict[int, list[Product]]
    breakpoints: list[datetime]


def _claim(chunk_size: int) -> list[_Pending]:
    """Lock up to ``chunk_size`` PENDING records no other worker holds (oldest usage first;
    the (state, usage_at) index serves it), with their account's classification (only the
    records are locked: ``FOR UPDATE OF`` the records). On PostgreSQL a prepared statement
    (``core.sql``): the ORM's version cost 9 ms of a chunk's 100 compiling, binding and
    converting."""
    if connection.vendor == "postgresql":
        return [_Pending(*row) for row in fetch_all(_claim_sql(), [State.PENDING.value, chunk_size], binary=True)]
    rows = (UsageDetailRecord.objects.select_for_update(skip_locked=True, of=("self",)).filter(state=State.PENDING)
            .order_by("usage_at")
            .values_list("pk", "account_id", "subscription_id", "product_id", "usage_at", "account__classification__code",
                         "title_id")
            [:chunk_size])
    return [_Pending(*row) for row in rows]


@functools.cache
def _claim_sql() -> str:
    quote = connection.ops.quote_name
    udr, account = UsageDetailRecord._meta, AccountsReceivable._meta
    classification = account.get_field("classification").related_model._meta
    return (f"SELECT u.id, u.account_id, u.subscription_id, u.product_id, u.usage_at, c.code, u.title_id "
            f"FROM {quote(udr.db_table)} u "
            f"JOIN {quote(account.db_table)} a ON a.id = u.account_id "
            f"JOIN {quote(classification.db_table)} c ON c.id = a.classification_id "
            f"WHERE u.state = %s ORDER BY u.usage_at LIMIT %s FOR UPDATE OF u SKIP LOCKED")


@functools.cache
def _held_sql() -> str:
    quote = connection.ops.quote_name
    return (f"SELECT subscription_id, product_id FROM {quote(SubscriptionService._meta.db_table)} "
            f"WHERE subscription_id = ANY(%s) AND state = %s ORDER BY product_id")


def _context(pending: list[_Pending]) -> _Context:
    subscription_ids = {udr.subscription_id for udr in pending if udr.subscription_id}
    if connection.vendor == "postgresql":  # an array parameter, prepared: the IN list of ~1,000 cost 9 ms to bind
        services = fetch_all(_held_sql(), [sorted(subscription_ids), LifecycleState.EFFECTIVE.value])
    else:
        services = list(SubscriptionService.objects.filter(subscription_id__in=subscription_ids, state=LifecycleState.EFFECTIVE)
                        .order_by("product_id").values_list("subscription_id", "product_id"))
    # One Product object per product (held or used), shared by every record and subscription.
    products = Product.objects.select_related("product_type").in_bulk(
        {product_id for _subscription, product_id in services} | {udr.product_id for udr in pending})
    held: dict[int, list[Product]] = defaultdict(list)
    for subscription_id, product_id in services:
        held[subscription_id].append(products[product_id])
    bounds = UsageServiceCatalog.objects.filter(state=LifecycleState.EFFECTIVE).values_list("valid_from", "valid_until")
    return _Context(
        products=products,
        held=held,
        breakpoints=sorted({bound for pair in bounds for bound in pair if bound is not None}),
    )


def _group_key(udr: _Pending, ctx: _Context) -> tuple:
    """Records with the same key get the same catalog: same classification, same held
    services (None: no subscription, the condition is not checked) and no catalog's
    validity starts or ends between them."""
    held = None if udr.subscription_id is None else tuple(product.pk for product in ctx.held.get(udr.subscription_id, []))
    return udr.classification, held, bisect_right(ctx.breakpoints, udr.usage_at)


def _rejection_reason(udr: _Pending, ctx: _Context) -> str:
    """Why the rating function refuses this record, in its own words (rare: one record at a
    time, so the message is exact). Mirrors the order: a catalog whose required service the
    subscription does not hold is named as such."""
    product, classification = ctx.products[udr.product_id], udr.classification
    if not product.is_usage_service:
        return f"{product.code} is not a usage (pay-per-view) service."
    try:
        preview = rate_usage(product=product, at=udr.usage_at, classification=classification)
    except ApplicationError as refusal:
        return refusal.message
    if udr.subscription_id is None:
        return "The rating function refused the record."  # pragma: no cover - preview and batch agree
    held = ctx.held.get(udr.subscription_id, [])
    required = preview.required_services
    if required and not set(required) & set(held):
        names = " or ".join(str(service) for service in required)
        number = Subscription.objects.values_list("number", flat=True).get(pk=udr.subscription_id)
        return f"Subscription {number} does not hold an EFFECTIVE {names}, required to use {product}."
    try:
        rate_usage(product=product, at=udr.usage_at, classification=classification, subscription_services=held)
    except ApplicationError as refusal:
        return refusal.message
    return "The rating function refused the record."  # pragma: no cover


def _rate(pending: list[_Pending], ctx: _Context) -> dict[int, RateQuote | str]:
    """Each record's quote, or the reason it cannot be rated, by record pk."""
    groups: dict[tuple, list[_Pending]] = defaultdict(list)
    for udr in pending:
        groups[_group_key(udr, ctx)].append(udr)
    outcome: dict[int, RateQuote | str] = {}
    zone = operator_time_zone()
    for (classification, held_key, _interval), udrs in groups.items():
        held = None if held_key is None else ctx.held.get(udrs[0].subscription_id, [])
        products = [ctx.products[product_id] for product_id in {udr.product_id for udr in udrs}]
        quotes = usage_quotes_for(products=products, at=udrs[0].usage_at, classification=classification, subscription_services=held)
        fingerprints = {product_id: _fingerprint(quote) for product_id, quote in quotes.items()}
        for udr in udrs:
            chosen = quotes.get(udr.product_id)
            if chosen is None:
                outcome[udr.pk] = _rejection_reason(udr, ctx)
                continue
            local = udr.usage_at.astimezone(zone)
            key = (fingerprints[udr.product_id], local.hour, local.minute)
            quote = _SAME_MINUTE.get(key)
            if quote is None:
                quote = usage_service_quote(catalog=chosen.catalog, usage_service=chosen.usage_service, at=udr.usage_at)
                if len(_SAME_MINUTE) >= _SAME_MINUTE_MAX:
                    _SAME_MINUTE.clear()
                _SAME_MINUTE[key] = quote
            outcome[udr.pk] = quote
    return outcome


# A quote is a pure function of the catalog (name, currency, required services), the usage
# service (base rate, tiers), the operator's time zone and the wall-clock minute (tiers are
# whole minutes and the reason names HH:MM). So each distinct quote the rating function
# produces is kept, keyed by all of those *values* as loaded for the current chunk: a
# changed rate or tier makes a new key, never a stale price. Bounded; per process.
_SAME_MINUTE: dict[tuple, RateQuote] = {}
_SAME_MINUTE_MAX = 100_000


def _fingerprint(quote: RateQuote) -> tuple:
    catalog, service = quote.catalog, quote.usage_service
    tiers = tuple((tier.pk, tier.rate, tier.start_time, tier.end_time) for tier in service.tiers.all())
    return (quote.time_zone, catalog.pk, str(catalog), catalog.currency, tuple(product.pk for product in quote.required_services),
            service.pk, service.product_id, service.base_rate, tiers)


def _columns(outcome: dict[int, RateQuote | str]) -> list[tuple]:
    """One row per record: (pk, state, amount, currency, catalog, service, tier, reason, rejection)."""
    rows = []
    for pk, quote in sorted(outcome.items(), key=lambda item: item[0]):  # table order: fewer page visits
        if isinstance(quote, str):
            rows.append((pk, State.REJECTED.value, None, "", None, None, None, "", quote[:MAX_REJECTION]))
        else:
            rows.append((pk, State.RATED.value, quote.amount, quote.currency, quote.catalog.pk, quote.usage_service.pk,
                         quote.tier.pk if quote.tier else None, quote.reason[:MAX_RATE_REASON], ""))
    return rows


UPDATE_SQL = """
UPDATE {table} AS u SET state = v.state, amount = v.amount, currency = v.currency, catalog_id = v.catalog_id,
       usage_service_id = v.usage_service_id, tier_id = v.tier_id, rate_reason = v.rate_reason,
       rejection_reason = v.rejection_reason
FROM unnest(%s::bigint[], %s::varchar[], %s::numeric[], %s::varchar[], %s::bigint[], %s::bigint[], %s::bigint[],
            %s::varchar[], %s::varchar[])
     AS v(id, state, amount, currency, catalog_id, usage_service_id, tier_id, rate_reason, rejection_reason)
WHERE u.id = ANY(%s::bigint[]) AND u.id = v.id AND u.state = 'PENDING'
"""
# ``u.id = ANY(ids)`` makes PostgreSQL fetch the chunk's rows by primary key; joined on
# ``u.id = v.id`` alone it hashes every PENDING row of the table for each chunk, a cost
# that grows with the backlog (measured: 20 of 54 ms per chunk of 1,000 at 50,000 rows).


def _write(rows: list[tuple]) -> None:
    """All of a chunk's results in one set-based statement on PostgreSQL; row by row elsewhere."""
    if connection.vendor == "postgresql":
        # Each column one array in its text form (``array_literal``: a fifth of the cost of
        # psycopg adapting ~20,000 elements one by one), bound server-side and prepared.
        columns = [array_literal(column) for column in zip(*rows)]
        sql_execute(UPDATE_SQL.format(table=connection.ops.quote_name(UsageDetailRecord._meta.db_table)), [*columns, columns[0]])
        return
    for pk, state, amount, currency, catalog, service, tier, reason, rejection in rows:
        UsageDetailRecord.objects.filter(pk=pk, state=State.PENDING).update(
            state=state, amount=amount, currency=currency, catalog_id=catalog, usage_service_id=service, tier_id=tier,
            rate_reason=reason, rejection_reason=rejection)


def udr_rate_chunk(*, chunk_size: int = DEFAULT_CHUNK) -> ChunkResult:
    """Claim, rate and write one chunk (one transaction); bills nothing. Returns what this
    worker did: other workers running at the same time get disjoint chunks."""
    with transaction.atomic():
        pending = _claim(chunk_size)
        if not pending:
            return ChunkResult()
        outcome = _rate(pending, _context(pending))
        _write(_columns(outcome))
    return _tally(pending, outcome)


def _tally(pending: list[_Pending], outcome: dict[int, RateQuote | str]) -> ChunkResult:
    result = ChunkResult()
    for udr in pending:
        (result.rejected if isinstance(outcome[udr.pk], str) else result.rated).append(udr.pk)
        if udr.subscription_id and not isinstance(outcome[udr.pk], str):
            result.subscription_ids.add(udr.subscription_id)
    return result


def _usage_rule_schemes() -> dict[int, BillingTermScheme]:
    """The schemes with usage billing rules (none, when usage waits for the billing run):
    a handful, read once per chunk and shared by every subscription on them."""
    return {scheme.pk: scheme for scheme in BillingTermScheme.objects.filter(
        Q(max_unbilled_udrs__isnull=False) | Q(max_unbilled_amount__isnull=False))}


def udr_bill_due(*, subscription_ids) -> int:
    """Bill, one at a time as an order would (``usage_bill_if_due``), each subscription whose
    scheme's usage rules are met now; returns invoices made. What follows a chunk on SQLite,
    and on PostgreSQL a subscription the chunk's set-based charging could not bill (usage
    in another currency than its account's, no tax rate): there a chunk charges inside its
    own transaction (``_rate_and_charge_chunk``)."""
    schemes = _usage_rule_schemes()
    if not schemes or not subscription_ids:
        return 0
    subscriptions = (Subscription.objects.select_related("account", "billing_term_scheme")
                     .filter(pk__in=subscription_ids, billing_term_scheme_id__in=schemes).order_by("pk"))
    return sum(usage_bill_if_due(subscription=subscription) is not None for subscription in subscriptions)


def _bill_together(due: list[tuple[int, object, list]], *,
                   udrs_billed_write: Callable[[list[int]], None] | None = None) -> list[int]:
    """Invoice each (subscription pk, its account, its records due) in the caller's
    transaction, with the billing run's set-based writer (``runs.bills_write``: a block of
    gapless numbers, then a handful of bulk INSERTs for all invoices, lines, journal entries
    and postings, one UPDATE marking the usage BILLED) instead of ~25 queries per invoice.
    The outcome is what ``usage_bill_if_due`` gives: one POSTED invoice per subscription
    and its records, Dr AR (naming the customer's account) / Cr REVENUE_PPV / Cr
    TAX_PAYABLE per invoice, free usage BILLED without an invoice. ``udrs_billed_write``
    goes to the first ``bills_write``. Returns the subscriptions left for the one-by-one
    path (``udr_bill_due``)."""
    from .runs import AccountBill, AccountNotBillable, _usage_lines, bills_write

    countries = billing_countries_for(contact_ids=[account.contact_id for _pk, account, _records in due])
    bills, left = [], []
    for pk, account, records in due:
        bill = AccountBill(account=account, country=countries[account.contact_id], subscription_id=pk)
        try:
            _usage_lines(bill, records)
        except AccountNotBillable:
            left.append(pk)
            continue
        bills.append(bill)
    while bills:
        batch, bills = _one_per_account(bills)  # bills_write reports problems by account
        errors: dict[int, str] = {}
        bills_write(bills=batch, run=None, issued_on=timezone.localdate(), errors=errors, udrs_billed_write=udrs_billed_write)
        udrs_billed_write = None  # called once; a second batch's records are marked by bills_write
        left += [bill.subscription_id for bill in batch if bill.account.pk in errors]
    return left


@dataclass(slots=True)
class _Rated:
    """A record of the chunk being charged, as ``_usage_lines`` reads it: rated in memory,
    not yet written."""

    pk: int
    subscription_id: int
    product: Product
    usage_at: datetime
    amount: Decimal
    currency: str
    rate_reason: str
    title_id: int | None
    title: ContentTitle | None


def _rate_and_charge_chunk(chunk_size: int) -> tuple[ChunkResult, list[int]]:
    """PostgreSQL: claim, rate and charge one chunk in one transaction. Returns what this
    worker rated and the subscriptions left for the one-by-one path."""
    with transaction.atomic():
        pending = _claim(chunk_size)
        if not pending:
            return ChunkResult(), []
        ctx = _context(pending)
        outcome = _rate(pending, ctx)
        left = _charge_and_write(pending, outcome, ctx, _columns(outcome))
    return _tally(pending, outcome), left


def _charge_and_write(pending: list[_Pending], outcome: dict[int, RateQuote | str], ctx: _Context, rows: list[tuple]) -> list[int]:
    """Charge the chunk's subscriptions whose scheme's usage rules are met — counting their
    older RATED records with the chunk's — and write the chunk's results: one set-based
    UPDATE in which the records invoiced now go straight from PENDING to BILLED (rated and
    then billed, they were written twice and read back between). Returns the subscriptions
    left for the one-by-one path."""
    from .runs import _Account, _udrs_billed

    schemes = _usage_rule_schemes()
    new: dict[int, list[_Pending]] = defaultdict(list)
    for udr in pending:
        if udr.subscription_id and not isinstance(outcome[udr.pk], str):
            new[udr.subscription_id].append(udr)
    if not schemes or not new:
        _write(rows)
        return []
    subscriptions, older = fetch_together([
        (_due_subscriptions_sql(), [sorted(new), sorted(schemes)]),
        (_older_rated_sql(), [sorted(new), State.RATED.value, sorted(schemes)])])
    if not subscriptions:
        _write(rows)
        return []
    records: dict[int, list] = defaultdict(list)
    older_ids = {subscription_id for (subscription_id,) in older}
    if older_ids:
        for udr in _rated_to_bill(older_ids):
            records[udr.subscription_id].append(udr)
    titles = ContentTitle.objects.only("id", "title").in_bulk(
        {udr.title_id for row in subscriptions for udr in new[row[0]] if udr.title_id})
    due = []
    for pk, scheme_id, account_id, contact_id, currency in subscriptions:
        for udr in new[pk]:
            quote = outcome[udr.pk]
            records[pk].append(_Rated(pk=udr.pk, subscription_id=pk, product=ctx.products[udr.product_id], usage_at=udr.usage_at,
                                      amount=quote.amount, currency=quote.currency, rate_reason=quote.reason[:MAX_RATE_REASON],
                                      title_id=udr.title_id, title=titles.get(udr.title_id)))
        records[pk].sort(key=lambda udr: (udr.usage_at, udr.pk))  # the invoice's line order
        if _rules_met(schemes[scheme_id], records[pk]):
            due.append((pk, _Account(pk=account_id, contact_id=contact_id, currency=currency, classification=None), records[pk]))
    written = False

    def write(billed: list[int]) -> None:
        nonlocal written
        billed_set = set(billed)
        _write([(row[0], State.BILLED.value, *row[2:]) if row[0] in billed_set else row for row in rows])
        _udrs_billed(sorted(billed_set.difference(outcome)))  # older records, RATED before this chunk
        written = True

    left = _bill_together(due, udrs_billed_write=write) if due else []
    if not written:
        _write(rows)
    return left


@functools.cache
def _due_subscriptions_sql() -> str:
    quote = connection.ops.quote_name
    return (f"SELECT s.id, s.billing_term_scheme_id, a.id, a.contact_id, a.currency "
            f"FROM {quote(Subscription._meta.db_table)} s JOIN {quote(AccountsReceivable._meta.db_table)} a ON a.id = s.account_id "
            f"WHERE s.id = ANY(%s) AND s.billing_term_scheme_id = ANY(%s) ORDER BY s.id")


@functools.cache
def _older_rated_sql() -> str:
    """Which of the subscriptions on a scheme with usage rules have RATED records already
    (not those waiting for a billing run: their RATED backlog is not this chunk's to read
    or lock)."""
    quote = connection.ops.quote_name
    return (f"SELECT DISTINCT u.subscription_id FROM {quote(UsageDetailRecord._meta.db_table)} u "
            f"JOIN {quote(Subscription._meta.db_table)} s ON s.id = u.subscription_id "
            f"WHERE u.subscription_id = ANY(%s) AND u.state = %s AND s.billing_term_scheme_id = ANY(%s)")


# What charging reads of a record (the invoice line's text, amount, currency, day, product).
_BILLING_FIELDS = ("id", "account_id", "subscription_id", "product_id", "title_id", "usage_at", "amount", "currency",
                   "rate_reason", "state")


def _rated_to_bill(subscription_ids) -> list[UsageDetailRecord]:
    """The subscriptions' RATED, uninvoiced records, locked, oldest first: only the fields
    charging reads, and one shared product (with its type) and title object per distinct
    one — ``select_related`` built three model instances per record and parsed ten
    timestamps each (~0.25 s per 1,000 records)."""
    records = list(UsageDetailRecord.objects.select_for_update(of=("self",))
                   .filter(subscription_id__in=subscription_ids, state=State.RATED, invoice_line__isnull=True)
                   .only(*_BILLING_FIELDS).order_by("usage_at", "pk"))
    products = Product.objects.select_related("product_type").in_bulk({udr.product_id for udr in records})
    titles = ContentTitle.objects.in_bulk({udr.title_id for udr in records if udr.title_id})
    for udr in records:
        udr.product = products[udr.product_id]
        if udr.title_id:
            udr.title = titles[udr.title_id]
    return records


def _one_per_account(bills: list) -> tuple[list, list]:
    """(The first bill of each account, the others) — an account with two subscriptions due
    gets two invoices, in two calls."""
    batch, rest, seen = [], [], set()
    for bill in bills:
        (rest if bill.account.pk in seen else batch).append(bill)
        seen.add(bill.account.pk)
    return batch, rest


def udr_rating_claim_and_rate(*, chunk_size: int = DEFAULT_CHUNK, bill: bool = True) -> int:
    """Rate one chunk of PENDING records and bill what is due; returns how many records were
    rated or rejected (0: nothing was pending, or other workers hold the rest). On
    PostgreSQL rating and charging are one transaction (``_rate_and_charge_chunk``); on
    SQLite the chunk commits, then each subscription is billed as an order would be."""
    with cycle_collector_paused():  # a chunk's objects are short-lived and acyclic (core.memory)
        if bill and connection.vendor == "postgresql":
            result, left = _rate_and_charge_chunk(chunk_size)
            udr_bill_due(subscription_ids=left)
            return len(result)
        result = udr_rate_chunk(chunk_size=chunk_size)
        if bill and result.subscription_ids:
            udr_bill_due(subscription_ids=result.subscription_ids)
        return len(result)
