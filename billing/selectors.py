"""Reads of the ledger: balances are derived from postings, never stored."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import DecimalField, Sum, Value, Window
from django.db.models.functions import Coalesce

from accounts.models import AccountsReceivable

from .models import LedgerAccount, Posting

ZERO = Decimal("0.00")


def ar_balance(*, account: AccountsReceivable) -> Decimal:
    """What the customer owes (negative: credit in their favour): the sum of their
    receivable postings."""
    total = Posting.objects.filter(account=account, ledger_account__code="AR").aggregate(total=Sum("amount"))["total"]
    return total or ZERO


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
                      p.amount if p.amount > 0 else ZERO, -p.amount if p.amount < 0 else ZERO, p.running)
        for p in postings
    ]
    return lines[-limit:] if limit else lines
