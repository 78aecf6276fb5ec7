"""Billing runs: every account of a scheme billed for a day, one invoice per account.

What a run bills for an account, on ``run_date`` (rules documented in docs/billing.md):

- **Recurring charges** of its termed services, per billing period of the subscription's
  billing term scheme (periods start on the scheme's billing day; monthly, quarterly or
  yearly). A pre-billed scheme bills in advance: every period not billed yet up to the end
  of the period containing ``run_date``; otherwise in arrears: the periods ended by then.
  A service that started mid-period pays for its days only (``catalogs.pricing.
  recurring_charge``: prorated by days, free-trial days waived, the subscription's
  promotion deducted); a service billed through ``end_date`` stops there (no refund of a
  period already billed in advance when it is cancelled).
- **One-time charges** added up to ``run_date`` and not billed yet.
- **Usage** (RATED records) before the end of ``run_date`` not billed yet.

Every (service, period) is billed once: ``BilledPeriod`` is unique per service and period
start, and an account's rows are read only after its row is locked, so a re-run or a
concurrent run of the same day creates nothing new.

The work is split into chunks of accounts (``BillingRunChunk``) that Celery workers claim
with ``FOR UPDATE SKIP LOCKED``. A chunk is billed in one transaction and written
set-based (a handful of bulk INSERTs for all its invoices, lines, journal entries and
postings, one block of gapless numbers), because posting invoices one by one costs ~20
queries each. Once committed, the invoices go to automatic collection (payments). If a worker dies, the chunk's transaction rolls back and the chunk stays
PENDING for the next worker: a run is resumed by dispatching it again.

An account that cannot be billed (no tax rate, no recurring rate, another currency) is
left out with its reason on the chunk; the run ends COMPLETED_WITH_ERRORS and a re-run
after the fix bills just those accounts.
"""

from __future__ import annotations

import functools
import itertools
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from time import monotonic as time_monotonic

from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.db.models import F, JSONField, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import AccountsReceivable, Classification
from catalogs.models import PricePlan, PricePlanRate, Product
from catalogs.pricing import PERIOD_MONTHS, months_add, price_plan_rate_for, promotion_applies_to, recurring_charge
from core.choices import Channel
from core.memory import cycle_collector_paused
from core.models import AuditEntry
from core.queueing import signature_queue, signature_queue_on_commit
from core.refcache import reference_cached
from core.services import audit_record, sequence_take, sequence_take_with
from core.sql import execute as sql_execute
from core.sql import execute_many as sql_execute_many
from core.sql import pipelined as sql_pipelined
from core.exceptions import TransitionNotAllowed, ValidationFailed
from core.validation import Errors, error_add, errors_raise
from subscriptions.models import Subscription, SubscriptionService

from ..models import (
    BilledPeriod, BillingRun, BillingRunChunk, BillingTermScheme, Invoice, InvoiceLine, JournalEntry, LedgerAccount,
    OneTimeCharge, Posting, PromotionGrant, TaxRate, UsageDetailRecord,
)
from ..selectors import billing_countries_for, billing_country_for
from .invoicing import _legs, _usage_line_description, invoices_collect_on_commit, revenue_ledger_for
from .taxes import line_amounts

CHUNK_ACCOUNTS = 500
SCHEME_MONTHS = {
    BillingTermScheme.Frequency.MONTHLY: 1,
    BillingTermScheme.Frequency.QUARTERLY: 3,
    BillingTermScheme.Frequency.YEARLY: 12,
}
State = BillingRun.State


class AccountNotBillable(Exception):
    """Why one account is left out of a run (the rest of its chunk is billed)."""


# --- periods ------------------------------------------------------------------------------

def billing_period_containing(*, scheme: BillingTermScheme, day: date) -> tuple[date, date]:
    """The scheme's billing period [start, end) that contains ``day``.

    Periods start on the billing day of every month (monthly), of January, April, July and
    October (quarterly) or of January (yearly).
    """
    return _period_containing(scheme.billing_frequency, scheme.billing_day, day)


@functools.lru_cache(maxsize=4096)
def _period_containing(frequency: str, billing_day: int, day: date) -> tuple[date, date]:
    """Pure and called for every service of a run: remembered."""
    months = SCHEME_MONTHS[frequency]
    start = day.replace(day=billing_day)
    if start > day:
        start = months_add(start, -1)
    start = months_add(start, -((start.month - 1) % months))
    return start, months_add(start, months)


def service_periods_due(*, scheme: BillingTermScheme, service_start: date, billed_through: date | None,
                        service_end: date | None, run_date: date, rate_period: str) -> list[tuple[date, date]]:
    """The [start, end) spans of a service still to bill on ``run_date``: from where billing
    stopped (or the service start) to the end of the current period (in advance) or the
    start of it (in arrears), cut at the billing periods, at the service's end, and at the
    rate's own period (a monthly rate on a quarterly scheme is charged month by month)."""
    current_start, current_end = billing_period_containing(scheme=scheme, day=run_date)
    stop = current_end if scheme.pre_bill else current_start
    if service_end is not None:
        stop = min(stop, service_end)
    start = billed_through or service_start
    spans = []
    while start < stop:
        _, period_end = billing_period_containing(scheme=scheme, day=start)
        end = min(period_end, stop, months_add(start, PERIOD_MONTHS[rate_period]))
        spans.append((start, end))
        start = end
    return spans


# --- what an account owes -----------------------------------------------------------------

@dataclass(slots=True)
class _Account:
    pk: int
    contact_id: int
    currency: str
    classification: object


@dataclass(slots=True)
class _Subscription:
    pk: int
    account_id: int
    billing_term_scheme: BillingTermScheme


@dataclass(slots=True)
class _Service:
    pk: int
    subscription_id: int
    product_id: int
    product: Product
    price_plan: PricePlan | None
    state: str
    start_date: date
    end_date: date | None


@dataclass
class PlannedLine:
    description: str
    product: Product
    unit_price: Decimal
    prices_include_tax: bool
    revenue_ledger: str
    supplied_on: date
    service: _Service | None = None
    period: tuple[date, date] | None = None
    udr: UsageDetailRecord | None = None
    one_time: OneTimeCharge | None = None


@dataclass
class AccountBill:
    account: _Account
    country: str
    subscription_id: int | None = None  # the invoice names it (instant usage billing); a run's invoice covers the account
    lines: list[PlannedLine] = field(default_factory=list)
    free_periods: list[tuple[_Service, tuple[date, date]]] = field(default_factory=list)
    free_udrs: list[UsageDetailRecord] = field(default_factory=list)
    free_one_time: list[OneTimeCharge] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.lines or self.free_periods or self.free_udrs or self.free_one_time)


def _billing_reference_load() -> tuple[dict[tuple[str, str], list[TaxRate]], dict[str, int]]:
    rates = defaultdict(list)
    for rate in TaxRate.objects.order_by("-valid_from"):
        rates[(rate.country, rate.tax_class)].append(rate)
    return dict(rates), dict(LedgerAccount.objects.values_list("code", "pk"))


class _TaxRates:
    """Tax rates by (country, class, day) and the ledger accounts' ids by code, remembered
    per process until finance changes one (``core.refcache``, group ``billing``: a trigger
    on both tables bumps its version)."""

    def __init__(self) -> None:
        self._rates, self.ledgers = reference_cached("billing", "rates_and_ledgers", _billing_reference_load)

    def for_line(self, country: str, product: Product, on: date) -> TaxRate:
        tax_class = product.product_type.classification
        for rate in self._rates.get((country, tax_class), ()):
            if rate.valid_from <= on and (rate.valid_until is None or rate.valid_until >= on):
                return rate
        raise AccountNotBillable(f"No tax rate for {product.product_type.get_classification_display()} in {country} on {on}; "
                                 "finance must add one before this can be invoiced.")


def _span_text(span: tuple[date, date]) -> str:
    last = span[1] - timedelta(days=1)
    return f"{span[0]:%d %b %Y} – {last:%d %b %Y}"


def _recurring_lines(bill: AccountBill, subscription: _Subscription, services: Iterable[_Service],
                     grants: Sequence[PromotionGrant], billed: dict[int, list[date]], run_date: date) -> None:
    scheme = subscription.billing_term_scheme
    for service in services:
        if service.start_date is None or service.state == SubscriptionService.State.DRAFT:
            continue
        rate = _recurring_rate(service, bill.account)
        if rate.price_plan.currency != bill.account.currency:
            raise AccountNotBillable(f"The price plan {rate.price_plan} is in {rate.price_plan.currency}, "
                                     f"the account in {bill.account.currency}.")
        starts = billed.get(service.pk, [])
        billed_through = max((end for _, end in starts), default=None)
        spans = service_periods_due(scheme=scheme, service_start=service.start_date, billed_through=billed_through,
                                    service_end=service.end_date, run_date=run_date, rate_period=rate.billing_period)
        for span in spans:
            grant, number = _grant_for(grants, service, span, starts)
            charge = recurring_charge(rate=rate, period_start=span[0], period_end=span[1], service_start=service.start_date,
                                      promotion=grant.promotion if grant else None, period_number=number)
            starts = [*starts, span]
            if charge.net == 0:
                bill.free_periods.append((service, span))
                continue
            notes = []
            if charge.trial:
                notes.append(f"free trial −{charge.trial}")
            if charge.discount:
                notes.append(f"{grant.promotion.name} −{charge.discount}")
            description = f"{service.product.name}, {_span_text(span)}"
            if charge.gross != rate.amount:
                description += f" (prorated {(span[1] - span[0]).days} days: {charge.gross})"
            if notes:
                description += f" ({'; '.join(notes)})"
            bill.lines.append(PlannedLine(
                description=description, product=service.product, unit_price=charge.net,
                prices_include_tax=rate.price_plan.prices_include_tax, revenue_ledger="DEFERRED_REVENUE",
                supplied_on=span[0], service=service, period=span))


def _recurring_rate(service: _Service, account: _Account) -> PricePlanRate:
    """The rate of the plan the service was sold on (its contracted price, kept when the
    customer is reclassified); a service recorded without a plan pays the rate on offer to
    the account now."""
    if service.price_plan is not None:
        rate = next((r for r in service.price_plan.rates.all()
                     if r.product_id == service.product_id and r.charge_type == PricePlanRate.ChargeType.RECURRING), None)
        if rate is None:
            raise AccountNotBillable(f"The price plan {service.price_plan} has no recurring rate for {service.product}.")
        return rate
    rate = price_plan_rate_for(product=service.product, classification=account.classification)
    if rate is None:
        raise AccountNotBillable(f"No effective price plan has a recurring rate for {service.product}.")
    return rate


def _grant_for(grants: Sequence[PromotionGrant], service: _Service, span: tuple[date, date],
               billed: Sequence[tuple[date, date]]) -> tuple[PromotionGrant | None, int]:
    """The oldest grant covering the service whose periods are not used up; promotions do
    not stack. Periods are counted per service from the first one starting on or after the
    grant's ``starts_on``."""
    for grant in grants:
        if grant.starts_on > span[0] or not promotion_applies_to(promotion=grant.promotion, product=service.product_id):
            continue
        number = 1 + sum(1 for start, _ in billed if start >= grant.starts_on)
        if grant.promotion.periods is None or number <= grant.promotion.periods:
            return grant, number
    return None, 1


def _usage_lines(bill: AccountBill, udrs: Iterable[UsageDetailRecord]) -> None:
    zone = timezone.get_current_timezone()  # once, not twice a record
    for udr in udrs:
        if udr.currency != bill.account.currency:
            raise AccountNotBillable(f"Usage record {udr.pk} is in {udr.currency}, the account in {bill.account.currency}.")
        if udr.amount == 0:
            bill.free_udrs.append(udr)
            continue
        local_at = udr.usage_at.astimezone(zone)
        bill.lines.append(PlannedLine(
            description=_usage_line_description(udr, local_at), product=udr.product, unit_price=udr.amount,
            prices_include_tax=True, revenue_ledger=revenue_ledger_for(udr.product), supplied_on=local_at.date(), udr=udr))


def _one_time_lines(bill: AccountBill, charges: Iterable[OneTimeCharge]) -> None:
    for charge in charges:
        if charge.currency != bill.account.currency:
            raise AccountNotBillable(f"The charge {charge} is in {charge.currency}, the account in {bill.account.currency}.")
        if charge.amount == 0:
            bill.free_one_time.append(charge)
            continue
        bill.lines.append(PlannedLine(
            description=charge.description, product=charge.product, unit_price=charge.amount,
            prices_include_tax=charge.prices_include_tax, revenue_ledger="REVENUE_ONE_TIME", supplied_on=charge.charged_on,
            one_time=charge))


def _end_of_day(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day + timedelta(days=1), time.min))


def _services_by_subscription(subscription_ids: Sequence[int]) -> dict[int, list[_Service]]:
    """The subscriptions' started services as light rows; their (few distinct) products and
    price plans with rates are read once and shared, not once per service."""
    rows = list(SubscriptionService.objects.filter(subscription_id__in=subscription_ids, start_date__isnull=False)
                .order_by("pk").values_list("pk", "subscription_id", "product_id", "price_plan_id", "state", "start_date",
                                            "end_date"))
    products = Product.objects.select_related("product_type").in_bulk({row[2] for row in rows})
    plans = PricePlan.objects.prefetch_related("rates").in_bulk({row[3] for row in rows if row[3]})
    for plan in plans.values():
        for rate in plan.rates.all():
            rate.price_plan = plan
    services = defaultdict(list)
    for pk, subscription_id, product_id, plan_id, state, start, end in rows:
        services[subscription_id].append(_Service(pk, subscription_id, product_id, products[product_id], plans.get(plan_id), state,
                                                  start, end))
    return services


def accounts_bill_plan(*, account_ids: Sequence[int], run_date: date, scheme: BillingTermScheme | None,
                       errors: dict[int, str]) -> list[AccountBill]:
    """What each account owes on ``run_date`` (read in a few queries for the whole chunk).
    Accounts that cannot be billed are left out, with the reason in ``errors``."""
    rows = AccountsReceivable.objects.filter(pk__in=account_ids).values_list("pk", "contact_id", "currency", "classification_id")
    rows = list(rows)
    classifications = Classification.objects.in_bulk({row[3] for row in rows})
    accounts = {pk: _Account(pk, contact, currency, classifications.get(classification))
                for pk, contact, currency, classification in rows}
    countries = billing_countries_for(contact_ids=[a.contact_id for a in accounts.values()])
    schemes = BillingTermScheme.objects.in_bulk()
    subscriptions = Subscription.objects.filter(account_id__in=accounts).exclude(state=Subscription.State.DRAFT)
    if scheme is not None:
        subscriptions = subscriptions.filter(billing_term_scheme=scheme)
    subscriptions = [_Subscription(pk, account_id, schemes[scheme_id]) for pk, account_id, scheme_id
                     in subscriptions.order_by("pk").values_list("pk", "account_id", "billing_term_scheme_id")]
    subscription_ids = [s.pk for s in subscriptions]
    services = _services_by_subscription(subscription_ids)
    billed = defaultdict(list)
    for service_id, start, end in (BilledPeriod.objects.filter(service__subscription_id__in=subscription_ids)
                                   .values_list("service_id", "period_start", "period_end")):
        billed[service_id].append((start, end))
    grants = defaultdict(list)
    for grant in (PromotionGrant.objects.filter(subscription_id__in=subscription_ids).select_related("promotion")
                  .prefetch_related("promotion__products").order_by("starts_on", "pk")):
        grants[grant.subscription_id].append(grant)
    usage_scope = Q(subscription_id__in=subscription_ids)
    if scheme is None:
        usage_scope |= Q(subscription__isnull=True, account_id__in=accounts)
    udrs = defaultdict(list)
    for udr in (UsageDetailRecord.objects.select_for_update(of=("self",))
                .filter(usage_scope, state=UsageDetailRecord.State.RATED, usage_at__lt=_end_of_day(run_date),
                        invoice_line__isnull=True)
                .select_related("product__product_type", "title").order_by("usage_at", "pk")):
        udrs[udr.account_id].append(udr)
    one_time = defaultdict(list)
    for charge in (OneTimeCharge.objects.select_for_update(of=("self",))
                   .filter(account_id__in=accounts, state=OneTimeCharge.State.PENDING, charged_on__lte=run_date)
                   .select_related("product__product_type").order_by("charged_on", "pk")):
        one_time[charge.account_id].append(charge)

    by_account = defaultdict(list)
    for subscription in subscriptions:
        by_account[subscription.account_id].append(subscription)
    bills = []
    for account_id in sorted(accounts):
        account = accounts[account_id]
        bill = AccountBill(account=account, country=countries[account.contact_id])
        try:
            for subscription in by_account[account_id]:
                _recurring_lines(bill, subscription, services[subscription.pk], grants[subscription.pk], billed, run_date)
            _one_time_lines(bill, one_time[account_id])
            _usage_lines(bill, udrs[account_id])
        except AccountNotBillable as problem:
            errors[account_id] = str(problem)
            continue
        except ValueError as problem:  # a price rule refused the period (e.g. a charge longer than its rate's period)
            errors[account_id] = f"The recurring charges cannot be computed: {problem}"
            continue
        if not bill.empty:
            bills.append(bill)
    return bills


# --- writing ------------------------------------------------------------------------------

@dataclass(slots=True)
class _Line:
    """An invoice line's amounts and where they go (what ``_legs`` reads)."""

    pk: int
    planned: PlannedLine
    position: int
    net: Decimal
    tax: Decimal
    gross: Decimal
    tax_rate: TaxRate
    revenue_ledger: str


@dataclass(slots=True)
class PostedInvoice:
    """An invoice ``bills_write`` wrote: what its callers read (a chunk posts ~1,600; a model
    instance each cost ~15 µs). ``usage_invoice_write`` turns its one into an ``Invoice``."""

    pk: int
    number: str
    account_id: int
    subscription_id: int | None
    currency: str
    tax_country: str
    issued_at: datetime
    net_total: Decimal
    tax_total: Decimal
    gross_total: Decimal
    journal_entry_id: int | None

    def as_invoice(self) -> Invoice:
        """The ``Invoice`` as a fetch of its row would give it."""
        invoice = Invoice(pk=self.pk, number=self.number, account_id=self.account_id, subscription_id=self.subscription_id,
                          currency=self.currency, tax_country=self.tax_country, state=Invoice.State.POSTED,
                          issued_at=self.issued_at, net_total=self.net_total, tax_total=self.tax_total,
                          gross_total=self.gross_total, journal_entry_id=self.journal_entry_id, created_at=self.issued_at)
        invoice._state.adding, invoice._state.db = False, "default"
        return invoice


def _reserve_ids(model, count: int) -> list[int]:
    """Primary keys for rows about to be inserted together (so lines can name their invoice
    before either is written): from the table's sequence on PostgreSQL; on SQLite, whose
    writers are serialised, after the largest id."""
    if count == 0:
        return []
    table = model._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)", [table, count])
            return [row[0] for row in cursor.fetchall()]
        cursor.execute(f'SELECT COALESCE(MAX("id"), 0) FROM "{table}"')
        first = cursor.fetchone()[0] + 1
    return list(range(first, first + count))


def _reserve_ids_many(counts: dict) -> dict:
    """``_reserve_ids`` for several tables in one round trip on PostgreSQL (an instant
    invoice needs one id from each of three sequences)."""
    if connection.vendor != "postgresql":
        return {model: _reserve_ids(model, count) for model, count in counts.items()}
    statement = _reserve_ids_statement(counts)
    return _reserved(counts, fetch_all(*statement) if statement else [])


def _reserve_ids_statement(counts: dict) -> tuple[str, list] | None:
    """The one query reserving ``counts`` ids on PostgreSQL: (sql, params), or None when no
    id is wanted. Its rows are (the model's position among those wanted, an id)."""
    wanted = [(model, count) for model, count in counts.items() if count]
    if not wanted:
        return None
    parts = " UNION ALL ".join(
        f"SELECT {n}, nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)" for n in range(len(wanted)))
    return parts, [value for model, count in wanted for value in (model._meta.db_table, count)]


def _reserved(counts: dict, rows: list[tuple]) -> dict:
    wanted = [model for model, count in counts.items() if count]
    ids = {model: [] for model in counts}
    for n, value in rows:
        ids[wanted[n]].append(value)
    return ids


_FEW_ROWS = 20  # up to this many rows an INSERT beats a COPY


def _insert(model, columns: Sequence[str], rows: list[tuple]) -> None:
    """Insert rows: COPY on PostgreSQL (the fast path), bulk_create elsewhere."""
    if not rows:
        return
    if connection.vendor != "postgresql":
        model.objects.bulk_create([model(**dict(zip(columns, row))) for row in rows], batch_size=500)
        return
    from psycopg.types.json import Jsonb

    fields = [model._meta.get_field(column) for column in columns]
    names = ", ".join(f'"{field.column}"' for field in fields)
    json = {n for n, field in enumerate(fields) if isinstance(field, JSONField)}  # an audit row's changes and reasons
    values = rows if not json else [[Jsonb(value) if n in json and isinstance(value, (dict, list)) else value
                                     for n, value in enumerate(row)] for row in rows]
    if len(rows) <= _FEW_ROWS:
        # An order's invoice: a COPY costs two round trips (start, then data and end); a
        # prepared INSERT, sent by executemany in pipeline mode, one for all its rows.
        sql_execute_many(f'INSERT INTO "{model._meta.db_table}" ({names}) VALUES ({", ".join(["%s"] * len(columns))})', values)
        return
    statement = f'COPY "{model._meta.db_table}" ({names}) FROM STDIN'
    started = time_monotonic()
    with connection.cursor() as cursor, cursor.cursor.copy(statement) as copy:
        for row in values:
            copy.write_row(row)
    if connection.queries_logged:  # psycopg's own cursor bypasses Django's query log: one entry, as for an INSERT
        connection.queries_log.append({"sql": f"{statement} ({len(values)} rows)", "time": f"{time_monotonic() - started:.3f}"})


def bills_write(*, bills: Sequence[AccountBill], run: BillingRun | None, issued_on: date, errors: dict[int, str],
                performed_by=None, channel: str = Channel.SYSTEM,
                udrs_billed_write: Callable[[list[int]], None] | None = None) -> list[PostedInvoice]:
    """Write the bills set-based: posted invoices with gapless numbers, their lines and
    ledger entries, the billed periods, and BILLED usage and one-time charges. Runs in the
    caller's transaction (the chunk's). Returns the invoices written (``PostedInvoice``).

    ``udrs_billed_write``, when given, marks the usage BILLED instead (called once, with the
    ids of every record billed, before the invoice numbers are taken): bulk rating writes
    a chunk's new records rated and BILLED in one statement rather than twice."""
    taxes = _TaxRates()
    now = timezone.now()
    invoice_type = ContentType.objects.get_for_model(Invoice)
    user = run.created_by if run else performed_by
    user_id = user.pk if user is not None and getattr(user, "is_authenticated", False) else None
    priced: list[tuple[AccountBill, list[_Line]]] = []
    for bill in bills:
        try:
            lines = [_line(bill, planned, taxes, position) for position, planned in enumerate(bill.lines, start=1)]
        except AccountNotBillable as problem:
            errors[bill.account.pk] = str(problem)
            continue
        priced.append((bill, lines))
    billed_udrs = [line.planned.udr.pk for _bill, lines in priced for line in lines if line.planned.udr is not None]
    billed_udrs += [udr.pk for bill, _lines in priced for udr in bill.free_udrs]
    if udrs_billed_write is not None:
        udrs_billed_write(billed_udrs)
        billed_udrs = []

    invoiced = [(bill, lines) for bill, lines in priced if lines]
    ledgers = taxes.ledgers
    legs_by_invoice = [_legs(bill.account.pk, lines, sign=1) for bill, lines in invoiced]
    counts = {Invoice: len(invoiced), InvoiceLine: sum(len(lines) for _, lines in invoiced),
              JournalEntry: sum(1 for legs in legs_by_invoice if legs)}
    series = {"name": f"INV-{issued_on.year}", "prefix": f"INV-{issued_on.year}-", "padding": 6, "count": len(invoiced)}
    if connection.vendor == "postgresql" and invoiced:
        # The ids and the gapless numbers in one round trip; the numbers' row lock (every
        # invoice waits for it until its transaction commits) is taken last.
        numbers, rows = sequence_take_with(**series, also=_reserve_ids_statement(counts))
        reserved = _reserved(counts, rows)
    else:
        numbers, reserved = sequence_take(**series), _reserve_ids_many(counts)
    invoice_ids, line_ids, entry_ids = reserved[Invoice], iter(reserved[InvoiceLine]), iter(reserved[JournalEntry])

    invoices, entries, postings, line_rows, periods, audits = [], [], [], [], [], []
    billed_charges = []
    for (bill, lines), number, invoice_id, legs in zip(invoiced, numbers, invoice_ids, legs_by_invoice):
        account_id = bill.account.pk
        entry_id = next(entry_ids) if legs else None
        if legs:
            entries.append((entry_id, JournalEntry.Kind.INVOICE, f"invoice:{number}", f"Invoice {number}", bill.account.currency,
                            account_id, now))
            postings += [(entry_id, ledgers[leg.ledger], leg.account, leg.amount) for leg in legs]
        net, tax, gross = (sum((getattr(line, name) for line in lines), Decimal("0.00")) for name in ("net", "tax", "gross"))
        invoice = PostedInvoice(pk=invoice_id, number=number, account_id=account_id, subscription_id=bill.subscription_id,
                                currency=bill.account.currency, tax_country=bill.country, issued_at=now, net_total=net,
                                tax_total=tax, gross_total=gross, journal_entry_id=entry_id)
        invoices.append(invoice)
        audits.append((invoice_type.pk, str(invoice_id), number, "post",
                       {"number": [None, number], "gross_total": [None, str(gross)], "billing_run": [None, run.pk if run else None]},
                       [], user_id, channel, now))
        for line in lines:
            line.pk = next(line_ids)
            planned = line.planned
            line_rows.append((
                line.pk, invoice_id, line.position, planned.description[:300], planned.product.pk,
                planned.udr.pk if planned.udr else None, Decimal("1"), planned.unit_price, planned.prices_include_tax, line.net,
                line.tax_rate.rate, line.tax_rate.name, line.tax, line.gross, line.revenue_ledger,
                planned.service.pk if planned.service else None, planned.period[0] if planned.period else None,
                planned.period[1] if planned.period else None))
            if planned.period is not None:
                periods.append((planned.service.pk, planned.period[0], planned.period[1], line.pk, run.pk if run else None, now))
            if planned.one_time is not None:
                planned.one_time.invoice_line_id, planned.one_time.state = line.pk, OneTimeCharge.State.BILLED
                billed_charges.append(planned.one_time)
    for bill, _lines in priced:
        periods += [(service.pk, span[0], span[1], None, run.pk if run else None, now) for service, span in bill.free_periods]
        for charge in bill.free_one_time:
            charge.state = OneTimeCharge.State.BILLED
            billed_charges.append(charge)

    # An order's few rows go as prepared INSERTs, all sent at once (one round trip); a
    # chunk's by COPY, table after table.
    with sql_pipelined(enabled=max(len(entries), len(postings), len(invoices), len(line_rows), len(periods)) <= _FEW_ROWS):
        _bills_insert(entries, postings, invoices, line_rows, periods, audits)
        _udrs_billed(billed_udrs)
    _one_time_charges_billed(billed_charges)
    invoices_collect_on_commit(invoices)
    return invoices


def _bills_insert(entries: list, postings: list, invoices: list[PostedInvoice], line_rows: list, periods: list, audits: list) -> None:
    _insert(JournalEntry, ("id", "kind", "reference", "description", "currency", "account_id", "posted_at"), entries)
    _insert(Posting, ("entry_id", "ledger_account_id", "account_id", "amount"), postings)
    _insert(Invoice, ("id", "number", "series", "account_id", "subscription_id", "currency", "tax_country", "state", "issued_at",
                      "net_total", "tax_total", "gross_total", "journal_entry_id", "created_at"),
            [(i.pk, i.number, "INV", i.account_id, i.subscription_id, i.currency, i.tax_country, Invoice.State.POSTED.value,
              i.issued_at, i.net_total, i.tax_total, i.gross_total, i.journal_entry_id, i.issued_at) for i in invoices])
    _insert(InvoiceLine, ("id", "invoice_id", "position", "description", "product_id", "udr_id", "quantity", "unit_price",
                          "price_includes_tax", "net", "tax_rate", "tax_name", "tax", "gross", "revenue_ledger",
                          "subscription_service_id", "service_period_start", "service_period_end"), line_rows)
    _insert(BilledPeriod, ("service_id", "period_start", "period_end", "invoice_line_id", "run_id", "created_at"), periods)
    _insert(AuditEntry, ("content_type_id", "object_pk", "object_repr", "action", "changes", "reasons", "performed_by_id",
                         "channel", "created_at"), audits)


def _udrs_billed(ids: list[int]) -> None:
    if not ids:
        return
    if connection.vendor == "postgresql":  # one array parameter (not an IN list of thousands bound on the client), prepared
        table = connection.ops.quote_name(UsageDetailRecord._meta.db_table)
        sql_execute(f"UPDATE {table} SET state = %s WHERE id = ANY(%s)", [UsageDetailRecord.State.BILLED.value, sorted(ids)])
        return
    UsageDetailRecord.objects.filter(pk__in=ids).update(state=UsageDetailRecord.State.BILLED)


def usage_invoice_write(*, subscription: Subscription, udrs: Sequence[UsageDetailRecord], performed_by=None,
                        channel: str = Channel.SYSTEM) -> Invoice | None:
    """Instant usage billing: one posted invoice naming the subscription for these RATED
    records (in the account's currency), written like a run's (~10 statements rather than
    ~30 for a draft built line by line and posted); None when all are free (BILLED, no
    invoice). An invoice that cannot be taxed is refused with the reason, nothing written."""
    account = subscription.account
    bill = AccountBill(account=account, country=billing_country_for(account=account), subscription_id=subscription.pk)
    _usage_lines(bill, udrs)
    errors: dict[int, str] = {}
    invoices = bills_write(bills=[bill], run=None, issued_on=timezone.localdate(), errors=errors, performed_by=performed_by,
                           channel=channel)
    if errors:
        raise ValidationFailed("The usage cannot be invoiced.", fields={"tax": [errors[account.pk]]})
    if not invoices:
        return None
    return invoices[0].as_invoice()


def _one_time_charges_billed(charges: list[OneTimeCharge]) -> None:
    """Mark the charges BILLED on their lines: one UPDATE ... FROM (VALUES ...) on
    PostgreSQL (a bulk_update's CASE per row costs more to build than to run)."""
    if not charges:
        return
    if connection.vendor != "postgresql":
        OneTimeCharge.objects.bulk_update(charges, ["invoice_line", "state"])
        return
    table = OneTimeCharge._meta.db_table
    values = ", ".join(["(%s, %s, %s)"] * len(charges))
    params = [value for charge in charges for value in (charge.pk, charge.invoice_line_id, charge.state)]
    with connection.cursor() as cursor:
        cursor.execute(f'UPDATE "{table}" SET "invoice_line_id" = v.line, "state" = v.state '
                       f'FROM (VALUES {values}) AS v(id, line, state) WHERE "{table}"."id" = v.id::bigint', params)


def _line(bill: AccountBill, planned: PlannedLine, taxes: _TaxRates, position: int) -> _Line:
    rate = taxes.for_line(bill.country, planned.product, planned.supplied_on)
    amounts = line_amounts(unit_price=planned.unit_price, quantity=Decimal("1"), rate=rate.rate,
                           prices_include_tax=planned.prices_include_tax)
    return _Line(pk=0, planned=planned, position=position, net=amounts.net, tax=amounts.tax, gross=amounts.gross, tax_rate=rate,
                 revenue_ledger=planned.revenue_ledger)


# --- runs ---------------------------------------------------------------------------------

def billing_run_create(*, run_date: date, scheme: BillingTermScheme | None = None, performed_by=None,
                       channel: str = Channel.CALL_CENTER) -> BillingRun:
    """A PENDING run for ``run_date``; the task planning and billing it starts after commit."""
    errors: Errors = {}
    if not isinstance(run_date, date):
        error_add(errors, "run_date", "Give the day to bill, e.g. 2026-12-01.")
    elif run_date > timezone.localdate():
        error_add(errors, "run_date", "A billing run cannot be for a day that has not come yet.")
    if scheme is not None and scheme.state != BillingTermScheme.State.EFFECTIVE:
        error_add(errors, "scheme", f"The billing term scheme {scheme} is {scheme.get_state_display().lower()}, not effective.")
    errors_raise(errors, "The billing run cannot be started.")
    from ..tasks import billing_run_start_task

    with transaction.atomic():
        run = BillingRun.objects.create(run_date=run_date, scheme=scheme, created_by=performed_by)
        audit_record(target=run, action="created", changes={"run_date": [None, str(run_date)],
                                                             "scheme": [None, str(scheme) if scheme else "every scheme"]},
                     performed_by=performed_by, channel=channel)
        signature_queue_on_commit(billing_run_start_task.s(run.pk), recovered_by="the billing-run resume (beat, every 5 minutes)")
    return run


def accounts_due(*, run: BillingRun, first: int | None = None, last: int | None = None) -> list[int]:
    """Ids of the accounts with something to bill on the run's day (optionally within an
    id range), found set-based so that a re-run over everything billed costs little:
    a service not billed up to the current period, a pending one-time charge, unbilled usage."""
    schemes = BillingTermScheme.objects.filter(pk=run.scheme_id) if run.scheme_id else BillingTermScheme.objects.all()
    in_range = Q()
    if first is not None:
        in_range &= Q(account_id__gte=first)
    if last is not None:
        in_range &= Q(account_id__lte=last)
    due: set[int] = set()
    billed_through = Subquery(BilledPeriod.objects.filter(service=OuterRef("pk")).order_by("-period_end").values("period_end")[:1])
    for scheme in schemes:
        current_start, current_end = billing_period_containing(scheme=scheme, day=run.run_date)
        stop = current_end if scheme.pre_bill else current_start
        services = (SubscriptionService.objects.filter(subscription__billing_term_scheme=scheme, start_date__isnull=False)
                    .exclude(state=SubscriptionService.State.DRAFT).exclude(subscription__state=Subscription.State.DRAFT)
                    .annotate(account_id=F("subscription__account_id"), through=Coalesce(billed_through, F("start_date")))
                    .filter(in_range, through__lt=stop)
                    .filter(Q(end_date__isnull=True) | Q(end_date__gt=F("through"))))
        due.update(services.values_list("account_id", flat=True))
    subscriptions = Subscription.objects.exclude(state=Subscription.State.DRAFT)
    if run.scheme_id:
        subscriptions = subscriptions.filter(billing_term_scheme_id=run.scheme_id)
    charges = OneTimeCharge.objects.filter(in_range, state=OneTimeCharge.State.PENDING, charged_on__lte=run.run_date)
    usage = UsageDetailRecord.objects.filter(in_range, state=UsageDetailRecord.State.RATED, usage_at__lt=_end_of_day(run.run_date),
                                             invoice_line__isnull=True)
    if run.scheme_id:
        charges = charges.filter(subscription__in=subscriptions)
        usage = usage.filter(subscription__in=subscriptions)
    due.update(charges.values_list("account_id", flat=True).distinct())
    due.update(usage.values_list("account_id", flat=True).distinct())
    return sorted(due)


def billing_run_plan(*, run: BillingRun, chunk_accounts: int = CHUNK_ACCOUNTS) -> BillingRun:
    """Split the run's accounts into chunks (once: planning a run again changes nothing)."""
    with transaction.atomic():
        run = BillingRun.objects.select_for_update().get(pk=run.pk)
        if run.state != State.PENDING:
            return run
        account_ids = accounts_due(run=run)
        chunks = [
            BillingRunChunk(run=run, first_account_id=ids[0], last_account_id=ids[-1], accounts=len(ids))
            for ids in (account_ids[i:i + chunk_accounts] for i in range(0, len(account_ids), chunk_accounts))
        ]
        BillingRunChunk.objects.bulk_create(chunks)
        run.state, run.started_at, run.accounts_total = State.RUNNING, timezone.now(), len(account_ids)
        run.save(update_fields=["state", "started_at", "accounts_total"])
    return run


def billing_run_chunk_bill(*, run: BillingRun) -> BillingRunChunk | None:
    """Claim one PENDING chunk of the run (skipping chunks other workers hold) and bill its
    accounts in one transaction. Returns the chunk, or None when none is left to claim."""
    with cycle_collector_paused(), transaction.atomic():  # a chunk's objects are short-lived (core.memory)
        chunk = (BillingRunChunk.objects.select_for_update(skip_locked=True)
                 .filter(run=run, state=BillingRunChunk.State.PENDING).order_by("first_account_id").first())
        if chunk is None:
            return None
        # Lock the accounts (in id order, so concurrent runs wait rather than deadlock), then
        # read what is billed already: a concurrent run's work is visible once it commits.
        candidates = accounts_due(run=run, first=chunk.first_account_id, last=chunk.last_account_id)
        account_ids = list(AccountsReceivable.objects.select_for_update().filter(pk__in=candidates).order_by("pk")
                           .values_list("pk", flat=True))
        errors: dict[int, str] = {}
        bills = accounts_bill_plan(account_ids=account_ids, run_date=run.run_date, scheme=run.scheme, errors=errors)
        invoices = bills_write(bills=bills, run=run, issued_on=timezone.localdate(), errors=errors)
        chunk.state, chunk.finished_at = BillingRunChunk.State.DONE, timezone.now()
        chunk.invoices_created = len(invoices)
        chunk.errors = [{"account": pk, "reason": reason} for pk, reason in sorted(errors.items())]
        chunk.save(update_fields=["state", "finished_at", "invoices_created", "errors"])
        BillingRun.objects.filter(pk=run.pk).update(
            accounts_done=F("accounts_done") + chunk.accounts, invoices_created=F("invoices_created") + len(invoices),
            invoiced_total=F("invoiced_total") + sum((invoice.gross_total for invoice in invoices), Decimal("0.00")),
            errors_count=F("errors_count") + len(errors))
    return chunk


def billing_run_finish(*, run: BillingRun) -> BillingRun:
    """Mark the run COMPLETED (or COMPLETED_WITH_ERRORS) once no chunk is left; called by
    every worker after its last chunk, the last one to commit finds none left."""
    with transaction.atomic():
        run = BillingRun.objects.select_for_update().get(pk=run.pk)
        if run.state != State.RUNNING or run.chunks.filter(state=BillingRunChunk.State.PENDING).exists():
            return run
        run.state = State.COMPLETED_WITH_ERRORS if run.errors_count else State.COMPLETED
        run.finished_at = timezone.now()
        run.save(update_fields=["state", "finished_at"])
        audit_record(target=run, action="completed", changes={"invoices_created": [None, run.invoices_created],
                                                               "invoiced_total": [None, str(run.invoiced_total)],
                                                               "errors": [None, run.errors_count]})
    return run


def billing_run_execute(*, run: BillingRun) -> BillingRun:
    """Bill chunks until none is left, then finish (one worker's loop; several may run it)."""
    run = billing_run_plan(run=run)
    while billing_run_chunk_bill(run=run) is not None:
        pass
    return billing_run_finish(run=run)


def billing_run_errors(*, run: BillingRun) -> list[dict]:
    """The accounts the run left out, with their reasons."""
    return list(itertools.chain.from_iterable(
        run.chunks.exclude(errors=[]).order_by("first_account_id").values_list("errors", flat=True)))


def billing_run_resume(*, run: BillingRun, performed_by=None, channel: str = Channel.SYSTEM) -> BillingRun:
    """Give a RUNNING run a worker again (after a worker died); chunks a live worker holds
    are skipped, so this never bills anything twice. Refused for a run that is not RUNNING.
    A person's resume is audited; the beat's routine ones (every 5 minutes) are not."""
    from ..tasks import billing_run_chunks_task

    if run.state != State.RUNNING:
        raise TransitionNotAllowed(f"{run} is {run.get_state_display().lower()}; only a running run is resumed.",
                                   code="billing_run_not_running")
    with transaction.atomic():
        if performed_by is not None:
            audit_record(target=run, action="resumed", performed_by=performed_by, channel=channel)
        signature_queue_on_commit(billing_run_chunks_task.s(run.pk), recovered_by="the billing-run resume (beat, every 5 minutes)")
    return run


STARTED_WITHIN = timedelta(minutes=2)


def billing_runs_resume() -> int:
    """Beat: resume every RUNNING run, and start again every PENDING run created more than
    two minutes ago (its start message was lost: a broker outage, a worker killed before
    planning). Planning happens once under the run's lock, so a second start plans nothing
    and its extra workers find no chunk to claim. Returns how many runs it gave a worker."""
    from ..tasks import billing_run_start_task

    runs = list(BillingRun.objects.filter(state=State.RUNNING))
    for run in runs:
        billing_run_resume(run=run)
    stalled = list(BillingRun.objects.filter(state=State.PENDING, created_at__lt=timezone.now() - STARTED_WITHIN)
                   .values_list("pk", flat=True))
    for run_pk in stalled:
        signature_queue(billing_run_start_task.s(run_pk), recovered_by="the next billing-run resume")
    return len(runs) + len(stalled)

