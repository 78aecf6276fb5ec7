"""Reads about what an account may watch and on how many devices and screens at once.

``entitlement_check`` is on the playback path of every device (DESIGN.md §5: p99 < 20 ms
at 500 req/s), so it is one indexed query that lets PostgreSQL pick the answer: the
account's state, its latest active rental of the title (``rental_lookup_idx``), the first
EFFECTIVE package holding the title, and — for a device — whether the title may be
watched on its screen. Python never loops over rows there.

The device and stream limits come from the products of the account's EFFECTIVE services
on EFFECTIVE subscriptions (``Product.max_devices`` / ``max_streams``; the largest wins),
else from the settings' defaults.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

from django.conf import settings
from django.db import connection
from django.db.models import Count, Max, Min, Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.models import AccountsReceivable
from catalogs.models import ContentTitle, Product
from catalogs.selectors import title_is_available
from core.choices import Screen
from core.exceptions import NotFound
from core.sql import fetch_one

from .models import Device, Rental, StreamSession, Subscription, SubscriptionService

EFFECTIVE = Subscription.State.EFFECTIVE
RENTAL, PACKAGE = "RENTAL", "PACKAGE"


def moment_text(at: datetime) -> str:
    """A time as people on the operator's wall clock read it: "2026-11-22 03:00 (Europe/Nicosia)"."""
    return f"{timezone.localtime(at, timezone.get_default_timezone()):%Y-%m-%d %H:%M} ({settings.TIME_ZONE})"


def effective_services(account) -> QuerySet[SubscriptionService]:
    """EFFECTIVE services on EFFECTIVE subscriptions of ``account`` (an account or an
    ``OuterRef`` to one): what an account holds now."""
    return SubscriptionService.objects.filter(subscription__account=account, subscription__state=EFFECTIVE, state=EFFECTIVE)


# --- entitlements -------------------------------------------------------------------------

@dataclass(frozen=True)
class Entitlement:
    """Whether an account may watch a title now, and why (or why not)."""

    entitled: bool
    reason: str
    source: str | None = None  # RENTAL or PACKAGE
    until: datetime | None = None  # the end of the rental; None for a package
    title: ContentTitle | None = None  # set by entitlement_list


def entitlement_check(*, account: AccountsReceivable, title: ContentTitle, at: datetime | None = None,
                      screen: str | None = None) -> Entitlement:
    """May ``account`` watch ``title`` at ``at`` (default now)? With ``screen`` (a device's),
    the title must also be available on that kind of screen then. One query.

    Order of the answer: an account that is not ACTIVE watches nothing; a title not offered
    on the screen plays on no subscription; then an active rental (the latest ending one),
    then an EFFECTIVE package listing the title; else not entitled.
    """
    at = at or timezone.now()
    moment = connection.ops.adapt_datetimefield_value(at)
    row = fetch_one(_entitlement_sql(), [title.pk, moment, moment, EFFECTIVE, EFFECTIVE, title.pk, account.pk])
    if row is None:
        raise NotFound("No such account.")
    number, state, rental_until, package = row
    if state != AccountsReceivable.State.ACTIVE:
        return Entitlement(False, f"the account {number} is {state}; nothing can be watched until it is ACTIVE again")
    if screen and not title_is_available(title=title, screen=screen, at=at):  # the remembered titles: no query
        return Entitlement(False, f"{title.title} is not available on {Screen(screen).label} now")
    if rental_until is not None:
        rental_until = _as_datetime(rental_until)
        return Entitlement(True, f"rental until {moment_text(rental_until)}", RENTAL, rental_until)
    if package is not None:
        return Entitlement(True, f"package {package}", PACKAGE)
    return Entitlement(False, f"no rental or package includes {title.title}")


@functools.cache
def _entitlement_sql() -> str:
    """``entitlement_check``'s one query, hand-written: the ORM took ~3 ms of Python per
    check to build it. The account's number and state; its latest active rental of the
    title (``rental_lookup_idx``); the first (by product name) EFFECTIVE service on an
    EFFECTIVE subscription whose product lists the title. Portable SQL (PostgreSQL, SQLite)."""
    titles = Product.titles.through._meta
    return (
        f"SELECT a.number, a.state, "
        f"(SELECT r.ends_at FROM {Rental._meta.db_table} r WHERE r.account_id = a.id AND r.title_id = %s "
        f"AND r.starts_at <= %s AND r.ends_at > %s ORDER BY r.ends_at DESC LIMIT 1), "
        f"(SELECT p.name FROM {SubscriptionService._meta.db_table} ss "
        f"JOIN {Subscription._meta.db_table} s ON s.id = ss.subscription_id "
        f"JOIN {Product._meta.db_table} p ON p.id = ss.product_id "
        f"JOIN {titles.db_table} pt ON pt.{titles.get_field('product').column} = p.id "
        f"WHERE s.account_id = a.id AND s.state = %s AND ss.state = %s "
        f"AND pt.{titles.get_field('contenttitle').column} = %s ORDER BY p.name LIMIT 1) "
        f"FROM {AccountsReceivable._meta.db_table} a WHERE a.id = %s"
    )


def _as_datetime(value) -> datetime | None:
    """A timestamp from hand-written SQL: PostgreSQL gives an aware datetime; SQLite the
    UTC text Django stored, or a naive datetime where its converter ran."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        value = parse_datetime(value)
    return value.replace(tzinfo=dt_timezone.utc) if timezone.is_naive(value) else value


def entitlement_list(*, account: AccountsReceivable, at: datetime | None = None) -> list[Entitlement]:
    """Every PUBLISHED title the account may watch at ``at`` (default now), by title name,
    each with its source (a rental wins over a package, as in ``entitlement_check``).
    Nothing for an account that is not ACTIVE. Two queries, whatever the catalog size."""
    at = at or timezone.now()
    if account.state != AccountsReceivable.State.ACTIVE:
        return []
    found: dict[int, Entitlement] = {}
    rentals = (Rental.objects.filter(account=account, starts_at__lte=at, ends_at__gt=at, title__state=ContentTitle.State.PUBLISHED)
               .select_related("title").order_by("title_id", "-ends_at"))
    for rental in rentals:
        if rental.title_id not in found:
            reason = f"rental until {moment_text(rental.ends_at)}"
            found[rental.title_id] = Entitlement(True, reason, RENTAL, rental.ends_at, rental.title)
    held = Product.objects.filter(pk__in=effective_services(account).values("product_id"))
    in_packages = (Product.titles.through.objects.filter(product__in=held, contenttitle__state=ContentTitle.State.PUBLISHED)
                   .select_related("contenttitle", "product").order_by("product__name", "pk"))
    for row in in_packages:
        if row.contenttitle_id not in found:
            found[row.contenttitle_id] = Entitlement(True, f"package {row.product.name}", PACKAGE, None, row.contenttitle)
    return sorted(found.values(), key=lambda entitlement: (entitlement.title.title, entitlement.title.pk))


# --- limits -------------------------------------------------------------------------------

def device_limit_get(*, account: AccountsReceivable) -> int:
    """Devices the account may hold: the largest ``max_devices`` among its EFFECTIVE
    services' products, else ``DEVICE_LIMIT_DEFAULT``."""
    limit = effective_services(account).aggregate(limit=Max("product__max_devices"))["limit"]
    return settings.DEVICE_LIMIT_DEFAULT if limit is None else limit


def stream_limit_get(*, account: AccountsReceivable) -> int:
    """Streams the account may play at once: the largest ``max_streams`` among its
    EFFECTIVE services' products, else ``STREAM_LIMIT_DEFAULT``."""
    limit = effective_services(account).aggregate(limit=Max("product__max_streams"))["limit"]
    return settings.STREAM_LIMIT_DEFAULT if limit is None else limit


def slot_cooldown() -> timedelta:
    return timedelta(hours=settings.DEVICE_SLOT_COOLDOWN_HOURS)


@dataclass(frozen=True)
class DeviceSlots:
    """How the account's device slots are used: ``active`` devices, plus ``cooling_down``
    removed ones that still hold their slot until ``next_free_at`` (the earliest)."""

    limit: int
    active: int
    cooling_down: int
    next_free_at: datetime | None

    @property
    def used(self) -> int:
        return self.active + self.cooling_down

    @property
    def free(self) -> int:
        return max(self.limit - self.used, 0)


def device_slots_get(*, account: AccountsReceivable, at: datetime | None = None) -> DeviceSlots:
    """Two queries: the limit, and one aggregate over the account's devices."""
    at = at or timezone.now()
    cooling = Q(state=Device.State.REMOVED, removed_at__gt=at - slot_cooldown())
    usage = Device.objects.filter(account=account).aggregate(
        active=Count("pk", filter=Q(state=Device.State.ACTIVE)),
        cooling_down=Count("pk", filter=cooling),
        first_removed=Min("removed_at", filter=cooling),
    )
    first_removed = usage["first_removed"]
    return DeviceSlots(limit=device_limit_get(account=account), active=usage["active"], cooling_down=usage["cooling_down"],
                       next_free_at=first_removed + slot_cooldown() if first_removed else None)


def slot_free_at(device: Device, at: datetime | None = None) -> datetime | None:
    """When a removed device's slot becomes free again (None if it is free or in use)."""
    if device.state != Device.State.REMOVED or device.removed_at is None:
        return None
    free_at = device.removed_at + slot_cooldown()
    return free_at if free_at > (at or timezone.now()) else None


# --- devices and streams ------------------------------------------------------------------

def device_list_for_user(*, user, at: datetime | None = None) -> QuerySet[Device]:
    """The portal's device list: the caller's ACTIVE devices and the removed ones that
    still hold a slot (so the customer sees why a slot is taken and until when)."""
    at = at or timezone.now()
    return (Device.objects.filter(account__contact__portal_user__user=user)
            .filter(Q(state=Device.State.ACTIVE) | Q(removed_at__gt=at - slot_cooldown()))
            .select_related("credential").order_by("registered_at", "pk"))


def stream_stale_before(at: datetime) -> datetime:
    """Sessions whose last heartbeat is at or before this moment are stale."""
    return at - timedelta(seconds=settings.STREAM_STALE_SECONDS)


def stream_sessions_active(*, account: AccountsReceivable, at: datetime | None = None) -> QuerySet[StreamSession]:
    """Sessions that count against the limit: not stopped, heartbeat within STREAM_STALE_SECONDS."""
    at = at or timezone.now()
    return StreamSession.objects.filter(account=account, ended_at__isnull=True, last_heartbeat_at__gt=stream_stale_before(at))
