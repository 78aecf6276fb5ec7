"""The PPV order from the portal and from the decoder: same rules, same prices, one UDR per
request however often it is sent."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from rest_framework.test import APIClient

from accounts import services as account_services
from billing.models import UsageDetailRecord
from subscriptions.services.orders import usage_order_place
from tests.conftest import PORTAL_PASSWORD, portal_client_for
from tests.factories import customer_create
from tests.world import effective_subscription

pytestmark = pytest.mark.django_db
NICOSIA = ZoneInfo("Europe/Nicosia")


@pytest.fixture
def client(subscriber):
    return portal_client_for(subscriber.account)


def test_portal_order_at_night_costs_five_euros(client, subscriber, movie):
    with time_machine.travel(datetime(2026, 11, 20, 2, 30, tzinfo=NICOSIA)):
        response = client.post("/api/v1/orders/", {"title": movie("LOTR").pk, "screen": "WEB"}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["amount"], body["currency"], body["state"], body["channel"]) == ("5.0000", "EUR", "RATED", "PORTAL")
    assert body["subscription"] == subscriber.number and body["title"] == "Lord of the Rings"
    listing = client.get("/api/v1/orders/").json()
    assert [order["id"] for order in listing["results"]] == [body["id"]]
    assert client.get(f"/api/v1/orders/{body['id']}/").json()["rental_until"] == body["rental_until"]


def test_my_orders_list_newest_first_page_by_page_as_each_order_reads_alone(client, movie, stranger_orders):
    """The list (hand-written SQL) shows each order exactly as its own page (the ORM) does,
    rental and all; another customer's orders are not in it."""
    ids = []
    for hour, code in ((2, "LOTR"), (21, "LIMITLESS"), (22, "SERENDIPITY")):
        with time_machine.travel(datetime(2026, 11, 20, hour, 30, tzinfo=NICOSIA)):
            ids.append(client.post("/api/v1/orders/", {"title": movie(code).pk}, format="json").json()["id"])
    first_page = client.get("/api/v1/orders/?page_size=2").json()
    second_page = client.get(first_page["next"]).json()
    assert first_page["count"] == second_page["count"] == 3
    listed = first_page["results"] + second_page["results"]
    assert [order["id"] for order in listed] == ids[::-1]
    assert listed == [client.get(f"/api/v1/orders/{pk}/").json() for pk in ids[::-1]]
    assert client.get("/api/v1/orders/?page=3&page_size=2").status_code == 404


@pytest.fixture
def stranger_orders(zx_catalog, billing_scheme, movie):
    account = customer_create(first_name="Nikos", email="nikos@example.com")
    usage_order_place(subscription=effective_subscription(account, billing_scheme), title=movie("SERENDIPITY"))


def test_a_repeated_idempotency_key_returns_the_first_order(client, movie):
    first = client.post("/api/v1/orders/", {"title": movie("LIMITLESS").pk}, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    second = client.post("/api/v1/orders/", {"title": movie("LIMITLESS").pk}, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert UsageDetailRecord.objects.count() == 1


def test_the_same_transaction_reference_from_two_channels_is_one_order(client, subscriber, movie):
    client.post("/api/v1/orders/", {"title": movie("LOTR").pk, "transaction_reference": "shop-42"}, format="json")
    again = client.post("/api/v1/orders/", {"title": movie("LOTR").pk, "transaction_reference": "shop-42"}, format="json")
    assert again.status_code == 201
    assert UsageDetailRecord.objects.count() == 1


def test_a_refused_order_lists_every_reason_and_changes_nothing(client, subscriber, movie):
    subscriber.services.update(state="NOT_EFFECTIVE")
    response = client.post("/api/v1/orders/", {"title": movie("SERENDIPITY").pk}, format="json")
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "action_rejected"
    assert error["fields"]["reasons"] == ["The subscription needs an EFFECTIVE PPV Service to order Serendipity."]
    assert not UsageDetailRecord.objects.exists()


def test_bad_input_is_a_field_error(client):
    response = client.post("/api/v1/orders/", {"screen": "CINEMA"}, format="json")
    assert response.status_code == 400
    assert {"screen"} <= set(response.json()["error"]["fields"])
    response = client.post("/api/v1/orders/", {}, format="json")
    assert "title" in response.json()["error"]["fields"]


def test_the_decoder_orders_with_its_own_key(subscriber, movie):
    _credential, key = account_services.device_credential_issue(account=subscriber.account, label="Thomson decoder")
    decoder = APIClient()
    decoder.credentials(HTTP_AUTHORIZATION=f"Device {key}")
    with time_machine.travel(datetime(2026, 11, 20, 21, 0, tzinfo=NICOSIA)):
        response = decoder.post("/api/v1/device/orders/", {"title": movie("LIMITLESS").pk}, format="json", HTTP_IDEMPOTENCY_KEY="remote-1")
        repeat = decoder.post("/api/v1/device/orders/", {"title": movie("LIMITLESS").pk}, format="json", HTTP_IDEMPOTENCY_KEY="remote-1")
    assert response.status_code == repeat.status_code == 201
    assert response.json()["amount"] == "10.0000" and response.json()["channel"] == "DEVICE"
    assert UsageDetailRecord.objects.count() == 1


def test_a_vip_portal_order_is_free(vip_subscriber, movie):
    response = portal_client_for(vip_subscriber.account).post("/api/v1/orders/", {"title": movie("SERENDIPITY").pk}, format="json")
    assert response.json()["amount"] == "0.0000"


def test_my_subscriptions(client, subscriber):
    body = client.get("/api/v1/subscriptions/").json()
    assert body["results"][0]["number"] == subscriber.number
    assert body["results"][0]["services"][0]["product"] == "PPV-SERVICE"
    assert client.get(f"/api/v1/subscriptions/{subscriber.number}/").status_code == 200


def test_a_refused_order_keeps_its_rejected_action_and_a_repeat_gets_the_same_refusal(client, subscriber, movie):
    subscriber.services.update(state="NOT_EFFECTIVE")
    refused = client.post("/api/v1/orders/", {"title": movie("LOTR").pk}, format="json", HTTP_IDEMPOTENCY_KEY="k-refused")
    assert refused.status_code == 409
    assert subscriber.actions.filter(behavior="ADD_SERVICE_USAGE", state="REJECTED").count() == 1  # the call center sees it

    subscriber.services.update(state="EFFECTIVE")
    repeated = client.post("/api/v1/orders/", {"title": movie("LOTR").pk}, format="json", HTTP_IDEMPOTENCY_KEY="k-refused")
    assert repeated.status_code == 409  # the key's outcome does not change
    assert repeated.json()["error"]["fields"] == refused.json()["error"]["fields"]
    assert not UsageDetailRecord.objects.exists()
    anew = client.post("/api/v1/orders/", {"title": movie("LOTR").pk}, format="json", HTTP_IDEMPOTENCY_KEY="k-new")
    assert anew.status_code == 201
    assert UsageDetailRecord.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_repeats_of_an_order_make_one_order_and_answer_it_to_each(live_server, subscriber, movie):
    """Four real HTTP requests with one key at once: the key is claimed in the order's own
    transaction, so the repeats wait for it and all receive the same order."""
    import json
    import threading
    import urllib.request

    token = "Token " + account_services.portal_login(username=subscriber.account.contact.email, password=PORTAL_PASSWORD).key
    bodies: list[tuple[int, dict]] = []
    barrier = threading.Barrier(4)

    def post():
        request = urllib.request.Request(
            f"{live_server.url}/api/v1/orders/", data=json.dumps({"title": movie("LOTR").pk}).encode(), method="POST",
            headers={"Content-Type": "application/json", "Idempotency-Key": "race", "Authorization": token})
        barrier.wait()
        with urllib.request.urlopen(request, timeout=30) as response:
            bodies.append((response.status, json.loads(response.read())))

    threads = [threading.Thread(target=post) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [status for status, _body in bodies] == [201] * 4
    assert len({body["id"] for _status, body in bodies}) == 1
    assert UsageDetailRecord.objects.count() == 1
