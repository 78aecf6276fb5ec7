"""UDR ingestion: usage records from source systems (the platform's order logs, Nagra, ...).

Every record carries an ``external_id`` unique per ``source``; a record whose
(source, external_id) is already stored is accepted and ignored (a *duplicate*), so a
replayed batch is never charged twice — the database's unique constraint
``udr_unique_per_source`` is the final word (``bulk_create(ignore_conflicts=True)``), the
look-up before it only makes the counts exact in the common case.

Valid records are stored PENDING and priced later by the bulk rating
(``billing.services.rating_runs``). An invalid record is never lost and never priced: when
it names a known account and product it is stored REJECTED with its reasons (so finance
sees it next to the account's usage); otherwise there is nothing to attach it to and it is
only reported back to the source. A rejected record without a usable ``usage_at`` is
stored with the time it was received (the column is required) and says so in its reason.

A REJECTED record can be *reopened* by a corrected resend: the source sends the same
(source, external_id) again, valid now and with changed content (another field value, or a
record that was refused on arrival). The stored record takes the resent fields, loses its
price and rejection reason and goes back to PENDING, so the next rating prices it; an audit
row keeps what changed and why it had been rejected. Everything else that comes again is a
replay and ignored: a resend of a record that was accepted (PENDING, RATED, BILLED,
CANCELLED), an identical resend of a rejected one, and a resend that is still invalid (the
stored record keeps its fields and reasons; a source replaying a batch is not told again).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.models import AccountsReceivable
from catalogs.models import ContentTitle, Product
from core.choices import Channel
from core.services import audit_changes, audit_record
from subscriptions.models import Device, Subscription

from ..models import UsageDetailRecord

MAX_EXTERNAL_ID = UsageDetailRecord._meta.get_field("external_id").max_length
MAX_SOURCE = UsageDetailRecord._meta.get_field("source").max_length
MAX_REASON = UsageDetailRecord._meta.get_field("rejection_reason").max_length
# What a source sends and a resend may correct, as stored on the record.
CONTENT_FIELDS = ("account_id", "product_id", "usage_at", "subscription_id", "title_id", "device_id", "channel")
# Fields whose problems ingestion reports as "field: ..."; a stored reason starting so was
# refused on arrival (not by the rating), where what was sent may not be what was stored.
CHECKED_FIELDS = ("external_id", "account", "product", "usage_at", "subscription", "title", "device", "channel")


@dataclass
class IngestResult:
    """What happened to a batch: records stored PENDING (new, or REJECTED ones reopened by a
    corrected resend — ``reopened`` counts those among ``accepted``), replays ignored, and
    every refused record as (its index in the batch, the reasons)."""

    accepted: int = 0
    duplicates: int = 0
    rejected: list[tuple[int, list[str]]] = field(default_factory=list)
    reopened: int = 0

    def as_dict(self) -> dict:
        return {"accepted": self.accepted, "duplicates": self.duplicates,
                "rejected": [{"index": index, "reasons": reasons} for index, reasons in self.rejected],
                "reopened": self.reopened}


@dataclass
class _References:
    """Everything a batch names, loaded in one query per kind (not one per record)."""

    accounts: dict[str, AccountsReceivable]
    products: dict[str, Product]
    subscriptions: dict[str, Subscription]
    titles: dict[str, ContentTitle]
    devices: dict[tuple[int, str], Device]
    existing: dict[str, dict]


def _text(record: dict, key: str) -> str:
    value = record.get(key)
    return "" if value is None else str(value).strip()


def _references(source: str, records: list[dict]) -> _References:
    def values(key: str) -> set[str]:
        return {_text(record, key) for record in records if isinstance(record, dict) and _text(record, key)}

    accounts = {account.number: account for account in AccountsReceivable.objects.filter(number__in=values("account"))}
    devices = Device.objects.filter(account__in=accounts.values(), identifier__in=values("device"))
    return _References(
        accounts=accounts,
        products={product.code: product for product in Product.objects.select_related("product_type").filter(code__in=values("product"))},
        subscriptions={sub.number: sub for sub in Subscription.objects.filter(number__in=values("subscription"))},
        titles={title.code: title for title in ContentTitle.objects.filter(code__in=values("title"))},
        devices={(device.account_id, device.identifier): device for device in devices},
        existing={row["external_id"]: row for row in UsageDetailRecord.objects.filter(
            source=source, external_id__in=values("external_id")).values("pk", "external_id", "state", "rejection_reason",
                                                                          *CONTENT_FIELDS)},
    )


def _usage_at(record: dict, reasons: list[str]) -> datetime | None:
    raw = _text(record, "usage_at")
    if not raw:
        reasons.append("usage_at: required (an ISO 8601 date and time with a time zone).")
        return None
    try:
        value = parse_datetime(raw)
    except ValueError:
        value = None
    if value is None:
        reasons.append(f"usage_at: '{raw}' is not an ISO 8601 date and time.")
        return None
    if timezone.is_naive(value):
        reasons.append(f"usage_at: '{raw}' has no time zone; give an offset such as +02:00 or Z.")
        return None
    return value


def _validate(record: dict, refs: _References) -> tuple[dict, list[str]]:
    """The record's resolved fields and every reason it cannot be accepted (all at once)."""
    reasons: list[str] = []
    external_id = _text(record, "external_id")
    if not external_id:
        reasons.append("external_id: required.")
    elif len(external_id) > MAX_EXTERNAL_ID:
        reasons.append(f"external_id: at most {MAX_EXTERNAL_ID} characters.")
    account = refs.accounts.get(_text(record, "account"))
    if account is None:
        reasons.append(f"account: no account '{_text(record, 'account')}'." if _text(record, "account") else "account: required.")
    product = refs.products.get(_text(record, "product"))
    if product is None:
        reasons.append(f"product: no product '{_text(record, 'product')}'." if _text(record, "product") else "product: required.")
    elif not product.is_usage_service:
        reasons.append(f"product: {product.code} is not a usage (pay-per-view) service.")
    usage_at = _usage_at(record, reasons)
    resolved = {"external_id": external_id, "account": account, "product": product, "usage_at": usage_at,
                "subscription": None, "title": None, "device": None, "channel": Channel.SYSTEM}
    if number := _text(record, "subscription"):
        subscription = refs.subscriptions.get(number)
        if subscription is None:
            reasons.append(f"subscription: no subscription '{number}'.")
        elif account is not None and subscription.account_id != account.pk:
            reasons.append(f"subscription: {number} does not belong to account {account.number}.")
        else:
            resolved["subscription"] = subscription
    if code := _text(record, "title"):
        resolved["title"] = refs.titles.get(code)
        if resolved["title"] is None:
            reasons.append(f"title: no title '{code}'.")
    if identifier := _text(record, "device"):
        resolved["device"] = refs.devices.get((account.pk, identifier)) if account else None
        if resolved["device"] is None:
            reasons.append(f"device: no device '{identifier}' on this account.")
    if channel := _text(record, "channel"):
        if channel in Channel.values:
            resolved["channel"] = channel
        else:
            reasons.append(f"channel: '{channel}' is not one of {', '.join(Channel.values)}.")
    return resolved, reasons


def _udr(source: str, resolved: dict, reasons: list[str]) -> UsageDetailRecord:
    state, rejection = UsageDetailRecord.State.PENDING, ""
    usage_at = resolved["usage_at"]
    if reasons:
        state, rejection = UsageDetailRecord.State.REJECTED, " ".join(reasons)
        if usage_at is None:
            usage_at = timezone.now()
            rejection += " Stored with the time it was received."
    return UsageDetailRecord(
        source=source, external_id=resolved["external_id"], account=resolved["account"], product=resolved["product"],
        usage_at=usage_at, subscription=resolved["subscription"], title=resolved["title"], device=resolved["device"],
        channel=resolved["channel"], state=state, rejection_reason=rejection[:MAX_REASON],
    )


def _content(resolved: dict) -> dict:
    """The resolved record as the stored fields it would have."""
    return {"account_id": resolved["account"].pk, "product_id": resolved["product"].pk, "usage_at": resolved["usage_at"],
            "subscription_id": resolved["subscription"] and resolved["subscription"].pk,
            "title_id": resolved["title"] and resolved["title"].pk, "device_id": resolved["device"] and resolved["device"].pk,
            "channel": resolved["channel"]}


def _corrects(stored: dict, resolved: dict, reasons: list[str]) -> bool:
    """Whether a resend reopens the stored record: it was REJECTED, the resend is valid, and
    the content changed — or the record was refused on arrival, where the stored fields may
    not be what was sent (an unknown title is stored as none)."""
    if stored["state"] != UsageDetailRecord.State.REJECTED or reasons:
        return False
    refused_on_arrival = stored["rejection_reason"].startswith(tuple(f"{name}: " for name in CHECKED_FIELDS))
    return refused_on_arrival or any(stored[name] != value for name, value in _content(resolved).items())


def _reopen(stored: dict, resolved: dict) -> bool:
    """Give a REJECTED record the corrected fields and send it back to rating (PENDING),
    audited. False if it is no longer REJECTED (a concurrent resend got there first)."""
    content = _content(resolved)
    reopened = UsageDetailRecord.objects.filter(pk=stored["pk"], state=UsageDetailRecord.State.REJECTED).update(
        **content, state=UsageDetailRecord.State.PENDING, rejection_reason="", amount=None, currency="", catalog=None,
        usage_service=None, tier=None, rate_reason="")
    if reopened:
        before = {name: stored[name] for name in (*CONTENT_FIELDS, "state")}
        audit_record(target=UsageDetailRecord.objects.select_related("product").get(pk=stored["pk"]),
                     action="reopened by a corrected resend",
                     changes=audit_changes(before, {**content, "state": UsageDetailRecord.State.PENDING.value}),
                     reasons=[stored["rejection_reason"]])
    return bool(reopened)


def udr_ingest(*, source: str, records: list[dict]) -> IngestResult:
    """Store a batch of usage records from ``source``; see the module docstring for the rules.

    Returns counts of new PENDING records, of REJECTED records reopened by a corrected
    resend and of duplicates, and each refused record's index and reasons (stored REJECTED
    when it names a known account and product).
    """
    source = (source or "").strip()
    result = IngestResult()
    if not source or len(source) > MAX_SOURCE:
        result.rejected = [(index, [f"source: required, at most {MAX_SOURCE} characters."]) for index in range(len(records))]
        return result
    refs = _references(source, records)
    seen: set[str] = set()
    rows: list[UsageDetailRecord] = []
    corrections: list[tuple[dict, dict]] = []
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            result.rejected.append((index, ["The record must be an object."]))
            continue
        resolved, reasons = _validate(record, refs)
        external_id = resolved["external_id"]
        stored = refs.existing.get(external_id)
        if stored is not None and external_id not in seen and _corrects(stored, resolved, reasons):
            seen.add(external_id)
            corrections.append((stored, resolved))
            continue
        if external_id and (stored is not None or external_id in seen):
            result.duplicates += 1
            continue
        if reasons:
            result.rejected.append((index, reasons))
            if resolved["account"] is None or resolved["product"] is None or not external_id or len(external_id) > MAX_EXTERNAL_ID:
                continue
        else:
            result.accepted += 1
        seen.add(external_id)
        rows.append(_udr(source, resolved, reasons))
    with transaction.atomic():
        # A concurrent replay may have stored some of these since the look-up: the unique
        # constraint ignores them, so nothing is ever stored (or charged) twice.
        UsageDetailRecord.objects.bulk_create(rows, batch_size=1000, ignore_conflicts=True)
        for stored, resolved in corrections:
            if _reopen(stored, resolved):
                result.accepted += 1
                result.reopened += 1
            else:
                result.duplicates += 1
    return result
