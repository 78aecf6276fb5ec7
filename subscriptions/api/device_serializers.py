"""Input and output shapes of the device, pairing, stream and entitlement endpoints.
No logic: the services in ``subscriptions.services.devices`` validate and write.

Fields named ``state`` and ``kind`` are plain strings here (their values are listed in
``help_text``): other models use the same names with other values, and one enum per name
keeps the OpenAPI schema unambiguous.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from catalogs.models import ContentTitle
from core.api.serializers import ModelSerializer, Serializer
from core.choices import Screen

from ..models import Device, StreamSession
from ..selectors import PACKAGE, RENTAL, slot_free_at
from ..services.devices import PAIRING_EXPIRED, PAIRING_PAIRED, PAIRING_PENDING, VIEWING_EVENTS_MAX

SOURCES = [(RENTAL, "A PPV rental"), (PACKAGE, "A package (termed service) holding the title")]


# --- entitlements -------------------------------------------------------------------------

class EntitlementSerializer(Serializer):
    entitled = serializers.BooleanField()
    reason = serializers.CharField(help_text='Why, for people: "rental until 2026-11-22 03:00 (Europe/Nicosia)", '
                                             '"package Sports Pack", "no rental or package includes Limitless".')
    source = serializers.ChoiceField(choices=SOURCES, allow_null=True)
    until = serializers.DateTimeField(allow_null=True, help_text="When a rental ends; null for a package.")


class EntitledTitleSerializer(EntitlementSerializer):
    title = serializers.IntegerField(source="title.pk")
    title_code = serializers.CharField(source="title.code")
    title_name = serializers.CharField(source="title.title")


class EntitlementQuerySerializer(serializers.Serializer):
    account = serializers.CharField(required=False, help_text="Account number; default: your first account.")


# --- devices (portal) ---------------------------------------------------------------------

class DeviceSerializer(ModelSerializer):
    state = serializers.CharField(read_only=True, help_text="ACTIVE, or REMOVED (its slot stays taken until slot_free_at).")
    last_seen_at = serializers.DateTimeField(source="credential.last_used_at", read_only=True, allow_null=True, default=None)
    slot_free_at = serializers.SerializerMethodField(help_text="For a removed device: when its slot is free again.")

    class Meta:
        model = Device
        fields = ["id", "name", "screen", "identifier", "state", "registered_at", "removed_at", "last_seen_at", "slot_free_at"]
        read_only_fields = fields

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_slot_free_at(self, device: Device) -> datetime | None:
        return slot_free_at(device)


class DeviceRegisterSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, help_text="What the customer calls it, e.g. \"Living room TV\".")
    screen = serializers.ChoiceField(choices=Screen.choices)
    identifier = serializers.CharField(max_length=100, required=False, allow_blank=True, default="",
                                       help_text="Serial number or app install id.")
    account = serializers.CharField(required=False, help_text="Account number; default: your first account.")


class DeviceRegisteredSerializer(DeviceSerializer):
    device_key = serializers.CharField(read_only=True, help_text="Send as 'Authorization: Device <key>'. Shown once, never again.")

    class Meta(DeviceSerializer.Meta):
        fields = [*DeviceSerializer.Meta.fields, "device_key"]
        read_only_fields = fields


class DeviceRenameSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)


class DevicePairSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=20, help_text="The code the TV shows (any case).")
    name = serializers.CharField(max_length=100, required=False, allow_blank=True,
                                 help_text="Default: the name the TV suggested, else its kind of screen.")
    account = serializers.CharField(required=False, help_text="Account number; default: your first account.")


# --- pairing (the TV's side) --------------------------------------------------------------

class PairingStartSerializer(serializers.Serializer):
    screen = serializers.ChoiceField(choices=Screen.choices, default=Screen.SMART_TV)
    name = serializers.CharField(max_length=100, required=False, allow_blank=True, default="",
                                 help_text="A name to suggest to the customer, e.g. \"Samsung TV\".")


class PairingCodeSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Show this on screen; the customer enters it in the portal.")
    poll_token = serializers.CharField(help_text="Secret: poll GET pairing/{poll_token}/ with it to collect the key.")
    expires_at = serializers.DateTimeField()


class PairingStatusSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=[(PAIRING_PENDING, "Waiting for the customer to enter the code"),
                                              (PAIRING_PAIRED, "Paired"),
                                              (PAIRING_EXPIRED, "Expired: start again")])
    device_key = serializers.CharField(required=False, help_text="Present once, on the first poll after pairing.")


# --- streams and viewing events -----------------------------------------------------------

class StreamStartSerializer(serializers.Serializer):
    title = serializers.PrimaryKeyRelatedField(queryset=ContentTitle.objects.filter(state=ContentTitle.State.PUBLISHED),
                                               help_text="The title's id.")


class StreamSessionSerializer(ModelSerializer):
    title_name = serializers.CharField(source="title.title", read_only=True)
    device_name = serializers.CharField(source="device.name", read_only=True)
    expires_at = serializers.SerializerMethodField(help_text="Send a heartbeat before this, or the stream stops counting as playing.")

    class Meta:
        model = StreamSession
        fields = ["id", "title", "title_name", "device", "device_name", "started_at", "last_heartbeat_at", "ended_at", "expires_at"]
        read_only_fields = fields

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_expires_at(self, session: StreamSession) -> datetime | None:
        if session.ended_at is not None:
            return None
        return session.last_heartbeat_at + timedelta(seconds=settings.STREAM_STALE_SECONDS)


class ViewingEventSerializer(serializers.Serializer):
    """Documents one event; the service validates the batch (errors as events.N.field)."""

    kind = serializers.CharField(help_text="START, PROGRESS or STOP.")
    title = serializers.IntegerField(help_text="The title's id.")
    position_seconds = serializers.IntegerField(min_value=0, default=0)
    occurred_at = serializers.DateTimeField(help_text="With its time zone; not in the future (a minute of clock skew is allowed).")


class ViewingEventBatchSerializer(serializers.Serializer):
    events = ViewingEventSerializer(many=True, help_text=f"1 to {VIEWING_EVENTS_MAX} events.")


class ViewingEventsRecordedSerializer(serializers.Serializer):
    recorded = serializers.IntegerField()
