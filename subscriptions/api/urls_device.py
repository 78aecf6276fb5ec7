"""The device API for entitlements, streams, viewing events and TV pairing (at /api/v1/device/)."""

from django.urls import path

from . import devices

urlpatterns = [
    path("entitlements/<int:title_id>/", devices.DeviceEntitlementView.as_view(), name="api-device-entitlement"),
    path("streams/", devices.StreamStartView.as_view(), name="api-device-stream-start"),
    path("streams/<int:pk>/heartbeat/", devices.StreamHeartbeatView.as_view(), name="api-device-stream-heartbeat"),
    path("streams/<int:pk>/stop/", devices.StreamStopView.as_view(), name="api-device-stream-stop"),
    path("viewing-events/", devices.ViewingEventsView.as_view(), name="api-device-viewing-events"),
    path("pairing/", devices.PairingStartView.as_view(), name="api-device-pairing-start"),
    path("pairing/<str:poll_token>/", devices.PairingPollView.as_view(), name="api-device-pairing-poll"),
]
