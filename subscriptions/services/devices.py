"""Devices, TV pairing, stream sessions and viewing events.

Every change that counts an account's devices or streams — registering, removing,
starting a stream — first locks the account row (``select_for_update`` on
AccountsReceivable). Two requests racing for the last device slot or the last stream
therefore queue, and the second one counts what the first one took.

A device's key is an ``accounts`` DeviceCredential: registering issues one (the raw key is
shown once), removing revokes it, so a removed device cannot call the device API at all.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, models, transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.models import AccountsReceivable, DeviceCredential
from accounts.services import device_credential_issue, device_credential_revoke
from catalogs.models import ContentTitle
from core.choices import Channel, Screen
from core.exceptions import ApplicationError, Conflict, NotFound, PermissionDenied, ValidationFailed
from core.services import audit_record

from ..models import Device, PairingCode, StreamSession, ViewingEvent
from ..selectors import (
    device_slots_get,
    entitlement_check,
    moment_text,
    stream_limit_get,
    stream_sessions_active,
    stream_stale_before,
)

PAIRING_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read off a TV, typed on a phone
PAIRING_CODE_LENGTH = 6
VIEWING_EVENTS_MAX = 500
CLOCK_SKEW = timedelta(minutes=1)
POSITION_MAX = 2_147_483_647  # PositiveIntegerField


def _account_lock(account_pk: int) -> AccountsReceivable:
    return AccountsReceivable.objects.select_for_update().get(pk=account_pk)


def _device_errors(device: Device, *, fields: list[str]) -> dict[str, list[str]]:
    """Model field rules (length, choices, required) for ``fields`` only."""
    exclude = [field.name for field in Device._meta.fields if field.name not in fields]
    try:
        device.full_clean(exclude=exclude, validate_unique=False, validate_constraints=False)
    except DjangoValidationError as error:
        return {name: list(messages) for name, messages in error.message_dict.items()}
    return {}


def _sentence(reason: str) -> str:
    return f"{reason[:1].upper()}{reason[1:]}."


# --- devices ------------------------------------------------------------------------------

def _slot_refusal(account: AccountsReceivable, at: datetime) -> None:
    slots = device_slots_get(account=account, at=at)
    if slots.used < slots.limit:
        return
    if slots.next_free_at is not None:
        message = (f"All {slots.limit} device slots are in use ({slots.active} devices, {slots.cooling_down} removed in the "
                   f"last {settings.DEVICE_SLOT_COOLDOWN_HOURS} hours); the next slot frees up at {moment_text(slots.next_free_at)}.")
    else:
        message = (f"All {slots.limit} device slots are in use; remove a device to free its slot "
                   f"{settings.DEVICE_SLOT_COOLDOWN_HOURS} hours later.")
    raise Conflict(message, code="device_limit")


def device_register(
    *, account: AccountsReceivable, name: str, screen: str, identifier: str = "", performed_by=None,
    channel: str = Channel.CALL_CENTER,
) -> tuple[Device, str]:
    """Register a device for an ACTIVE account within its device limit and issue its key.
    Returns the device and the raw key, which is shown once and never stored."""
    device = Device(name=(name or "").strip(), screen=screen, identifier=(identifier or "").strip())
    errors = _device_errors(device, fields=["name", "screen", "identifier"])
    if errors:
        raise ValidationFailed("The device could not be registered.", fields=errors)
    with transaction.atomic():
        locked = _account_lock(account.pk)
        if locked.state != AccountsReceivable.State.ACTIVE:
            raise ApplicationError(f"The account {locked.number} is {locked.state}; devices are registered for ACTIVE accounts.",
                                   code="account_not_active")
        now = timezone.now()
        _slot_refusal(locked, now)
        credential, raw_key = device_credential_issue(account=locked, label=device.name, performed_by=performed_by, channel=channel)
        device.account, device.credential = locked, credential
        device.save()
        audit_record(target=device, action="registered", performed_by=performed_by, channel=channel,
                     changes={"name": [None, device.name], "screen": [None, device.screen], "identifier": [None, device.identifier]})
    return device, raw_key


def _device_lock(device: Device) -> Device:
    return Device.objects.select_for_update(of=("self",)).select_related("credential").get(pk=device.pk)


def _refuse_removed(device: Device) -> None:
    if device.state == Device.State.REMOVED:
        raise Conflict(f"{device.name} was removed from the account.", code="device_removed")


def device_rename(*, device: Device, name: str, performed_by=None, channel: str = Channel.CALL_CENTER) -> Device:
    with transaction.atomic():
        locked = _device_lock(device)
        _refuse_removed(locked)
        before = locked.name
        locked.name = (name or "").strip()
        errors = _device_errors(locked, fields=["name"])
        if errors:
            raise ValidationFailed("The device could not be renamed.", fields=errors)
        if locked.name != before:
            locked.save(update_fields=["name"])
            if locked.credential_id:  # staff see the key under the device's name
                DeviceCredential.objects.filter(pk=locked.credential_id).update(label=locked.name)
            audit_record(target=locked, action="renamed", changes={"name": [before, locked.name]},
                         performed_by=performed_by, channel=channel)
    return locked


def device_remove(*, device: Device, performed_by=None, channel: str = Channel.CALL_CENTER) -> Device:
    """REMOVED now: its key is revoked, its streams end, and its slot stays taken for
    DEVICE_SLOT_COOLDOWN_HOURS (so a slot cannot be passed around between households)."""
    with transaction.atomic():
        _account_lock(device.account_id)
        locked = _device_lock(device)
        _refuse_removed(locked)
        now = timezone.now()
        locked.state, locked.removed_at = Device.State.REMOVED, now
        locked.save(update_fields=["state", "removed_at"])
        if locked.credential is not None:
            device_credential_revoke(credential=locked.credential, performed_by=performed_by, channel=channel)
        StreamSession.objects.filter(device=locked, ended_at__isnull=True).update(ended_at=now)
        PairingCode.objects.filter(device=locked).exclude(delivered_key="").update(delivered_key="")
        audit_record(target=locked, action="removed", changes={"state": [Device.State.ACTIVE, Device.State.REMOVED]},
                     performed_by=performed_by, channel=channel)
    return locked


# --- pairing a TV by a code shown on its screen -----------------------------------------------

def _pairing_minutes() -> timedelta:
    return timedelta(minutes=settings.PAIRING_CODE_MINUTES)


def _collect_deadline(pairing: PairingCode) -> datetime:
    """A code claimed just before it expires still leaves the TV a full period to collect."""
    return pairing.expires_at + _pairing_minutes()


def pairing_start(*, screen: str, suggested_name: str = "") -> PairingCode:
    """A TV asks to be paired (anonymously): a short code to show on screen, and a secret
    poll token to collect its key with once the customer has entered the code."""
    suggested_name = (suggested_name or "").strip()
    errors: dict[str, list[str]] = {}
    if screen not in Screen.values:
        errors["screen"] = [f"Choose one of {', '.join(Screen.values)}."]
    if len(suggested_name) > 100:
        errors["name"] = ["At most 100 characters."]
    if errors:
        raise ValidationFailed("The pairing could not start.", fields=errors)
    now = timezone.now()
    for _attempt in range(10):
        code = "".join(secrets.choice(PAIRING_ALPHABET) for _ in range(PAIRING_CODE_LENGTH))
        try:
            with transaction.atomic():
                # Codes are unique in the table; one that is past its collection deadline is reused.
                PairingCode.objects.filter(code=code, expires_at__lte=now - _pairing_minutes()).delete()
                return PairingCode.objects.create(code=code, poll_token=secrets.token_urlsafe(32), screen=screen,
                                                  suggested_name=suggested_name, expires_at=now + _pairing_minutes())
        except IntegrityError:
            continue  # the code is showing on another TV right now; draw again
    raise ApplicationError("No pairing code is free right now; try again in a moment.", code="pairing_busy")


def _pairing_code_normalize(code: Any) -> str:
    """What the customer typed, as stored: any case, spaces and dashes ignored."""
    return "".join(character for character in str(code or "").upper() if character.isalnum())


def pairing_claim(
    *, code: str, account: AccountsReceivable, name: str | None = None, performed_by=None, channel: str = Channel.PORTAL,
) -> Device:
    """The customer enters the TV's code in the portal: the TV becomes one of their devices
    (the device limit applies) and its key waits for the TV to collect it, once."""
    normalized = _pairing_code_normalize(code)
    if len(normalized) != PAIRING_CODE_LENGTH:
        raise ValidationFailed("Enter the 6-character code shown on the TV.", code="pairing_code_invalid",
                               fields={"code": [f"The code has {PAIRING_CODE_LENGTH} letters and digits."]})
    with transaction.atomic():
        pairing = PairingCode.objects.select_for_update().filter(code=normalized).first()
        if pairing is None or pairing.expires_at <= timezone.now():
            raise ValidationFailed("This code is unknown or has expired; ask the TV for a new one.", code="pairing_code_invalid",
                                   fields={"code": ["Unknown or expired code."]})
        if pairing.device_id is not None:
            raise ValidationFailed("This code has already been used; ask the TV for a new one.", code="pairing_code_used",
                                   fields={"code": ["Already used."]})
        device, raw_key = device_register(
            account=account, name=(name or "").strip() or pairing.suggested_name or Screen(pairing.screen).label,
            screen=pairing.screen, performed_by=performed_by, channel=channel,
        )
        pairing.device, pairing.delivered_key = device, raw_key
        pairing.save(update_fields=["device", "delivered_key"])
    return device


PAIRING_PENDING, PAIRING_EXPIRED, PAIRING_PAIRED = "pending", "expired", "paired"


def pairing_collect(*, poll_token: str) -> tuple[str, str | None]:
    """The TV polls with its token: ("pending", None) until the code is claimed,
    ("expired", None) when it never was (or the key was not collected in time), and
    ("paired", key) exactly once — the key is erased as it is handed over; later polls
    get ("paired", None)."""
    with transaction.atomic():
        pairing = (PairingCode.objects.select_for_update(of=("self",)).select_related("device")
                   .filter(poll_token=poll_token or "").first())
        if pairing is None:
            raise NotFound("No such pairing.")
        now = timezone.now()
        if pairing.device is None:
            return (PAIRING_EXPIRED if pairing.expires_at <= now else PAIRING_PENDING), None
        if not pairing.delivered_key:
            return (PAIRING_EXPIRED if pairing.device.state == Device.State.REMOVED else PAIRING_PAIRED), None
        raw_key, pairing.delivered_key = pairing.delivered_key, ""
        pairing.save(update_fields=["delivered_key"])
        if now >= _collect_deadline(pairing) or pairing.device.state != Device.State.ACTIVE:
            return PAIRING_EXPIRED, None
        return PAIRING_PAIRED, raw_key


def pairing_codes_purge(*, now: datetime | None = None) -> int:
    """Delete pairings past their collection deadline (with any key never collected);
    returns how many. For a periodic task."""
    deleted, _ = PairingCode.objects.filter(expires_at__lte=(now or timezone.now()) - _pairing_minutes()).delete()
    return deleted


# --- stream sessions ----------------------------------------------------------------------

def _names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _stream_limit_message(playing: list[StreamSession], limit: int) -> str:
    if not playing:
        return f"This account may play {limit} streams at once; none can start."
    on = _names([session.device.name for session in playing])
    if len(playing) == 1:
        return f"1 stream is already playing, on {on}; stop it to watch here."
    return f"{len(playing)} streams are already playing, on {on}; stop one to watch here."


def stream_start(*, device: Device, title: ContentTitle, at: datetime | None = None) -> StreamSession:
    """Start playing ``title`` on ``device``: the account must be entitled (on the device's
    screen) and under its concurrent-stream limit. A device plays one thing at a time, so
    its own open session ends here; stale sessions of the account are closed as they are
    found (at their last heartbeat)."""
    explicit_time = at is not None
    at = at or timezone.now()
    with transaction.atomic():
        account = _account_lock(device.account_id)
        device = Device.objects.get(pk=device.pk)
        _refuse_removed(device)
        entitlement = entitlement_check(account=account, title=title, at=at, screen=device.screen)
        if not entitlement.entitled:
            raise PermissionDenied(_sentence(entitlement.reason), code="not_entitled")
        stale_before = stream_stale_before(at)
        (StreamSession.objects.filter(account=account, ended_at__isnull=True)
         .filter(Q(last_heartbeat_at__lte=stale_before) | Q(device=device))
         .update(ended_at=Case(When(last_heartbeat_at__lte=stale_before, then=F("last_heartbeat_at")),
                               default=Value(at, output_field=models.DateTimeField()))))
        playing = list(stream_sessions_active(account=account, at=at).select_related("device").order_by("started_at", "pk"))
        limit = stream_limit_get(account=account)
        if len(playing) >= limit:
            raise Conflict(_stream_limit_message(playing, limit), code="stream_limit")
        session = StreamSession.objects.create(account=account, device=device, title=title, last_heartbeat_at=at)
        if explicit_time:  # started_at is auto_now_add; keep the caller's clock
            StreamSession.objects.filter(pk=session.pk).update(started_at=at)
            session.started_at = at
    return session


def _session_lock(session: StreamSession) -> StreamSession:
    return StreamSession.objects.select_for_update(of=("self",)).select_related("device", "title").get(pk=session.pk)


def stream_heartbeat(*, session: StreamSession, at: datetime | None = None) -> StreamSession:
    """The player is still playing: keep the session counted. A stopped or stale session
    cannot be revived (its place may have been taken): the player starts a new one."""
    at = at or timezone.now()
    with transaction.atomic():
        locked = _session_lock(session)
        if locked.ended_at is not None:
            raise Conflict("This stream has ended; start it again to keep watching.", code="stream_expired")
        if locked.last_heartbeat_at <= stream_stale_before(at):
            raise Conflict(f"This stream sent no heartbeat for more than {settings.STREAM_STALE_SECONDS} seconds and has "
                           "expired; start it again to keep watching.", code="stream_expired")
        locked.last_heartbeat_at = at
        locked.save(update_fields=["last_heartbeat_at"])
    return locked


def stream_stop(*, session: StreamSession, at: datetime | None = None) -> StreamSession:
    """Stop a stream (from its own device or another of the account's, to free its place).
    Stopping one already stopped changes nothing; a stale one ended at its last heartbeat."""
    at = at or timezone.now()
    with transaction.atomic():
        locked = _session_lock(session)
        if locked.ended_at is None:
            stale = locked.last_heartbeat_at <= stream_stale_before(at)
            locked.ended_at = locked.last_heartbeat_at if stale else at
            locked.save(update_fields=["ended_at"])
    return locked


# --- viewing events -----------------------------------------------------------------------

def _whole_number(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _moment_parse(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return parse_datetime(value.strip())
        except ValueError:
            return None
    return None


def _viewing_event_parse(event: Any, index: int, now: datetime, errors: dict[str, list[str]]) -> dict[str, Any] | None:
    """One event's fields, or None with its problems added to ``errors`` as events.N.field."""
    prefix = f"events.{index}"
    if not isinstance(event, dict):
        errors[prefix] = ["Each event is an object with kind, title, position_seconds and occurred_at."]
        return None
    problems: dict[str, str] = {}
    kind = str(event.get("kind") or "").upper()
    if kind not in ViewingEvent.Kind.values:
        problems["kind"] = f"Choose one of {', '.join(ViewingEvent.Kind.values)}."
    title_id = _whole_number(event.get("title"))
    if title_id is None:
        problems["title"] = "Give the title's id."
    position = _whole_number(event.get("position_seconds", 0))
    if position is None or not 0 <= position <= POSITION_MAX:
        problems["position_seconds"] = "A whole number of seconds, 0 or more."
    occurred_at = _moment_parse(event.get("occurred_at"))
    if occurred_at is None:
        problems["occurred_at"] = "A date and time in ISO 8601, e.g. 2026-11-20T21:00:00+02:00."
    elif timezone.is_naive(occurred_at):
        problems["occurred_at"] = "Give the time zone (an offset such as +02:00 or Z)."
    elif occurred_at > now + CLOCK_SKEW:
        problems["occurred_at"] = "This is in the future; check the device's clock."
    for field, message in problems.items():
        errors[f"{prefix}.{field}"] = [message]
    if problems:
        return None
    return {"kind": kind, "title_id": title_id, "position_seconds": position, "occurred_at": occurred_at}


def viewing_events_record(*, device: Device, events: list[dict]) -> int:
    """Record a batch of play start / progress / stop events from ``device``: all of them
    with one INSERT, or none when any is invalid (every problem reported, per
    ``events.N.field``). At most VIEWING_EVENTS_MAX per call. Returns how many."""
    if not isinstance(events, list) or not events:
        raise ValidationFailed("Send the viewing events as a list.", fields={"events": ["Send 1 to 500 events."]})
    if len(events) > VIEWING_EVENTS_MAX:
        raise ValidationFailed(f"At most {VIEWING_EVENTS_MAX} events per call; this batch has {len(events)}.",
                               fields={"events": [f"At most {VIEWING_EVENTS_MAX} events."]})
    _refuse_removed(device)
    now = timezone.now()
    errors: dict[str, list[str]] = {}
    parsed = [_viewing_event_parse(event, index, now, errors) for index, event in enumerate(events)]
    wanted = {row["title_id"] for row in parsed if row is not None}
    known = set(ContentTitle.objects.filter(pk__in=wanted).values_list("pk", flat=True)) if wanted else set()
    for index, row in enumerate(parsed):
        if row is not None and row["title_id"] not in known:
            errors[f"events.{index}.title"] = ["No such title."]
    if errors:
        bad = len({key.split(".")[1] for key in errors})
        raise ValidationFailed(f"{bad} of {len(events)} events are not valid; none were recorded.",
                               fields=dict(sorted(errors.items(), key=lambda item: int(item[0].split(".")[1]))))
    ViewingEvent.objects.bulk_create([ViewingEvent(account_id=device.account_id, device=device, **row) for row in parsed])
    return len(parsed)


__all__ = [
    "PAIRING_EXPIRED", "PAIRING_PAIRED", "PAIRING_PENDING", "device_register", "device_remove", "device_rename",
    "pairing_claim", "pairing_codes_purge", "pairing_collect", "pairing_start", "stream_heartbeat",
    "stream_start", "stream_stop", "viewing_events_record",
]
