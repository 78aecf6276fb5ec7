"""The revenue waterfall: revenue recognized per month by type, the deferred balance at each
month end, and the classic matrix (rows: month invoiced, columns: month recognized).

Read from the billing documents and the recognition rows, not from the journal's posting
dates, so each month gets the revenue of its own service days even when the job caught up
late: PPV and one-time charges in the month they were invoiced (delivery), recurring
charges in the month of the days recognized, credit notes in the month they were issued.
Months are the operator's (``TIME_ZONE``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.db.models import DateField, QuerySet, Sum
from django.db.models.functions import TruncMonth

from .models import CreditNoteLine, Invoice, InvoiceLine, RevenueRecognition

ZERO = Decimal("0.00")
ISSUED = (Invoice.State.POSTED, Invoice.State.CANCELLED)
DEFERRED = "DEFERRED_REVENUE"
TYPE_BY_LEDGER = {"REVENUE_RECURRING": "recurring", "REVENUE_PPV": "ppv", "REVENUE_ONE_TIME": "one_time", DEFERRED: "recurring"}
REVENUE_TYPES = ("recurring", "ppv", "one_time")


@dataclass
class MonthRevenue:
    """One month of the report (``month`` is its first day)."""

    month: date
    recurring: Decimal = ZERO
    ppv: Decimal = ZERO
    one_time: Decimal = ZERO
    invoiced_deferred: Decimal = ZERO  # recurring charges invoiced into deferred revenue this month
    deferred_balance: Decimal = ZERO  # what is still deferred at the month's end

    @property
    def total(self) -> Decimal:
        return self.recurring + self.ppv + self.one_time


@dataclass
class Waterfall:
    currency: str
    months: list[MonthRevenue]
    matrix: dict[date, dict[date, Decimal]] = field(default_factory=dict)  # invoiced month → recognized month → amount

    @property
    def invoice_months(self) -> list[date]:
        return sorted(self.matrix)

    def row_total(self, invoice_month: date) -> Decimal:
        return sum(self.matrix.get(invoice_month, {}).values(), ZERO)


def _money(value) -> Decimal:
    """A database sum as money (SQLite sums decimals as floats)."""
    return Decimal(value or 0).quantize(ZERO)


def month_start(day: date) -> date:
    return day.replace(day=1)


def months_between(first: date, last: date) -> list[date]:
    months, month = [], month_start(first)
    while month <= last:
        months.append(month)
        month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    return months


def _month(expression: str) -> TruncMonth:
    return TruncMonth(expression, output_field=DateField())


def _grouped(queryset: QuerySet, *, recognized: str, invoiced: str, amount: str, ledger: str | None = None):
    """Rows of (recognized month, invoiced month, ledger or None, amount)."""
    keys = {"recognized_month": _month(recognized), "invoiced_month": _month(invoiced)}
    values = queryset.annotate(**keys).values("recognized_month", "invoiced_month", *([ledger] if ledger else []))
    for row in values.annotate(total=Sum(amount)).order_by():
        yield row["recognized_month"], row["invoiced_month"], row[ledger] if ledger else None, _money(row["total"])


def _revenue_movements(currency: str):
    """(recognized month, invoiced month, revenue type, amount) of every revenue movement,
    grouped by month (a few rows per month): negative for credit notes."""
    lines = InvoiceLine.objects.filter(invoice__currency=currency, invoice__state__in=ISSUED)
    at_invoicing = lines.exclude(revenue_ledger=DEFERRED)
    for month, invoiced, ledger, amount in _grouped(at_invoicing, recognized="invoice__issued_at", invoiced="invoice__issued_at",
                                                    amount="net", ledger="revenue_ledger"):
        yield month, invoiced, TYPE_BY_LEDGER.get(ledger, "one_time"), amount
    credits = CreditNoteLine.objects.filter(credit_note__currency=currency).exclude(revenue_ledger=DEFERRED)
    for month, invoiced, ledger, amount in _grouped(credits, recognized="credit_note__issued_at",
                                                    invoiced="invoice_line__invoice__issued_at", amount="net", ledger="revenue_ledger"):
        yield month, invoiced, TYPE_BY_LEDGER.get(ledger, "one_time"), -amount
    movements = RevenueRecognition.objects.filter(invoice_line__invoice__currency=currency)
    for month, invoiced, _none, amount in _grouped(movements.filter(kind=RevenueRecognition.Kind.RECOGNIZED),
                                                   recognized="recognized_through", invoiced="invoice_line__invoice__issued_at",
                                                   amount="amount"):
        yield month, invoiced, "recurring", amount
    for month, invoiced, _none, amount in _grouped(movements.filter(kind=RevenueRecognition.Kind.CREDITED),
                                                   recognized="recognized_through", invoiced="invoice_line__invoice__issued_at",
                                                   amount="revenue_reversed"):
        yield month, invoiced, "recurring", -amount


def _deferred_movements(currency: str):
    """(month, amount) changes of the deferred balance: + invoiced, − recognized, − credited."""
    lines = InvoiceLine.objects.filter(invoice__currency=currency, invoice__state__in=ISSUED, revenue_ledger=DEFERRED)
    for row in lines.annotate(month=_month("invoice__issued_at")).values("month").annotate(total=Sum("net")).order_by():
        yield row["month"], "invoiced", _money(row["total"])
    movements = (RevenueRecognition.objects.filter(invoice_line__invoice__currency=currency)
                 .annotate(month=_month("recognized_through")).values("month").annotate(total=Sum("amount")).order_by())
    for row in movements:
        yield row["month"], "out", _money(row["total"])


def revenue_waterfall(*, currency: str, first_month: date, last_month: date) -> Waterfall:
    """The report for the months from ``first_month`` through ``last_month`` (any day of
    each), in one currency."""
    months = months_between(first_month, last_month)
    by_month = {month: MonthRevenue(month=month) for month in months}
    matrix: dict[date, dict[date, Decimal]] = defaultdict(lambda: defaultdict(lambda: ZERO))
    for month, invoiced, revenue_type, amount in _revenue_movements(currency):
        if month in by_month and amount:
            setattr(by_month[month], revenue_type, getattr(by_month[month], revenue_type) + amount)
            matrix[invoiced][month] += amount
    changes: dict[date, Decimal] = defaultdict(lambda: ZERO)
    for month, kind, amount in _deferred_movements(currency):
        changes[month] += amount if kind == "invoiced" else -amount
        if kind == "invoiced" and month in by_month:
            by_month[month].invoiced_deferred += amount
    balance = sum((amount for month, amount in changes.items() if month < months[0]), ZERO)
    for month in months:
        balance += changes.get(month, ZERO)
        by_month[month].deferred_balance = balance
    cleaned = {invoiced: {month: amount for month, amount in row.items() if amount} for invoiced, row in matrix.items()}
    return Waterfall(currency=currency, months=[by_month[month] for month in months],
                     matrix={invoiced: row for invoiced, row in sorted(cleaned.items()) if row})
