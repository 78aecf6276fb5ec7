from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from accounts.admin_login import admin_login
from core.api.errors import api_not_found
from core.views import healthz, metrics, readyz

admin.site.site_header = "OTT back office"
admin.site.site_title = "OTT back office"
admin.site.index_title = "Customers, catalogs, billing and payments"

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics, name="metrics"),
    path("admin/login/", admin_login, name="admin-login"),  # throttled; see docs/security.md
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/", include("config.api_urls")),
    path("api/", api_not_found),
    path("api/<path:rest>", api_not_found),
]

handler500 = "config.errors.server_error"  # JSON (503 for outages) under /api/
