"""Invoices, credit notes and usage billing: turning rated usage and charges into posted,
numbered documents and balanced ledger entries.

- ``invoice_create_draft`` / ``invoice_line_add`` build a DRAFT invoice; each line is
  taxed and rounded on its own (``taxes.line_amounts``) and the totals are the sums.
- ``invoice_post`` (the ``InvoicePost`` action, DRAFT → POSTED) takes the next number of a
  gapless series, posts Dr AR gross / Cr revenue net per line's ledger / Cr TAX_PAYABLE tax,
  and marks the usage records on it BILLED — all in one transaction, so a rollback gives
  the number back.
- ``credit_note_issue`` (the ``CreditNoteIssue`` action, on a POSTED invoice) gives back all
  of an invoice or part of some lines, reverses AR, revenue and tax for that part, and
  cancels the invoice once everything on it is credited. It never credits more than was
  invoiced. On a deferred (recurring) line it takes what is not yet recognized from
  DEFERRED_REVENUE and only the rest from REVENUE_RECURRING (``recognition``; docs/revenue.md).
- ``usage_bill_if_due`` applies the billing term scheme's usage billing rules right after
  an order (in the order's transaction): "max unbilled UDRs = 1" invoices every order at
  once.

Invoices and credit notes with nothing to pay are not posted to the ledger (it holds no
zero postings); see ``usage_bill_if_due`` for free (VIP) usage.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import connection, transaction
from django.db.models import Max, Sum
from django.utils import timezone

from accounts.models import AccountsReceivable
from catalogs.models import ContentTitle, Product, ProductType
from core.actions import AuditedAction
from core.choices import Channel
from core.exceptions import TransitionNotAllowed
from core.queueing import signature_queue_on_commit
from core.services import audit_record, sequence_next
from core.sql import fetch_all, select_columns, split_row
from core.validation import Errors, error_add, errors_raise

from ..models import CreditNote, CreditNoteLine, Invoice, InvoiceLine, JournalEntry, UsageDetailRecord
from ..selectors import billing_country_for, tax_rate_for
from . import recognition
from .ledger import Leg, journal_post
from .taxes import gross_split, line_amounts

ZERO = Decimal("0.00")
DRAFT, POSTED, CANCELLED = Invoice.State.DRAFT, Invoice.State.POSTED, Invoice.State.CANCELLED
REVENUE_LEDGERS = ("REVENUE_PPV", "REVENUE_RECURRING", "REVENUE_ONE_TIME", "DEFERRED_REVENUE")
COLLECT_BATCH = 100
REVENUE_BY_SERVICE_TYPE = {ProductType.ServiceType.USAGE: "REVENUE_PPV", ProductType.ServiceType.TERMED: "REVENUE_RECURRING"}


def revenue_ledger_for(product: Product | None) -> str:
    """Usage (PPV) → REVENUE_PPV, termed services → REVENUE_RECURRING, anything else →
    REVENUE_ONE_TIME."""
    if product is None:
        return "REVENUE_ONE_TIME"
    return REVENUE_BY_SERVICE_TYPE.get(product.product_type.service_type, "REVENUE_ONE_TIME")


def document_number(*, series: str, on: date) -> str:
    """The next number of a series for the year, e.g. INV-2026-000001 (gapless: call it in
    the transaction that issues the document)."""
    return sequence_next(name=f"{series}-{on.year}", prefix=f"{series}-{on.year}-", padding=6)


# --- drafts -------------------------------------------------------------------------------

def invoice_create_draft(*, account: AccountsReceivable, subscription=None, currency: str | None = None, series: str = "INV",
                         performed_by=None, channel: str = Channel.SYSTEM) -> Invoice:
    """An empty DRAFT invoice for the account, taxed where its billing address is."""
    errors: Errors = {}
    currency = (currency or account.currency or "").upper()
    if len(currency) != 3 or not currency.isalpha():
        error_add(errors, "currency", "Give a 3-letter currency code.")
    if subscription is not None and subscription.account_id != account.pk:
        error_add(errors, "subscription", f"The subscription {subscription} belongs to another account.")
    if not series.isalnum():
        error_add(errors, "series", "A series is letters and digits only, e.g. INV.")
    errors_raise(errors, "The invoice cannot be created.")
    with transaction.atomic():
        invoice = Invoice.objects.create(account=account, subscription=subscription, currency=currency, series=series.upper(),
                                         tax_country=billing_country_for(account=account))
        audit_record(target=invoice, action="created", changes={"account": [None, account.number], "currency": [None, currency]},
                     performed_by=performed_by, channel=channel)
    return invoice


def _decimal(value: Any, field: str, errors: Errors) -> Decimal | None:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        error_add(errors, field, "Enter a number.")
        return None
    if not number.is_finite():
        error_add(errors, field, "Enter a number.")
        return None
    return number


def _udr_problems(udr: UsageDetailRecord, invoice: Invoice) -> Iterable[str]:
    if udr.account_id != invoice.account_id:
        yield "The usage record belongs to another account."
    if udr.state != UsageDetailRecord.State.RATED:
        yield f"The usage record is {udr.state}; only RATED usage is invoiced."
    if udr.currency != invoice.currency:
        yield f"The usage record is in {udr.currency}, the invoice in {invoice.currency}."
    if InvoiceLine.objects.filter(udr=udr).exists():
        yield "The usage record is already on an invoice."


def invoice_line_add(
    *, invoice: Invoice, description: str, unit_price: Decimal, quantity: Decimal = Decimal("1"), product: Product | None = None,
    udr: UsageDetailRecord | None = None, tax_class: str | None = None, prices_include_tax: bool = True,
    revenue_ledger: str | None = None, supplied_on: date | None = None, subscription_service=None,
    service_period: tuple[date, date] | None = None, performed_by=None, channel: str = Channel.SYSTEM,
) -> InvoiceLine:
    """Add a charge to a DRAFT invoice. Tax is the rate for the product's class in the
    invoice's tax country on ``supplied_on`` (default today); ``prices_include_tax`` says
    whether ``unit_price`` is the gross (consumer prices, usage catalogs) or the net.
    ``service_period`` ([start, end), end excluded) is what a recurring charge pays for;
    revenue recognition spreads the line's net over it."""
    with transaction.atomic():
        locked = Invoice.objects.select_for_update().get(pk=invoice.pk)
        if locked.state != DRAFT:
            raise TransitionNotAllowed(f"The invoice {locked} is {locked.state}; lines are added to DRAFT invoices only.",
                                       code="invoice_not_draft")
        errors: Errors = {}
        description = (description or "").strip()
        if not description:
            error_add(errors, "description", "Describe the charge.")
        price = _decimal(unit_price, "unit_price", errors)
        if price is not None and (price < 0 or price != price.quantize(Decimal("0.0001"))):
            error_add(errors, "unit_price", "A unit price is zero or more, with at most 4 decimals.")
        amount = _decimal(quantity, "quantity", errors)
        if amount is not None and amount <= 0:
            error_add(errors, "quantity", "The quantity must be more than zero.")
        if product is None and tax_class is None:
            error_add(errors, "tax_class", "Give the product or its tax class.")
        ledger = revenue_ledger or revenue_ledger_for(product)
        if ledger not in REVENUE_LEDGERS:
            error_add(errors, "revenue_ledger", f"Choose one of {', '.join(REVENUE_LEDGERS)}.")
        if udr is not None:
            udr = UsageDetailRecord.objects.select_for_update().get(pk=udr.pk)
            for problem in _udr_problems(udr, locked):
                error_add(errors, "udr", problem)
        supplied_on = supplied_on or timezone.localdate()
        rate = None
        if product is not None or tax_class is not None:
            rate = tax_rate_for(country=locked.tax_country, product=product, tax_class=tax_class, on=supplied_on)
            if rate is None:
                which = tax_class or product.product_type.get_classification_display()
                error_add(errors, "tax", f"No tax rate for {which} in {locked.tax_country} on {supplied_on}; "
                                         "finance must add one before this can be invoiced.")
        if service_period is not None and not service_period[0] < service_period[1]:
            error_add(errors, "service_period", "A service period must end after it starts.")
        errors_raise(errors, "The invoice line is not valid.")
        amounts = line_amounts(unit_price=price, quantity=amount, rate=rate.rate, prices_include_tax=prices_include_tax)
        position = (locked.lines.aggregate(last=Max("position"))["last"] or 0) + 1
        line = InvoiceLine.objects.create(
            invoice=locked, position=position, description=description[:300], product=product, udr=udr, quantity=amount,
            unit_price=price, price_includes_tax=prices_include_tax, net=amounts.net, tax_rate=rate.rate, tax_name=rate.name,
            tax=amounts.tax, gross=amounts.gross, revenue_ledger=ledger, subscription_service=subscription_service,
            service_period_start=service_period[0] if service_period else None,
            service_period_end=service_period[1] if service_period else None,
        )
        locked.net_total += amounts.net
        locked.tax_total += amounts.tax
        locked.gross_total += amounts.gross
        locked.save(update_fields=["net_total", "tax_total", "gross_total"])
        audit_record(target=locked, action="line added", changes={f"line {position}": [None, f"{description} {amounts.gross}"]},
                     performed_by=performed_by, channel=channel)
    return line


# --- posting ------------------------------------------------------------------------------

def _legs(account: AccountsReceivable, lines: Iterable, *, sign: int) -> list[Leg]:
    """Dr AR gross / Cr revenue net per ledger / Cr TAX_PAYABLE tax (``sign`` = 1 for an
    invoice; -1, the mirror image, for a credit note). Zero legs are left out."""
    gross, tax = ZERO, ZERO
    revenue: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for line in lines:
        gross, tax = gross + line.gross, tax + line.tax
        revenue[line.revenue_ledger] += line.net
    legs = [Leg("AR", sign * gross, account)]
    legs += [Leg(code, -sign * net) for code, net in sorted(revenue.items())]
    legs.append(Leg("TAX_PAYABLE", -sign * tax))
    return [leg for leg in legs if leg.amount != 0]


class InvoicePost(AuditedAction):
    """DRAFT → POSTED: numbered, in the ledger, its usage BILLED. From then on the invoice
    is changed only by credit notes."""

    code, label = "post", "Post invoice"
    allowed_from = frozenset({DRAFT})
    target_state = POSTED

    def validate(self, invoice: Invoice, **params: Any):
        lines = list(invoice.lines.all())
        if not lines:
            yield "The invoice has no lines."
            return
        totals = (sum((line.net for line in lines), ZERO), sum((line.tax for line in lines), ZERO),
                  sum((line.gross for line in lines), ZERO))
        if totals != (invoice.net_total, invoice.tax_total, invoice.gross_total):
            yield "The invoice totals do not match its lines."
        if invoice.gross_total < 0:
            yield "The invoice total is negative; issue a credit note instead."
        udrs = UsageDetailRecord.objects.select_for_update(of=("self",)).filter(invoice_line__invoice=invoice)
        for udr in udrs.exclude(state=UsageDetailRecord.State.RATED):
            yield f"Usage record {udr.pk} is {udr.state}, no longer RATED."

    def process(self, invoice: Invoice, **params: Any) -> Invoice:
        invoice.issued_at = timezone.now()
        invoice.number = document_number(series=invoice.series, on=timezone.localdate(invoice.issued_at))
        legs = _legs(invoice.account, invoice.lines.all(), sign=1)
        if legs:
            invoice.journal_entry = journal_post(
                kind=JournalEntry.Kind.INVOICE, reference=f"invoice:{invoice.number}", legs=legs, currency=invoice.currency,
                account=invoice.account, description=f"Invoice {invoice.number}")
        invoice.state = POSTED
        invoice.save(update_fields=["number", "issued_at", "journal_entry", "state"])
        UsageDetailRecord.objects.filter(invoice_line__invoice=invoice).update(state=UsageDetailRecord.State.BILLED)
        invoices_collect_on_commit([invoice])
        return invoice

    def record(self, invoice, *, executed, reasons, performed_by, channel, changes):
        if executed:
            changes = {**changes, "number": [None, invoice.number], "gross_total": [None, str(invoice.gross_total)]}
        super().record(invoice, executed=executed, reasons=reasons, performed_by=performed_by, channel=channel, changes=changes)


def invoices_collect_on_commit(invoices: Iterable[Invoice]) -> None:
    """Automatic collection (payments charges the default method) of invoices just posted,
    once their transaction commits: one Celery message however many they are (a rating
    chunk posts ~1,600; sixteen messages of 100 cost it ~20 ms of ~500), which a worker
    splits into messages of ``COLLECT_BATCH`` invoices (``invoices_collect_task``)."""
    invoice_ids = [invoice.pk for invoice in invoices if invoice.gross_total > 0]
    if invoice_ids:
        # A broker outage leaves the invoices POSTED and open for dunning.
        from payments.tasks import invoice_collect_task, invoices_collect_task

        signature = invoice_collect_task.s(invoice_ids[0]) if len(invoice_ids) == 1 else invoices_collect_task.s(invoice_ids)
        signature_queue_on_commit(signature, recovered_by="dunning")


def invoice_post(*, invoice: Invoice, performed_by=None, channel: str = Channel.SYSTEM) -> Invoice:
    """Post a DRAFT invoice (raises ActionRejected with every reason)."""
    return InvoicePost().execute(invoice, performed_by=performed_by, channel=channel)


# --- credit notes -------------------------------------------------------------------------

@dataclass(frozen=True)
class _Credit:
    line: InvoiceLine
    gross: Decimal
    net: Decimal
    tax: Decimal

    @property
    def revenue_ledger(self) -> str:
        return self.line.revenue_ledger


def _credited_so_far(invoice: Invoice) -> dict[int, tuple[Decimal, Decimal, Decimal]]:
    """(gross, net, tax) already credited per invoice line pk."""
    rows = (CreditNoteLine.objects.filter(invoice_line__invoice=invoice).values("invoice_line")
            .annotate(gross=Sum("gross"), net=Sum("net"), tax=Sum("tax")))
    return {row["invoice_line"]: (row["gross"], row["net"], row["tax"]) for row in rows}


def _credits(invoice: Invoice, lines: Mapping | None) -> tuple[list[_Credit], list[str]]:
    """What the request would credit, line by line, and every problem with it. A line
    credited up to its remaining amount gets exactly its remaining net and tax, so a
    series of partial credits never loses or invents a cent."""
    invoice_lines = {line.pk: line for line in invoice.lines.all()}
    done = _credited_so_far(invoice)

    def remaining(line: InvoiceLine) -> tuple[Decimal, Decimal, Decimal]:
        gross, net, tax = done.get(line.pk, (ZERO, ZERO, ZERO))
        return line.gross - gross, line.net - net, line.tax - tax

    problems: list[str] = []
    if lines is None:
        asked = {pk: remaining(line)[0] for pk, line in invoice_lines.items() if remaining(line)[0] > 0}
    else:
        asked = {}
        for key, value in lines.items():
            pk = key.pk if isinstance(key, InvoiceLine) else key
            if pk not in invoice_lines:
                problems.append(f"Line {key} is not a line of invoice {invoice}.")
                continue
            errors: Errors = {}
            amount = _decimal(value, "amount", errors)
            if amount is None or amount <= 0 or amount != amount.quantize(Decimal("0.01")):
                problems.append(f"Line {invoice_lines[pk].position}: the amount to credit must be more than zero, in cents.")
                continue
            asked[pk] = amount
    credits = []
    for pk, gross in sorted(asked.items()):
        line = invoice_lines[pk]
        left_gross, left_net, left_tax = remaining(line)
        if gross > left_gross:
            problems.append(f"Line {line.position} ({line.description}): {gross} asked, only {left_gross} left to credit.")
        elif gross == left_gross:
            credits.append(_Credit(line, gross, left_net, left_tax))
        else:
            # Rounded partial credits could otherwise take more tax (or net) than the line
            # has left; keep both within what is left, still adding up to the gross.
            tax = max(min(gross_split(gross=gross, rate=line.tax_rate).tax, left_tax), gross - left_net)
            credits.append(_Credit(line, gross, gross - tax, tax))
    if not credits and not problems:
        problems.append(f"Nothing is left to credit on invoice {invoice}.")
    return credits, problems


def _deferred_credit_splits(credits: list[_Credit]) -> dict[int, list[recognition.ComponentCredit]]:
    """For credits on deferred (recurring) lines: per component, the part not yet
    recognized (from DEFERRED_REVENUE) and the part already recognized (from
    REVENUE_RECURRING). Waits for a running recognition job so both read the same state."""
    deferred = [c for c in credits if c.revenue_ledger == recognition.DEFERRED]
    if not deferred:
        return {}
    recognition.deferred_credit_lock()
    return {c.line.pk: recognition.deferred_credit_split(line=c.line, net=c.net) for c in deferred}


def _credit_legs(account: AccountsReceivable, credits: list[_Credit],
                 deferred: Mapping[int, list[recognition.ComponentCredit]]) -> list[Leg]:
    """The mirror of the invoice's legs: Cr AR gross / Dr revenue net / Dr TAX_PAYABLE tax,
    except that a deferred line debits DEFERRED_REVENUE only for what is not yet recognized
    and REVENUE_RECURRING for the rest."""
    gross, tax = ZERO, ZERO
    revenue: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for credit in credits:
        gross, tax = gross + credit.gross, tax + credit.tax
        if credit.line.pk in deferred:
            for part in deferred[credit.line.pk]:
                revenue[recognition.DEFERRED] += part.from_deferred
                revenue[recognition.RECURRING] += part.from_revenue
        else:
            revenue[credit.revenue_ledger] += credit.net
    legs = [Leg("AR", -gross, account), *(Leg(code, net) for code, net in sorted(revenue.items())), Leg("TAX_PAYABLE", tax)]
    return [leg for leg in legs if leg.amount != 0]


class CreditNoteIssue(AuditedAction):
    """A credit note on a POSTED invoice; when everything on it is credited the invoice
    becomes CANCELLED (the only way an invoice is cancelled)."""

    code, label = "credit", "Issue credit note"
    allowed_from = frozenset({POSTED})

    def validate(self, invoice: Invoice, *, reason: str = "", lines: Mapping | None = None, **params: Any):
        if not (reason or "").strip():
            yield "Give the reason for the credit note."
        _credits_wanted, problems = _credits(invoice, lines)
        yield from problems

    def process(self, invoice: Invoice, *, reason: str, lines: Mapping | None = None, issued_by=None, **params: Any) -> Invoice:
        credits, _problems = _credits(invoice, lines)
        issued_at = timezone.now()
        number = document_number(series="CN", on=timezone.localdate(issued_at))
        deferred = _deferred_credit_splits(credits)
        entry = journal_post(kind=JournalEntry.Kind.CREDIT_NOTE, reference=f"credit_note:{number}",
                             legs=_credit_legs(invoice.account, credits, deferred), currency=invoice.currency,
                             account=invoice.account, description=f"Credit note {number} on invoice {invoice.number}")
        note = CreditNote.objects.create(
            number=number, invoice=invoice, account=invoice.account, currency=invoice.currency, reason=reason.strip()[:500],
            issued_at=issued_at, issued_by=issued_by if getattr(issued_by, "is_authenticated", False) else None,
            net_total=sum((c.net for c in credits), ZERO), tax_total=sum((c.tax for c in credits), ZERO),
            gross_total=sum((c.gross for c in credits), ZERO), journal_entry=entry,
        )
        credit_lines = CreditNoteLine.objects.bulk_create(
            CreditNoteLine(credit_note=note, invoice_line=c.line, description=c.line.description, net=c.net,
                           tax_rate=c.line.tax_rate, tax=c.tax, gross=c.gross, revenue_ledger=c.line.revenue_ledger)
            for c in credits
        )
        for credit_line in credit_lines:
            if credit_line.invoice_line_id in deferred:
                recognition.deferred_credit_record(credit_line=credit_line, credits=deferred[credit_line.invoice_line_id],
                                                   entry=entry, on=timezone.localdate(issued_at))
        credited = CreditNoteLine.objects.filter(invoice_line__invoice=invoice).aggregate(total=Sum("gross"))["total"]
        if credited == invoice.gross_total:
            invoice.state = CANCELLED
            invoice.save(update_fields=["state"])
        invoice.issued_credit_note = note
        return invoice

    def record(self, invoice, *, executed, reasons, performed_by, channel, changes):
        note = getattr(invoice, "issued_credit_note", None)
        if executed and note is not None:
            changes = {**changes, "credit_note": [None, note.number], "credited": [None, str(note.gross_total)]}
        super().record(invoice, executed=executed, reasons=reasons, performed_by=performed_by, channel=channel, changes=changes)


def credit_note_issue(*, invoice: Invoice, reason: str, lines: Mapping | None = None, performed_by=None,
                      channel: str = Channel.CALL_CENTER) -> CreditNote:
    """Credit a POSTED invoice: all of what is left (``lines=None``) or ``{invoice line (or
    its pk): gross amount}``. Raises ActionRejected with every reason (a DRAFT or CANCELLED
    invoice, more than is left on a line, no reason given) and changes nothing then."""
    # ``issued_by``: Action.execute keeps ``performed_by`` for the audit row; the note is signed too.
    invoice = CreditNoteIssue().execute(invoice, performed_by=performed_by, channel=channel, reason=reason, lines=lines,
                                        issued_by=performed_by)
    return invoice.issued_credit_note


# --- usage billing ------------------------------------------------------------------------

def _usage_line_description(udr: UsageDetailRecord, local_at: datetime | None = None) -> str:
    """The movie (or service), when in the operator's time zone (``local_at``, if the caller
    has it), and why it cost what it did."""
    what = udr.title.title if udr.title_id else udr.product.name
    when = (local_at or timezone.localtime(udr.usage_at)).strftime("%Y-%m-%d %H:%M")
    return f"{what} ({when}) — {udr.rate_reason}" if udr.rate_reason else f"{what} ({when})"


def _rules_met(scheme, udrs: list[UsageDetailRecord]) -> bool:
    if scheme.max_unbilled_udrs is not None and len(udrs) >= scheme.max_unbilled_udrs:
        return True
    amount = sum((udr.amount for udr in udrs), Decimal("0"))
    return scheme.max_unbilled_amount is not None and amount >= scheme.max_unbilled_amount


def usage_bill_if_due(*, subscription, performed_by=None, channel: str = Channel.SYSTEM) -> Invoice | None:
    """Invoice the subscription's unbilled (RATED) usage now if its billing term scheme's
    usage billing rules say so; returns the posted invoice, or None.

    Called by the order in the order's transaction, right after the UDR is written, so the
    order, its invoice and its ledger entry commit together or not at all. One line per
    usage record (the movie, when, and why it cost what it did); usage catalog rates
    include tax. Free usage (a VIP's €0.00 order) is not invoiced: when everything due is
    free, the records are marked BILLED with no invoice — there is nothing to pay, no
    document to send, and no number is used; free records due together with paid ones are
    BILLED without a line on that invoice (it lists what is paid for).
    """
    scheme = subscription.billing_term_scheme
    if scheme is None or (scheme.max_unbilled_udrs is None and scheme.max_unbilled_amount is None):
        return None
    # No savepoint of its own (two round trips on every order): nothing between here and
    # the caller's transaction or savepoint (the order's action) catches an error, so an
    # error here undoes the whole order as it would with one.
    with transaction.atomic(savepoint=False):
        udrs = _unbilled_usage_locked(subscription)
        if not udrs or not _rules_met(scheme, udrs):
            return None
        # One invoice per currency (an account's catalogs normally share one).
        invoice = None
        for currency in sorted({udr.currency for udr in udrs}):
            invoice = _usage_invoice(subscription, [udr for udr in udrs if udr.currency == currency], performed_by, channel) or invoice
        return invoice


def _unbilled_usage_locked(subscription) -> list[UsageDetailRecord]:
    """The subscription's RATED records not on an invoice yet, oldest first, locked, each with
    its product (and product type) and title: one prepared query (``core.sql``), as every
    order on an instantly billed scheme asks it."""
    models = (UsageDetailRecord, Product, ProductType, ContentTitle)
    udrs = []
    for row in fetch_all(_unbilled_usage_sql(connection.vendor), [subscription.pk, UsageDetailRecord.State.RATED]):
        udr, product, product_type, title = split_row(row, models)
        Product._meta.get_field("product_type").set_cached_value(product, product_type)
        UsageDetailRecord._meta.get_field("product").set_cached_value(udr, product)
        UsageDetailRecord._meta.get_field("title").set_cached_value(udr, title)
        udrs.append(udr)
    return udrs


@functools.cache
def _unbilled_usage_sql(vendor: str) -> str:
    columns = ", ".join(select_columns(model, alias) for model, alias in
                        ((UsageDetailRecord, "u"), (Product, "p"), (ProductType, "pt"), (ContentTitle, "t")))
    lines = InvoiceLine._meta
    return (f"SELECT {columns} FROM {UsageDetailRecord._meta.db_table} u "
            f"JOIN {Product._meta.db_table} p ON p.id = u.product_id "
            f"JOIN {ProductType._meta.db_table} pt ON pt.id = p.product_type_id "
            f"LEFT JOIN {ContentTitle._meta.db_table} t ON t.id = u.title_id "
            f"WHERE u.subscription_id = %s AND u.state = %s "
            f"AND NOT EXISTS (SELECT 1 FROM {lines.db_table} l WHERE l.{lines.get_field('udr').column} = u.id) "
            f"ORDER BY u.usage_at, u.id" + (" FOR UPDATE OF u" if vendor == "postgresql" else ""))


def _usage_invoice(subscription, udrs: list[UsageDetailRecord], performed_by, channel: str) -> Invoice | None:
    """One posted invoice for these usage records (one currency), or None if all are free.
    In the account's currency (the usual case) it is written set-based like a billing run's
    (``runs.usage_invoice_write``); usage in another currency is invoiced line by line."""
    if all(udr.amount == 0 for udr in udrs):
        UsageDetailRecord.objects.filter(pk__in=[udr.pk for udr in udrs]).update(state=UsageDetailRecord.State.BILLED)
        return None
    if udrs[0].currency == subscription.account.currency:
        from .runs import usage_invoice_write

        return usage_invoice_write(subscription=subscription, udrs=udrs, performed_by=performed_by, channel=channel)
    invoice = invoice_create_draft(account=subscription.account, subscription=subscription, currency=udrs[0].currency,
                                   performed_by=performed_by, channel=channel)
    for udr in udrs:
        invoice_line_add(invoice=invoice, description=_usage_line_description(udr), unit_price=udr.amount, product=udr.product,
                         udr=udr, prices_include_tax=True, supplied_on=timezone.localdate(udr.usage_at),
                         performed_by=performed_by, channel=channel)
    return invoice_post(invoice=invoice, performed_by=performed_by, channel=channel)
