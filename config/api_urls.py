"""Every versioned API route, grouped by app. Each app owns its ``api/urls.py``."""

from django.urls import include, path

urlpatterns = [
    path("", include("accounts.api.urls")),
    path("catalog/", include("catalogs.api.urls")),
    path("", include("subscriptions.api.urls_orders")),
    path("", include("subscriptions.api.urls_portal")),
    path("device/", include("subscriptions.api.urls_device")),
    path("", include("billing.api.urls")),
    path("", include("payments.api.urls")),
    path("analytics/", include("analytics.api.urls")),
    path("", include("analytics.api.urls_portal")),
]
