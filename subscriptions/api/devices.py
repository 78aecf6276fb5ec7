"""Entitlements, devices, TV pairing, stream sessions and viewing events over the API.

Two audiences:

- the **device API** (``/api/v1/device/``, ``Authorization: Device <key>``): may I play
  this title, start / heartbeat / stop a stream, report viewing events; and, without any
  key, a TV asking for a pairing code and polling for its key;
- the **portal** (``/api/v1/``, the customer's token): my devices (register, rename,
  remove), pair a TV by its code, my entitlements.

Thin: parse, call a service or selector, render. Every rule lives in
``subscriptions.services.devices`` and ``subscriptions.selectors``.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from accounts.api.authentication import DeviceKeyAuthentication
from accounts.api.permissions import IsDevice, IsPortalUser
from accounts.models import AccountsReceivable
from accounts.selectors import account_get_for_user, account_primary_for_user
from catalogs.models import ContentTitle
from catalogs.selectors import title_for_order
from core.api.idempotency import idempotent
from core.api.scoping import OwnedObjectMixin, SharedObjectMixin
from core.choices import Channel
from core.exceptions import NotFound, PermissionDenied

from ..models import Device, StreamSession
from ..selectors import device_list_for_user, entitlement_check, entitlement_list
from ..services import devices as services
from . import device_serializers as serializers

ERRORS = {
    400: OpenApiResponse(description="Invalid input; see error.fields."),
    401: OpenApiResponse(description="Not authenticated, or an unknown or revoked device key."),
    403: OpenApiResponse(description="Refused (e.g. not_entitled, or a key that belongs to no registered device)."),
    404: OpenApiResponse(description="Not found (or not yours)."),
    409: OpenApiResponse(description="Refused by a limit or a state: device_limit, stream_limit, stream_expired, device_removed."),
    429: OpenApiResponse(description="Too many requests; retry later."),
}
DEVICE_TAGS, PORTAL_TAGS, ENTITLEMENT_TAGS = ["device"], ["devices"], ["entitlements"]


def _my_account(request, number: str | None = None) -> AccountsReceivable:
    """The portal caller's account: the one named, else the first one opened (at sign-up)."""
    if number:
        return account_get_for_user(user=request.user, number=number)
    account = account_primary_for_user(user=request.user)
    if account is None:
        raise NotFound("This login has no account.")
    return account


def _calling_device(request) -> Device:
    """The registered device whose key made this request (a removed device's key is revoked)."""
    device = Device.objects.filter(credential=request.user.credential).first()
    if device is None:
        raise PermissionDenied("This key belongs to no registered device; register the device in the portal first.",
                               code="not_a_device")
    return device


class DeviceApiView(APIView):
    authentication_classes = [DeviceKeyAuthentication]
    permission_classes = [IsDevice]


class PairingStartThrottle(SimpleRateThrottle):
    """Anyone may ask for a pairing code, so a client address may ask only so often."""

    scope = "pairing_start"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class PairingClaimThrottle(SimpleRateThrottle):
    """Limits guessing other people's codes from one login."""

    scope = "pairing_claim"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}


# --- device API ---------------------------------------------------------------------------

class DeviceEntitlementView(SharedObjectMixin, DeviceApiView, GenericAPIView):
    """May this device play the title now? The path names a catalog title, which is the
    same for every customer (hence shared, not owned); the answer is about the calling
    device's own account and screen. Titles outside the published catalog are not found."""

    serializer_class = serializers.EntitlementSerializer
    lookup_url_kwarg = "title_id"

    def get_queryset(self):
        return ContentTitle.objects.filter(state=ContentTitle.State.PUBLISHED).only("pk", "title")

    @extend_schema(responses={200: serializers.EntitlementSerializer, 401: ERRORS[401], 404: ERRORS[404]},
                   summary="May this device play a title now, and why", tags=DEVICE_TAGS)
    def get(self, request, title_id: int):
        # The title from the titles every process remembers (``get_queryset``'s rule:
        # PUBLISHED only), the device with the key that authenticated: one query is left.
        title = title_for_order(pk=title_id)
        if title is None or title.state != ContentTitle.State.PUBLISHED:
            raise NotFound("No such title.")
        device = getattr(request.user.credential, "device", None)
        answer = entitlement_check(account=request.user.account, title=title, screen=device.screen if device else None)
        return Response(serializers.EntitlementSerializer(answer).data)


class StreamStartView(DeviceApiView, GenericAPIView):
    serializer_class = serializers.StreamSessionSerializer

    @extend_schema(request=serializers.StreamStartSerializer,
                   responses={201: serializers.StreamSessionSerializer, **{code: ERRORS[code] for code in (400, 401, 403, 409)}},
                   summary="Start playing a title (checks entitlement and the concurrent-stream limit)", tags=DEVICE_TAGS)
    @idempotent
    def post(self, request):
        payload = serializers.StreamStartSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        session = services.stream_start(device=_calling_device(request), title=payload.validated_data["title"])
        return Response(serializers.StreamSessionSerializer(session).data, status=status.HTTP_201_CREATED)


class StreamSessionView(OwnedObjectMixin, DeviceApiView, GenericAPIView):
    """A stream of the caller's account: any of its devices may stop it (the stream-limit
    error tells the viewer to stop one elsewhere), not another account's."""

    serializer_class = serializers.StreamSessionSerializer
    owned_model = StreamSession
    owner_account_lookup = "account"


class StreamHeartbeatView(StreamSessionView):
    @extend_schema(request=None,
                   responses={200: serializers.StreamSessionSerializer, **{code: ERRORS[code] for code in (401, 404, 409)}},
                   summary="Keep a stream counted as playing (send before expires_at)", tags=DEVICE_TAGS)
    def post(self, request, pk: int):
        session = services.stream_heartbeat(session=self.get_object())
        return Response(serializers.StreamSessionSerializer(session).data)


class StreamStopView(StreamSessionView):
    @extend_schema(request=None, responses={200: serializers.StreamSessionSerializer, 401: ERRORS[401], 404: ERRORS[404]},
                   summary="Stop a stream (frees its place at once)", tags=DEVICE_TAGS)
    def post(self, request, pk: int):
        session = services.stream_stop(session=self.get_object())
        return Response(serializers.StreamSessionSerializer(session).data)


class ViewingEventsView(DeviceApiView):
    @extend_schema(request=serializers.ViewingEventBatchSerializer,
                   responses={202: serializers.ViewingEventsRecordedSerializer, **{code: ERRORS[code] for code in (400, 401, 403)}},
                   summary="Report play start / progress / stop events (a batch: all recorded, or none)", tags=DEVICE_TAGS)
    @idempotent
    def post(self, request):
        events = request.data.get("events") if hasattr(request.data, "get") else None
        recorded = services.viewing_events_record(device=_calling_device(request), events=events)
        return Response({"recorded": recorded}, status=status.HTTP_202_ACCEPTED)


class PairingStartView(APIView):
    """A TV that has no key yet asks for a code to show; no authentication."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [PairingStartThrottle]

    @extend_schema(request=serializers.PairingStartSerializer,
                   responses={201: serializers.PairingCodeSerializer, 400: ERRORS[400], 429: ERRORS[429]},
                   summary="A TV asks for a pairing code to show on screen (no key needed)", tags=DEVICE_TAGS)
    @idempotent
    def post(self, request):
        payload = serializers.PairingStartSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        pairing = services.pairing_start(screen=payload.validated_data["screen"], suggested_name=payload.validated_data["name"])
        body = serializers.PairingCodeSerializer(pairing).data
        response = Response(body, status=status.HTTP_201_CREATED)
        response["Cache-Control"] = "no-store"
        return response


class PairingPollView(SharedObjectMixin, APIView):
    """The TV polls for its key with the poll token it was given.

    Shared rather than owned: there is no owner to check, because the caller has no
    identity yet — the poll token (43 random URL-safe characters, known only to the TV
    that started the pairing) is the credential. Without it the path reveals nothing (an
    unknown token is a plain 404), and it is GET only. The one side effect is intended:
    the first poll after the customer entered the code hands over the device key and
    erases it, so the key is delivered exactly once.
    """

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(responses={200: serializers.PairingStatusSerializer, 404: ERRORS[404]},
                   summary="A TV polls for its pairing: pending, expired, or paired with its key (once)", tags=DEVICE_TAGS)
    def get(self, request, poll_token: str):
        pairing_status, raw_key = services.pairing_collect(poll_token=poll_token)
        body = {"status": pairing_status, **({"device_key": raw_key} if raw_key else {})}
        response = Response(body)
        response["Cache-Control"] = "no-store"
        return response


# --- portal -------------------------------------------------------------------------------

class DeviceListView(GenericAPIView):
    permission_classes = [IsPortalUser]
    serializer_class = serializers.DeviceSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Device.objects.none()
        return device_list_for_user(user=self.request.user)

    @extend_schema(responses={200: serializers.DeviceSerializer(many=True), 401: ERRORS[401]},
                   summary="My devices (and removed ones whose slot is still taken)", tags=PORTAL_TAGS, operation_id="devices_list")
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(request=serializers.DeviceRegisterSerializer,
                   responses={201: serializers.DeviceRegisteredSerializer, **{code: ERRORS[code] for code in (400, 401, 404, 409)}},
                   summary="Register a device (its key is shown once)", tags=PORTAL_TAGS)
    @idempotent
    def post(self, request):
        payload = serializers.DeviceRegisterSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        device, raw_key = services.device_register(
            account=_my_account(request, data.get("account")), name=data["name"], screen=data["screen"],
            identifier=data["identifier"], performed_by=request.user, channel=Channel.PORTAL,
        )
        device.device_key = raw_key
        return Response(serializers.DeviceRegisteredSerializer(device).data, status=status.HTTP_201_CREATED)


class DeviceDetailView(OwnedObjectMixin, GenericAPIView):
    permission_classes = [IsPortalUser]
    serializer_class = serializers.DeviceSerializer
    owned_model = Device
    owner_user_lookup = "account__contact__portal_user__user"

    def get_queryset(self):
        return super().get_queryset().select_related("credential")

    @extend_schema(responses={200: serializers.DeviceSerializer, 404: ERRORS[404]}, summary="One of my devices", tags=PORTAL_TAGS)
    def get(self, request, pk: int):
        return Response(self.get_serializer(self.get_object()).data)

    @extend_schema(request=serializers.DeviceRenameSerializer,
                   responses={200: serializers.DeviceSerializer, **{code: ERRORS[code] for code in (400, 404, 409)}},
                   summary="Rename a device", tags=PORTAL_TAGS)
    def patch(self, request, pk: int):
        device = self.get_object()
        payload = serializers.DeviceRenameSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        device = services.device_rename(device=device, name=payload.validated_data["name"], performed_by=request.user,
                                        channel=Channel.PORTAL)
        return Response(self.get_serializer(device).data)

    @extend_schema(responses={204: None, 404: ERRORS[404], 409: ERRORS[409]},
                   summary="Remove a device (its key stops working; its slot frees after the cooldown)", tags=PORTAL_TAGS)
    def delete(self, request, pk: int):
        services.device_remove(device=self.get_object(), performed_by=request.user, channel=Channel.PORTAL)
        return Response(status=status.HTTP_204_NO_CONTENT)


class DevicePairView(GenericAPIView):
    permission_classes = [IsPortalUser]
    serializer_class = serializers.DeviceSerializer
    throttle_classes = [PairingClaimThrottle]

    @extend_schema(request=serializers.DevicePairSerializer,
                   responses={201: serializers.DeviceSerializer, **{code: ERRORS[code] for code in (400, 401, 404, 409, 429)}},
                   summary="Pair a TV by the code it shows", tags=PORTAL_TAGS)
    @idempotent
    def post(self, request):
        payload = serializers.DevicePairSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        device = services.pairing_claim(code=data["code"], account=_my_account(request, data.get("account")), name=data.get("name"),
                                        performed_by=request.user, channel=Channel.PORTAL)
        return Response(serializers.DeviceSerializer(device).data, status=status.HTTP_201_CREATED)


class EntitlementListView(GenericAPIView):
    permission_classes = [IsPortalUser]
    serializer_class = serializers.EntitledTitleSerializer
    filter_backends: list = []

    @extend_schema(parameters=[serializers.EntitlementQuerySerializer],
                   responses={200: serializers.EntitledTitleSerializer(many=True), 401: ERRORS[401], 404: ERRORS[404]},
                   summary="What I may watch now, and why", tags=ENTITLEMENT_TAGS, operation_id="entitlements_list")
    def get(self, request):
        query = serializers.EntitlementQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        entitlements = entitlement_list(account=_my_account(request, query.validated_data.get("account")))
        page = self.paginate_queryset(entitlements)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)
