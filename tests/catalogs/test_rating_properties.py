"""Properties of rating that must hold for every moment and every tier layout.

- The rate preview is total: every instant of a day gets exactly one price, and it is the
  tier's price exactly when the wall-clock minute lies in the tier's window.
- For any non-overlapping tier set (midnight-crossing windows included) every minute of the
  day is covered by at most one tier, and ``rate_usage`` agrees with a brute-force,
  minute-by-minute reference.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalogs.models import UsageTier
from catalogs.rating import rate_usage, wall_clock, windows_overlap
from core.exceptions import ApplicationError
from tests.catalogs.test_rating import NICOSIA, company_zx_create

pytestmark = pytest.mark.django_db

PROPERTY_SETTINGS = settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
MINUTES_PER_DAY = 24 * 60

minutes_of_day = st.integers(min_value=0, max_value=MINUTES_PER_DAY - 1)
# Any instant of 2026, DST change days included (they are days like any other here).
instants = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 31, 23, 59, 59, 999_999)).map(
    lambda naive: naive.replace(tzinfo=UTC)
)


def clock(minute: int) -> time:
    return time(minute // 60, minute % 60)


def covered_minutes(start: int, end: int) -> set[int]:
    """The reference: the minutes a window covers, spelled out one by one."""
    if start <= end:
        return set(range(start, end + 1))
    return set(range(start, MINUTES_PER_DAY)) | set(range(0, end + 1))


@pytest.fixture(autouse=True)
def _operator_in_nicosia(settings):
    settings.TIME_ZONE = "Europe/Nicosia"


@pytest.fixture
def zx():
    return company_zx_create()


@PROPERTY_SETTINGS
@given(at=instants)
def test_every_instant_of_the_day_gets_exactly_the_zx_price_its_wall_clock_minute_calls_for(zx, at):
    quote = rate_usage(product=zx.lotr, at=at, classification="NORMAL")

    wall = at.astimezone(NICOSIA)
    at_night = 1 <= wall.hour * 60 + wall.minute <= 6 * 60 + 59
    assert quote.local_time == wall and quote.local_time.utcoffset() == wall.utcoffset()
    assert quote.amount == (Decimal("5") if at_night else Decimal("10"))
    assert (quote.tier is not None) is at_night


@st.composite
def tier_sets(draw) -> list[tuple[int, int, Decimal]]:
    """Random windows (minute-of-day bounds), each kept only if ``windows_overlap`` says it
    shares no minute with those kept before it; each with its own rate."""
    kept: list[tuple[int, int]] = []
    for start, end in draw(st.lists(st.tuples(minutes_of_day, minutes_of_day), max_size=6)):
        if not any(windows_overlap(clock(start), clock(end), clock(a), clock(b)) for a, b in kept):
            kept.append((start, end))
    return [(start, end, Decimal(index + 1)) for index, (start, end) in enumerate(kept)]


def test_the_tier_set_strategy_produces_several_tiers_crossing_midnight():
    found = []

    @settings(max_examples=300, deadline=None)
    @given(tier_sets())
    def probe(tiers):
        if len(tiers) >= 2 and any(start > end for start, end, _rate in tiers):
            found.append(tiers)

    probe()
    assert found


@PROPERTY_SETTINGS
@given(a=st.tuples(minutes_of_day, minutes_of_day), b=st.tuples(minutes_of_day, minutes_of_day))
def test_windows_overlap_exactly_when_they_share_a_minute(a, b):
    shared = covered_minutes(*a) & covered_minutes(*b)

    assert windows_overlap(clock(a[0]), clock(a[1]), clock(b[0]), clock(b[1])) is bool(shared)


@PROPERTY_SETTINGS
@given(tiers=tier_sets())
def test_non_overlapping_tiers_cover_every_minute_at_most_once(tiers):
    coverage = [0] * MINUTES_PER_DAY
    for start, end, _rate in tiers:
        for minute in covered_minutes(start, end):
            coverage[minute] += 1

    assert max(coverage) <= 1


@PROPERTY_SETTINGS
@given(tiers=tier_sets(), moments=st.lists(instants, min_size=1, max_size=8))
def test_rating_agrees_with_a_minute_by_minute_reference(zx, tiers, moments):
    reference = {}
    for start, end, rate in tiers:
        reference.update(dict.fromkeys(covered_minutes(start, end), rate))

    with transaction.atomic():  # each example's tiers are rolled back before the next
        zx.normal_lotr.tiers.all().delete()
        UsageTier.objects.bulk_create(
            UsageTier(usage_service=zx.normal_lotr, start_time=clock(start), end_time=clock(end), rate=rate) for start, end, rate in tiers
        )
        for at in moments:
            wall = wall_clock(at)
            quote = rate_usage(product=zx.lotr, at=at, classification="NORMAL")

            assert quote.amount == reference.get(wall.hour * 60 + wall.minute, Decimal("10"))
        transaction.set_rollback(True)


@PROPERTY_SETTINGS
@given(at=instants, seconds=st.integers(min_value=0, max_value=59), micro=st.integers(min_value=0, max_value=999_999))
def test_the_seconds_within_a_minute_never_change_the_price(zx, at, seconds, micro):
    start_of_minute = at.replace(second=0, microsecond=0)
    later_in_minute = start_of_minute + timedelta(seconds=seconds, microseconds=micro)

    try:
        prices = [rate_usage(product=product, at=moment, classification=classification).amount
                  for moment in (start_of_minute, later_in_minute)
                  for product in (zx.lotr, zx.serendipity) for classification in ("NORMAL", "VIP")]
    except ApplicationError as error:  # every moment must have a price: this must not happen
        pytest.fail(f"no price at {at}: {error}")

    assert prices[:4] == prices[4:]
