"""The portal catalog API: titles for my screen with my prices, packages with my rates,
and the rate preview — for a NORMAL and a VIP customer of Company ZX."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Classification
from catalogs.models import ContentTitle, Genre, PricePlan, PricePlanRate, Product, TitleAvailability, UsageServiceCatalog
from core.choices import LifecycleState, Screen
from tests.catalogs.test_rating import NICOSIA, company_zx_create, local, usage_service_add
from tests.conftest import portal_client_for
from tests.factories import customer_create

pytestmark = pytest.mark.django_db

TITLES = "/api/v1/catalog/titles/"
PACKAGES = "/api/v1/catalog/packages/"
PREVIEW = "/api/v1/catalog/rate-preview/"
NIGHT = local(2026, 5, 12, 3, 0)
DAY = local(2026, 5, 12, 20, 0)


def title_create(code: str, name: str, *, screens=(Screen.WEB,), genres=(), state=ContentTitle.State.PUBLISHED, product=None, **fields) -> ContentTitle:
    title = ContentTitle.objects.create(code=code, title=name, state=state, **fields)
    title.genres.set([Genre.objects.get_or_create(name=genre)[0] for genre in genres])
    for screen in screens:
        TitleAvailability.objects.create(title=title, screen=screen)
    if product is not None:
        product.titles.add(title)
    return title


@pytest.fixture(autouse=True)
def _operator_in_nicosia(settings):
    settings.TIME_ZONE = "Europe/Nicosia"


@pytest.fixture
def zx():
    zx = company_zx_create()
    zx.lotr_title = title_create("lotr", "Lord of the Rings", screens=[Screen.WEB, Screen.SMART_TV], genres=["Fantasy", "Adventure"],
                                 product=zx.lotr, year=2001)
    zx.limitless_title = title_create("limitless", "Limitless", genres=["Thriller"], product=zx.limitless, year=2011)
    zx.serendipity_title = title_create("serendipity", "Serendipity", screens=[Screen.WEB, Screen.MOBILE], genres=["Romance", "Drama"],
                                        product=zx.serendipity, year=2001, is_older_movie=True)
    zx.draft_title = title_create("unreleased", "Unreleased", state=ContentTitle.State.DRAFT, genres=["Drama"])
    zx.tv_only_title = title_create("big-screen", "Big Screen", screens=[Screen.SMART_TV], genres=["Drama"])
    return zx


@pytest.fixture
def vip_client(db):
    return portal_client_for(customer_create(classification="VIP"))


def titles_of(response) -> list[str]:
    assert response.status_code == 200, response.json()
    return [item["title"] for item in response.json()["results"]]


def prices_of(response) -> dict[str, dict | None]:
    return {item["title"]: item["price"] for item in response.json()["results"]}


# --- Authentication ---------------------------------------------------------------------

@pytest.mark.parametrize("path", [TITLES, f"{TITLES}1/", PACKAGES, f"{PREVIEW}?product=limitless"])
def test_the_catalog_needs_a_logged_in_customer(api_client, zx, path):
    response = api_client.get(path)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_staff_logins_are_not_portal_customers(api_client, zx, agent):
    api_client.force_authenticate(agent)

    assert api_client.get(TITLES).status_code == 403


# --- Titles for my screen ---------------------------------------------------------------

def test_the_catalog_lists_published_titles_for_the_web_by_default(portal_client, zx):
    assert titles_of(portal_client.get(TITLES)) == ["Limitless", "Lord of the Rings", "Serendipity"]


@pytest.mark.parametrize(
    "screen, titles",
    [("SMART_TV", ["Big Screen", "Lord of the Rings"]), ("MOBILE", ["Serendipity"]), ("SET_TOP_BOX", [])],
)
def test_the_catalog_shows_what_my_screen_may_play(portal_client, zx, screen, titles):
    assert titles_of(portal_client.get(TITLES, {"screen": screen})) == titles


def test_an_unknown_screen_is_a_field_error(portal_client, zx):
    response = portal_client.get(TITLES, {"screen": "FRIDGE"})

    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"screen"}


@pytest.mark.parametrize(
    "filters, titles",
    [
        ({"genre": "fantasy"}, ["Lord of the Rings"]),
        ({"genre": "Drama"}, ["Serendipity"]),
        ({"q": "lord"}, ["Lord of the Rings"]),
        ({"q": "LI"}, ["Limitless"]),
        ({"q": "rings"}, []),
        ({"older": "true"}, ["Serendipity"]),
        ({"older": "false"}, ["Limitless", "Lord of the Rings"]),
        ({"year": "2001"}, ["Lord of the Rings", "Serendipity"]),
        ({"year": "2001", "genre": "Romance", "older": "true"}, ["Serendipity"]),
    ],
)
def test_the_catalog_can_be_filtered(portal_client, zx, filters, titles):
    assert titles_of(portal_client.get(TITLES, filters)) == titles


def test_a_bad_filter_value_is_a_field_error(portal_client, zx):
    response = portal_client.get(TITLES, {"year": "last year"})

    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"year"}


def test_a_title_shows_its_metadata(portal_client, zx):
    item = portal_client.get(TITLES, {"q": "Serendipity"}).json()["results"][0]

    assert item["id"] == zx.serendipity_title.pk
    assert (item["code"], item["year"], item["is_older_movie"], item["ppv_product"]) == ("serendipity", 2001, True, "serendipity")
    assert sorted(item["genres"]) == ["Drama", "Romance"]


# --- My prices --------------------------------------------------------------------------

def test_normal_customers_see_the_night_price_at_night(portal_client, zx):
    with time_machine.travel(NIGHT, tick=False):
        prices = prices_of(portal_client.get(TITLES))

    assert {title: price["amount"] for title, price in prices.items()} == {
        "Limitless": "5.0000", "Lord of the Rings": "5.0000", "Serendipity": "3.0000",
    }
    assert prices["Lord of the Rings"] == {
        "amount": "5.0000", "currency": "EUR",
        "reason": "tier 00:01–06:59 (Europe/Nicosia wall clock 03:00) in catalog 'Normal subscribers'",
    }


def test_normal_customers_see_the_day_price_by_day(portal_client, zx):
    with time_machine.travel(DAY, tick=False):
        prices = prices_of(portal_client.get(TITLES))

    assert {title: price["amount"] for title, price in prices.items()} == {
        "Limitless": "10.0000", "Lord of the Rings": "10.0000", "Serendipity": "3.0000",
    }


@pytest.mark.parametrize("moment", [NIGHT, DAY], ids=["night", "day"])
def test_vip_customers_watch_free(vip_client, zx, moment):
    with time_machine.travel(moment, tick=False):
        prices = prices_of(vip_client.get(TITLES))

    assert {title: price["amount"] for title, price in prices.items()} == dict.fromkeys(["Limitless", "Lord of the Rings", "Serendipity"], "0.0000")
    assert "'VIP subscribers'" in prices["Limitless"]["reason"]


def test_a_title_not_sold_per_view_has_no_price(portal_client, zx):
    item = portal_client.get(TITLES, {"screen": "SMART_TV", "q": "Big"}).json()["results"][0]

    assert (item["ppv_product"], item["price"]) == (None, None)


def test_a_title_outside_my_catalog_has_no_price(portal_client, zx):
    newcomer = Product.objects.create(code="heat", name="Heat", product_type=zx.usage_type)
    title_create("heat", "Heat", product=newcomer)

    item = portal_client.get(TITLES, {"q": "Heat"}).json()["results"][0]

    assert (item["ppv_product"], item["price"]) == ("heat", None)


def test_without_a_catalog_for_me_no_title_has_a_price(portal_client, zx):
    UsageServiceCatalog.objects.filter(pk=zx.normal.pk).update(state=LifecycleState.NOT_EFFECTIVE)

    assert set(prices_of(portal_client.get(TITLES)).values()) == {None}


def test_the_query_count_does_not_grow_with_the_page_size(portal_client, zx, django_assert_max_num_queries):
    for number in range(25):
        product = Product.objects.create(code=f"movie-{number}", name=f"Movie {number}", product_type=zx.usage_type)
        usage_service_add(zx.normal, product, "4.00", tiers=[("00:01", "06:59", "2.00")])
        title_create(f"movie-{number}", f"Movie {number:02d}", product=product, genres=["Drama", "Comedy"])
    counts = {}
    with time_machine.travel(DAY, tick=False):
        portal_client.get(TITLES, {"page_size": 2})  # warm caches (content types) outside the count
        for page_size in (2, 20):
            with CaptureQueriesContext(connection) as captured:
                response = portal_client.get(TITLES, {"page_size": page_size, "q": "Movie"})
            assert [item["price"]["amount"] for item in response.json()["results"]] == ["4.0000"] * page_size
            counts[page_size] = len(captured.captured_queries)

        assert counts[2] == counts[20]
        with django_assert_max_num_queries(counts[2]):
            portal_client.get(TITLES, {"page_size": 20, "q": "Movie", "page": 2})


# --- The remembered pages (catalogs.api.views._PageCache, PostgreSQL) ---------------------
# A page is kept per process by everything it depends on; each test asks twice, so the
# second answer would be the remembered one if the key missed what changed.

def test_a_change_to_a_title_shows_on_the_next_read(portal_client, zx):
    assert "Lord of the Rings" in titles_of(portal_client.get(TITLES))
    zx.lotr_title.title = "The Lord of the Rings"
    zx.lotr_title.save()

    assert titles_of(portal_client.get(TITLES)) == ["Limitless", "Serendipity", "The Lord of the Rings"]


def test_a_renamed_genre_shows_on_the_next_read(portal_client, zx):
    assert titles_of(portal_client.get(TITLES, {"genre": "Thriller"})) == ["Limitless"]
    Genre.objects.filter(name="Thriller").update(name="Suspense")

    assert titles_of(portal_client.get(TITLES, {"genre": "Thriller"})) == []
    assert portal_client.get(TITLES, {"q": "Limitless"}).json()["results"][0]["genres"] == ["Suspense"]


def test_a_new_price_shows_on_the_next_read(portal_client, zx):
    with time_machine.travel(DAY, tick=False):
        assert prices_of(portal_client.get(TITLES))["Limitless"]["amount"] == "10.0000"
        zx.normal.services.filter(product=zx.limitless).update(base_rate=Decimal("11.00"))

        assert prices_of(portal_client.get(TITLES))["Limitless"]["amount"] == "11.0000"


def test_a_window_opening_within_the_minute_shows_at_once(portal_client, zx):
    """Same wall-clock minute, either side of the instant a title's screen window opens."""
    TitleAvailability.objects.filter(title=zx.limitless_title, screen=Screen.WEB).update(available_from=DAY.replace(second=30))
    with time_machine.travel(DAY.replace(second=10), tick=False):
        assert "Limitless" not in titles_of(portal_client.get(TITLES))
    with time_machine.travel(DAY.replace(second=40), tick=False):
        assert "Limitless" in titles_of(portal_client.get(TITLES))


def test_the_price_follows_the_tier_from_one_minute_to_the_next(portal_client, zx):
    """The night tier ends at 06:59: 06:59 is night, 07:00 is day."""
    with time_machine.travel(local(2026, 5, 12, 6, 59, 50), tick=False):
        assert prices_of(portal_client.get(TITLES))["Limitless"]["amount"] == "5.0000"
    with time_machine.travel(local(2026, 5, 12, 7, 0, 5), tick=False):
        assert prices_of(portal_client.get(TITLES))["Limitless"]["amount"] == "10.0000"


def test_each_classification_gets_its_own_page(portal_client, vip_client, zx):
    with time_machine.travel(DAY, tick=False):
        normal, vip, normal_again = (prices_of(client.get(TITLES))["Limitless"]["amount"] for client in (portal_client, vip_client, portal_client))

    assert (normal, vip, normal_again) == ("10.0000", "0.0000", "10.0000")


def test_a_remembered_page_costs_no_catalog_query(portal_client, zx, django_assert_num_queries):
    with time_machine.travel(DAY, tick=False):
        first = portal_client.get(TITLES).json()
        with django_assert_num_queries(2):  # the token with the caller's account, every reference group's version
            again = portal_client.get(TITLES).json()

    assert again == first


# --- One title ----------------------------------------------------------------------------

def test_a_title_of_my_screen_with_my_price(portal_client, zx):
    with time_machine.travel(NIGHT, tick=False):
        response = portal_client.get(f"{TITLES}{zx.lotr_title.pk}/")

    assert response.status_code == 200
    assert (response.json()["title"], response.json()["price"]["amount"]) == ("Lord of the Rings", "5.0000")


def test_a_title_of_another_screen_is_found_on_that_screen(portal_client, zx):
    assert portal_client.get(f"{TITLES}{zx.tv_only_title.pk}/", {"screen": "SMART_TV"}).status_code == 200


@pytest.mark.parametrize("which", ["draft_title", "tv_only_title"])
def test_an_unpublished_or_other_screen_title_is_not_found(portal_client, zx, which):
    response = portal_client.get(f"{TITLES}{getattr(zx, which).pk}/")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


# --- Packages ---------------------------------------------------------------------------

@pytest.fixture
def packages(zx):
    sports = Product.objects.create(code="sports-pack", name="Sports Pack", product_type=zx.termed_type, description="Live football.")
    sports.titles.set([zx.lotr_title, zx.limitless_title])
    Product.objects.create(code="retired-pack", name="Retired Pack", product_type=zx.termed_type, is_active=False)

    def plan(code, state=LifecycleState.EFFECTIVE, classifications=(), **fields):
        price_plan = PricePlan.objects.create(code=code, name=code.replace("-", " ").title(), state=state, **fields)
        price_plan.classifications.set(Classification.objects.filter(code__in=classifications))
        return price_plan

    def rate(price_plan, product, amount, **fields):
        fields.setdefault("charge_type", PricePlanRate.ChargeType.RECURRING)
        fields.setdefault("billing_period", PricePlanRate.Period.MONTH)
        return PricePlanRate.objects.create(price_plan=price_plan, product=product, amount=Decimal(amount), **fields)

    standard, vip_deal = plan("standard"), plan("vip-deal", classifications=["VIP"])
    rate(standard, sports, "15.00", free_trial_days=7)
    rate(standard, zx.ppv_service, "0.00")
    rate(vip_deal, sports, "9.50")
    rate(plan("draft-plan", state=LifecycleState.DRAFT), sports, "1.00")
    rate(plan("expired", valid_until=local(2026, 1, 1)), sports, "2.00")
    rate(plan("autumn", valid_from=local(2026, 9, 1)), sports, "3.00")
    return sports


def test_normal_customers_see_the_packages_with_the_rates_for_everyone(portal_client, packages):
    with time_machine.travel(DAY, tick=False):
        body = portal_client.get(PACKAGES).json()

    assert [item["code"] for item in body["results"]] == ["ppv-service", "sports-pack"]
    sports = body["results"][1]
    assert (sports["name"], sports["description"], sports["titles_count"]) == ("Sports Pack", "Live football.", 2)
    assert sports["rates"] == [
        {"plan": "Standard", "plan_code": "standard", "amount": "15.0000", "currency": "EUR", "charge_type": "RECURRING",
         "billing_period": "MONTH", "free_trial_days": 7},
    ]


def test_vip_customers_also_see_the_vip_rates(vip_client, packages):
    with time_machine.travel(DAY, tick=False):
        body = vip_client.get(PACKAGES).json()

    sports = next(item for item in body["results"] if item["code"] == "sports-pack")
    assert [(rate["plan_code"], rate["amount"]) for rate in sports["rates"]] == [("standard", "15.0000"), ("vip-deal", "9.5000")]


def test_a_plan_rates_only_within_its_validity(portal_client, packages):
    with time_machine.travel(local(2026, 9, 2, 12, 0), tick=False):
        body = portal_client.get(PACKAGES).json()

    sports = next(item for item in body["results"] if item["code"] == "sports-pack")
    assert [rate["plan_code"] for rate in sports["rates"]] == ["autumn", "standard"]


# --- Rate preview -----------------------------------------------------------------------

def test_preview_the_price_of_a_title_now(portal_client, zx):
    with time_machine.travel(NIGHT, tick=False):
        response = portal_client.get(PREVIEW, {"title": zx.lotr_title.pk})

    assert response.status_code == 200, response.json()
    assert response.json() == {
        "product": "lord-of-the-rings",
        "amount": "5.0000",
        "currency": "EUR",
        "catalog": "Normal subscribers",
        "tier": {"start": "00:01", "end": "06:59", "rate": "5.0000"},
        "local_time": "2026-05-12T03:00:00+03:00",
        "time_zone": "Europe/Nicosia",
        "reason": "tier 00:01–06:59 (Europe/Nicosia wall clock 03:00) in catalog 'Normal subscribers'",
        "required_services": ["ppv-service"],
    }


def test_preview_the_price_of_a_product_at_a_chosen_time(portal_client, zx):
    body = portal_client.get(PREVIEW, {"product": "limitless", "at": "2026-05-12T14:05:00+03:00"}).json()

    assert (body["amount"], body["tier"]) == ("10.0000", None)
    assert body["reason"] == "base rate in catalog 'Normal subscribers' (no tier matches 14:05 Europe/Nicosia)"


def test_preview_for_a_vip_customer(vip_client, zx):
    body = vip_client.get(PREVIEW, {"title": zx.serendipity_title.pk, "at": "2026-05-12T03:00:00+03:00"}).json()

    assert (body["amount"], body["catalog"], body["required_services"]) == ("0.0000", "VIP subscribers", [])


def test_preview_on_the_fall_back_day_prices_both_0310s_alike(portal_client, zx):
    bodies = [portal_client.get(PREVIEW, {"product": "limitless", "at": at}).json() for at in ("2026-10-25T00:10:00Z", "2026-10-25T01:10:00Z")]

    assert [body["local_time"] for body in bodies] == ["2026-10-25T03:10:00+03:00", "2026-10-25T03:10:00+02:00"]
    assert [body["amount"] for body in bodies] == ["5.0000", "5.0000"]


@pytest.mark.parametrize(
    "params, fields",
    [({}, {"title", "product"}), ({"title": 1, "product": "limitless"}, {"title", "product"}), ({"product": "limitless", "at": "soon"}, {"at"})],
    ids=["neither", "both", "bad-time"],
)
def test_preview_needs_one_title_or_product_and_a_valid_time(portal_client, zx, params, fields):
    response = portal_client.get(PREVIEW, params)

    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == fields


def test_preview_of_something_that_is_not_a_usage_service(portal_client, zx):
    response = portal_client.get(PREVIEW, {"product": "ppv-service"})

    assert response.status_code == 400
    assert (response.json()["error"]["code"], set(response.json()["error"]["fields"])) == ("validation_error", {"product"})


def test_preview_of_a_title_not_sold_per_view(portal_client, zx):
    response = portal_client.get(PREVIEW, {"title": zx.tv_only_title.pk, "screen": "SMART_TV"})

    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"title"}


@pytest.mark.parametrize("params", [{"product": "no-such-movie"}, {"title": 999_999}, {"title": "draft"}], ids=["product", "title", "draft"])
def test_preview_of_something_unknown_is_not_found(portal_client, zx, params):
    if params.get("title") == "draft":
        params = {"title": zx.draft_title.pk}

    response = portal_client.get(PREVIEW, params)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_preview_when_no_catalog_applies_to_me(portal_client, zx):
    UsageServiceCatalog.objects.filter(pk=zx.normal.pk).update(state=LifecycleState.NOT_EFFECTIVE)

    response = portal_client.get(PREVIEW, {"product": "limitless", "at": "2026-05-12T03:00:00+03:00"})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "no_catalog"
    assert "classification NORMAL at 2026-05-12 03:00 Europe/Nicosia" in response.json()["error"]["message"]


def test_preview_of_a_product_missing_from_my_catalog(vip_client, zx):
    Product.objects.create(code="heat", name="Heat", product_type=zx.usage_type)

    response = vip_client.get(PREVIEW, {"product": "heat"})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "not_in_catalog"


def test_naive_times_are_read_on_the_operators_wall_clock(portal_client, zx):
    body = portal_client.get(PREVIEW, {"product": "limitless", "at": "2026-05-12T03:00:00"}).json()

    assert (body["local_time"], body["amount"]) == ("2026-05-12T03:00:00+03:00", "5.0000")
    assert datetime.fromisoformat(body["local_time"]).astimezone(NICOSIA).hour == 3
