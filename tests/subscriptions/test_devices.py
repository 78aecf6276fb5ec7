"""Devices: registering within the account's limit, the cooldown of a removed device's
slot, renaming and removing, and pairing a TV by the code it shows."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection, transaction

from accounts import services as account_services
from accounts.models import AccountsReceivable, DeviceCredential
from accounts.selectors import device_credential_get_by_key
from catalogs.models import Product
from core.exceptions import ApplicationError, Conflict, NotFound, ValidationFailed
from core.models import AuditEntry
from subscriptions.models import Device, PairingCode, StreamSession, SubscriptionService
from subscriptions.selectors import device_limit_get
from subscriptions.services import devices as services
from tests.factories import customer_create

pytestmark = pytest.mark.django_db
NICOSIA = ZoneInfo("Europe/Nicosia")
NOW = datetime(2026, 11, 20, 20, 0, tzinfo=NICOSIA)


@pytest.fixture
def two_slots(settings):
    settings.DEVICE_LIMIT_DEFAULT = 2
    settings.DEVICE_SLOT_COOLDOWN_HOURS = 24


def register(account, name="Living room TV", screen="SMART_TV", **kwargs):
    return services.device_register(account=account, name=name, screen=screen, **kwargs)


def counts() -> tuple[int, int]:
    return Device.objects.count(), DeviceCredential.objects.count()


# --- registering --------------------------------------------------------------------------

def test_a_registered_device_gets_a_key_that_authenticates_it(customer):
    device, raw_key = register(customer, identifier=" SN-123 ")

    assert (device.name, device.screen, device.identifier, device.state) == ("Living room TV", "SMART_TV", "SN-123", "ACTIVE")
    assert device_credential_get_by_key(raw_key=raw_key) == device.credential
    assert device.credential.label == "Living room TV" and device.credential.account == customer
    entry = AuditEntry.objects.get(object_pk=str(device.pk), action="registered")
    assert entry.changes["name"] == [None, "Living room TV"]


def test_every_problem_with_the_input_is_reported_and_nothing_is_created(customer):
    with pytest.raises(ValidationFailed) as raised:
        register(customer, name="  ", screen="TOASTER", identifier="x" * 101)
    assert set(raised.value.fields) == {"name", "screen", "identifier"}
    assert counts() == (0, 0)


@pytest.mark.parametrize("suspend_or_terminate", [account_services.account_suspend, account_services.account_terminate])
def test_only_an_active_account_registers_devices(customer, suspend_or_terminate):
    suspend_or_terminate(account=customer, reason="Unpaid")
    with pytest.raises(ApplicationError) as raised:
        register(customer)
    assert raised.value.code == "account_not_active"
    assert counts() == (0, 0)


def test_the_default_limit_refuses_one_device_too_many(customer, two_slots):
    register(customer, "TV")
    register(customer, "Phone", "MOBILE")
    with pytest.raises(Conflict) as raised:
        register(customer, "Laptop", "WEB")
    assert raised.value.code == "device_limit"
    assert raised.value.message == "All 2 device slots are in use; remove a device to free its slot 24 hours later."
    assert counts() == (2, 2)


def test_the_limit_is_the_largest_among_the_effective_services(subscriber, billing_scheme, two_slots):
    account = subscriber.account
    Product.objects.filter(code="PPV-SERVICE").update(max_devices=3)
    Product.objects.filter(code="SPORTS-PACK").update(max_devices=4)
    assert device_limit_get(account=account) == 3

    sports = SubscriptionService.objects.create(subscription=subscriber, product=Product.objects.get(code="SPORTS-PACK"), state="EFFECTIVE")
    assert device_limit_get(account=account) == 4
    for n in range(4):
        register(account, f"Device {n}")
    with pytest.raises(Conflict):
        register(account, "One more")

    SubscriptionService.objects.filter(pk=sports.pk).update(state="IN_RESTING")
    assert device_limit_get(account=account) == 3
    subscriber.__class__.objects.filter(pk=subscriber.pk).update(state="IN_RESTING")
    assert device_limit_get(account=account) == 2  # nothing effective: the default


def test_a_removed_device_holds_its_slot_until_the_cooldown_ends(customer, two_slots):
    with time_machine.travel(NOW, tick=False):
        register(customer, "TV")
        phone, _key = register(customer, "Phone", "MOBILE")
    with time_machine.travel(NOW + timedelta(hours=1), tick=False):
        services.device_remove(device=phone)
    with time_machine.travel(NOW + timedelta(hours=25) - timedelta(seconds=1), tick=False):
        with pytest.raises(Conflict) as raised:
            register(customer, "Laptop", "WEB")
    assert raised.value.message == ("All 2 device slots are in use (1 devices, 1 removed in the last 24 hours); "
                                    "the next slot frees up at 2026-11-21 21:00 (Europe/Nicosia).")
    assert counts() == (2, 2)
    with time_machine.travel(NOW + timedelta(hours=25), tick=False):
        laptop, _key = register(customer, "Laptop", "WEB")
    assert laptop.state == "ACTIVE"


def test_devices_of_other_accounts_do_not_count(customer, other_customer, two_slots):
    register(other_customer, "Theirs 1")
    register(other_customer, "Theirs 2")
    register(customer, "Mine 1")
    register(customer, "Mine 2")
    assert Device.objects.filter(account=customer).count() == 2


@pytest.mark.django_db(transaction=True)
def test_two_registrations_racing_for_the_last_slot_cannot_both_take_it(settings):
    """Real concurrent transactions on PostgreSQL: a third transaction holds the account
    row; both registrations must queue behind it (they lock it before counting), and once
    it lets go exactly one gets the last slot."""
    assert connection.vendor == "postgresql", "make test runs this on PostgreSQL"
    settings.DEVICE_LIMIT_DEFAULT = 2
    account = customer_create(portal=False)
    register(account, "TV")
    locked, release = threading.Event(), threading.Event()
    outcomes: list = []

    def in_thread(target):
        def run():
            try:
                outcomes.append(target())
            except Conflict as error:
                outcomes.append(error.code)
            finally:
                connection.close()

        thread = threading.Thread(target=run)
        thread.start()
        return thread

    def hold_the_account():
        with transaction.atomic():
            AccountsReceivable.objects.select_for_update().get(pk=account.pk)
            locked.set()
            release.wait(timeout=30)
        return "held"

    holder = in_thread(hold_the_account)
    assert locked.wait(timeout=10)
    racers = [in_thread(lambda name=name: register(account, name)) for name in ("Phone", "Laptop")]
    for _ in range(200):
        if waiting_on_locks() == 2:
            break
        time.sleep(0.025)
    waiting = waiting_on_locks()
    release.set()
    for thread in (holder, *racers):
        thread.join(timeout=30)

    assert waiting == 2, "both registrations must wait for the account row lock"
    registered = [outcome for outcome in outcomes if isinstance(outcome, tuple)]
    assert len(registered) == 1 and outcomes.count("device_limit") == 1, outcomes
    assert Device.objects.filter(account=account).count() == 2
    assert DeviceCredential.objects.filter(account=account).count() == 2


def waiting_on_locks() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()")
        return cursor.fetchone()[0]


# --- renaming and removing ----------------------------------------------------------------

def test_renaming_changes_the_name_and_the_key_label(customer):
    device, _key = register(customer)
    renamed = services.device_rename(device=device, name=" Bedroom TV ")
    assert renamed.name == "Bedroom TV"
    assert DeviceCredential.objects.get(pk=device.credential_id).label == "Bedroom TV"
    assert AuditEntry.objects.get(object_pk=str(device.pk), action="renamed").changes == {"name": ["Living room TV", "Bedroom TV"]}


def test_a_blank_name_is_refused_and_nothing_changes(customer):
    device, _key = register(customer)
    with pytest.raises(ValidationFailed) as raised:
        services.device_rename(device=device, name=" ")
    assert "name" in raised.value.fields
    device.refresh_from_db()
    assert device.name == "Living room TV"


def test_removing_revokes_the_key_and_ends_the_devices_streams(customer, movie, zx_catalog):
    device, raw_key = register(customer)
    other, _other_key = register(customer, "Phone", "MOBILE")
    lotr = movie("LOTR")
    playing = StreamSession.objects.create(account=customer, device=device, title=lotr, last_heartbeat_at=NOW)
    elsewhere = StreamSession.objects.create(account=customer, device=other, title=lotr, last_heartbeat_at=NOW)

    with time_machine.travel(NOW, tick=False):
        removed = services.device_remove(device=device)

    assert (removed.state, removed.removed_at) == ("REMOVED", NOW)
    assert device_credential_get_by_key(raw_key=raw_key) is None
    playing.refresh_from_db(), elsewhere.refresh_from_db()
    assert playing.ended_at == NOW and elsewhere.ended_at is None
    assert AuditEntry.objects.filter(object_pk=str(device.pk), action="removed").exists()


def test_a_removed_device_cannot_be_removed_or_renamed_again(customer):
    device, _key = register(customer)
    services.device_remove(device=device)
    for change in (lambda: services.device_remove(device=device), lambda: services.device_rename(device=device, name="New")):
        with pytest.raises(Conflict) as raised:
            change()
        assert raised.value.code == "device_removed"
    device.refresh_from_db()
    assert device.name == "Living room TV"


# --- pairing a TV -------------------------------------------------------------------------

def test_pairing_end_to_end_delivers_the_key_exactly_once(customer):
    with time_machine.travel(NOW, tick=False):
        pairing = services.pairing_start(screen="SMART_TV", suggested_name="Samsung TV")
    assert len(pairing.code) == 6 and set(pairing.code) <= set(services.PAIRING_ALPHABET)
    assert pairing.expires_at == NOW + timedelta(minutes=10)

    with time_machine.travel(NOW + timedelta(minutes=2), tick=False):
        assert services.pairing_collect(poll_token=pairing.poll_token) == ("pending", None)
        typed = f" {pairing.code[:3].lower()}-{pairing.code[3:].lower()} "
        device = services.pairing_claim(code=typed, account=customer)
        status, raw_key = services.pairing_collect(poll_token=pairing.poll_token)
        again = services.pairing_collect(poll_token=pairing.poll_token)

    assert (device.name, device.screen, device.account) == ("Samsung TV", "SMART_TV", customer)
    assert status == "paired" and device_credential_get_by_key(raw_key=raw_key) == device.credential
    assert again == ("paired", None)
    assert PairingCode.objects.get(pk=pairing.pk).delivered_key == ""


def test_the_customer_may_name_the_paired_tv(customer):
    pairing = services.pairing_start(screen="SMART_TV")
    assert services.pairing_claim(code=pairing.code, account=customer, name="Kitchen").name == "Kitchen"
    unnamed = services.pairing_start(screen="SET_TOP_BOX")
    assert services.pairing_claim(code=unnamed.code, account=customer).name == "Set-top box"


def test_an_expired_code_cannot_be_claimed_and_the_tv_is_told(customer):
    with time_machine.travel(NOW, tick=False):
        pairing = services.pairing_start(screen="SMART_TV")
    with time_machine.travel(NOW + timedelta(minutes=10), tick=False):
        with pytest.raises(ValidationFailed) as raised:
            services.pairing_claim(code=pairing.code, account=customer)
        assert services.pairing_collect(poll_token=pairing.poll_token) == ("expired", None)
    assert raised.value.code == "pairing_code_invalid" and raised.value.fields == {"code": ["Unknown or expired code."]}
    assert counts() == (0, 0)


@pytest.mark.parametrize("code", ["ABC", "ZZZZZZ", ""])
def test_a_wrong_code_is_refused(customer, code):
    services.pairing_start(screen="SMART_TV")
    with pytest.raises(ValidationFailed) as raised:
        services.pairing_claim(code=code, account=customer)
    assert raised.value.code == "pairing_code_invalid" and "code" in raised.value.fields
    assert counts() == (0, 0)


def test_a_code_is_claimed_once(customer, other_customer):
    pairing = services.pairing_start(screen="SMART_TV")
    services.pairing_claim(code=pairing.code, account=customer)
    with pytest.raises(ValidationFailed) as raised:
        services.pairing_claim(code=pairing.code, account=other_customer)
    assert raised.value.code == "pairing_code_used"
    assert Device.objects.filter(account=other_customer).count() == 0


def test_pairing_respects_the_device_limit_and_leaves_the_code_usable(customer, two_slots):
    register(customer, "TV")
    register(customer, "Phone", "MOBILE")
    pairing = services.pairing_start(screen="SMART_TV")
    with pytest.raises(Conflict) as raised:
        services.pairing_claim(code=pairing.code, account=customer)
    assert raised.value.code == "device_limit"
    assert services.pairing_collect(poll_token=pairing.poll_token) == ("pending", None)
    assert counts() == (2, 2)


def test_a_key_not_collected_in_time_is_erased(customer):
    with time_machine.travel(NOW, tick=False):
        pairing = services.pairing_start(screen="SMART_TV")
    with time_machine.travel(NOW + timedelta(minutes=9), tick=False):
        services.pairing_claim(code=pairing.code, account=customer)
    with time_machine.travel(NOW + timedelta(minutes=20), tick=False):
        assert services.pairing_collect(poll_token=pairing.poll_token) == ("expired", None)
    assert PairingCode.objects.get(pk=pairing.pk).delivered_key == ""


def test_a_device_removed_before_it_collected_its_key_never_gets_it(customer):
    pairing = services.pairing_start(screen="SMART_TV")
    device = services.pairing_claim(code=pairing.code, account=customer)
    services.device_remove(device=device)
    assert services.pairing_collect(poll_token=pairing.poll_token) == ("expired", None)


def test_an_unknown_poll_token_is_not_found():
    with pytest.raises(NotFound):
        services.pairing_collect(poll_token="not-a-token")


def test_pairing_needs_a_known_screen():
    with pytest.raises(ValidationFailed) as raised:
        services.pairing_start(screen="FRIDGE", suggested_name="x" * 101)
    assert set(raised.value.fields) == {"screen", "name"}
    assert not PairingCode.objects.exists()


def test_codes_use_an_unambiguous_alphabet():
    codes = {services.pairing_start(screen="SMART_TV").code for _ in range(40)}
    assert len(codes) == 40
    assert not set("".join(codes)) & set("0O1I")


def test_a_code_showing_on_another_tv_is_not_drawn_but_a_long_expired_one_is(monkeypatch):
    """Codes are unique while they can be claimed or collected; after that a code may be drawn again."""
    monkeypatch.setattr(services.secrets, "choice", lambda alphabet: "A")
    with time_machine.travel(NOW, tick=False):
        first = services.pairing_start(screen="SMART_TV")
        with pytest.raises(ApplicationError) as raised:
            services.pairing_start(screen="SMART_TV")
    assert raised.value.code == "pairing_busy"
    with time_machine.travel(NOW + timedelta(minutes=20), tick=False):
        second = services.pairing_start(screen="WEB")
    assert second.code == first.code == "AAAAAA"
    assert list(PairingCode.objects.values_list("screen", flat=True)) == ["WEB"]


def test_purging_removes_pairings_past_their_collection_deadline(customer):
    with time_machine.travel(NOW, tick=False):
        old = services.pairing_start(screen="SMART_TV")
        services.pairing_claim(code=old.code, account=customer)
    with time_machine.travel(NOW + timedelta(minutes=15), tick=False):
        fresh = services.pairing_start(screen="SMART_TV")
    assert services.pairing_codes_purge(now=NOW + timedelta(minutes=20)) == 1
    assert list(PairingCode.objects.values_list("pk", flat=True)) == [fresh.pk]
    assert Device.objects.filter(account=customer).count() == 1


def test_beat_purges_expired_pairing_codes():
    from django.conf import settings

    from subscriptions.tasks import pairing_codes_purge_task

    assert settings.CELERY_BEAT_SCHEDULE["purge-pairing-codes"]["task"] == pairing_codes_purge_task.name
