"""Reads of the catalogs shared by every area. Area-specific reads live beside their
services (``catalogs.rating`` for prices)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from django.utils import timezone

from core.refcache import reference_cached

from .models import ContentTitle, Product, TitleAvailability


def _window_contains(prefix: str, at: datetime) -> Q:
    return (Q(**{f"{prefix}available_from__isnull": True}) | Q(**{f"{prefix}available_from__lte": at})) & (
        Q(**{f"{prefix}available_until__isnull": True}) | Q(**{f"{prefix}available_until__gt": at})
    )


def title_list_for_screen(*, screen: str, at: datetime | None = None) -> QuerySet[ContentTitle]:
    """The multiscreen catalog: PUBLISHED titles whose own window and whose availability on
    ``screen`` both contain ``at`` (default: now). Windows are [from, until)."""
    at = at or timezone.now()
    on_screen = TitleAvailability.objects.filter(Q(title=OuterRef("pk"), screen=screen) & _window_contains("", at))
    return ContentTitle.objects.filter(Q(state=ContentTitle.State.PUBLISHED) & _window_contains("", at)).filter(Exists(on_screen))


def _contains(window_from: datetime | None, window_until: datetime | None, at: datetime) -> bool:
    return (window_from is None or window_from <= at) and (window_until is None or window_until > at)


@dataclass(frozen=True)
class _TitleEntry:
    title: ContentTitle  # with its products (and their types) prefetched
    screens: dict[str, tuple[datetime | None, datetime | None]]


def _titles_load() -> dict[int, _TitleEntry]:
    titles = ContentTitle.objects.prefetch_related(
        Prefetch("products", queryset=Product.objects.select_related("product_type")), "availabilities")
    return {title.pk: _TitleEntry(title=title, screens={a.screen: (a.available_from, a.available_until) for a in title.availabilities.all()})
            for title in titles}


def _titles() -> dict[int, _TitleEntry]:
    """Every title with its products and screen windows, remembered per process until one
    of those tables changes (``core.refcache``, group ``titles``)."""
    return reference_cached("titles", "titles", _titles_load)


def title_window_bounds() -> list[datetime]:
    """Every instant at which some title's own window or screen window opens or closes,
    sorted: between two of them, ``title_list_for_screen`` gives the same titles."""
    def bounds() -> list[datetime]:
        found = set()
        for entry in _titles().values():
            found.update((entry.title.available_from, entry.title.available_until))
            for window in entry.screens.values():
                found.update(window)
        return sorted(bound for bound in found if bound is not None)
    return reference_cached("titles", "window_bounds", bounds)


def title_for_order(*, pk: int) -> ContentTitle | None:
    """The title with the products that sell it, without a query while nothing changed.
    Shared by the process: read it, never change it."""
    entry = _titles().get(pk)
    return entry.title if entry else None


def title_is_available(*, title: ContentTitle, screen: str, at: datetime | None = None) -> bool:
    """Whether ``title_list_for_screen(screen, at)`` holds ``title``: PUBLISHED, within its
    own window and its window on ``screen`` (the same rule, read from the remembered titles)."""
    at = at or timezone.now()
    entry = _titles().get(title.pk)
    if entry is None or entry.title.state != ContentTitle.State.PUBLISHED:
        return False
    if not _contains(entry.title.available_from, entry.title.available_until, at):
        return False
    window = entry.screens.get(screen)
    return window is not None and _contains(window[0], window[1], at)
