"""The daily viewing rollups, from the devices' START / PROGRESS / STOP events
(definitions: docs/analytics.md):

- ``ViewingDay``: views, viewers, seconds watched, completions and peak concurrent views
  per title, screen and day (the viewing report, top titles);
- ``AccountViewingDay``: the same per customer, title, screen, day and part of the day
  (subscriber insights; recommendations next).

A view starts with a START event; the time watched is the sum of the forward moves of the
playback position between consecutive events of the same device and title until the
next START (a seek back adds nothing; devices report every 30 seconds or so). A view is
complete when its furthest position reaches 90% of the title's duration. A view belongs
to the day and part of the day its first event falls in.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.db import transaction
from django.utils import timezone

from core.memory import cycle_collector_paused
from subscriptions.models import ViewingEvent

from ..models import AccountViewingDay, ViewingDay

COMPLETION_SHARE = 0.9
Daypart = AccountViewingDay.Daypart


@dataclass
class _Totals:
    views: int = 0
    seconds: int = 0
    completions: int = 0
    viewers: set = field(default_factory=set)
    spans: list = field(default_factory=list)

    def peak_concurrent(self) -> int:
        """The most views playing at once (a view plays from its first to its last event;
        one ending as another starts does not overlap it)."""
        moments = sorted([(start, 1) for start, _ in self.spans] + [(end, -1) for _, end in self.spans],
                         key=lambda moment: (moment[0], moment[1]))
        playing = peak = 0
        for _, change in moments:
            playing += change
            peak = max(peak, playing)
        return peak


def daypart_of(moment: datetime) -> str:
    hour = timezone.localtime(moment).hour
    if hour < 7:
        return Daypart.NIGHT
    if hour < 12:
        return Daypart.MORNING
    return Daypart.AFTERNOON if hour < 18 else Daypart.EVENING


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    start = timezone.make_aware(datetime.combine(day, time.min))
    return start, timezone.make_aware(datetime.combine(day + timedelta(days=1), time.min))


class _Views:
    """Walks the day's events device by device and title by title, adding each view to its
    title/screen totals and its customer's totals."""

    def __init__(self) -> None:
        self.titles: dict[tuple[int, str], _Totals] = defaultdict(_Totals)
        self.accounts: dict[tuple[int, int, str, str], _Totals] = defaultdict(_Totals)
        self._stream = None
        self._current: list[_Totals] = []
        self._duration = 0
        self._furthest = self._last = 0
        self._started = self._ended = None

    def _close(self) -> None:
        if not self._current:
            return
        self._current[0].spans.append((self._started, self._ended))
        if self._duration and self._furthest >= COMPLETION_SHARE * self._duration:
            for totals in self._current:
                totals.completions += 1

    def add(self, account_id, device_id, title_id, kind, position, screen, minutes, occurred_at) -> None:
        screen = screen or ""
        if (device_id, title_id) != self._stream or kind == ViewingEvent.Kind.START:
            self._close()
            self._stream, self._duration = (device_id, title_id), (minutes or 0) * 60
            self._furthest = self._last = position
            self._started = self._ended = occurred_at
            self._current = [self.titles[(title_id, screen)], self.accounts[(account_id, title_id, screen, daypart_of(occurred_at))]]
            self._current[0].viewers.add(account_id)
            if kind == ViewingEvent.Kind.START:
                for totals in self._current:
                    totals.views += 1
            return
        for totals in self._current:
            totals.seconds += max(0, position - self._last)
        self._last, self._furthest, self._ended = position, max(self._furthest, position), occurred_at

    def finish(self) -> None:
        self._close()


def _views(first: date, last: date) -> dict[date, _Views]:
    """The views of each day from ``first`` to ``last``, in one read of the events.

    Events come ordered by device, title and time; each goes to its own day's walk, where
    the events of one device and title are still contiguous and in order, so every day is
    walked exactly as if it had been read alone (a view never crosses midnight)."""
    start, end = _day_bounds(first)[0], _day_bounds(last)[1]
    events = (ViewingEvent.objects.filter(occurred_at__gte=start, occurred_at__lt=end)
              .order_by("device_id", "title_id", "occurred_at", "pk")
              .values_list("account_id", "device_id", "title_id", "kind", "position_seconds", "device__screen",
                           "title__duration_minutes", "occurred_at"))
    days: dict[date, _Views] = {}
    day = first
    while day <= last:
        days[day] = _Views()
        day += timedelta(days=1)
    for row in events.iterator(chunk_size=10_000):
        days[timezone.localdate(row[-1])].add(*row)
    for views in days.values():
        views.finish()
    return days


def _replace(model, day: date, rows: list, unique: list[str], fields: list[str]) -> None:
    model.objects.bulk_create(rows, update_conflicts=True, unique_fields=unique, update_fields=fields, batch_size=1000)
    keys = unique[1:]
    keep = {tuple(getattr(row, model._meta.get_field(key).attname) for key in keys) for row in rows}
    attnames = [model._meta.get_field(key).attname for key in keys]
    stale = [pk for pk, *key in model.objects.filter(day=day).values_list("pk", *attnames) if tuple(key) not in keep]
    if stale:
        model.objects.filter(pk__in=stale).delete()


def _day_write(day: date, views: _Views) -> int:
    titles = [ViewingDay(day=day, title_id=title_id, screen=screen, views=t.views, viewers=len(t.viewers),
                         seconds_watched=t.seconds, completions=t.completions, peak_concurrent=t.peak_concurrent())
              for (title_id, screen), t in views.titles.items()]
    accounts = [AccountViewingDay(day=day, account_id=account_id, title_id=title_id, screen=screen, daypart=daypart, views=t.views,
                                  seconds_watched=t.seconds, completions=t.completions)
                for (account_id, title_id, screen, daypart), t in views.accounts.items()]
    with transaction.atomic():
        _replace(ViewingDay, day, titles, ["day", "title", "screen"], ["views", "viewers", "seconds_watched", "completions",
                                                                    "peak_concurrent"])
        _replace(AccountViewingDay, day, accounts, ["day", "account", "title", "screen", "daypart"],
                 ["views", "seconds_watched", "completions"])
    return len(titles)


def viewing_day_rollup(*, day: date) -> int:
    """Compute (or recompute) one day's rows (same rows, same ids on a re-run); returns
    how many title rows."""
    return _day_write(day, _views(day, day)[day])


def viewing_rollup(*, through: date, days: int = 2) -> list[date]:
    """The last ``days`` days through ``through`` (yesterday's late events are caught up),
    from one read of their events; each day is written in its own transaction."""
    first = through - timedelta(days=days - 1)
    with cycle_collector_paused():  # the days' views live until written (core.memory)
        walked = _views(first, through)
        for day in sorted(walked):
            _day_write(day, walked[day])
    return sorted(walked)
