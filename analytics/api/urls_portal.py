"""Portal analytics endpoints (at /api/v1/): the caller's recommendations."""

from django.urls import path

from . import recommendations

urlpatterns = [
    path("recommendations/", recommendations.RecommendationListView.as_view(), name="api-recommendation-list"),
]
