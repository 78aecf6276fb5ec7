"""What an account may watch now: PPV rentals within their window, titles of EFFECTIVE
packages on EFFECTIVE subscriptions, nothing for a suspended account — answered in one
indexed query."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection

from accounts import services as account_services
from catalogs.models import Product
from catalogs.services import content
from subscriptions.models import Subscription, SubscriptionService
from subscriptions.selectors import entitlement_check, entitlement_list
from subscriptions.services.orders import usage_order_place

from tests.world import effective_subscription

pytestmark = pytest.mark.django_db
NICOSIA = ZoneInfo("Europe/Nicosia")
ORDERED = datetime(2026, 11, 20, 3, 0, tzinfo=NICOSIA)
RENTAL_ENDS = ORDERED + timedelta(hours=48)
SCREENS = ["SET_TOP_BOX", "SMART_TV", "MOBILE", "WEB"]


def published_title(code: str, name: str):
    title = content.content_title_create(code=code, title=name, synopsis="Live.", duration_minutes=120,
                                         artwork_url=f"https://images.ott.example/{code.lower()}.jpg", screens=SCREENS)
    return content.title_publish(title=content.title_submit(title=title))


@pytest.fixture
def final(zx_catalog):
    """A sports title listed in the Sports Pack."""
    title = published_title("UCL-FINAL", "Champions League Final")
    content.product_update(product=Product.objects.get(code="SPORTS-PACK"), data={"titles": [title]})
    return title


@pytest.fixture
def sports_fan(subscriber, final):
    """The subscriber's subscription also holds an EFFECTIVE Sports Pack."""
    SubscriptionService.objects.create(subscription=subscriber, product=Product.objects.get(code="SPORTS-PACK"), state="EFFECTIVE")
    return subscriber.account


def check(account, title, at=None, **kwargs):
    return entitlement_check(account=account, title=title, at=at, **kwargs)


def test_a_rental_entitles_from_its_start_until_just_before_its_end(subscriber, movie, django_assert_max_num_queries):
    lotr = movie("LOTR")
    usage_order_place(subscription=subscriber, title=lotr, usage_at=ORDERED)
    account = subscriber.account

    with django_assert_max_num_queries(1):
        during = check(account, lotr, ORDERED)
    assert (during.entitled, during.source, during.until) == (True, "RENTAL", RENTAL_ENDS)
    assert during.reason == "rental until 2026-11-22 03:00 (Europe/Nicosia)"
    assert check(account, lotr, RENTAL_ENDS - timedelta(microseconds=1)).entitled

    for outside in (ORDERED - timedelta(microseconds=1), RENTAL_ENDS):
        answer = check(account, lotr, outside)
        assert (answer.entitled, answer.source, answer.until) == (False, None, None)
        assert answer.reason == "no rental or package includes Lord of the Rings"


def test_the_latest_ending_rental_of_a_title_counts(subscriber, movie):
    lotr = movie("LOTR")
    usage_order_place(subscription=subscriber, title=lotr, usage_at=ORDERED)
    usage_order_place(subscription=subscriber, title=lotr, usage_at=ORDERED + timedelta(hours=40))
    assert check(subscriber.account, lotr, ORDERED + timedelta(hours=41)).until == ORDERED + timedelta(hours=88)


def test_a_rental_is_for_its_account_and_title_only(subscriber, vip_subscriber, movie):
    usage_order_place(subscription=subscriber, title=movie("LOTR"), usage_at=ORDERED)
    assert not check(vip_subscriber.account, movie("LOTR"), ORDERED).entitled
    assert check(subscriber.account, movie("LIMITLESS"), ORDERED).reason == "no rental or package includes Limitless"


def test_an_effective_package_listing_the_title_entitles(sports_fan, final, django_assert_max_num_queries):
    with django_assert_max_num_queries(1):
        answer = check(sports_fan, final)
    assert (answer.entitled, answer.reason, answer.source, answer.until) == (True, "package Sports Pack", "PACKAGE", None)


def test_a_package_does_not_entitle_to_titles_it_does_not_list(sports_fan, movie):
    answer = check(sports_fan, movie("LIMITLESS"))
    assert (answer.entitled, answer.reason) == (False, "no rental or package includes Limitless")


@pytest.mark.parametrize("service_state", ["DRAFT", "NOT_EFFECTIVE", "IN_RESTING", "CANCELLED"])
def test_a_package_that_is_not_effective_does_not_entitle(sports_fan, final, service_state):
    SubscriptionService.objects.filter(product__code="SPORTS-PACK").update(state=service_state)
    assert check(sports_fan, final).reason == "no rental or package includes Champions League Final"


@pytest.mark.parametrize("subscription_state", ["DRAFT", "NOT_EFFECTIVE", "IN_RESTING", "CANCELLED"])
def test_a_package_on_a_subscription_that_is_not_effective_does_not_entitle(sports_fan, final, subscription_state):
    Subscription.objects.filter(account=sports_fan).update(state=subscription_state)
    assert not check(sports_fan, final).entitled


def test_another_effective_subscription_of_the_account_entitles(subscriber, final, billing_scheme):
    effective_subscription(subscriber.account, billing_scheme, services=("SPORTS-PACK",))
    assert check(subscriber.account, final).reason == "package Sports Pack"


def test_a_suspended_account_is_not_entitled_even_with_rentals_and_packages(sports_fan, subscriber, final, movie):
    usage_order_place(subscription=subscriber, title=movie("LOTR"), usage_at=ORDERED)
    account_services.account_suspend(account=sports_fan, reason="Unpaid invoice")

    for title, at in ((final, None), (movie("LOTR"), ORDERED)):
        answer = check(sports_fan, title, at)  # the caller's copy of the account still says ACTIVE
        assert answer.entitled is False and answer.source is None
        assert answer.reason == f"the account {sports_fan.number} is SUSPENDED; nothing can be watched until it is ACTIVE again"

    account_services.account_reactivate(account=sports_fan)
    assert check(sports_fan, final).entitled


def test_on_a_screen_the_title_must_be_offered_there(subscriber, movie, django_assert_max_num_queries):
    lotr = movie("LOTR")
    usage_order_place(subscription=subscriber, title=lotr, usage_at=ORDERED)
    lotr.availabilities.filter(screen="MOBILE").delete()
    account = subscriber.account

    check(account, lotr, ORDERED, screen="MOBILE")  # loads the titles each process remembers
    with django_assert_max_num_queries(2):  # the check, and the titles' version (no stale screen windows)
        on_phone = check(account, lotr, ORDERED, screen="MOBILE")
    assert (on_phone.entitled, on_phone.reason) == (False, "Lord of the Rings is not available on Mobile now")
    assert check(account, lotr, ORDERED, screen="SMART_TV").source == "RENTAL"


def test_a_rental_is_reported_before_a_package(sports_fan, subscriber, final, movie):
    content.product_update(product=Product.objects.get(code="SPORTS-PACK"), data={"titles": [final, movie("LOTR")]})
    usage_order_place(subscription=subscriber, title=movie("LOTR"), usage_at=ORDERED)
    assert check(sports_fan, movie("LOTR"), ORDERED).source == "RENTAL"
    assert check(sports_fan, movie("LOTR"), RENTAL_ENDS).source == "PACKAGE"


def test_the_check_uses_indexes_only(sports_fan, subscriber, final, movie, django_assert_max_num_queries):
    """With sequential scans priced out, a plan that still scans a table would show a Seq
    Scan: every table the check reads must be reachable through an index."""
    assert connection.vendor == "postgresql", "make test runs this on PostgreSQL"
    lotr = movie("LOTR")
    usage_order_place(subscription=subscriber, title=lotr, usage_at=ORDERED)
    check(sports_fan, lotr, ORDERED, screen="SMART_TV")  # loads the titles each process remembers
    with django_assert_max_num_queries(2) as captured:
        check(sports_fan, lotr, ORDERED, screen="SMART_TV")
    [sql] = [query["sql"] for query in captured.captured_queries if "accounts_accountsreceivable" in query["sql"]]
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}")
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Seq Scan" not in plan, plan


def test_the_portal_list_shows_every_title_with_its_source(sports_fan, subscriber, final, movie, django_assert_max_num_queries):
    draft = content.content_title_create(code="UCL-DRAFT", title="A draft match", screens=SCREENS)
    content.product_update(product=Product.objects.get(code="SPORTS-PACK"), data={"titles": [final, draft, movie("LOTR")]})
    usage_order_place(subscription=subscriber, title=movie("LOTR"), usage_at=ORDERED)
    usage_order_place(subscription=subscriber, title=movie("SERENDIPITY"), usage_at=ORDERED - timedelta(hours=49))

    with django_assert_max_num_queries(2):
        listed = entitlement_list(account=sports_fan, at=ORDERED + timedelta(hours=1))
    assert [(e.title.code, e.source, e.until, e.reason) for e in listed] == [
        ("UCL-FINAL", "PACKAGE", None, "package Sports Pack"),
        ("LOTR", "RENTAL", RENTAL_ENDS, "rental until 2026-11-22 03:00 (Europe/Nicosia)"),
    ]


def test_the_portal_list_is_empty_for_a_suspended_account(sports_fan):
    suspended = account_services.account_suspend(account=sports_fan)
    assert entitlement_list(account=suspended) == []
