"""Staff analytics endpoints (at /api/v1/analytics/)."""

from django.urls import path

from . import views

urlpatterns = [
    path("months/", views.MonthMetricsView.as_view(), name="api-analytics-months"),
    path("mrr-breakdown/", views.MrrBreakdownView.as_view(), name="api-analytics-mrr-breakdown"),
    path("cohorts/", views.CohortView.as_view(), name="api-analytics-cohorts"),
    path("customer-value/", views.CustomerValueView.as_view(), name="api-analytics-customer-value"),
    path("insights/", views.SubscriberInsightsView.as_view(), name="api-analytics-insights"),
    path("top-titles/", views.TopTitlesView.as_view(), name="api-analytics-top-titles"),
]
