"""Subscriber insights: usage, preferences and behaviour segments (night-time PPV buyers,
paying customers whose viewing is falling), and their CSV export."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.test import Client
from rest_framework.test import APIClient

from analytics.models import AccountViewingDay
from accounts.models import AccountsReceivable
from analytics.api.serializers import SubscriberInsightSerializer
from analytics.selectors import INSIGHT_SEGMENTS, insight_members, subscriber_insight_counts, subscriber_insights
from analytics.services.rollups import analytics_rollup
from analytics.services.viewing import viewing_day_rollup
from catalogs.models import ContentTitle
from subscriptions.services.devices import device_register, viewing_events_record

from .history import at, build

pytestmark = pytest.mark.django_db
JAN, MAY = date(2026, 1, 1), date(2026, 5, 1)


def watch(device, code: str, seconds: int, start: datetime) -> None:
    """A view of ``seconds``: START, a PROGRESS every 10 minutes, STOP."""
    title = ContentTitle.objects.get(code=code)
    positions = [("START", 0), *(("PROGRESS", s) for s in range(600, seconds, 600)), ("STOP", seconds)]
    events = [{"kind": kind, "title": title.pk, "position_seconds": position,
               "occurred_at": (start + timedelta(seconds=position)).isoformat()} for kind, position in positions]
    with time_machine.travel(start + timedelta(hours=4), tick=False):
        viewing_events_record(device=device, events=events)
    viewing_day_rollup(day=start.date())


@pytest.fixture
def watched(billing_scheme):
    """The analytics history, plus: Anna watched Serendipity twice on her TV on an April
    evening, then 10 minutes in May (falling); Chris watched 20 minutes of Limitless on his
    phone one April night (too little to be "falling")."""
    people = build(billing_scheme)
    anna_tv, _ = device_register(account=people["anna"], name="TV", screen="SMART_TV")
    chris_phone, _ = device_register(account=people["chris"], name="Phone", screen="MOBILE")
    watch(anna_tv, "SERENDIPITY", 5400, at(2026, 4, 10, 20, 0))
    watch(anna_tv, "SERENDIPITY", 5400, at(2026, 4, 12, 21, 0))
    watch(anna_tv, "LOTR", 600, at(2026, 5, 10, 20, 0))
    watch(chris_phone, "LIMITLESS", 1200, at(2026, 4, 20, 1, 0))
    analytics_rollup(through=date(2026, 5, 31))
    return people


def test_usage_preferences_and_behaviour_per_customer(watched):
    rows = {row["account"]: row for row in subscriber_insights(first=JAN, last=MAY)}

    anna, chris, dora = rows[watched["anna"].number], rows[watched["chris"].number], rows[watched["dora"].number]
    assert (anna["views"], anna["hours"], anna["top_genre"], anna["top_screen"], anna["top_daypart"]) == (
        3, Decimal("3.2"), "Comedy", "SMART_TV", "EVENING")
    assert (anna["at_risk"], anna["night_ppv_buyer"]) == (True, False)
    assert (chris["hours"], chris["top_daypart"], chris["at_risk"]) == (Decimal("0.3"), "NIGHT", False)
    # Dora: one evening and one night order of two
    assert (dora["orders"], dora["night_orders"], dora["night_ppv_buyer"], dora["at_risk"]) == (2, 1, True, False)
    assert AccountViewingDay.objects.filter(account=watched["anna"]).count() == 3


def test_segments_keep_only_their_customers(watched):
    assert [row["account"] for row in subscriber_insights(first=JAN, last=MAY, kind="at_risk")] == [watched["anna"].number]
    assert [row["account"] for row in subscriber_insights(first=JAN, last=MAY, kind="night_ppv_buyers")] == [
        watched["dora"].number]


def test_a_segment_read_alone_is_its_rows_among_everyones(watched):
    # A segment's rows are read for its members only (chosen from the customer months), and
    # come out exactly as in the list of every customer, for every filter
    for segment in ({}, {"classification": "Normal"}, {"channel": "PORTAL"}, {"channel": "CALL_CENTER"}):
        everyone = subscriber_insights(first=JAN, last=MAY, segment=segment)
        for kind, flag in (("at_risk", "at_risk"), ("night_ppv_buyers", "night_ppv_buyer")):
            assert subscriber_insights(first=JAN, last=MAY, segment=segment, kind=kind) == [
                row for row in everyone if row[flag]], (segment, kind)
    assert subscriber_insights(first=JAN, last=MAY, kind="at_risk", segment={"channel": "PORTAL"}) == []


def test_the_dashboards_counts_are_the_segments_sizes(watched):
    # Anna, Ben, Chris and Dora; Anna at risk; Dora a night-time buyer
    counts = subscriber_insight_counts(first=JAN, last=MAY)

    assert counts == {kind: len(subscriber_insights(first=JAN, last=MAY, kind=kind)) for kind in counts}
    assert counts == {"all": 4, "night_ppv_buyers": 1, "at_risk": 1}


def test_marketing_exports_a_segment_as_csv(watched, marketing_user):
    client = Client()
    client.force_login(marketing_user)

    response = client.get("/admin/analytics/analyticsdashboard/insights/csv/?first=2026-01&last=2026-05&kind=at_risk")

    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert response.status_code == 200
    assert rows[0][:3] == ["account", "classification", "orders"]
    assert [(row[0], row[5], row[6], row[-1]) for row in rows[1:]] == [(watched["anna"].number, "3.2", "Comedy", "True")]


def test_the_members_are_the_customers_with_rows_in_their_order(watched):
    # What the API pages through: exactly the accounts subscriber_insights has rows for
    for segment in ({}, {"classification": "Normal"}, {"channel": "PORTAL"}, {"channel": "CALL_CENTER"}):
        for kind in INSIGHT_SEGMENTS:
            members = insight_members(first=JAN, last=MAY, segment=segment, kind=kind)
            numbers = dict(AccountsReceivable.objects.filter(pk__in=members).values_list("pk", "number"))
            assert [numbers[pk] for pk in members] == [
                row["account"] for row in subscriber_insights(first=JAN, last=MAY, segment=segment, kind=kind)], (segment, kind)


def test_the_staff_api_pages_through_the_same_rows(watched, marketing_user):
    client = APIClient()
    client.force_login(marketing_user)
    for kind in INSIGHT_SEGMENTS:
        expected = [dict(row) for row in SubscriberInsightSerializer(
            subscriber_insights(first=JAN, last=MAY, kind=kind), many=True).data]
        pages, url = [], f"/api/v1/analytics/insights/?first=2026-01&last=2026-05&kind={kind}&page_size=3"
        while url:
            response = client.get(url)
            assert response.status_code == 200
            pages.append(response.json())
            url = pages[-1]["next"]
        assert {page["count"] for page in pages} == {len(expected)}
        assert [row for page in pages for row in page["results"]] == expected, kind
    assert len(pages) == 1 and pages[0]["count"] == 1  # at risk: Anna
    assert len(expected) == 1 and expected[0]["account"] == watched["anna"].number
    everyone = client.get("/api/v1/analytics/insights/?first=2026-01&last=2026-05&page_size=3").json()
    assert (everyone["count"], len(everyone["results"]), everyone["next"] is not None) == (4, 3, True)
