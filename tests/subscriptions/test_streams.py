"""Stream sessions (start, heartbeat, stop) under the concurrent-stream limit, and viewing
events recorded in bulk."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from accounts import services as account_services
from catalogs.models import Product
from catalogs.services import content
from core.exceptions import Conflict, PermissionDenied, ValidationFailed
from subscriptions.models import StreamSession, SubscriptionService, ViewingEvent
from subscriptions.services import devices as services

pytestmark = pytest.mark.django_db
NICOSIA = ZoneInfo("Europe/Nicosia")
NOW = datetime(2026, 11, 20, 20, 0, tzinfo=NICOSIA)
SCREENS = ["SET_TOP_BOX", "SMART_TV", "MOBILE", "WEB"]


@pytest.fixture
def final(zx_catalog):
    title = content.content_title_create(code="UCL-FINAL", title="Champions League Final", synopsis="Live.", duration_minutes=120,
                                         artwork_url="https://images.ott.example/ucl.jpg", screens=SCREENS)
    title = content.title_publish(title=content.title_submit(title=title))
    content.product_update(product=Product.objects.get(code="SPORTS-PACK"), data={"titles": [title]})
    return title


@pytest.fixture
def sports_fan(subscriber, final, settings):
    """Maria holds the Sports Pack; the default limit is 2 streams, stale after 120 s."""
    settings.STREAM_LIMIT_DEFAULT, settings.STREAM_STALE_SECONDS = 2, 120
    SubscriptionService.objects.create(subscription=subscriber, product=Product.objects.get(code="SPORTS-PACK"), state="EFFECTIVE")
    return subscriber.account


@pytest.fixture
def devices(sports_fan):
    names = [("Living room TV", "SMART_TV"), ("Maria's phone", "MOBILE"), ("Laptop", "WEB")]
    return [services.device_register(account=sports_fan, name=name, screen=screen)[0] for name, screen in names]


def start(device, title, at=NOW):
    return services.stream_start(device=device, title=title, at=at)


# --- starting under the limit -------------------------------------------------------------

def test_a_stream_starts_for_an_entitled_device(devices, final):
    session = start(devices[0], final)
    assert (session.device, session.title, session.account) == (devices[0], final, devices[0].account)
    assert session.started_at == session.last_heartbeat_at == NOW and session.ended_at is None


def test_one_stream_too_many_is_refused_naming_the_devices_playing(devices, final):
    start(devices[0], final)
    start(devices[1], final, NOW + timedelta(seconds=5))
    with pytest.raises(Conflict) as raised:
        start(devices[2], final, NOW + timedelta(seconds=10))
    assert raised.value.code == "stream_limit"
    assert raised.value.message == "2 streams are already playing, on Living room TV and Maria's phone; stop one to watch here."
    assert StreamSession.objects.count() == 2


def test_with_a_limit_of_one_the_message_says_so(devices, final, settings):
    settings.STREAM_LIMIT_DEFAULT = 1
    start(devices[0], final)
    with pytest.raises(Conflict) as raised:
        start(devices[1], final)
    assert raised.value.message == "1 stream is already playing, on Living room TV; stop it to watch here."


def test_the_limit_comes_from_the_effective_services(devices, final):
    Product.objects.filter(code="SPORTS-PACK").update(max_streams=3)
    for device in devices:
        start(device, final)
    assert StreamSession.objects.filter(ended_at__isnull=True).count() == 3


def test_a_device_plays_one_thing_at_a_time(devices, final, movie, subscriber):
    from subscriptions.services.orders import usage_order_place

    usage_order_place(subscription=subscriber, title=movie("LOTR"), usage_at=NOW)
    first = start(devices[0], final)
    start(devices[1], final)
    switched = start(devices[0], movie("LOTR"), NOW + timedelta(seconds=30))  # not refused: it replaces its own stream
    first.refresh_from_db()
    assert first.ended_at == NOW + timedelta(seconds=30) and switched.ended_at is None


def test_streams_of_other_accounts_do_not_count(devices, final, vip_subscriber, settings):
    settings.STREAM_LIMIT_DEFAULT = 1
    SubscriptionService.objects.create(subscription=vip_subscriber, product=Product.objects.get(code="SPORTS-PACK"), state="EFFECTIVE")
    theirs, _key = services.device_register(account=vip_subscriber.account, name="Their TV", screen="SMART_TV")
    start(theirs, final)
    assert start(devices[0], final).ended_at is None


# --- refusals -----------------------------------------------------------------------------

def test_a_title_the_account_is_not_entitled_to_is_refused_with_the_reason(devices, movie):
    with pytest.raises(PermissionDenied) as raised:
        start(devices[0], movie("LIMITLESS"))
    assert (raised.value.code, raised.value.message) == ("not_entitled", "No rental or package includes Limitless.")
    assert not StreamSession.objects.exists()


def test_a_suspended_account_cannot_start_streams(devices, final, sports_fan):
    account_services.account_suspend(account=sports_fan)
    with pytest.raises(PermissionDenied) as raised:
        start(devices[0], final)
    assert raised.value.message == f"The account {sports_fan.number} is SUSPENDED; nothing can be watched until it is ACTIVE again."


def test_a_title_not_offered_on_the_devices_screen_is_refused(devices, final):
    final.availabilities.filter(screen="MOBILE").delete()
    with pytest.raises(PermissionDenied) as raised:
        start(devices[1], final)
    assert raised.value.message == "Champions League Final is not available on Mobile now."
    assert start(devices[0], final).ended_at is None


def test_a_removed_device_cannot_start(devices, final):
    services.device_remove(device=devices[0])
    with pytest.raises(Conflict) as raised:
        start(devices[0], final)
    assert raised.value.code == "device_removed"
    assert not StreamSession.objects.exists()


# --- heartbeats, staleness and stopping ----------------------------------------------------

def test_a_session_without_heartbeats_goes_stale_and_frees_its_place(devices, final):
    start(devices[0], final)
    start(devices[1], final)
    with pytest.raises(Conflict):
        start(devices[2], final, NOW + timedelta(seconds=119))

    third = start(devices[2], final, NOW + timedelta(seconds=120))  # exactly STREAM_STALE_SECONDS: stale

    assert third.ended_at is None
    stale = StreamSession.objects.exclude(pk=third.pk)
    assert [session.ended_at for session in stale] == [NOW, NOW]  # closed at their last heartbeat


def test_heartbeats_keep_a_session_counted(devices, final, settings):
    settings.STREAM_LIMIT_DEFAULT = 1
    with time_machine.travel(NOW, tick=False):
        kept = start(devices[0], final, at=None)
    with time_machine.travel(NOW + timedelta(seconds=100), tick=False):
        assert services.stream_heartbeat(session=kept).last_heartbeat_at == NOW + timedelta(seconds=100)
    with time_machine.travel(NOW + timedelta(seconds=150), tick=False):
        with pytest.raises(Conflict) as raised:
            start(devices[2], final, at=None)
    assert raised.value.message == "1 stream is already playing, on Living room TV; stop it to watch here."
    assert start(devices[2], final, NOW + timedelta(seconds=220)).ended_at is None


def test_a_stale_session_cannot_be_revived(devices, final):
    session = start(devices[0], final)
    with pytest.raises(Conflict) as raised:
        services.stream_heartbeat(session=session, at=NOW + timedelta(seconds=121))
    assert raised.value.code == "stream_expired"
    session.refresh_from_db()
    assert session.last_heartbeat_at == NOW and session.ended_at is None


def test_stopping_frees_the_place_at_once_and_a_stopped_session_stays_stopped(devices, final):
    first = start(devices[0], final)
    start(devices[1], final)

    stopped = services.stream_stop(session=first, at=NOW + timedelta(seconds=30))
    assert stopped.ended_at == NOW + timedelta(seconds=30)
    assert start(devices[2], final, NOW + timedelta(seconds=31)).ended_at is None

    assert services.stream_stop(session=first, at=NOW + timedelta(seconds=60)).ended_at == NOW + timedelta(seconds=30)
    with pytest.raises(Conflict) as raised:
        services.stream_heartbeat(session=first, at=NOW + timedelta(seconds=61))
    assert raised.value.code == "stream_expired"


def test_stopping_a_stale_session_ends_it_at_its_last_heartbeat(devices, final):
    session = start(devices[0], final)
    assert services.stream_stop(session=session, at=NOW + timedelta(hours=1)).ended_at == NOW


# --- viewing events -----------------------------------------------------------------------

def events(title, count, at=NOW):
    kinds = ["START", *["PROGRESS"] * (count - 2), "STOP"]
    return [{"kind": kind, "title": title.pk, "position_seconds": 30 * n, "occurred_at": (at + timedelta(seconds=30 * n)).isoformat()}
            for n, kind in enumerate(kinds)]


def test_a_batch_of_200_events_is_one_insert(devices, final, django_assert_max_num_queries):
    batch = events(final, 200, NOW - timedelta(hours=2))
    with time_machine.travel(NOW, tick=False):
        with django_assert_max_num_queries(2) as captured:
            recorded = services.viewing_events_record(device=devices[0], events=batch)
    assert recorded == 200
    inserts = [query["sql"] for query in captured.captured_queries if query["sql"].startswith("INSERT")]
    assert len(inserts) == 1
    stored = ViewingEvent.objects.order_by("position_seconds")
    assert stored.count() == 200
    first, last = stored.first(), stored.last()
    assert (first.kind, first.account_id, first.device_id, first.title_id) == ("START", devices[0].account_id, devices[0].pk, final.pk)
    assert (last.kind, last.position_seconds, last.occurred_at) == ("STOP", 5970, NOW - timedelta(hours=2) + timedelta(seconds=5970))


def test_one_bad_event_rejects_the_batch_and_nothing_is_stored(devices, final):
    batch = events(final, 6)
    batch[3]["kind"] = "PAUSE"
    with time_machine.travel(NOW + timedelta(hours=1), tick=False):
        with pytest.raises(ValidationFailed) as raised:
            services.viewing_events_record(device=devices[0], events=batch)
    assert raised.value.fields == {"events.3.kind": ["Choose one of START, PROGRESS, STOP."]}
    assert raised.value.message == "1 of 6 events are not valid; none were recorded."
    assert not ViewingEvent.objects.exists()


def test_every_bad_event_is_reported_at_once(devices, final):
    batch = events(final, 7, NOW - timedelta(hours=1))
    batch[1]["position_seconds"] = -5
    batch[2]["occurred_at"] = "2026-11-20T20:00:00"  # no time zone
    batch[3]["occurred_at"] = (NOW + timedelta(seconds=61)).isoformat()
    batch[4]["title"] = 999_999
    batch[5] = "START"
    with time_machine.travel(NOW, tick=False):
        with pytest.raises(ValidationFailed) as raised:
            services.viewing_events_record(device=devices[0], events=batch)
    assert list(raised.value.fields) == ["events.1.position_seconds", "events.2.occurred_at", "events.3.occurred_at",
                                         "events.4.title", "events.5"]
    assert not ViewingEvent.objects.exists()


def test_a_minute_of_clock_skew_is_allowed(devices, final):
    batch = events(final, 2, NOW + timedelta(seconds=29))  # the last one is 59 s ahead
    with time_machine.travel(NOW, tick=False):
        assert services.viewing_events_record(device=devices[0], events=batch) == 2


@pytest.mark.parametrize("batch, message", [([], "Send the viewing events as a list."), ("START", "Send the viewing events as a list."),
                                            (None, "Send the viewing events as a list.")])
def test_a_batch_must_be_a_non_empty_list(devices, batch, message):
    with pytest.raises(ValidationFailed) as raised:
        services.viewing_events_record(device=devices[0], events=batch)
    assert raised.value.message == message and "events" in raised.value.fields


def test_at_most_500_events_per_call(devices, final):
    with pytest.raises(ValidationFailed) as raised:
        services.viewing_events_record(device=devices[0], events=events(final, 501, NOW - timedelta(days=1)))
    assert raised.value.message == "At most 500 events per call; this batch has 501."
    assert not ViewingEvent.objects.exists()
