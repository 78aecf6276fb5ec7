"""Every versioned API route, grouped by app. Each app owns its ``api/urls.py``.

The device routes come first: decoders call them most (an entitlement check before every
play), and Django tries the routes in order, so each include with an empty prefix before
them cost every device request a walk through its patterns. No other route starts with
``device/`` followed by one of theirs."""

from django.urls import include, path

urlpatterns = [
    path("device/", include("subscriptions.api.urls_device")),
    path("", include("accounts.api.urls")),
    path("catalog/", include("catalogs.api.urls")),
    path("", include("subscriptions.api.urls_orders")),
    path("", include("subscriptions.api.urls_portal")),
    path("", include("billing.api.urls")),
    path("", include("payments.api.urls")),
    path("analytics/", include("analytics.api.urls")),
    path("", include("analytics.api.urls_portal")),
]
