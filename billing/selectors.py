"""Reads of billing: the ledger (balances are derived from postings, never stored), tax
rates, invoices and credit notes."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection
from django.db.models import DecimalField, Q, QuerySet, Sum, Value, Window
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import AccountsReceivable, Address, PortalUser
from core.sql import RowPages, fetch_all, fetch_one, select_columns, split_row
from subscriptions.models import Subscription

from .models import CreditNote, Invoice, LedgerAccount, Posting, TaxRate

ZERO = Decimal("0.00")


def ar_balance(*, account: AccountsReceivable) -> Decimal:
    """What the customer owes (negative: credit in their favour): the sum of their
    receivable postings."""
    total = Posting.objects.filter(account=account, ledger_account__code="AR").aggregate(total=Sum("amount"))["total"]
    return (total or ZERO).quantize(ZERO)  # SQLite sums lose the scale; money is shown to the cent


def trial_balance() -> dict[str, Decimal]:
    """Balance per ledger account; the values always sum to zero."""
    rows = (LedgerAccount.objects.annotate(balance=Coalesce(Sum("postings__amount"), Value(ZERO), output_field=DecimalField()))
            .values_list("code", "balance"))
    return dict(rows)


@dataclass(frozen=True)
class StatementLine:
    posted_at: datetime
    kind: str
    reference: str
    description: str
    debit: Decimal
    credit: Decimal
    balance: Decimal


def account_statement(*, account: AccountsReceivable, limit: int | None = None) -> list[StatementLine]:
    """The customer's receivable postings, oldest first, with the running balance."""
    postings = (Posting.objects.filter(account=account, ledger_account__code="AR").select_related("entry")
                .annotate(running=Window(Sum("amount"), order_by=["entry__posted_at", "entry_id", "id"]))
                .order_by("entry__posted_at", "entry_id", "id"))
    lines = [
        StatementLine(p.entry.posted_at, p.entry.get_kind_display(), p.entry.reference, p.entry.description,
                      p.amount if p.amount > 0 else ZERO, -p.amount if p.amount < 0 else ZERO, p.running.quantize(ZERO))
        for p in postings
    ]
    return lines[-limit:] if limit else lines


# --- Taxes ---------------------------------------------------------------------------------

def billing_country_for(*, account: AccountsReceivable) -> str:
    """Where the customer is taxed: the country of their BILLING address, else the
    operator's ``DEFAULT_COUNTRY``."""
    row = fetch_one(_billing_country_sql(), [account.contact_id, Address.Kind.BILLING])  # every instant invoice asks
    return (row[0] if row else None) or settings.DEFAULT_COUNTRY


@functools.cache
def _billing_country_sql() -> str:
    return f"SELECT country FROM {Address._meta.db_table} WHERE contact_id = %s AND kind = %s ORDER BY id LIMIT 1"


def billing_countries_for(*, contact_ids) -> dict[int, str]:
    """``billing_country_for`` for many customers in one query: contact id → country. On
    PostgreSQL a prepared statement with one array parameter (a billing or rating chunk
    asks for ~1,600: the ORM's IN list cost ~15 ms to build and bind)."""
    countries = dict.fromkeys(contact_ids, settings.DEFAULT_COUNTRY)
    if connection.vendor == "postgresql":
        rows = fetch_all(_billing_countries_sql(), [list(countries), Address.Kind.BILLING.value])
    else:  # the first address of each wins, as in billing_country_for
        rows = (Address.objects.filter(contact_id__in=countries, kind=Address.Kind.BILLING)
                .order_by("-pk").values_list("contact_id", "country"))
    for contact_id, country in rows:
        countries[contact_id] = country or settings.DEFAULT_COUNTRY
    return countries


@functools.cache
def _billing_countries_sql() -> str:
    return (f"SELECT DISTINCT ON (contact_id) contact_id, country FROM {Address._meta.db_table} "
            f"WHERE contact_id = ANY(%s) AND kind = %s ORDER BY contact_id, id")


def tax_rate_for(*, country: str, product=None, tax_class: str | None = None, on: date) -> TaxRate | None:
    """The rate for ``product``'s class (its product type's classification, or
    ``tax_class``) in ``country`` on the day ``on``; None when finance defined none."""
    tax_class = tax_class or product.product_type.classification
    return (TaxRate.objects.filter(country=country.upper(), tax_class=tax_class, valid_from__lte=on)
            .filter(Q(valid_until__isnull=True) | Q(valid_until__gte=on)).order_by("-valid_from").first())


# --- Invoices and credit notes -------------------------------------------------------------

ISSUED = (Invoice.State.POSTED, Invoice.State.CANCELLED)


def invoice_list_for_user(*, user, state: str | None = None, issued_after: date | None = None,
                          issued_before: date | None = None) -> RowPages:
    """The portal user's issued invoices, newest first (drafts are the operator's work in
    progress and are not shown), each with its account and subscription: a page of them
    for the portal's list (``RowPages``). ``issued_after`` / ``issued_before`` are days
    (inclusive) in the operator's time zone; ``state`` narrows to POSTED or CANCELLED.

    The portal lists invoices on every visit, so the two statements (count, page) are
    hand-written and prepared (``core.sql``): the ORM spent ~2 ms of Python building them."""
    states = [state] if state else [str(value) for value in ISSUED]
    params: list = [user.pk, *states]
    if issued_after:
        params.append(_start_of(issued_after))
    if issued_before:
        params.append(_start_of(issued_before + timedelta(days=1)))
    where = _invoice_where(len(states), bool(issued_after), bool(issued_before))
    return RowPages(count_sql=_invoice_count_sql(where), page_sql=_invoice_page_sql(where), params=params,
                    build=_invoice_from_row)


def _start_of(day: date):
    """Midnight starting ``day`` in the operator's time zone, as the database compares it
    (SQLite keeps datetimes as UTC text)."""
    return connection.ops.adapt_datetimefield_value(timezone.make_aware(datetime.combine(day, time.min)))


_INVOICE_MODELS = (Invoice, AccountsReceivable, Subscription)


@functools.cache
def _invoice_where(states: int, after: bool, before: bool) -> str:
    portal_user = PortalUser._meta.db_table
    conditions = [f"a.contact_id = (SELECT p.contact_id FROM {portal_user} p WHERE p.user_id = %s)",
                  f"i.state IN ({', '.join(['%s'] * states)})"]
    if after:
        conditions.append("i.issued_at >= %s")
    if before:
        conditions.append("i.issued_at < %s")
    return (f"FROM {Invoice._meta.db_table} i JOIN {AccountsReceivable._meta.db_table} a ON a.id = i.account_id "
            f"LEFT JOIN {Subscription._meta.db_table} s ON s.id = i.subscription_id WHERE {' AND '.join(conditions)}")


@functools.cache
def _invoice_count_sql(where: str) -> str:
    return f"SELECT count(*) {where}"


@functools.cache
def _invoice_page_sql(where: str) -> str:
    columns = ", ".join(select_columns(model, alias) for model, alias in zip(_INVOICE_MODELS, ("i", "a", "s")))
    return f"SELECT {columns} {where} ORDER BY i.issued_at DESC, i.id DESC LIMIT %s OFFSET %s"


def _invoice_from_row(row) -> Invoice:
    invoice, account, subscription = split_row(row, _INVOICE_MODELS)
    Invoice._meta.get_field("account").set_cached_value(invoice, account)
    Invoice._meta.get_field("subscription").set_cached_value(invoice, subscription)
    return invoice


def invoice_list_for_account(*, account: AccountsReceivable, limit: int | None = 10) -> list[Invoice]:
    invoices = Invoice.objects.filter(account=account).order_by("-created_at", "-pk")
    return list(invoices if limit is None else invoices[:limit])


def invoice_with_lines(invoice_queryset: QuerySet[Invoice]) -> QuerySet[Invoice]:
    return invoice_queryset.select_related("account__contact", "subscription").prefetch_related("lines__product")


def invoice_credited(*, invoice: Invoice) -> dict[int, Decimal]:
    """Gross amount already credited per invoice line (line pk → amount)."""
    rows = (CreditNote.objects.filter(invoice=invoice).values("lines__invoice_line")
            .annotate(total=Sum("lines__gross")).values_list("lines__invoice_line", "total"))
    return {line: total for line, total in rows if line is not None}
