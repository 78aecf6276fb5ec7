"""A customer's recommendations for the portal's home page (docs/analytics.md,
"Recommendations"). Reads the similarity and popularity tables the scheduled rebuild
fills, and the customer's own rows; never the whole history.

Only titles the customer can order now on their screen are offered: the catalog's own
rule for the screen (``catalogs.rating.portal_title_list`` — published, in its window and
available on the screen, the same rule that refuses an order the screen cannot play) and
a price for the customer's classification (``title_quotes_for``: sold per view to them).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Max
from django.utils import timezone

from accounts.models import AccountsReceivable
from billing.models import UsageDetailRecord
from catalogs.models import ContentTitle
from catalogs.rating import portal_title_list, title_quotes_for
from core.choices import Screen
from subscriptions.models import Device, ViewingEvent

from .models import AccountViewingDay, TitlePopularity, TitleSimilarity
from .services.recommendations import (
    BOUGHT, POPULAR, SEEDS, UNCOUNTED_UDR_STATES, WATCHED, Interaction, Pick, history_of, recommend,
)

DEFAULT_LIMIT, MAX_LIMIT = 10, 50
POPULAR_POOL = 200  # popular titles considered (most are filtered out on a small screen)
NEW = "NEW"
NEW_REASON = "New in the catalog"
UNROLLED_HOURS = 48  # viewing events not rolled up yet still count as watched
DEFAULT_SCREEN = Screen.WEB  # a customer with no device watches in the portal


@dataclass(frozen=True)
class Recommendation:
    title: ContentTitle
    kind: str  # SIMILAR, POPULAR or NEW
    reason: str
    because: ContentTitle | None
    score: float


def reason_for(pick: Pick, because: ContentTitle | None) -> str:
    if pick.kind == POPULAR or because is None:
        return "Popular this week"
    verb = "watched" if pick.because_kind == WATCHED else "bought"
    return f"Because you {verb} {because.title}"


def account_history(*, account: AccountsReceivable, at: datetime) -> list[tuple[int, str]]:
    """Every title the customer watched (rollup, plus the last two days' raw events of
    their own) or bought, most recent first."""
    found: dict[int, Interaction] = {}
    orders = (UsageDetailRecord.objects.filter(account=account, title__isnull=False).exclude(state__in=UNCOUNTED_UDR_STATES)
              .values("title_id").annotate(last=Max("usage_at")).values_list("title_id", "last").order_by())
    for title_id, last in orders:
        found[title_id] = Interaction(last=timezone.localdate(last), kind=BOUGHT)
    viewing = (AccountViewingDay.objects.filter(account=account).values("title_id").annotate(last=Max("day"))
               .values_list("title_id", "last").order_by())
    recent = (ViewingEvent.objects.filter(account=account, occurred_at__gte=at - timedelta(hours=UNROLLED_HOURS))
              .values("title_id").annotate(last=Max("occurred_at")).values_list("title_id", "last").order_by())
    for title_id, last in [*viewing, *((title_id, timezone.localdate(last)) for title_id, last in recent)]:
        before = found.get(title_id)
        found[title_id] = Interaction(last=max(last, before.last) if before else last, kind=WATCHED)
    return history_of(found)


def screens_for(*, account: AccountsReceivable, device: Device | None) -> list[str]:
    if device is not None:
        return [device.screen]
    screens = sorted(set(Device.objects.filter(account=account, state=Device.State.ACTIVE).values_list("screen", flat=True)))
    return screens or [DEFAULT_SCREEN]


def orderable_titles(*, account: AccountsReceivable, title_ids: set[int], screens: list[str], at: datetime) -> dict[int, ContentTitle]:
    """Of ``title_ids``, those available now on one of ``screens`` and priced for the account."""
    titles: dict[int, ContentTitle] = {}
    for screen in screens:
        for title in portal_title_list(screen=screen, at=at).filter(pk__in=title_ids):
            titles.setdefault(title.pk, title)
    quotes = title_quotes_for(titles=titles.values(), at=at, classification=account.classification)
    return {pk: title for pk, title in titles.items() if pk in quotes}


def recommendation_list(*, account: AccountsReceivable, device: Device | None = None, limit: int = DEFAULT_LIMIT,
                        at: datetime | None = None) -> list[Recommendation]:
    """Up to ``limit`` titles for the customer's home page, best first, each with its reason.
    ``device`` (one of the account's active devices) narrows to what that screen shows;
    otherwise any of the account's active devices' screens (none: the web portal)."""
    at = at or timezone.now()
    history = account_history(account=account, at=at)
    seen = {title for title, _kind in history}
    seeds = [title for title, _kind in history[:SEEDS]]
    neighbours: dict[int, list[tuple[int, float]]] = {}
    for title_id, similar_id, score in (TitleSimilarity.objects.filter(title_id__in=seeds)
                                        .order_by("title_id", "-score", "similar_id").values_list("title_id", "similar_id", "score")):
        neighbours.setdefault(title_id, []).append((similar_id, score))
    popular = list(TitlePopularity.objects.order_by("-customers", "title_id").values_list("title_id", flat=True)[:POPULAR_POOL])
    candidates = {similar for rows in neighbours.values() for similar, _score in rows} | set(popular)
    allowed = orderable_titles(account=account, title_ids=candidates - seen, screens=screens_for(account=account, device=device),
                               at=at)
    picks = recommend(history=history, neighbours=neighbours, popular=popular, limit=limit, allowed=set(allowed))
    because = ContentTitle.objects.in_bulk({pick.because_id for pick in picks if pick.because_id})
    chosen = [Recommendation(title=allowed[pick.title_id], kind=pick.kind, reason=reason_for(pick, because.get(pick.because_id)),
                             because=because.get(pick.because_id), score=pick.score) for pick in picks]
    if len(chosen) < limit:
        chosen += newest_titles(account=account, device=device, exclude=seen | {item.title.pk for item in chosen},
                                limit=limit - len(chosen), at=at)
    return chosen


def newest_titles(*, account: AccountsReceivable, device: Device | None, exclude: set[int], limit: int,
                  at: datetime) -> list[Recommendation]:
    """The last resort when history says too little (a new operator, a customer who has seen
    everything popular): the newest orderable titles, so the home page is never empty."""
    screens = screens_for(account=account, device=device)
    newest: dict[int, ContentTitle] = {}
    for screen in screens:
        for title in portal_title_list(screen=screen, at=at).exclude(pk__in=exclude).order_by("-created_at", "-pk")[:limit * 3]:
            newest.setdefault(title.pk, title)
    priced = title_quotes_for(titles=newest.values(), at=at, classification=account.classification)
    ordered = sorted((title for pk, title in newest.items() if pk in priced), key=lambda title: (title.created_at, title.pk), reverse=True)
    return [Recommendation(title=title, kind=NEW, reason=NEW_REASON, because=None, score=0.0) for title in ordered[:limit]]
