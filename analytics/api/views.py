"""The staff analytics API (read-only, at /api/v1/analytics/): the dashboard's figures for
staff holding ``analytics.view_analyticsdashboard`` (Marketing, Finance, Administrator).
Portal customers and devices are refused. Nothing here names an object by id in the path,
so there is no owner to scope: a customer's value is asked for by ``?account=`` number."""

from __future__ import annotations

from datetime import date

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import AccountsReceivable
from core.exceptions import NotFound, ValidationFailed

from .. import selectors
from ..filters import filters_parse
from ..services.mrr import month_end
from . import serializers

ERRORS = {
    400: OpenApiResponse(description="Invalid filters; see error.fields."),
    401: OpenApiResponse(description="Not authenticated."),
    403: OpenApiResponse(description="Staff with the analytics permission only."),
}
FILTERS = [
    OpenApiParameter("first", str, description="First month, YYYY-MM (default: 11 months before the last)."),
    OpenApiParameter("last", str, description="Last month, YYYY-MM (default: this month)."),
    OpenApiParameter("classification", str, description="Only customers of this classification (its name)."),
    OpenApiParameter("country", str, description="Only customers billed in this country (ISO code)."),
    OpenApiParameter("channel", str, description="Only customers activated through this channel."),
    OpenApiParameter("currency", str, description="The accounts' currency (default: the operator's first)."),
]
TAGS = ["analytics (staff)"]


class CanSeeAnalytics(BasePermission):
    message = "Analytics are for staff allowed to see the analytics dashboard."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.is_staff and user.has_perm("analytics.view_analyticsdashboard"))


class AnalyticsView(APIView):
    permission_classes = [CanSeeAnalytics]


class MonthMetricsView(AnalyticsView):
    @extend_schema(summary="MRR, its movements, revenue, ARPU and churn per month", tags=TAGS, parameters=FILTERS,
                   responses={200: serializers.MonthMetricsSerializer(many=True), **ERRORS})
    def get(self, request):
        filters = filters_parse(request.query_params)
        months = selectors.metrics_by_month(first=filters.first, last=filters.last, segment=filters.segment,
                                            currency=filters.currency)
        return Response(serializers.MonthMetricsSerializer(months, many=True).data)


class MrrBreakdownView(AnalyticsView):
    DIMENSIONS = ("plan", *selectors.SEGMENTS)

    @extend_schema(summary="MRR at a month's end by plan, classification, country or channel", tags=TAGS,
                   parameters=[OpenApiParameter("dimension", str, enum=DIMENSIONS, required=True),
                               OpenApiParameter("last", str, description="The month, YYYY-MM (default: this month)."),
                               OpenApiParameter("currency", str)],
                   responses={200: serializers.MrrBreakdownSerializer(many=True), **ERRORS})
    def get(self, request):
        dimension = request.query_params.get("dimension", "")
        if dimension not in self.DIMENSIONS:
            raise ValidationFailed("Choose a dimension.", fields={"dimension": [f"One of {', '.join(self.DIMENSIONS)}."]})
        filters = filters_parse(request.query_params)
        split = selectors.mrr_by(month=filters.last, dimension=dimension, currency=filters.currency)
        return Response(serializers.MrrBreakdownSerializer([{"key": k, "mrr": v} for k, v in split.items()], many=True).data)


class CohortView(AnalyticsView):
    @extend_schema(summary="Retention of customers by sign-up month", tags=TAGS, parameters=FILTERS,
                   responses={200: serializers.CohortSerializer(many=True), **ERRORS})
    def get(self, request):
        filters = filters_parse(request.query_params)
        table = selectors.cohort_retention(first=filters.first, last=filters.last, segment=filters.segment)
        return Response(serializers.CohortSerializer(table, many=True).data)


class CustomerValueView(AnalyticsView):
    @extend_schema(summary="A customer's lifetime revenue and predicted lifetime value", tags=TAGS,
                   parameters=[OpenApiParameter("account", str, required=True, description="The account number (AR…)."),
                               OpenApiParameter("last", str, description="As of this month's end (default: this month).")],
                   responses={200: serializers.CustomerValueSerializer, **ERRORS, 404: OpenApiResponse(description="No such account.")})
    def get(self, request):
        account = AccountsReceivable.objects.filter(number=request.query_params.get("account", "")).first()
        if account is None:
            raise NotFound("No account has this number.")
        filters = filters_parse(request.query_params)
        value = selectors.customer_value(account=account, as_of=month_end(filters.last))
        body = {"account": account.number, "lifetime_revenue": value.lifetime_revenue, "mrr": value.mrr,
                "churn_rate": value.churn_rate, "predicted_ltv": value.predicted_ltv}
        return Response(serializers.CustomerValueSerializer(body).data)


class SubscriberInsightsView(GenericAPIView):
    """One row per customer, a page at a time (``?page=``, ``?page_size=`` up to 100), in the
    order the accounts were opened (account id): each page computes its own customers' rows
    (``selectors.InsightPages``). The whole segment is the admin's CSV download."""

    permission_classes = [CanSeeAnalytics]
    serializer_class = serializers.SubscriberInsightSerializer

    @extend_schema(summary="Subscriber insights: usage, preferences, night-time PPV buyers, at-risk customers", tags=TAGS,
                   parameters=[*FILTERS, OpenApiParameter("kind", str, enum=selectors.INSIGHT_SEGMENTS, default="all")],
                   responses={200: serializers.SubscriberInsightSerializer(many=True), **ERRORS})
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: one row per customer account
            return AccountsReceivable.objects.none()
        kind = self.request.query_params.get("kind", "all")
        if kind not in selectors.INSIGHT_SEGMENTS:
            raise ValidationFailed("Choose a segment.", fields={"kind": [f"One of {', '.join(selectors.INSIGHT_SEGMENTS)}."]})
        filters = filters_parse(self.request.query_params)
        return selectors.InsightPages(first=filters.first, last=filters.last, segment=filters.segment, kind=kind)


class TopTitlesView(AnalyticsView):
    @extend_schema(summary="Top titles by views: viewers, hours watched, completion rate", tags=TAGS,
                   parameters=[OpenApiParameter("first", date, description="First day (default: 30 days ago)."),
                               OpenApiParameter("last", date, description="Last day (default: today)."),
                               OpenApiParameter("screen", str, description="Only this screen, e.g. SMART_TV.")],
                   responses={200: serializers.TitleViewingSerializer(many=True), **ERRORS})
    def get(self, request):
        errors, days = {}, {}
        for name, default in (("last", timezone.localdate()), ("first", None)):
            raw = request.query_params.get(name)
            try:
                days[name] = date.fromisoformat(raw) if raw else default
            except ValueError:
                errors[name] = ["A day as YYYY-MM-DD."]
        if errors:
            raise ValidationFailed("The filters are not valid.", fields=errors)
        first = days["first"] or date.fromordinal(days["last"].toordinal() - 29)
        rows = selectors.top_titles(first=first, last=days["last"], screen=request.query_params.get("screen", ""))
        return Response(serializers.TitleViewingSerializer(rows, many=True).data)


__all__ = ["CohortView", "CustomerValueView", "MonthMetricsView", "MrrBreakdownView", "SubscriberInsightsView", "TopTitlesView"]
