"""The daily viewing rollup: views, viewers, seconds watched and completions per title and
screen, from events recorded by the devices' own service."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine

from analytics.models import ViewingDay
from analytics.selectors import top_titles
from analytics.services.viewing import viewing_day_rollup
from subscriptions.services.devices import device_register, viewing_events_record
from tests.factories import customer_create

pytestmark = pytest.mark.django_db
NICOSIA = ZoneInfo("Europe/Nicosia")
EVENING = datetime(2026, 3, 10, 21, 0, tzinfo=NICOSIA)


def play(device, title, positions: list[tuple[str, int]], start: datetime) -> None:
    events = [{"kind": kind, "title": title.pk, "position_seconds": position,
               "occurred_at": (start + timedelta(seconds=30 * index)).isoformat()}
              for index, (kind, position) in enumerate(positions)]
    with time_machine.travel(start + timedelta(hours=4), tick=False):
        viewing_events_record(device=device, events=events)


def test_views_hours_and_completions_per_title_and_screen(zx_catalog, movie):
    # Given two customers: Maria watches all of Serendipity (90 min) on her TV, with a seek back,
    # then starts it again on her phone; Nikos watches 10 minutes of it on his TV
    maria, nikos = customer_create(first_name="Maria"), customer_create(first_name="Nikos")
    tv, _ = device_register(account=maria, name="Living room", screen="SMART_TV")
    phone, _ = device_register(account=maria, name="Phone", screen="MOBILE")
    nikos_tv, _ = device_register(account=nikos, name="TV", screen="SMART_TV")
    serendipity = movie("SERENDIPITY")
    play(tv, serendipity, [("START", 0), ("PROGRESS", 3000), ("PROGRESS", 2400), ("STOP", 5400)], EVENING)
    play(phone, serendipity, [("START", 0), ("STOP", 120)], EVENING + timedelta(hours=2))
    play(nikos_tv, serendipity, [("START", 0), ("PROGRESS", 300), ("STOP", 600)], EVENING)

    # When the day is rolled up (twice: the second run changes nothing)
    viewing_day_rollup(day=date(2026, 3, 10))
    first = list(ViewingDay.objects.order_by("screen").values_list("pk", "screen", "views", "viewers", "seconds_watched",
                                                                   "completions"))
    viewing_day_rollup(day=date(2026, 3, 10))

    # Then the TV had two views by two viewers, 3000 + 3000 (after the seek back) + 600 seconds, one complete
    rows = list(ViewingDay.objects.order_by("screen").values_list("pk", "screen", "views", "viewers", "seconds_watched",
                                                                  "completions"))
    assert rows == first
    assert [row[1:] for row in rows] == [("MOBILE", 1, 1, 120, 0), ("SMART_TV", 2, 2, 6600, 1)]
    # Maria's and Nikos's TVs played at the same time; the phone played later, alone
    assert dict(ViewingDay.objects.values_list("screen", "peak_concurrent")) == {"MOBILE": 1, "SMART_TV": 2}
    assert top_titles(first=date(2026, 3, 1), last=date(2026, 3, 31)) == [{
        "title": "Serendipity", "views": 3, "viewers": 3, "hours": Decimal("1.9"), "completion_rate": Decimal("0.3333"),
        "peak_concurrent": 2}]
