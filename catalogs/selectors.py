"""Reads of the catalogs shared by every area. Area-specific reads live beside their
services (``catalogs.rating`` for prices)."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from .models import ContentTitle, TitleAvailability


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


def title_is_available(*, title: ContentTitle, screen: str, at: datetime | None = None) -> bool:
    return title_list_for_screen(screen=screen, at=at).filter(pk=title.pk).exists()
