"""Revenue recognition: moving recurring charges from deferred to recognized revenue, day
by day over the service period they pay for.

Rules (docs/revenue.md has the worked example):

- **Recurring charges** are invoiced to DEFERRED_REVENUE with a service period [start,
  end) and recognized daily: after day d the cumulative amount recognized is
  ``round_half_up(net × days elapsed / days in period)``; the last day takes the exact
  remainder, so the total equals the net to the cent.
- **PPV** is recognized when invoiced (Cr REVENUE_PPV at posting): the order is the
  delivery, the rental starts at once. One-time charges likewise (REVENUE_ONE_TIME).
- **Bundles**: a line whose product is a bundle is split across its components by
  standalone selling price (``catalogs.pricing.bundle_allocation_for``) the first time it
  is seen; each component is recognized on its own schedule. The split is stored
  (``RevenueAllocation``), so later price changes never move revenue already invoiced.
- **Credit notes** on a deferred line take the part not yet recognized from deferred
  revenue first and only the rest from recognized revenue (``deferred_credit_split``);
  recognition then stops recognizing what was credited: the amount due after day d is the
  schedule minus what was recognized minus what credit notes took from deferred revenue.

``revenue_recognize(through=)`` is idempotent (unique rows per line, component and day; a
re-run finds nothing due), catches up missed days (rows are split at month ends so the
waterfall puts revenue in the month it was earned), and posts one journal entry per
currency and run: Dr DEFERRED_REVENUE / Cr REVENUE_RECURRING.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Exists, Max, OuterRef, Q, QuerySet, Sum

from catalogs.models import ProductType
from catalogs.pricing import bundle_allocate, bundle_allocation_for
from core.exceptions import ApplicationError

from ..models import (
    CreditNoteLine,
    Invoice,
    InvoiceLine,
    JournalEntry,
    RevenueAllocation,
    RevenueRecognition,
)
from .ledger import Leg, journal_post

logger = logging.getLogger(__name__)

ZERO = Decimal("0.00")
CENT = Decimal("0.01")
DEFERRED, RECURRING = "DEFERRED_REVENUE", "REVENUE_RECURRING"
ISSUED = (Invoice.State.POSTED, Invoice.State.CANCELLED)
RECOGNIZED, CREDITED = RevenueRecognition.Kind.RECOGNIZED, RevenueRecognition.Kind.CREDITED
LOCK_NAME = "billing.revenue_recognition"
BATCH = 2000


def _money(value) -> Decimal:
    """A database sum as money: SQLite sums decimals as floats, so round back to the cent."""
    return Decimal(value or 0).quantize(CENT)


# --- the schedule ---------------------------------------------------------------------------

def scheduled_amount(*, net: Decimal, period_start: date, period_end: date, through: date) -> Decimal:
    """What the straight-line schedule has recognized after day ``through``:
    round_half_up(net × days elapsed / days in period), exactly ``net`` from the last day
    on. Computed in whole cents, so no rounding of an intermediate quotient can bias it."""
    days = (period_end - period_start).days
    elapsed = min(max((through - period_start).days + 1, 0), days)
    if elapsed == days:
        return net
    cents = int(net * 100) * elapsed
    quotient, remainder = divmod(cents, days)
    if 2 * remainder >= days:
        quotient += 1
    return (Decimal(quotient) / 100).quantize(CENT)


def _month_ends_between(after: date, through: date) -> list[date]:
    """The last days of months in (after, through], then ``through`` itself: the days a
    catch-up is split at, so each month gets the revenue of its own days."""
    days = []
    month_end = _month_end(after)
    while month_end < through:
        if month_end > after:
            days.append(month_end)
        month_end = _month_end(month_end + timedelta(days=1))
    days.append(through)
    return days


def _month_end(day: date) -> date:
    following = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return following - timedelta(days=1)


# --- allocations ----------------------------------------------------------------------------

def _line_product(line: InvoiceLine):
    return line.product or (line.subscription_service.product if line.subscription_service_id else None)


def _allocation_for(line: InvoiceLine) -> dict[int, Decimal]:
    """{component product pk: share of the line's net}: the bundle's components by
    standalone selling price, else the line's own product."""
    product = _line_product(line)
    if product is None:
        raise ApplicationError(f"Invoice line {line.pk} ({line.description}) names no product to recognize revenue for.",
                               code="deferred_line_without_product")
    if product.product_type.composition == ProductType.Composition.BUNDLE:
        return bundle_allocation_for(bundle=product, bundle_price=line.net)
    return {product.pk: line.net}


def revenue_allocations_ensure(*, lines: QuerySet[InvoiceLine]) -> list[str]:
    """Store the component split of every deferred line that has none yet; returns the
    problems (lines that cannot be split), which are left for Finance to fix."""
    missing = (lines.exclude(Exists(RevenueAllocation.objects.filter(invoice_line=OuterRef("pk"))))
               .select_related("product__product_type", "subscription_service__product__product_type"))
    problems, rows = [], []
    for line in missing.iterator(chunk_size=BATCH):
        try:
            split = _allocation_for(line)
        except ApplicationError as error:
            problems.append(error.message)
            continue
        rows += [RevenueAllocation(invoice_line=line, component_id=component, amount=amount) for component, amount in split.items()]
    RevenueAllocation.objects.bulk_create(rows, batch_size=BATCH, ignore_conflicts=True)
    return problems


# --- the job --------------------------------------------------------------------------------

@dataclass
class RecognitionResult:
    """What a run did: rows written, amount recognized per currency, its entries, and the
    lines it could not recognize (with the reason)."""

    through: date
    rows: int = 0
    recognized: dict[str, Decimal] = field(default_factory=dict)
    entries: list[JournalEntry] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@dataclass
class _Position:
    """One component of one line: its share, period and what has moved so far."""

    line_id: int
    component_id: int
    currency: str
    amount: Decimal
    period_start: date
    period_end: date
    recognized: Decimal = ZERO
    credited: Decimal = ZERO  # taken from deferred revenue by credit notes
    recognized_through: date | None = None


def _lock(*, shared: bool) -> None:
    """Recognition runs one at a time, and credit notes on deferred lines wait for a run
    (they read what it has recognized). PostgreSQL: a transaction-level advisory lock;
    SQLite serialises writers already."""
    if connection.vendor == "postgresql":
        function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {function}(hashtext(%s))", [LOCK_NAME])


def deferred_lines(*, through: date) -> QuerySet[InvoiceLine]:
    """Issued deferred lines whose service has started by ``through`` and that still have
    days to recognize (no recognition row on or after their last day or ``through``)."""
    done = RevenueRecognition.objects.filter(invoice_line=OuterRef("pk"), kind=RECOGNIZED).filter(
        Q(recognized_through__gte=through) | Q(recognized_through__gte=OuterRef("service_period_end") - timedelta(days=1)))
    return (InvoiceLine.objects.filter(revenue_ledger=DEFERRED, invoice__state__in=ISSUED, service_period_start__lte=through,
                                       service_period_end__isnull=False)
            .exclude(Exists(done)))


def _positions(lines: QuerySet[InvoiceLine]) -> list[_Position]:
    line_ids = lines.values("pk")
    positions = {
        (row["invoice_line"], row["component"]): _Position(
            row["invoice_line"], row["component"], row["invoice_line__invoice__currency"], row["amount"],
            row["invoice_line__service_period_start"], row["invoice_line__service_period_end"])
        for row in RevenueAllocation.objects.filter(invoice_line__in=line_ids).values(
            "invoice_line", "component", "amount", "invoice_line__invoice__currency", "invoice_line__service_period_start",
            "invoice_line__service_period_end")
    }
    moved = (RevenueRecognition.objects.filter(invoice_line__in=line_ids).values("invoice_line", "component", "kind")
             .annotate(total=Sum("amount"), last=Max("recognized_through")))
    for row in moved:
        position = positions.get((row["invoice_line"], row["component"]))
        if position is None:
            continue
        if row["kind"] == RECOGNIZED:
            position.recognized, position.recognized_through = _money(row["total"]), row["last"]
        else:
            position.credited = _money(row["total"])
    return sorted(positions.values(), key=lambda p: (p.line_id, p.component_id))


def _due_rows(position: _Position, through: date) -> Iterable[tuple[date, Decimal]]:
    """(recognized_through, amount) rows bringing the position up to date through
    ``through``: one per month end crossed, then the day itself; zero rows are skipped
    except the closing row on the last day, which marks the line done."""
    last_day = position.period_end - timedelta(days=1)
    target_day = min(through, last_day)
    after = position.recognized_through or position.period_start - timedelta(days=1)
    if target_day <= after:
        return
    recognized = position.recognized
    for day in _month_ends_between(after, target_day):
        target = scheduled_amount(net=position.amount, period_start=position.period_start, period_end=position.period_end,
                                  through=day) - position.credited
        amount = max(target - recognized, ZERO)
        if amount > 0 or day == last_day:
            recognized += amount
            yield day, amount


def revenue_recognize(*, through: date) -> RecognitionResult:
    """Recognize every deferred line's revenue due through the day ``through`` (inclusive):
    Dr DEFERRED_REVENUE / Cr REVENUE_RECURRING, one entry per currency. A re-run for the
    same day posts nothing; a run after missed days catches them up."""
    result = RecognitionResult(through=through)
    with transaction.atomic():
        _lock(shared=False)
        lines = deferred_lines(through=through)
        result.problems = revenue_allocations_ensure(lines=lines)
        rows_by_currency: dict[str, list[RevenueRecognition]] = defaultdict(list)
        for position in _positions(lines):
            for day, amount in _due_rows(position, through):
                rows_by_currency[position.currency].append(RevenueRecognition(
                    kind=RECOGNIZED, invoice_line_id=position.line_id, component_id=position.component_id,
                    recognized_through=day, amount=amount))
        for currency, rows in sorted(rows_by_currency.items()):
            total = sum((row.amount for row in rows), ZERO)
            entry = _recognition_entry(through=through, currency=currency, total=total) if total else None
            for row in rows:
                row.journal_entry = entry if row.amount else None
            RevenueRecognition.objects.bulk_create(rows, batch_size=BATCH)
            result.rows += len(rows)
            if entry is not None:
                result.recognized[currency] = total
                result.entries.append(entry)
    for problem in result.problems:
        logger.warning("Revenue recognition through %s skipped a line: %s", through, problem)
    return result


def _recognition_entry(*, through: date, currency: str, total: Decimal) -> JournalEntry:
    """The run's entry; numbered per day and currency, because a later run the same day
    (new invoices posted since) recognizes other lines."""
    prefix = f"recognition:{through.isoformat()}:{currency}:"
    run = JournalEntry.objects.filter(reference__startswith=prefix).count() + 1
    return journal_post(kind=JournalEntry.Kind.RECOGNITION, reference=f"{prefix}{run}", currency=currency,
                        legs=[Leg(DEFERRED, total), Leg(RECURRING, -total)],
                        description=f"Revenue recognized through {through.isoformat()} ({currency})")


# --- credit notes ---------------------------------------------------------------------------

@dataclass(frozen=True)
class ComponentCredit:
    """The part of a credit on a deferred line that one component gives back."""

    component_id: int
    from_deferred: Decimal
    from_revenue: Decimal


def deferred_credit_split(*, line: InvoiceLine, net: Decimal) -> list[ComponentCredit]:
    """Split a credit of ``net`` on a deferred line across its components (in proportion to
    what each has left) and, per component, into the part not yet recognized (taken from
    DEFERRED_REVENUE) and the rest (taken from REVENUE_RECURRING). Call it inside the credit
    note's transaction, after ``deferred_credit_lock``."""
    revenue_allocations_ensure(lines=InvoiceLine.objects.filter(pk=line.pk))
    allocation = dict(RevenueAllocation.objects.filter(invoice_line=line).values_list("component", "amount"))
    if not allocation:
        # No product to split by: the whole credit stays on the line's deferred balance.
        return [ComponentCredit(component_id=0, from_deferred=net, from_revenue=ZERO)]
    moved: dict[tuple[int, str], Decimal] = defaultdict(lambda: ZERO)
    rows = (RevenueRecognition.objects.filter(invoice_line=line).values("component", "kind")
            .annotate(amount=Sum("amount"), reversed=Sum("revenue_reversed")))
    for row in rows:
        moved[(row["component"], row["kind"])] += _money(row["amount"])
        moved[(row["component"], "REVERSED")] += _money(row["reversed"])
    left = {component: amount - moved[(component, CREDITED)] - moved[(component, "REVERSED")]
            for component, amount in allocation.items()}
    shares = bundle_allocate(bundle_price=net, components={c: max(amount, ZERO) for c, amount in left.items()})
    credits = []
    for component, share in sorted(shares.items()):
        deferred_left = allocation[component] - moved[(component, RECOGNIZED)] - moved[(component, CREDITED)]
        from_deferred = min(share, max(deferred_left, ZERO))
        credits.append(ComponentCredit(component, from_deferred, share - from_deferred))
    return credits


def deferred_credit_lock() -> None:
    """Wait for a running recognition job (credit notes do not block each other)."""
    _lock(shared=True)


def deferred_credit_record(*, credit_line: CreditNoteLine, credits: list[ComponentCredit], entry: JournalEntry, on: date) -> None:
    """Write what a credit note took from each component, so recognition stops
    recognizing it and the waterfall shows it."""
    RevenueRecognition.objects.bulk_create(
        RevenueRecognition(kind=CREDITED, invoice_line_id=credit_line.invoice_line_id, component_id=credit.component_id,
                           recognized_through=on, amount=credit.from_deferred, revenue_reversed=credit.from_revenue,
                           journal_entry=entry, credit_note_line=credit_line)
        for credit in credits if credit.component_id and (credit.from_deferred or credit.from_revenue)
    )


def recognition_positions(*, line: InvoiceLine) -> dict[int, dict[str, Decimal]]:
    """Per component of a line: its allocation, recognized, credited from deferred, revenue
    reversed and the deferred balance left (for the admin and tests)."""
    allocation = dict(RevenueAllocation.objects.filter(invoice_line=line).values_list("component", "amount"))
    summary = {component: {"allocated": amount, "recognized": ZERO, "credited": ZERO, "reversed": ZERO}
               for component, amount in allocation.items()}
    rows = (RevenueRecognition.objects.filter(invoice_line=line).values("component", "kind")
            .annotate(amount=Sum("amount"), reversed=Sum("revenue_reversed")))
    for row in rows:
        position = summary.setdefault(row["component"], {"allocated": ZERO, "recognized": ZERO, "credited": ZERO, "reversed": ZERO})
        position["recognized" if row["kind"] == RECOGNIZED else "credited"] += _money(row["amount"])
        position["reversed"] += _money(row["reversed"])
    for position in summary.values():
        position["deferred"] = position["allocated"] - position["recognized"] - position["credited"]
    return summary

