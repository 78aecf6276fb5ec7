"""Rating: the one function that prices a usage (a PPV order), and the reads behind it.

Every door that prices a usage — the billing pipeline, the call center's "Add Service
Usage", the portal's rate preview and catalog — calls ``rate_usage`` (or its batch form
``usage_quotes_for``), so a price shown is the price charged. Rating only reads: it never
writes a row.

How a price is chosen:

1. **The catalog** (``usage_catalog_for``): EFFECTIVE, valid at the usage time
   (``valid_from <= at < valid_until``, an empty bound is open), and whose classification
   condition admits the account (an empty condition admits every account). When the
   subscription's EFFECTIVE termed services are given, a catalog that requires services
   applies only if one of them is held. Among the catalogs that apply, deterministically:
   one that names the account's classification beats one without a condition, then the
   lower ``priority``, then the newest ``valid_from``, then the lowest pk.
2. **The usage service**: the product's entry in that catalog. The catalog is chosen for
   the account, not for the product: a product missing from it is ``not_in_catalog`` even
   if another catalog lists it, so one account never mixes two price lists.
3. **The rate**: the tier whose window contains the usage's wall-clock minute, else the
   base rate. Amounts keep 4 decimals.

Time windows are wall-clock times in ``settings.TIME_ZONE`` and inclusive by minute:
``00:01–06:59`` covers 00:01:00 through 06:59:59.999…; a window whose end is before its
start crosses midnight (``22:00–05:59`` covers 22:00–23:59 and 00:00–05:59); a window
whose start equals its end is that one minute. Seconds stored on a window's bounds are
ignored: windows are whole minutes.

Daylight saving time: the instant is converted to the operator's wall clock and only the
wall clock counts. On the spring-forward day the skipped local hour never occurs, so no
usage can fall in it (an instant just before the jump reads 02:59, the next reads 04:00
in Europe/Nicosia). On the fall-back day the repeated hour occurs twice and is priced by
its wall-clock time both times. A window is never shifted or stretched by DST. See
docs/rating.md for a worked example with the Company ZX rates.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, time
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet
from django.utils import timezone

from accounts.models import AccountsReceivable, Classification
from core.choices import LifecycleState
from core.refcache import reference_cached, reference_version
from core.exceptions import ApplicationError, NotFound, ValidationFailed

from .models import ContentTitle, PricePlan, PricePlanRate, Product, ProductType, UsageService, UsageServiceCatalog, UsageTier
from .selectors import title_list_for_screen, title_window_bounds

RATE_PLACES = Decimal("0.0001")
MINUTES_PER_DAY = 24 * 60


# --- Time windows -----------------------------------------------------------------------

def _minute_of_day(value: time | datetime) -> int:
    return value.hour * 60 + value.minute


def _minute_spans(start: time, end: time) -> list[tuple[int, int]]:
    """The window as inclusive minute-of-day spans: one span, or two when it crosses midnight."""
    first, last = _minute_of_day(start), _minute_of_day(end)
    if first <= last:
        return [(first, last)]
    return [(first, MINUTES_PER_DAY - 1), (0, last)]


def window_contains(start: time, end: time, moment: time | datetime) -> bool:
    """Whether the wall-clock ``moment`` lies in the window, by minute (seconds do not matter)."""
    minute = _minute_of_day(moment)
    return any(first <= minute <= last for first, last in _minute_spans(start, end))


def windows_overlap(a_start: time, a_end: time, b_start: time, b_end: time) -> bool:
    """Whether two windows share at least one minute of the day (midnight-crossing aware).

    The usage catalog services refuse a tier that overlaps another tier of the same usage
    service, so every moment has exactly one price.
    """
    return any(
        max(a_first, b_first) <= min(a_last, b_last)
        for a_first, a_last in _minute_spans(a_start, a_end)
        for b_first, b_last in _minute_spans(b_start, b_end)
    )


def tier_overlaps(tiers: Sequence) -> list[tuple]:
    """Every pair of tiers (anything with ``start_time``/``end_time``) that share a minute."""
    return [
        (tiers[i], tiers[j])
        for i in range(len(tiers))
        for j in range(i + 1, len(tiers))
        if windows_overlap(tiers[i].start_time, tiers[i].end_time, tiers[j].start_time, tiers[j].end_time)
    ]


def window_label(start: time, end: time) -> str:
    return f"{start:%H:%M}–{end:%H:%M}"


def tier_for(tiers: Iterable[UsageTier], local_time: datetime) -> UsageTier | None:
    """The tier whose window contains the wall-clock minute, else None.

    Tiers of one service never overlap (the services check it); should overlapping rows
    exist anyway, the earliest start (then lowest pk) wins so rating stays deterministic.
    """
    matching = [tier for tier in tiers if window_contains(tier.start_time, tier.end_time, local_time)]
    return min(matching, key=lambda tier: (tier.start_time, tier.pk or 0), default=None)


def operator_time_zone() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def wall_clock(at: datetime) -> datetime:
    """The instant on the operator's wall clock (``settings.TIME_ZONE``)."""
    return at.astimezone(operator_time_zone())


# --- The catalog that applies -----------------------------------------------------------

def _classification_code(classification: Classification | str | None) -> str:
    if classification is None:
        return "none"
    return classification.code if isinstance(classification, Classification) else classification


@dataclass(frozen=True)
class _Entry:
    """An EFFECTIVE usage catalog as rating sees it: its conditions, its services by product
    (with their tiers, in window order) and what it requires."""

    catalog: UsageServiceCatalog
    classification_ids: frozenset[int]
    classification_codes: frozenset[str]
    required_ids: frozenset[int]
    services: dict[int, UsageService]

    def valid_at(self, at: datetime) -> bool:
        return ((self.catalog.valid_from is None or self.catalog.valid_from <= at)
                and (self.catalog.valid_until is None or self.catalog.valid_until > at))

    def names(self, classification: Classification | str | int | None) -> bool:
        if classification is None:
            return False
        if isinstance(classification, Classification):
            return classification.pk in self.classification_ids
        if isinstance(classification, int):
            return classification in self.classification_ids
        return classification in self.classification_codes


def _entries_load() -> tuple[_Entry, ...]:
    catalogs = (
        UsageServiceCatalog.objects.filter(state=LifecycleState.EFFECTIVE)
        .select_related("provider")
        .prefetch_related(
            "classifications",
            Prefetch("required_services", queryset=Product.objects.select_related("product_type").order_by("code")),
            Prefetch("services", queryset=UsageService.objects.select_related("product__product_type").prefetch_related(
                Prefetch("tiers", queryset=UsageTier.objects.order_by("start_time", "pk")))),
        )
    )
    return tuple(
        _Entry(
            catalog=catalog,
            classification_ids=frozenset(c.pk for c in catalog.classifications.all()),
            classification_codes=frozenset(c.code for c in catalog.classifications.all()),
            required_ids=frozenset(p.pk for p in catalog.required_services.all()),
            services={service.product_id: service for service in catalog.services.all()},
        )
        for catalog in catalogs
    )


def _entries() -> tuple[_Entry, ...]:
    """Every EFFECTIVE usage catalog, loaded once per process and version of the catalog
    tables (``core.refcache``: a change anywhere in them is seen by the next rating)."""
    return reference_cached("catalog", "usage_catalogs", _entries_load)


def _applicable(
    *, classification: Classification | str | int | None, at: datetime, subscription_services: Iterable[Product] | None
) -> _Entry | None:
    """The best EFFECTIVE catalog valid at ``at`` that admits the account: one naming its
    classification beats one without a condition, then the lower priority, then the newest
    ``valid_from`` (an open start counts as oldest), then the lowest pk."""
    held = None if subscription_services is None else {service.pk for service in subscription_services}
    candidates = []
    for entry in _entries():
        if not entry.valid_at(at):
            continue
        names_mine = entry.names(classification)
        if entry.classification_ids and not names_mine:
            continue
        if held is not None and entry.required_ids and not entry.required_ids & held:
            continue
        valid_from = entry.catalog.valid_from
        candidates.append(((not names_mine, entry.catalog.priority, valid_from is None,
                            -valid_from.timestamp() if valid_from else 0, entry.catalog.pk), entry))
    return min(candidates, key=lambda candidate: candidate[0])[1] if candidates else None


def _no_catalog(classification, at: datetime, subscription_services) -> ApplicationError:
    if isinstance(classification, int):
        classification = Classification.objects.filter(pk=classification).values_list("code", flat=True).first()
    held = "" if subscription_services is None else " with the subscription's services"
    return ApplicationError(
        f"No effective usage service catalog applies to classification {_classification_code(classification)}{held} "
        f"at {wall_clock(at):%Y-%m-%d %H:%M} {settings.TIME_ZONE}.",
        code="no_catalog",
    )


def usage_catalog_for(
    *, classification: Classification | str | None, at: datetime, subscription_services: Iterable[Product] | None = None
) -> UsageServiceCatalog:
    """The usage service catalog that prices usages of an account of ``classification`` at ``at``.

    ``subscription_services``: the subscription's EFFECTIVE termed services. When given, a
    catalog that requires services applies only if one of them is held; when None (a rate
    preview without a subscription) that condition is not checked, and the catalog's
    ``required_services`` tell the caller what an order will need.
    Raises ApplicationError ``no_catalog`` when none applies.
    """
    _require_aware(at)
    entry = _applicable(classification=classification, at=at, subscription_services=subscription_services)
    if entry is None:
        raise _no_catalog(classification, at, subscription_services)
    return entry.catalog


# --- Rating -----------------------------------------------------------------------------

@dataclass(frozen=True)
class RateQuote:
    """A priced usage and why: which catalog, which service, which tier (or the base rate)."""

    amount: Decimal
    currency: str
    catalog: UsageServiceCatalog
    usage_service: UsageService
    tier: UsageTier | None
    local_time: datetime
    time_zone: str
    reason: str
    required_services: list[Product]


def _require_aware(at: datetime) -> None:
    if not isinstance(at, datetime) or timezone.is_naive(at):
        raise ValidationFailed("The usage time must be a date and time with a time zone.", fields={"at": ["Give an aware date and time."]})


def _require_usage_service(product: Product) -> None:
    if not product.is_usage_service:
        raise ValidationFailed(
            f"{product} is not a usage service, so it cannot be rated per usage.",
            fields={"product": [f"{product.code} is a {product.product_type} product, not a usage service."]},
        )


def _quote(catalog: UsageServiceCatalog, usage_service: UsageService, local_time: datetime) -> RateQuote:
    tiers = usage_service.tiers.all()
    tier = tier_for(tiers, local_time)
    zone_name = settings.TIME_ZONE
    if tier is not None:
        rate = tier.rate
        reason = f"tier {window_label(tier.start_time, tier.end_time)} ({zone_name} wall clock {local_time:%H:%M}) in catalog '{catalog}'"
    else:
        rate = usage_service.base_rate
        why = f"no tier matches {local_time:%H:%M} {zone_name}" if tiers else "the service has no tiers"
        reason = f"base rate in catalog '{catalog}' ({why})"
    return RateQuote(
        amount=rate.quantize(RATE_PLACES, rounding=ROUND_HALF_UP),
        currency=catalog.currency,
        catalog=catalog,
        usage_service=usage_service,
        tier=tier,
        local_time=local_time,
        time_zone=zone_name,
        reason=reason,
        required_services=list(catalog.required_services.all()),
    )


def usage_service_quote(*, catalog: UsageServiceCatalog, usage_service: UsageService, at: datetime) -> RateQuote:
    """Rate with a catalog and service already chosen and loaded, without a query when
    ``usage_service.tiers`` and ``catalog.required_services`` are prefetched: for callers
    that rate many usages against one catalog (the billing run)."""
    _require_aware(at)
    return _quote(catalog, usage_service, wall_clock(at))


def rate_usage(
    *,
    product: Product,
    at: datetime,
    classification: Classification | str | None = None,
    account: AccountsReceivable | None = None,
    subscription_services: Iterable[Product] | None = None,
) -> RateQuote:
    """Price one usage of ``product`` at instant ``at`` for an account.

    ``classification`` (a Classification or its code) decides the catalog; when it is not
    given, ``account``'s is used. Raises ValidationFailed for a product that is not a usage
    service, ApplicationError ``no_catalog`` when no catalog applies, and ``not_in_catalog``
    when the product is not in the catalog that does. Writes nothing.
    """
    _require_aware(at)
    _require_usage_service(product)
    if classification is None and account is not None:
        classification = account.classification_id
    entry = _applicable(classification=classification, at=at, subscription_services=subscription_services)
    if entry is None:
        raise _no_catalog(classification, at, subscription_services)
    catalog = entry.catalog
    usage_service = entry.services.get(product.pk)
    if usage_service is None:
        if isinstance(classification, int):
            classification = Classification.objects.filter(pk=classification).values_list("code", flat=True).first()
        raise ApplicationError(
            f"{product} is not in catalog '{catalog}', the catalog that applies to classification "
            f"{_classification_code(classification)}.",
            code="not_in_catalog",
        )
    return _quote(catalog, usage_service, wall_clock(at))


def usage_quotes_for(
    *,
    products: Iterable[Product],
    at: datetime,
    classification: Classification | str | None,
    subscription_services: Iterable[Product] | None = None,
) -> dict[int, RateQuote]:
    """``rate_usage`` for many products at once, keyed by product pk, in a fixed number of
    queries. Products that cannot be rated for this account (not usage services, not in the
    catalog, or no catalog at all) are simply absent."""
    _require_aware(at)
    product_ids = {product.pk for product in products if product.is_usage_service}
    if not product_ids:
        return {}
    entry = _applicable(classification=classification, at=at, subscription_services=subscription_services)
    if entry is None:
        return {}
    local_time = wall_clock(at)
    return {product_id: _quote(entry.catalog, service, local_time) for product_id, service in entry.services.items()
            if product_id in product_ids}


# --- Portal reads: titles with their price, packages with their rates -------------------

def catalog_moment(at: datetime) -> tuple | None:
    """Everything besides the caller's screen, classification and query that a portal
    catalog page at ``at`` depends on, as a key: the versions of the title and catalog
    tables, which title windows and which catalog validity periods ``at`` lies between, and
    the wall-clock minute (tiers are whole minutes). Two moments with the same key give the
    same page. None where reference versions are not kept (not PostgreSQL)."""
    titles, catalogs = reference_version("titles"), reference_version("catalog")
    if titles is None or catalogs is None:
        return None
    return (titles, catalogs, bisect_right(title_window_bounds(), at), bisect_right(_catalog_bounds(), at),
            at.replace(second=0, microsecond=0))


def _catalog_bounds() -> list[datetime]:
    return reference_cached("catalog", "validity_bounds", lambda: sorted(
        {bound for entry in _entries() for bound in (entry.catalog.valid_from, entry.catalog.valid_until) if bound is not None}))


def portal_title_list(*, screen: str, at: datetime | None = None) -> QuerySet[ContentTitle]:
    """The multiscreen catalog for ``screen`` with what a page of it needs prefetched
    (genres, products and their types), in a stable order for pagination."""
    return (
        title_list_for_screen(screen=screen, at=at)
        .prefetch_related("genres", Prefetch("products", queryset=Product.objects.select_related("product_type").order_by("code", "pk")))
        .order_by("title", "pk")
    )


def title_ppv_product(title: ContentTitle) -> Product | None:
    """The product that sells ``title`` per view: its active usage service (the first by
    code, should there be several). Uses the prefetch of ``portal_title_list`` when there
    is one."""
    products = [product for product in title.products.all() if product.is_active and product.is_usage_service]
    return min(products, key=lambda product: (product.code, product.pk), default=None)


def title_quotes_for(*, titles: Iterable[ContentTitle], at: datetime, classification: Classification | str | None) -> dict[int, RateQuote]:
    """The price of each title's PPV product for an account of ``classification`` at ``at``,
    keyed by title pk, in a fixed number of queries whatever the number of titles. A title
    not sold as a usage service to this account is absent."""
    product_by_title = {title.pk: title_ppv_product(title) for title in titles}
    quotes = usage_quotes_for(products=[product for product in product_by_title.values() if product], at=at, classification=classification)
    return {title_pk: quotes[product.pk] for title_pk, product in product_by_title.items() if product and product.pk in quotes}


def usage_product_get(*, code: str) -> Product:
    product = Product.objects.select_related("product_type").filter(code=code, is_active=True).first()
    if product is None:
        raise NotFound(f"No product {code}.")
    return product


def portal_title_get(*, pk: int, screen: str, at: datetime | None = None) -> ContentTitle:
    title = portal_title_list(screen=screen, at=at).filter(pk=pk).first()
    if title is None:
        raise NotFound("No such title in the catalog for this screen.")
    return title


# --- Price plans (packages) -------------------------------------------------------------

def package_rates_for(*, classification: Classification | None, at: datetime) -> QuerySet[PricePlanRate]:
    """Rates of EFFECTIVE price plans valid at ``at`` whose classification condition is
    empty or names ``classification``."""
    conditions = PricePlan.classifications.through.objects.filter(priceplan_id=OuterRef("price_plan_id"))
    admits = ~Exists(conditions)
    if classification is not None:
        admits |= Exists(conditions.filter(classification_id=classification.pk))
    plan_valid = (Q(price_plan__valid_from__isnull=True) | Q(price_plan__valid_from__lte=at)) & (
        Q(price_plan__valid_until__isnull=True) | Q(price_plan__valid_until__gt=at)
    )
    return (
        PricePlanRate.objects.filter(price_plan__state=LifecycleState.EFFECTIVE)
        .filter(plan_valid)
        .filter(admits)
        .select_related("price_plan")
        .order_by("price_plan__name", "charge_type", "pk")
    )


def package_list_for(*, classification: Classification | None, at: datetime) -> QuerySet[Product]:
    """Active termed services with their titles count and, in ``applicable_rates``, the
    price plan rates that apply to ``classification`` at ``at``."""
    return (
        Product.objects.filter(is_active=True, product_type__service_type=ProductType.ServiceType.TERMED)
        .annotate(titles_count=Count("titles", distinct=True))
        .prefetch_related(
            Prefetch("price_plan_rates", queryset=package_rates_for(classification=classification, at=at), to_attr="applicable_rates")
        )
        .order_by("name", "pk")
    )
