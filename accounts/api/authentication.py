"""How portal users and devices prove who they are.

Portal users send ``Authorization: Token <key>`` (DRF token, from the login endpoint; one
token per user, deleted at log-out). A token suits the portal's single-page app and mobile
apps alike; the browsable docs also accept a staff session.

Devices (decoders, TV apps) send ``Authorization: Device <key>``: a credential issued per
device and bound to one account, separate from any person's password, revocable on its own.
"""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.permissions import SAFE_METHODS

from core.choices import Channel

from .. import selectors, services


class PortalTokenAuthentication(authentication.TokenAuthentication):
    """DRF's ``Authorization: Token <key>``, with the user's portal identity (``portal_user``,
    or none for a staff integration's token) loaded in the same query: every portal request
    authenticates, and the portal permission reads it next. A GET or HEAD also loads the
    primary account the portal views act on. Hand-written (``core.sql``)."""

    def authenticate(self, request):
        self.read_only = request.method in SAFE_METHODS
        return super().authenticate(request)

    def authenticate_credentials(self, key):
        user = selectors.user_get_by_token(key=key, with_account=getattr(self, "read_only", False))
        if user is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        if not user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        return user, user.auth_token


class DevicePrincipal(AnonymousUser):
    """The 'user' of a device request: authenticated, but not a person."""

    def __init__(self, credential):
        super().__init__()
        self.credential = credential
        self.account = credential.account

    @property
    def is_authenticated(self) -> bool:  # type: ignore[override]
        return True

    @property
    def is_anonymous(self) -> bool:  # type: ignore[override]
        return False


class DeviceKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Device"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Send 'Authorization: Device <key>'.")
        raw_key = header[1].decode(errors="ignore")
        credential = selectors.device_credential_get_by_key(raw_key=raw_key)
        if credential is None:
            raise exceptions.AuthenticationFailed("Unknown or revoked device key.")
        services.device_credential_touch(credential=credential)
        request._request.device_credential = credential
        request.channel = Channel.DEVICE
        return DevicePrincipal(credential), credential

    def authenticate_header(self, request) -> str:
        return self.keyword


class DeviceKeyScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.api.authentication.DeviceKeyAuthentication"
    name = "deviceKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "A device key issued for one decoder or app: `Device <key>`.",
        }
