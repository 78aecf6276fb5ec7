"""Taxes: the rates finance sets up, and the per-line arithmetic every invoice and credit
note uses.

Rounding (documented in docs/billing.md): each line's amount is its unit price × quantity
rounded half-up to the cent; the tax on that amount is rounded half-up to the cent; the
third figure is the difference, so net + tax = gross exactly on every line, and an
invoice's totals are the sums of its lines. A tax-inclusive price is the gross (usage
catalog rates are consumer prices, so they include tax): €5.00 incl. 19% → tax
5.00 × 19 / 119 = 0.798… → 0.80, net 4.20. A tax-exclusive price is the net: €4.20 excl.
19% → tax 0.798 → 0.80, gross 5.00.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import connection, transaction

from core.choices import Channel
from core.exceptions import Conflict, ValidationFailed
from core.services import audit_changes, audit_record
from core.validation import Errors, errors_raise, model_errors

from ..models import TaxRate

CENT = Decimal("0.01")
HUNDRED = Decimal("100")
TAX_RATE_FIELDS = ("country", "tax_class", "name", "rate", "valid_from", "valid_until")


@dataclass(frozen=True)
class LineAmounts:
    net: Decimal
    tax: Decimal
    gross: Decimal


def money(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def line_amounts(*, unit_price: Decimal, quantity: Decimal, rate: Decimal, prices_include_tax: bool) -> LineAmounts:
    """Net, tax and gross of one line, each to the cent, adding up exactly."""
    amount = money(Decimal(unit_price) * Decimal(quantity))
    rate = Decimal(rate)
    if prices_include_tax:
        tax = money(amount * rate / (HUNDRED + rate))
        return LineAmounts(net=amount - tax, tax=tax, gross=amount)
    tax = money(amount * rate / HUNDRED)
    return LineAmounts(net=amount, tax=tax, gross=amount + tax)


def gross_split(*, gross: Decimal, rate: Decimal) -> LineAmounts:
    """Split a tax-inclusive amount (a partial credit) into net and tax the same way."""
    return line_amounts(unit_price=gross, quantity=Decimal("1"), rate=rate, prices_include_tax=True)


# --- tax rates -------------------------------------------------------------------------------

def _serialise(country: str, tax_class: str) -> None:
    """Two finance users adding rates for the same country and class at once could each
    pass the overlap check; on PostgreSQL one waits for the other (SQLite's write
    transactions are serial already)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"billing.taxrate:{country}:{tax_class}"])


def _check(rate: TaxRate) -> None:
    errors: Errors = {}
    model_errors(rate, errors, validate_constraints=False)
    errors_raise(errors, "The tax rate is not valid.")


def _values(rate: TaxRate) -> dict[str, Any]:
    return {name: getattr(rate, name) for name in TAX_RATE_FIELDS}


def tax_rate_create(*, country: str, tax_class: str, rate: Decimal, valid_from: date, valid_until: date | None = None,
                    name: str = "VAT", performed_by=None, channel: str = Channel.CALL_CENTER) -> TaxRate:
    """A new rate; refused (with every reason) if it overlaps another of the same country
    and class."""
    tax_rate = TaxRate(country=(country or "").strip().upper(), tax_class=tax_class, rate=rate, valid_from=valid_from,
                       valid_until=valid_until, name=(name or "").strip())
    with transaction.atomic():
        _serialise(tax_rate.country, tax_class)
        _check(tax_rate)
        tax_rate.save()
        audit_record(target=tax_rate, action="created", changes=audit_changes({}, _values(tax_rate)),
                     performed_by=performed_by, channel=channel)
    return tax_rate


def tax_rate_update(*, tax_rate: TaxRate, data: dict[str, Any], performed_by=None,
                    channel: str = Channel.CALL_CENTER) -> TaxRate:
    """Change a rate (typically: end it, ``valid_until``, before adding its successor).
    Invoices already issued keep the rate on their lines."""
    unknown = set(data) - set(TAX_RATE_FIELDS)
    if unknown:
        raise ValidationFailed("These fields cannot be changed.", fields={name: ["Not editable."] for name in sorted(unknown)})
    with transaction.atomic():
        locked = TaxRate.objects.select_for_update().filter(pk=tax_rate.pk).first()
        if locked is None:
            raise Conflict("The tax rate no longer exists.", code="tax_rate_gone")
        before = _values(locked)
        for name, value in data.items():
            setattr(locked, name, value)
        _serialise(str(locked.country).strip().upper(), locked.tax_class)
        _check(locked)
        changes = audit_changes(before, _values(locked))
        if changes:
            locked.save()
            audit_record(target=locked, action="updated", changes=changes, performed_by=performed_by, channel=channel)
    return locked
