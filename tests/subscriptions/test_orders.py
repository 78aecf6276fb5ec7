"""The PPV order (Add Service Usage): the Company ZX rules, pricing, the UDR, the rental,
the outbox row, and idempotency by transaction reference."""

from __future__ import annotations

import threading
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import connection

from accounts import services as account_services
from core.actions import ActionRejected
from core.exceptions import Conflict
from billing.models import UsageDetailRecord
from provisioning.models import ProvisioningRequest
from subscriptions.models import Rental, SubscriptionAction, SubscriptionService
from subscriptions.services.orders import order_udr, usage_order_place

from tests.factories import customer_create

from tests.world import effective_subscription

pytestmark = pytest.mark.django_db
NICOSIA = ZoneInfo("Europe/Nicosia")
NIGHT = datetime(2026, 11, 20, 3, 0, tzinfo=NICOSIA)
DAY = datetime(2026, 11, 20, 20, 0, tzinfo=NICOSIA)


def nothing_written() -> tuple[int, int, int]:
    return UsageDetailRecord.objects.count(), Rental.objects.count(), ProvisioningRequest.objects.count()


@pytest.mark.parametrize("code, at, price", [("LOTR", NIGHT, "5.00"), ("LOTR", DAY, "10.00"), ("SERENDIPITY", NIGHT, "3.00"),
                                             ("SERENDIPITY", DAY, "3.00"), ("LIMITLESS", DAY, "10.00")])
def test_a_normal_subscriber_orders_at_the_scenarios_prices(subscriber, movie, code, at, price):
    action = usage_order_place(subscription=subscriber, title=movie(code), usage_at=at, channel="PORTAL", screen="WEB")

    udr = order_udr(action)
    assert (udr.state, udr.amount, udr.currency, udr.channel) == ("RATED", Decimal(price), "EUR", "PORTAL")
    assert udr.catalog.name == "Normal subscribers"
    assert action.state == "EXECUTED" and action.behavior == "ADD_SERVICE_USAGE"
    rental = udr.rental
    assert rental.title.code == code and (rental.ends_at - rental.starts_at).total_seconds() == 48 * 3600
    request = ProvisioningRequest.objects.get(action=action)
    assert request.kind == "PURCHASE_PPV" and request.state == "PENDING"
    assert request.parameters["provisioning_id"] == {"LOTR": "1AQ8", "SERENDIPITY": "1BQ4", "LIMITLESS": "1BQ1"}[code]


def test_vip_subscribers_watch_for_free(vip_subscriber, movie):
    udr = order_udr(usage_order_place(subscription=vip_subscriber, title=movie("LOTR"), usage_at=DAY))
    assert udr.amount == Decimal("0.00") and udr.catalog.name == "VIP subscribers"


def test_no_effective_ppv_service_no_order(subscriber, movie):
    SubscriptionService.objects.filter(subscription=subscriber).update(state="IN_RESTING")
    before = nothing_written()
    with pytest.raises(ActionRejected) as raised:
        usage_order_place(subscription=subscriber, title=movie("LIMITLESS"), usage_at=DAY, transaction_reference="r-1")
    assert raised.value.reasons == ["The subscription needs an EFFECTIVE PPV Service to order Limitless."]
    assert nothing_written() == before
    rejected = SubscriptionAction.objects.get(transaction_reference="r-1")
    assert rejected.state == "REJECTED" and rejected.reasons == raised.value.reasons


def test_every_reason_at_once(subscriber, movie, zx_catalog):
    account_services.account_suspend(account=subscriber.account)
    subscriber.services.update(state="NOT_EFFECTIVE")
    title = movie("LOTR")
    title.availabilities.filter(screen="MOBILE").delete()
    with pytest.raises(ActionRejected) as raised:
        usage_order_place(subscription=subscriber, title=title, usage_at=DAY, screen="MOBILE")
    assert raised.value.reasons == [
        f"The account {subscriber.account.number} is SUSPENDED; orders need an ACTIVE account.",
        "The subscription needs an EFFECTIVE PPV Service to order Lord of the Rings.",
        "Lord of the Rings (2001) is not available on Mobile now.",
    ]


@pytest.mark.parametrize("state", ["DRAFT", "NOT_EFFECTIVE", "IN_RESTING", "CANCELLED"])
def test_only_effective_subscriptions_order(subscriber, movie, state):
    subscriber.__class__.objects.filter(pk=subscriber.pk).update(state=state)
    with pytest.raises(ActionRejected) as raised:
        usage_order_place(subscription=subscriber, title=movie("LOTR"), usage_at=DAY)
    assert raised.value.reasons[0].startswith(f"It is {state};")
    assert nothing_written() == (0, 0, 0)


def test_a_repeated_reference_returns_the_first_order(subscriber, movie):
    first = usage_order_place(subscription=subscriber, title=movie("LOTR"), usage_at=DAY, transaction_reference="tx-1")
    again = usage_order_place(subscription=subscriber, title=movie("LOTR"), usage_at=DAY, transaction_reference="tx-1")
    assert again.pk == first.pk and again.result == first.result
    assert nothing_written() == (1, 1, 1)
    with pytest.raises(Conflict):
        usage_order_place(subscription=effective_subscription(subscriber.account, subscriber.billing_term_scheme),
                          title=movie("LOTR"), usage_at=DAY, transaction_reference="tx-1")


def test_a_repeated_rejection_stays_rejected(subscriber, movie):
    subscriber.services.update(state="NOT_EFFECTIVE")
    for _ in range(2):
        with pytest.raises(ActionRejected):
            usage_order_place(subscription=subscriber, title=movie("LOTR"), usage_at=DAY, transaction_reference="tx-2")
    assert SubscriptionAction.objects.filter(transaction_reference="tx-2").count() == 1


def test_a_device_orders_for_its_screen_only(subscriber, movie):
    from subscriptions.models import Device

    tv = Device.objects.create(account=subscriber.account, name="Living room", screen="SMART_TV")
    title = movie("LIMITLESS")
    title.availabilities.filter(screen="SMART_TV").delete()
    with pytest.raises(ActionRejected) as raised:
        usage_order_place(subscription=subscriber, title=title, device=tv, usage_at=DAY, channel="DEVICE")
    assert raised.value.reasons == ["Limitless (2011) is not available on Smart TV now."]
    stranger = Device.objects.create(account=customer_create(), name="Not yours", screen="WEB")
    with pytest.raises(ActionRejected) as raised:
        usage_order_place(subscription=subscriber, title=movie("LOTR"), device=stranger, usage_at=DAY)
    assert "is not an active device of this account" in raised.value.reasons[0]


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_identical_orders_create_one_udr(subscriber, movie):
    """Real concurrent transactions on PostgreSQL, each on its own connection."""
    assert connection.vendor == "postgresql", "make test runs this on PostgreSQL"
    title = movie("LOTR")
    outcomes: list[object] = []
    barrier = threading.Barrier(4)

    def order():
        try:
            barrier.wait()
            outcomes.append(usage_order_place(subscription=subscriber, title=title, usage_at=DAY, transaction_reference="same-click").pk)
        except Exception as error:  # noqa: BLE001 - collected and asserted below
            outcomes.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=order) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(set(outcomes)) == 1 and isinstance(outcomes[0], int), outcomes
    assert UsageDetailRecord.objects.count() == 1
    assert Rental.objects.count() == 1 and ProvisioningRequest.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_an_order_waits_for_no_other_subscribers_order_on_the_same_scheme(subscriber, vip_subscriber, movie):
    """Every subscription action locks its subscription (and account); the billing term
    scheme it reads along is shared by every subscriber on it, so locking it too made each
    order wait for the one before it to commit."""
    from django.db import transaction

    from subscriptions.services.actions import ACTION_TYPES, Behavior

    assert connection.vendor == "postgresql", "make test runs this on PostgreSQL"
    assert subscriber.billing_term_scheme_id == vip_subscriber.billing_term_scheme_id
    locked, release = threading.Event(), threading.Event()

    def first_order_in_flight():
        try:
            with transaction.atomic():
                ACTION_TYPES[Behavior.ADD_SERVICE_USAGE].lock(subscriber)
                locked.set()
                release.wait(10)
        finally:
            connection.close()

    holder = threading.Thread(target=first_order_in_flight)
    holder.start()
    try:
        assert locked.wait(10)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '2s'")  # a wait for the other order's locks fails the test
        action = usage_order_place(subscription=vip_subscriber, title=movie("LOTR"), usage_at=DAY)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")
        release.set()
        holder.join()

    assert UsageDetailRecord.objects.get(pk=action.result["udr"]).account_id == vip_subscriber.account_id
