from django.urls import path

from . import views

urlpatterns = [
    path("titles/", views.TitleListView.as_view(), name="api-catalog-title-list"),
    path("titles/<int:pk>/", views.TitleDetailView.as_view(), name="api-catalog-title-detail"),
    path("packages/", views.PackageListView.as_view(), name="api-catalog-package-list"),
    path("rate-preview/", views.RatePreviewView.as_view(), name="api-catalog-rate-preview"),
]
