"""Portal endpoints for the customer's devices, TV pairing and entitlements (at /api/v1/)."""

from django.urls import path

from . import devices

urlpatterns = [
    path("devices/", devices.DeviceListView.as_view(), name="api-device-list"),
    path("devices/pair/", devices.DevicePairView.as_view(), name="api-device-pair"),
    path("devices/<int:pk>/", devices.DeviceDetailView.as_view(), name="api-device-detail"),
    path("entitlements/", devices.EntitlementListView.as_view(), name="api-entitlement-list"),
]
