"""Home-page recommendations: titles like the ones a customer watched or bought (cosine
over co-viewing), popularity for new customers, never what they already have, never what
their screen cannot show; the portal endpoint serves the caller's own account only."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from rest_framework.test import APIClient

from analytics.models import TitlePopularity, TitleSimilarity
from analytics.services.recommendations import recommendations_rebuild
from analytics.services.viewing import viewing_day_rollup
from analytics.tasks import recommendations_rebuild_task
from catalogs.models import ContentTitle
from catalogs.services.content import title_availability_remove
from subscriptions.services.devices import device_register, device_remove, viewing_events_record
from subscriptions.services.orders import usage_order_place
from tests.conftest import portal_client_for
from tests.factories import customer_create
from tests.world import effective_subscription

pytestmark = pytest.mark.django_db
NICOSIA = ZoneInfo("Europe/Nicosia")
DAY = date(2026, 3, 10)
EVENING = datetime(2026, 3, 10, 20, 0, tzinfo=NICOSIA)
LATER = datetime(2026, 3, 11, 9, 0, tzinfo=NICOSIA)


def watch(account, *codes: str, screen: str = "SMART_TV") -> None:
    """The customer plays each title a few minutes on a device of theirs, on DAY evening."""
    device = account.devices.filter(screen=screen, state="ACTIVE").first() or device_register(
        account=account, name=f"{account.number} {screen}", screen=screen)[0]
    with time_machine.travel(EVENING + timedelta(hours=2), tick=False):
        for index, code in enumerate(codes):
            start = EVENING + timedelta(minutes=10 * index)
            viewing_events_record(device=device, events=[
                {"kind": "START", "title": ContentTitle.objects.get(code=code).pk, "position_seconds": 0,
                 "occurred_at": start.isoformat()},
                {"kind": "STOP", "title": ContentTitle.objects.get(code=code).pk, "position_seconds": 300,
                 "occurred_at": (start + timedelta(minutes=5)).isoformat()}])


def rebuild() -> None:
    viewing_day_rollup(day=DAY)
    recommendations_rebuild(today=DAY)


@pytest.fixture
def co_viewing(zx_catalog, billing_scheme):
    """Five viewers: three watched Limitless and Lord of the Rings, two Limitless and
    Serendipity. Limitless 5 customers (+ Maria's), LOTR 3, Serendipity 2."""
    for _ in range(3):
        watch(customer_create(first_name="Fan"), "LIMITLESS", "LOTR")
    for _ in range(2):
        watch(customer_create(first_name="Romantic"), "LIMITLESS", "SERENDIPITY")
    return customer_create(first_name="Maria", email="maria@example.com")


def recommendations(account, query: str = "") -> list[tuple[str, str]]:
    with time_machine.travel(LATER, tick=False):
        response = portal_client_for(account).get(f"/api/v1/recommendations/{query}")
    assert response.status_code == 200, response.content
    return [(item["code"], item["reason"]) for item in response.json()]


def test_titles_watched_together_are_recommended_with_their_reason(co_viewing):
    # Given Maria watched Limitless on her TV
    maria = co_viewing
    watch(maria, "LIMITLESS")
    rebuild()

    # When she opens the portal's home page
    items = recommendations(maria)

    # Then LOTR (3 of 6 Limitless viewers: cosine 3/√(6×3) = 0.707) comes before Serendipity
    # (2/√(6×2) = 0.577), both because of Limitless, and Limitless itself is not offered again
    assert items == [("LOTR", "Because you watched Limitless"), ("SERENDIPITY", "Because you watched Limitless")]
    assert TitleSimilarity.objects.get(title__code="LIMITLESS", similar__code="LOTR").score == pytest.approx(0.707107)


def test_a_new_customer_gets_what_is_popular_this_week(co_viewing):
    newcomer = co_viewing  # Maria has watched and bought nothing yet
    rebuild()

    assert recommendations(newcomer) == [("LIMITLESS", "Popular this week"), ("LOTR", "Popular this week"),
                                         ("SERENDIPITY", "Popular this week")]


def test_with_no_history_anywhere_the_newest_titles_fill_the_home_page(zx_catalog):
    # Given an operator with no viewing and no orders yet (nothing is popular)
    maria = customer_create(first_name="Maria", email="maria@example.com")
    rebuild()
    assert not TitlePopularity.objects.exists()

    # Then the home page is not empty: the orderable titles, newest first
    newest = list(ContentTitle.objects.filter(code__in=["LOTR", "LIMITLESS", "SERENDIPITY"])
                  .order_by("-created_at", "-pk").values_list("code", flat=True))
    assert recommendations(maria) == [(code, "New in the catalog") for code in newest]


def test_titles_watched_or_bought_are_never_recommended(co_viewing, billing_scheme):
    # Given Maria watched Limitless and bought Serendipity (not played yet)
    maria = co_viewing
    watch(maria, "LIMITLESS")
    with time_machine.travel(EVENING, tick=False):
        usage_order_place(subscription=effective_subscription(maria, billing_scheme),
                          title=ContentTitle.objects.get(code="SERENDIPITY"))
    rebuild()

    # Then only Lord of the Rings is left to recommend
    assert recommendations(maria) == [("LOTR", "Because you watched Limitless")]


def test_a_title_the_screen_cannot_show_is_never_recommended(co_viewing):
    # Given Lord of the Rings is not offered on mobiles, and Maria watched Limitless on her
    # phone and has a TV too
    title_availability_remove(title=ContentTitle.objects.get(code="LOTR"), screen="MOBILE")
    maria = co_viewing
    watch(maria, "LIMITLESS", screen="MOBILE")
    tv, _key = device_register(account=maria, name="TV", screen="SMART_TV")
    phone = maria.devices.get(screen="MOBILE")
    rebuild()

    # Then for her phone LOTR is left out; for her TV, or any of her screens, it is offered
    assert recommendations(maria, f"?device={phone.pk}") == [("SERENDIPITY", "Because you watched Limitless")]
    assert [code for code, _ in recommendations(maria, f"?device={tv.pk}")] == ["LOTR", "SERENDIPITY"]
    assert [code for code, _ in recommendations(maria)] == ["LOTR", "SERENDIPITY"]
    # and once the TV is removed, her only screen is the phone
    device_remove(device=tv)
    assert [code for code, _ in recommendations(maria)] == ["SERENDIPITY"]


def test_the_limit_cuts_the_list(co_viewing):
    rebuild()

    assert recommendations(co_viewing, "?limit=1") == [("LIMITLESS", "Popular this week")]


def test_another_customers_device_is_not_found(co_viewing):
    maria = co_viewing
    other = customer_create(first_name="Other")
    their_tv, _key = device_register(account=other, name="TV", screen="SMART_TV")
    rebuild()

    with time_machine.travel(LATER, tick=False):
        response = portal_client_for(maria).get(f"/api/v1/recommendations/?device={their_tv.pk}")
        bad = portal_client_for(maria).get("/api/v1/recommendations/?device=x&limit=500")

    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert bad.status_code == 400 and set(bad.json()["error"]["fields"]) == {"device", "limit"}


def test_only_portal_customers_get_recommendations(co_viewing, agent):
    staff = APIClient()
    staff.force_login(agent)

    assert staff.get("/api/v1/recommendations/").status_code == 403
    assert APIClient().get("/api/v1/recommendations/").status_code == 401


def test_the_rebuild_is_idempotent(co_viewing):
    watch(co_viewing, "LIMITLESS")
    viewing_day_rollup(day=DAY)
    recommendations_rebuild(today=DAY)
    first = sorted(TitleSimilarity.objects.values_list("pk", "title__code", "similar__code", "score", "customers"))
    popular = sorted(TitlePopularity.objects.values_list("pk", "title__code", "customers"))

    with time_machine.travel(LATER, tick=False):
        counts = recommendations_rebuild_task()

    assert sorted(TitleSimilarity.objects.values_list("pk", "title__code", "similar__code", "score", "customers")) == first
    assert sorted(TitlePopularity.objects.values_list("pk", "title__code", "customers")) == popular
    # LIMITLESS~LOTR, LIMITLESS~SERENDIPITY both ways (LOTR and Serendipity share nobody)
    assert counts == {"customers": 6, "similarities": 4, "popular_titles": 3}
    assert popular == sorted([(pk, code, n) for pk, code, n in popular])
    assert {code: n for _pk, code, n in popular} == {"LIMITLESS": 6, "LOTR": 3, "SERENDIPITY": 2}
