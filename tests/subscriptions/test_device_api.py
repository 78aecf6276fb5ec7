"""The device API (entitlement check, streams, viewing events, TV pairing) and the portal's
devices and entitlements, over HTTP."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from rest_framework.test import APIClient

from accounts import services as account_services
from catalogs.models import Product
from catalogs.services import content
from core.models import IdempotencyRecord
from subscriptions.models import Device, StreamSession, SubscriptionService, ViewingEvent
from subscriptions.services import devices as services
from subscriptions.selectors import _as_datetime
from subscriptions.services.orders import usage_order_place
from tests.conftest import portal_client_for

pytestmark = pytest.mark.django_db
NICOSIA = ZoneInfo("Europe/Nicosia")
SCREENS = ["SET_TOP_BOX", "SMART_TV", "MOBILE", "WEB"]


def device_client(raw_key: str | None = None) -> APIClient:
    client = APIClient()
    if raw_key:
        client.credentials(HTTP_AUTHORIZATION=f"Device {raw_key}")
    return client


@pytest.fixture
def final(zx_catalog):
    title = content.content_title_create(code="UCL-FINAL", title="Champions League Final", synopsis="Live.", duration_minutes=120,
                                         artwork_url="https://images.ott.example/ucl.jpg", screens=SCREENS)
    title = content.title_publish(title=content.title_submit(title=title))
    content.product_update(product=Product.objects.get(code="SPORTS-PACK"), data={"titles": [title]})
    return title


@pytest.fixture
def maria(subscriber, final):
    """Maria (subscriber) holds the Sports Pack."""
    SubscriptionService.objects.create(subscription=subscriber, product=Product.objects.get(code="SPORTS-PACK"), state="EFFECTIVE")
    return subscriber.account


@pytest.fixture
def tv(maria):
    device, raw_key = services.device_register(account=maria, name="Living room TV", screen="SMART_TV")
    return device, device_client(raw_key)


@pytest.fixture
def portal(maria) -> APIClient:
    return portal_client_for(maria)


def entitlement_url(title) -> str:
    return f"/api/v1/device/entitlements/{title.pk}/"


# --- entitlement check --------------------------------------------------------------------

def test_a_device_asks_whether_it_may_play_a_title(tv, final, movie, django_assert_max_num_queries):
    _device, client = tv
    client.get(entitlement_url(final))  # the key's first use is recorded; the titles are loaded and remembered
    with django_assert_max_num_queries(3):  # the key with its account and device, the titles' version (once a request), the check
        response = client.get(entitlement_url(final))
    assert response.status_code == 200
    assert response.json() == {"entitled": True, "reason": "package Sports Pack", "source": "PACKAGE", "until": None}

    refused = client.get(entitlement_url(movie("LIMITLESS"))).json()
    assert refused == {"entitled": False, "reason": "no rental or package includes Limitless", "source": None, "until": None}


def test_a_rental_answers_until_when(tv, subscriber, movie):
    _device, client = tv
    ordered = datetime.now(NICOSIA).replace(microsecond=0) - timedelta(hours=1)
    usage_order_place(subscription=subscriber, title=movie("LOTR"), usage_at=ordered)
    body = client.get(entitlement_url(movie("LOTR"))).json()
    assert body["entitled"] is True and body["source"] == "RENTAL"
    assert datetime.fromisoformat(body["until"]) == ordered + timedelta(hours=48)


def test_a_rental_end_read_back_from_sqlite_is_an_aware_utc_instant():
    """The check's SQL is hand-written; SQLite hands timestamps back as text or naive values."""
    expected = datetime(2026, 5, 12, 17, 0, tzinfo=timezone.utc)
    assert _as_datetime("2026-05-12 17:00:00") == expected
    assert _as_datetime(datetime(2026, 5, 12, 17, 0)) == expected
    assert _as_datetime(expected.astimezone(NICOSIA)) == expected
    assert _as_datetime(None) is None


def test_the_answer_is_for_the_devices_screen(tv, final):
    _device, client = tv
    final.availabilities.filter(screen="SMART_TV").delete()
    assert client.get(entitlement_url(final)).json()["reason"] == "Champions League Final is not available on Smart TV now"


def test_an_unknown_or_unpublished_title_is_not_found(tv):
    _device, client = tv
    draft = content.content_title_create(code="DRAFT", title="Draft", screens=SCREENS)
    for url in ("/api/v1/device/entitlements/999999/", entitlement_url(draft)):
        response = client.get(url)
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_without_a_valid_key_a_device_gets_401(tv, final):
    device, _client = tv
    assert device_client().get(entitlement_url(final)).status_code == 401
    assert device_client("not-a-key-at-all-0123456789").get(entitlement_url(final)).json()["error"]["code"] == "authentication_failed"
    _, raw_key = services.device_register(account=device.account, name="Old phone", screen="MOBILE")
    services.device_remove(device=Device.objects.get(name="Old phone"))
    assert device_client(raw_key).get(entitlement_url(final)).status_code == 401


def test_a_portal_token_is_not_a_device_key(portal, final):
    assert portal.get(entitlement_url(final)).status_code == 401


# --- streams ------------------------------------------------------------------------------

def test_start_heartbeat_and_stop_a_stream(tv, final):
    device, client = tv
    started = client.post("/api/v1/device/streams/", {"title": final.pk}, format="json")
    assert started.status_code == 201, started.json()
    session = started.json()
    assert (session["title"], session["title_name"], session["device"], session["device_name"]) == (
        final.pk, "Champions League Final", device.pk, "Living room TV")
    assert session["ended_at"] is None and session["expires_at"] is not None

    beat = client.post(f"/api/v1/device/streams/{session['id']}/heartbeat/")
    assert beat.status_code == 200
    stopped = client.post(f"/api/v1/device/streams/{session['id']}/stop/")
    assert stopped.status_code == 200 and stopped.json()["ended_at"] is not None and stopped.json()["expires_at"] is None
    again = client.post(f"/api/v1/device/streams/{session['id']}/heartbeat/")
    assert again.status_code == 409 and again.json()["error"]["code"] == "stream_expired"


def test_the_stream_limit_error_names_the_devices_playing(maria, final, settings):
    settings.STREAM_LIMIT_DEFAULT = 2
    clients = []
    for name, screen in (("Living room TV", "SMART_TV"), ("Maria's phone", "MOBILE"), ("Laptop", "WEB")):
        _device, raw_key = services.device_register(account=maria, name=name, screen=screen)
        clients.append(device_client(raw_key))
    for client in clients[:2]:
        assert client.post("/api/v1/device/streams/", {"title": final.pk}, format="json").status_code == 201

    refused = clients[2].post("/api/v1/device/streams/", {"title": final.pk}, format="json")
    assert refused.status_code == 409
    assert refused.json()["error"] == {"code": "stream_limit", "fields": {},
                                       "message": "2 streams are already playing, on Living room TV and Maria's phone; stop one to watch here."}

    playing_on_phone = StreamSession.objects.get(device__name="Maria's phone")
    assert clients[2].post(f"/api/v1/device/streams/{playing_on_phone.pk}/stop/").status_code == 200  # stop it from here
    assert clients[2].post("/api/v1/device/streams/", {"title": final.pk}, format="json").status_code == 201


def test_a_title_not_entitled_is_refused_with_the_reason(tv, movie):
    _device, client = tv
    response = client.post("/api/v1/device/streams/", {"title": movie("LIMITLESS").pk}, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "not_entitled"
    assert response.json()["error"]["message"] == "No rental or package includes Limitless."
    assert not StreamSession.objects.exists()


def test_an_unknown_title_is_a_field_error(tv):
    _device, client = tv
    response = client.post("/api/v1/device/streams/", {"title": 999999}, format="json")
    assert response.status_code == 400 and "title" in response.json()["error"]["fields"]


def test_a_key_that_belongs_to_no_registered_device_cannot_stream(maria, final):
    _credential, raw_key = account_services.device_credential_issue(account=maria, label="Bare key")
    response = device_client(raw_key).post("/api/v1/device/streams/", {"title": final.pk}, format="json")
    assert response.status_code == 403 and response.json()["error"]["code"] == "not_a_device"


def test_another_accounts_stream_is_not_found(tv, final, vip_subscriber):
    _device, client = tv
    session_id = client.post("/api/v1/device/streams/", {"title": final.pk}, format="json").json()["id"]
    _their_device, their_key = services.device_register(account=vip_subscriber.account, name="Theirs", screen="WEB")
    response = device_client(their_key).post(f"/api/v1/device/streams/{session_id}/stop/")
    assert response.status_code == 404
    assert StreamSession.objects.get(pk=session_id).ended_at is None


# --- viewing events -----------------------------------------------------------------------

def viewing_batch(title, kinds=("START", "PROGRESS", "STOP")):
    at = datetime.now(NICOSIA) - timedelta(minutes=10)
    return {"events": [{"kind": kind, "title": title.pk, "position_seconds": 60 * n, "occurred_at": (at + timedelta(minutes=n)).isoformat()}
                       for n, kind in enumerate(kinds)]}


def test_a_batch_of_viewing_events_is_accepted(tv, final):
    device, client = tv
    response = client.post("/api/v1/device/viewing-events/", viewing_batch(final), format="json")
    assert response.status_code == 202 and response.json() == {"recorded": 3}
    assert ViewingEvent.objects.filter(device_id=device.pk, account_id=device.account_id).count() == 3


def test_a_bad_event_rejects_the_batch_with_its_index(tv, final):
    _device, client = tv
    response = client.post("/api/v1/device/viewing-events/", viewing_batch(final, ("START", "REWIND")), format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"events.1.kind": ["Choose one of START, PROGRESS, STOP."]}
    assert not ViewingEvent.objects.exists()


def test_a_repeated_batch_with_the_same_idempotency_key_is_recorded_once(tv, final):
    _device, client = tv
    batch = viewing_batch(final)
    for _ in range(2):
        response = client.post("/api/v1/device/viewing-events/", batch, format="json", HTTP_IDEMPOTENCY_KEY="batch-1")
        assert response.status_code == 202
    assert ViewingEvent.objects.count() == 3


# --- pairing a TV, end to end ---------------------------------------------------------------

def test_pairing_a_tv_end_to_end(portal, final):
    tv_side = APIClient()
    started = tv_side.post("/api/v1/device/pairing/", {"screen": "SMART_TV", "name": "Samsung TV"}, format="json")
    assert started.status_code == 201 and started["Cache-Control"] == "no-store"
    code, poll_url = started.json()["code"], f"/api/v1/device/pairing/{started.json()['poll_token']}/"
    assert tv_side.get(poll_url).json() == {"status": "pending"}

    paired = portal.post("/api/v1/devices/pair/", {"code": code.lower(), "name": "Bedroom TV"}, format="json")
    assert paired.status_code == 201, paired.json()
    assert (paired.json()["name"], paired.json()["screen"]) == ("Bedroom TV", "SMART_TV")
    assert "device_key" not in paired.json()

    collected = tv_side.get(poll_url)
    assert collected.status_code == 200 and collected["Cache-Control"] == "no-store"
    assert collected.json()["status"] == "paired"
    assert tv_side.get(poll_url).json() == {"status": "paired"}  # the key is handed over once

    answer = device_client(collected.json()["device_key"]).get(entitlement_url(final))
    assert answer.status_code == 200 and answer.json()["entitled"] is True


def test_a_wrong_pairing_code_is_refused(portal):
    response = portal.post("/api/v1/devices/pair/", {"code": "ZZZZZZ"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "pairing_code_invalid" and "code" in response.json()["error"]["fields"]
    assert not Device.objects.exists()


def test_an_unknown_poll_token_is_not_found():
    assert APIClient().get("/api/v1/device/pairing/nothing-here/").status_code == 404


def test_a_tv_asking_for_codes_again_and_again_is_throttled(db):
    tv_side = APIClient()
    responses = [tv_side.post("/api/v1/device/pairing/", {"screen": "SMART_TV"}, format="json").status_code for _ in range(31)]
    assert responses[:30] == [201] * 30 and responses[30] == 429


# --- the portal's devices -------------------------------------------------------------------

def test_register_a_device_in_the_portal_and_use_its_key(portal, final):
    response = portal.post("/api/v1/devices/", {"name": "Maria's phone", "screen": "MOBILE", "identifier": "app-42"}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["name"], body["screen"], body["identifier"], body["state"]) == ("Maria's phone", "MOBILE", "app-42", "ACTIVE")
    assert device_client(body["device_key"]).get(entitlement_url(final)).status_code == 200
    listed = portal.get("/api/v1/devices/").json()
    assert [device["name"] for device in listed["results"]] == ["Maria's phone"]
    assert "device_key" not in listed["results"][0]


def test_the_device_limit_is_a_clear_409(portal, settings):
    settings.DEVICE_LIMIT_DEFAULT = 1
    portal.post("/api/v1/devices/", {"name": "TV", "screen": "SMART_TV"}, format="json")
    response = portal.post("/api/v1/devices/", {"name": "Phone", "screen": "MOBILE"}, format="json")
    assert response.status_code == 409 and response.json()["error"]["code"] == "device_limit"
    assert Device.objects.count() == 1


def test_invalid_device_input_is_a_400_with_fields(portal):
    response = portal.post("/api/v1/devices/", {"name": "", "screen": "FRIDGE"}, format="json")
    assert response.status_code == 400 and set(response.json()["error"]["fields"]) == {"name", "screen"}


def test_a_repeated_registration_with_the_same_key_creates_one_device(portal):
    body = {"name": "TV", "screen": "SMART_TV"}
    first = portal.post("/api/v1/devices/", body, format="json", HTTP_IDEMPOTENCY_KEY="reg-1")
    second = portal.post("/api/v1/devices/", body, format="json", HTTP_IDEMPOTENCY_KEY="reg-1")
    assert first.status_code == second.status_code == 201 and second.json() == first.json()
    assert Device.objects.count() == 1 and IdempotencyRecord.objects.count() == 1


def test_rename_and_remove_a_device(portal, tv, final):
    device, client = tv
    url = f"/api/v1/devices/{device.pk}/"
    assert portal.get(url).json()["name"] == "Living room TV"
    renamed = portal.patch(url, {"name": "Bedroom TV"}, format="json")
    assert renamed.status_code == 200 and renamed.json()["name"] == "Bedroom TV"

    assert portal.delete(url).status_code == 204
    removed = portal.get(url).json()
    assert removed["state"] == "REMOVED" and removed["slot_free_at"] is not None
    assert client.get(entitlement_url(final)).status_code == 401  # its key no longer works
    assert portal.delete(url).json()["error"]["code"] == "device_removed"
    assert [d["state"] for d in portal.get("/api/v1/devices/").json()["results"]] == ["REMOVED"]  # still holding its slot


def test_another_customers_device_is_not_found(tv, other_customer):
    device, _client = tv
    stranger = portal_client_for(other_customer)
    url = f"/api/v1/devices/{device.pk}/"
    assert [stranger.get(url).status_code, stranger.patch(url, {"name": "Mine"}, format="json").status_code,
            stranger.delete(url).status_code] == [404, 404, 404]
    assert stranger.get("/api/v1/devices/").json()["results"] == []
    device.refresh_from_db()
    assert (device.name, device.state) == ("Living room TV", "ACTIVE")


def test_my_entitlements_now(portal, subscriber, final, movie):
    usage_order_place(subscription=subscriber, title=movie("LOTR"), usage_at=datetime.now(NICOSIA) - timedelta(hours=1))
    response = portal.get("/api/v1/entitlements/")
    assert response.status_code == 200
    assert [(row["title_code"], row["source"]) for row in response.json()["results"]] == [("UCL-FINAL", "PACKAGE"), ("LOTR", "RENTAL")]
    assert response.json()["results"][0]["reason"] == "package Sports Pack"


def test_entitlements_of_an_account_that_is_not_mine_are_not_found(portal, other_customer):
    response = portal.get("/api/v1/entitlements/", {"account": other_customer.number})
    assert response.status_code == 404
