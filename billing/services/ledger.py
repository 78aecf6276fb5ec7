"""The double-entry ledger: posting balanced journal entries and reversing them.

Amounts are Decimals with 2 places; a positive posting debits, a negative one credits.
``journal_post`` refuses an unbalanced or malformed entry before writing anything (and on
PostgreSQL the database refuses one at commit as well). Each entry has a unique reference
— what caused it — so posting the same thing twice returns the first entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.db import IntegrityError, transaction

from core.exceptions import ApplicationError, Conflict, ValidationFailed

from ..models import JournalEntry, LedgerAccount, Posting

CENT = Decimal("0.01")


@dataclass(frozen=True)
class Leg:
    """One side of an entry: ``ledger`` code, signed ``amount`` (debit > 0), the customer's
    ``account`` for receivable legs."""

    ledger: str
    amount: Decimal
    account: object | None = None


def journal_post(*, kind: str, reference: str, legs: Sequence[Leg], currency: str, account=None,
                 description: str = "", reversal_of: JournalEntry | None = None) -> JournalEntry:
    """Post one balanced entry (in the caller's transaction, or its own)."""
    problems = []
    if len(legs) < 2:
        problems.append("An entry needs at least two legs.")
    for leg in legs:
        if leg.amount != leg.amount.quantize(CENT):
            problems.append(f"{leg.ledger}: {leg.amount} has more than 2 decimals.")
        if leg.amount == 0:
            problems.append(f"{leg.ledger}: a leg cannot be zero.")
    total = sum((leg.amount for leg in legs), Decimal("0"))
    if total != 0:
        problems.append(f"Debits and credits differ by {total}.")
    ledgers = {ledger.code: ledger for ledger in LedgerAccount.objects.filter(code__in={leg.ledger for leg in legs})}
    unknown = sorted({leg.ledger for leg in legs} - set(ledgers))
    if unknown:
        problems.append(f"Unknown ledger accounts: {', '.join(unknown)}.")
    if problems:
        raise ValidationFailed("The journal entry is not valid.", fields={"legs": problems})

    existing = JournalEntry.objects.filter(reference=reference).first()
    if existing is not None:
        return _same_or_conflict(existing, kind)
    try:
        with transaction.atomic():
            entry = JournalEntry.objects.create(kind=kind, reference=reference, description=description[:300], currency=currency,
                                                account=account, reversal_of=reversal_of)
            Posting.objects.bulk_create(
                Posting(entry=entry, ledger_account=ledgers[leg.ledger], account=leg.account, amount=leg.amount) for leg in legs
            )
    except IntegrityError:
        existing = JournalEntry.objects.filter(reference=reference).first()
        if existing is None:
            raise
        return _same_or_conflict(existing, kind)
    return entry


def _same_or_conflict(entry: JournalEntry, kind: str) -> JournalEntry:
    if entry.kind != kind:
        raise Conflict(f"Reference {entry.reference} is already a {entry.get_kind_display()} entry.", code="ledger_reference_reused")
    return entry


def journal_reverse(*, entry: JournalEntry, description: str = "") -> JournalEntry:
    """Cancel an entry's effect with an equal and opposite one (entries are never edited)."""
    if entry.kind == JournalEntry.Kind.REVERSAL:
        raise ApplicationError("A reversal is not reversed; post a new entry instead.", code="reversal_of_reversal")
    if hasattr(entry, "reversed_by"):
        return entry.reversed_by
    legs = [Leg(p.ledger_account.code, -p.amount, p.account) for p in entry.postings.select_related("ledger_account", "account")]
    return journal_post(kind=JournalEntry.Kind.REVERSAL, reference=f"reversal:{entry.reference}"[:100], legs=legs,
                        currency=entry.currency, account=entry.account, description=description or f"Reversal of {entry}",
                        reversal_of=entry)
