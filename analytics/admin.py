"""The analytics dashboard in the admin: MRR, its movements, revenue, churn, cohorts,
MRR by plan and top titles, with period and segment filters and a CSV export. It reads
only the rollup tables (analytics/selectors.py), so it stays fast however many UDRs and
viewing events there are. Marketing, Finance and the Administrator see it."""

from __future__ import annotations

import csv

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.urls import path

from core.admin import ReportPageAdmin
from core.exceptions import ValidationFailed

from . import selectors
from .charts import Series, bar_chart
from .filters import Filters, filters_parse
from .models import AnalyticsDashboard
from .services.mrr import month_end

CSV_COLUMNS = ["month", "mrr", "new", "expansion", "contraction", "churned", "reactivation", "net_new_mrr", "customers",
               "new_customers", "churned_customers", "arpu", "logo_churn", "revenue_churn", "recurring_revenue",
               "ppv_revenue", "one_time_revenue", "total_revenue", "ppv_orders"]


INSIGHT_COLUMNS = ["account", "classification", "orders", "night_orders", "views", "hours", "top_genre", "top_screen",
                   "top_daypart", "night_ppv_buyer", "at_risk"]


def _charts(months) -> list:
    labels = [f"{m.month:%b %y}" for m in months]
    return [
        bar_chart(title="MRR at month end", labels=labels, series=[Series("MRR", "#447e9b", [m.mrr for m in months])]),
        bar_chart(title="MRR movements", labels=labels, series=[
            Series("New", "#2e7d32", [m.new for m in months]),
            Series("Expansion", "#66bb6a", [m.expansion for m in months]),
            Series("Reactivation", "#9ccc65", [m.reactivation for m in months]),
            Series("Contraction", "#ffa726", [-m.contraction for m in months]),
            Series("Churned", "#c62828", [-m.churned for m in months])]),
        bar_chart(title="Revenue recognized (PPV beside recurring)", labels=labels, series=[
            Series("Recurring", "#447e9b", [m.recurring_revenue for m in months]),
            Series("PPV", "#8e24aa", [m.ppv_revenue for m in months]),
            Series("One-time", "#90a4ae", [m.one_time_revenue for m in months])]),
    ]


def dashboard_csv_rows(months) -> list[list[str]]:
    rows = [CSV_COLUMNS]
    for m in months:
        rows.append([f"{m.month:%Y-%m}", *(str(getattr(m, column) if getattr(m, column) is not None else "")
                                          for column in CSV_COLUMNS[1:])])
    return rows


@admin.register(AnalyticsDashboard)
class AnalyticsDashboardAdmin(ReportPageAdmin):
    """The dashboard page replaces the change list; nothing here is edited."""

    def get_urls(self):
        return [path("csv/", self.admin_site.admin_view(self.csv_view), name="analytics_analyticsdashboard_csv"),
                path("insights/csv/", self.admin_site.admin_view(self.insights_csv_view), name="analytics_insights_csv"),
                *super().get_urls()]

    def _filters(self, request) -> tuple[Filters | None, dict]:
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            return filters_parse(request.GET), {}
        except ValidationFailed as error:
            return None, error.fields

    def changelist_view(self, request, extra_context=None):
        filters, errors = self._filters(request)
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "title": "Analytics dashboard",
                   "errors": errors, "filters": filters, "choices": selectors.segment_choices(), "query": request.GET.urlencode()}
        if filters is not None:
            months = selectors.metrics_by_month(first=filters.first, last=filters.last, segment=filters.segment,
                                                currency=filters.currency)
            churn = selectors.churn_rate(last=month_end(filters.last), segment=filters.segment)
            context.update(
                months=months, latest=months[-1], charts=_charts(months),
                by_plan=selectors.mrr_by(month=filters.last, dimension="plan", currency=filters.currency),
                cohorts=selectors.cohort_retention(first=filters.first, last=filters.last, segment=filters.segment),
                churn_rate=churn, ltv=selectors.ltv_of(arpu=months[-1].arpu, churn=churn),
                top_titles=selectors.top_titles(first=filters.first, last=month_end(filters.last)),
                insights=_insight_counts(selectors.subscriber_insight_counts(first=filters.first, last=filters.last,
                                                                             segment=filters.segment)))
        return TemplateResponse(request, "admin/analytics/dashboard.html", context)

    def csv_view(self, request):
        filters, errors = self._filters(request)
        if filters is None:
            return HttpResponse("; ".join(m for messages in errors.values() for m in messages), status=400,
                                content_type="text/plain; charset=utf-8")
        months = selectors.metrics_by_month(first=filters.first, last=filters.last, segment=filters.segment,
                                            currency=filters.currency)
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="analytics-{filters.first:%Y-%m}-{filters.last:%Y-%m}.csv"'
        csv.writer(response).writerows(dashboard_csv_rows(months))
        return response

    def insights_csv_view(self, request):
        """A behaviour segment (``kind``: all, night_ppv_buyers, at_risk) as CSV, one row per customer."""
        filters, errors = self._filters(request)
        kind = request.GET.get("kind", "all")
        if kind not in selectors.INSIGHT_SEGMENTS:
            errors = {**errors, "kind": [f"One of {', '.join(selectors.INSIGHT_SEGMENTS)}."]}
        if filters is None or "kind" in errors:
            return HttpResponse("; ".join(m for messages in errors.values() for m in messages), status=400,
                                content_type="text/plain; charset=utf-8")
        rows = selectors.subscriber_insights(first=filters.first, last=filters.last, segment=filters.segment, kind=kind)
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="customers-{kind}-{filters.first:%Y-%m}-{filters.last:%Y-%m}.csv"'
        writer = csv.writer(response)
        writer.writerow(INSIGHT_COLUMNS)
        writer.writerows([[row[column] for column in INSIGHT_COLUMNS] for row in rows])
        return response


def _insight_counts(counts: dict[str, int]) -> list[tuple[str, str, int]]:
    return [("all", "All customers", counts["all"]), ("night_ppv_buyers", "Night-time PPV buyers", counts["night_ppv_buyers"]),
            ("at_risk", "At risk (viewing falling)", counts["at_risk"])]
