"""The monthly rollups: MRR per service, then one row per customer and month with its MRR
movement and the revenue recognized (definitions and a worked example: docs/analytics.md).

A month is computed from the source tables (services, promotion grants, revenue
recognition, invoices, credit notes, UDRs) and the previous month's rows, and written as
an upsert on the rows' unique keys plus a delete of rows that no longer apply, in one
transaction: re-running a month leaves the same rows (same ids) and creates nothing new.
Months are computed in order, because a movement compares a month with the one before.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Count, OuterRef, Q, Subquery, Sum
from django.utils import timezone

from accounts.models import AccountsReceivable, Address
from billing.models import CreditNoteLine, Invoice, InvoiceLine, PromotionGrant, RevenueRecognition, UsageDetailRecord
from catalogs.pricing import months_add
from core.memory import cycle_collector_paused
from subscriptions.models import SubscriptionAction, SubscriptionService

from ..models import AccountMonth, AccountViewingDay, MrrSnapshot, SegmentMonth
from .mrr import month_end, service_mrr

ZERO = Decimal("0.00")
NIGHT_ENDS_HOUR = 7  # orders from 00:00 to 06:59 local time are night orders (the night rate's window)
Movement = AccountMonth.Movement


def month_start(day: date) -> date:
    return day.replace(day=1)


def _local_bounds(month: date) -> tuple[datetime, datetime]:
    def aware(day):
        return timezone.make_aware(datetime.combine(day, time.min))
    return aware(month), aware(months_add(month, 1))


@dataclass
class _Revenue:
    recurring: Decimal = ZERO
    ppv: Decimal = ZERO
    one_time: Decimal = ZERO
    orders: int = 0
    night_orders: int = 0


@dataclass
class _Viewing:
    views: int = 0
    seconds: int = 0
    recent: int = 0
    before: int = 0


VIEWING_WINDOW_DAYS = 30  # the "at risk" comparison: the last 30 days to the month's end against the 30 before


def _viewing(month: date) -> dict[int, _Viewing]:
    """Per customer, from the viewing rollup: views and time watched in the month, and in
    the two 30-day windows ending with it (so the dashboard counts customers at risk from
    these rows, never from the per-title viewing rows)."""
    first, last = month, month_end(month)
    recent_start = last - timedelta(days=VIEWING_WINDOW_DAYS - 1)
    before_start = recent_start - timedelta(days=VIEWING_WINDOW_DAYS)
    rows = (AccountViewingDay.objects.filter(day__range=(min(first, before_start), last)).values("account_id")
            .annotate(views=Sum("views", filter=Q(day__gte=first), default=0),
                      seconds=Sum("seconds_watched", filter=Q(day__gte=first), default=0),
                      recent=Sum("seconds_watched", filter=Q(day__gte=recent_start), default=0),
                      before=Sum("seconds_watched", filter=Q(day__gte=before_start, day__lt=recent_start), default=0))
            .order_by())
    return {row["account_id"]: _Viewing(views=row["views"], seconds=row["seconds"], recent=row["recent"], before=row["before"])
            for row in rows}


@dataclass
class _Segments:
    country: dict[int, str] = field(default_factory=dict)
    channel: dict[int, str] = field(default_factory=dict)


def movement_of(*, previous: Decimal, current: Decimal, had_mrr_before: bool) -> str:
    """The usual subscription-analytics classification of one customer's MRR change."""
    if previous == 0 and current > 0:
        return Movement.REACTIVATION if had_mrr_before else Movement.NEW
    if previous > 0 and current == 0:
        return Movement.CHURN
    if current > previous:
        return Movement.EXPANSION
    if current < previous:
        return Movement.CONTRACTION
    return Movement.NONE


def _segments(account_ids: set[int]) -> _Segments:
    """Country: the billing address (as billing taxes it). Channel: where the customer's
    first subscription was activated, else where their first order came from."""
    segments = _Segments()
    contact_of = dict(AccountsReceivable.objects.filter(pk__in=account_ids).values_list("pk", "contact_id"))
    countries = {}
    for contact_id, country in (Address.objects.filter(contact_id__in=contact_of.values(), kind=Address.Kind.BILLING)
                                .order_by("-pk").values_list("contact_id", "country")):
        countries[contact_id] = country
    for account_id, contact_id in contact_of.items():
        segments.country[account_id] = countries.get(contact_id) or settings.DEFAULT_COUNTRY
    # The first order's channel, one indexed look-up per account (not every order: there are millions).
    first_order = UsageDetailRecord.objects.filter(account_id=OuterRef("pk")).order_by("usage_at", "pk").values("channel")[:1]
    for account_id, channel in (AccountsReceivable.objects.filter(pk__in=account_ids).annotate(first_order_channel=Subquery(first_order))
                                .values_list("pk", "first_order_channel")):
        if channel:
            segments.channel[account_id] = channel
    for account_id, channel in (SubscriptionAction.objects
                                .filter(subscription__account_id__in=account_ids, behavior=SubscriptionAction.Behavior.ACTIVATE,
                                        state=SubscriptionAction.State.EXECUTED)
                                .order_by("-executed_at", "-pk").values_list("subscription__account_id", "channel")):
        segments.channel[account_id] = channel
    return segments


def _snapshots(month: date, segments_for) -> list[MrrSnapshot]:
    day = month_end(month)
    services = list(SubscriptionService.objects
                    .filter(start_date__lte=day).filter(Q(end_date__isnull=True) | Q(end_date__gt=day))
                    .exclude(state="DRAFT")
                    .select_related("subscription__account__classification", "subscription__billing_term_scheme",
                                    "product__product_type", "price_plan")
                    .prefetch_related("price_plan__rates__product__product_type"))
    grants = defaultdict(list)
    for grant in (PromotionGrant.objects.filter(subscription_id__in={s.subscription_id for s in services})
                  .select_related("promotion").prefetch_related("promotion__products").order_by("starts_on", "pk")):
        grants[grant.subscription_id].append(grant)
    segments = segments_for({s.subscription.account_id for s in services})
    rows, cache = [], {}
    for service in services:
        account = service.subscription.account
        country = segments.country[account.pk]
        mrr, plan_id = service_mrr(service=service, grants=grants[service.subscription_id], country=country, day=day, cache=cache)
        rows.append(MrrSnapshot(month=month, service=service, subscription_id=service.subscription_id, account=account,
                                product_id=service.product_id, price_plan_id=plan_id, mrr=mrr,
                                classification=account.classification.name, country=country,
                                channel=segments.channel.get(account.pk, ""), currency=account.currency))
    return rows


def _revenue(month: date) -> dict[int, _Revenue]:
    """Revenue recognized in the month per account, net of tax and of credit notes."""
    first, last = month, month_end(month)
    start, end = _local_bounds(month)
    revenue: dict[int, _Revenue] = defaultdict(_Revenue)
    recognitions = (RevenueRecognition.objects.filter(recognized_through__range=(first, last))
                    .values("invoice_line__invoice__account_id")
                    .annotate(recognized=Sum("amount", filter=Q(kind=RevenueRecognition.Kind.RECOGNIZED)),
                              reversed=Sum("revenue_reversed")))
    for row in recognitions:
        revenue[row["invoice_line__invoice__account_id"]].recurring += (row["recognized"] or ZERO) - (row["reversed"] or ZERO)
    lines = (InvoiceLine.objects.filter(invoice__state=Invoice.State.POSTED, invoice__issued_at__gte=start, invoice__issued_at__lt=end,
                                        revenue_ledger__in=["REVENUE_PPV", "REVENUE_ONE_TIME"])
             .values("invoice__account_id", "revenue_ledger").annotate(net=Sum("net")))
    credits = (CreditNoteLine.objects.filter(credit_note__issued_at__gte=start, credit_note__issued_at__lt=end,
                                             revenue_ledger__in=["REVENUE_PPV", "REVENUE_ONE_TIME"])
               .values("credit_note__account_id", "revenue_ledger").annotate(net=Sum("net")))
    for account_id, ledger, net in [*((r["invoice__account_id"], r["revenue_ledger"], r["net"]) for r in lines),
                                    *((r["credit_note__account_id"], r["revenue_ledger"], -r["net"]) for r in credits)]:
        if ledger == "REVENUE_PPV":
            revenue[account_id].ppv += net
        else:
            revenue[account_id].one_time += net
    orders = (UsageDetailRecord.objects.filter(usage_at__gte=start, usage_at__lt=end)
              .exclude(state=UsageDetailRecord.State.REJECTED).values("account_id")
              .annotate(orders=Count("pk"), night=Count("pk", filter=Q(usage_at__hour__lt=NIGHT_ENDS_HOUR))))
    for row in orders:
        revenue[row["account_id"]].orders = row["orders"]
        revenue[row["account_id"]].night_orders = row["night"]
    return revenue


def _account_months(month: date, snapshots: list[MrrSnapshot], revenue: dict[int, _Revenue], segments_for) -> list[AccountMonth]:
    mrr: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for snapshot in snapshots:
        mrr[snapshot.account_id] += snapshot.mrr
    previous = dict(AccountMonth.objects.filter(month=months_add(month, -1)).values_list("account_id", "mrr"))
    viewing = _viewing(month)
    watched = {pk for pk, seen in viewing.items() if seen.views or seen.seconds}
    account_ids = {*mrr, *revenue, *(pk for pk, value in previous.items() if value > 0), *watched}
    had_mrr = set(AccountMonth.objects.filter(month__lt=month, mrr__gt=0, account_id__in=account_ids)
                  .values_list("account_id", flat=True).distinct())
    accounts = AccountsReceivable.objects.select_related("classification").in_bulk(account_ids)
    segments = segments_for(account_ids)
    rows = []
    for account_id in sorted(account_ids):
        account, current, before = accounts[account_id], mrr[account_id], previous.get(account_id, ZERO)
        earned, seen = revenue.get(account_id, _Revenue()), viewing.get(account_id, _Viewing())
        rows.append(AccountMonth(
            month=month, account=account, cohort=month_start(timezone.localdate(account.created_at)), mrr=current,
            previous_mrr=before, movement=movement_of(previous=before, current=current, had_mrr_before=account_id in had_mrr),
            movement_amount=current - before, recurring_revenue=earned.recurring, ppv_revenue=earned.ppv,
            one_time_revenue=earned.one_time, ppv_orders=earned.orders, night_orders=earned.night_orders,
            views=seen.views, seconds_watched=seen.seconds, recent_seconds=seen.recent, before_seconds=seen.before,
            classification=account.classification.name,
            country=segments.country[account_id], channel=segments.channel.get(account_id, ""), currency=account.currency))
    return rows


def _replace(model, month: date, rows: list, unique: list[str], fields: list[str]) -> None:
    model.objects.bulk_create(rows, update_conflicts=True, unique_fields=unique, update_fields=fields, batch_size=1000)
    key = unique[1]
    keep = {getattr(row, f"{key}_id") for row in rows}
    model.objects.filter(month=month).exclude(**{f"{key}_id__in": keep}).delete()


SEGMENT_FIELDS = ["classification", "country", "channel", "currency"]
CENT = Decimal("0.01")


def segment_months_write(month: date, *, account_month=AccountMonth, segment_month=SegmentMonth) -> int:
    """Replace ``month``'s segment rows by the sums and counts of its customer months
    (grouped in the database). Run by the monthly rollup after the customer months, in
    its transaction; the models are parameters for the migration that fills the table
    from existing customer months. Returns the number of segment rows."""
    def movement(kind):
        return Sum("movement_amount", filter=Q(movement=kind), default=ZERO)

    groups = (account_month.objects.filter(month=month).order_by().values(*SEGMENT_FIELDS)
              .annotate(s_mrr=Sum("mrr", default=ZERO), s_new=movement(Movement.NEW), s_expansion=movement(Movement.EXPANSION),
                        s_contraction=movement(Movement.CONTRACTION), s_churned=movement(Movement.CHURN),
                        s_reactivation=movement(Movement.REACTIVATION),
                        s_customers=Count("pk", filter=Q(mrr__gt=0)), s_customers_at_start=Count("pk", filter=Q(previous_mrr__gt=0)),
                        s_new_customers=Count("pk", filter=Q(movement=Movement.NEW)),
                        s_churned_customers=Count("pk", filter=Q(movement=Movement.CHURN)),
                        s_recurring_revenue=Sum("recurring_revenue", default=ZERO), s_ppv_revenue=Sum("ppv_revenue", default=ZERO),
                        s_one_time_revenue=Sum("one_time_revenue", default=ZERO), s_ppv_orders=Sum("ppv_orders", default=0)))
    # SQLite sums decimals as floats (8.390000000000001): back to cents, half up, as the dashboard rounds.
    money = SegmentMonth.sums()
    rows = [segment_month(month=month, **{key: group[key] for key in SEGMENT_FIELDS},
                          **{key[2:]: Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)
                             if money[key[2:]] else value
                             for key, value in group.items() if key.startswith("s_")})
            for group in groups]
    segment_month.objects.filter(month=month).delete()
    segment_month.objects.bulk_create(rows, batch_size=1000)
    return len(rows)


def analytics_month_rollup(*, month: date) -> list[AccountMonth]:
    """Compute (or recompute) one month's MRR snapshots and customer months."""
    month = month_start(month)
    cache: dict[frozenset, _Segments] = {}

    def segments_for(account_ids: set[int]) -> _Segments:
        key = frozenset(account_ids)
        if key not in cache:
            cache[key] = _segments(account_ids)
        return cache[key]

    # A month's rollup builds a model instance per service and customer (~1.1 million at
    # 55,000 customers), all alive until it is written: the cycle collector's passes
    # would walk them again and again for nothing to collect (core.memory).
    with cycle_collector_paused(), transaction.atomic():
        snapshots = _snapshots(month, segments_for)
        _replace(MrrSnapshot, month, snapshots, ["month", "service"],
                 ["subscription", "account", "product", "price_plan", "mrr", *SEGMENT_FIELDS])
        rows = _account_months(month, snapshots, _revenue(month), segments_for)
        _replace(AccountMonth, month, rows, ["month", "account"],
                 ["cohort", "mrr", "previous_mrr", "movement", "movement_amount", "recurring_revenue", "ppv_revenue",
                  "one_time_revenue", "ppv_orders", "night_orders", "views", "seconds_watched", "recent_seconds",
                  "before_seconds", "computed_at", *SEGMENT_FIELDS])
        segment_months_write(month)
    return rows


def first_month() -> date | None:
    first = AccountsReceivable.objects.order_by("created_at").values_list("created_at", flat=True).first()
    return month_start(timezone.localdate(first)) if first else None


def analytics_rollup(*, through: date, since: date | None = None) -> list[date]:
    """Roll up every month from ``since`` (default: the first month not rolled up yet, and
    always the last two, which late invoices, credit notes and recognition still change)
    through the month of ``through``, in order. Returns the months computed."""
    last = month_start(through)
    if since is None:
        latest = AccountMonth.objects.order_by("-month").values_list("month", flat=True).first()
        since = first_month() if latest is None else min(latest, months_add(last, -1))
        if since is None:
            return []
    months, month = [], month_start(since)
    while month <= last:
        analytics_month_rollup(month=month)
        months.append(month)
        month = months_add(month, 1)
    return months
