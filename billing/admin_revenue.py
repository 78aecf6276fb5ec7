"""Finance's revenue screens: the revenue waterfall (a report page with a CSV download) and
the recognition movements behind it. Imported by ``billing/admin.py``."""

from __future__ import annotations

import csv
from datetime import date

from django import forms
from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone

from core.admin import ReadOnlyAdminMixin, ReportPageAdmin

from .models import RevenueRecognition, RevenueWaterfall
from .selectors_revenue import REVENUE_TYPES, Waterfall, months_between, revenue_waterfall

DEFAULT_MONTHS = 12


class WaterfallForm(forms.Form):
    """The report's period (months as YYYY-MM) and currency; defaults to the last twelve
    months."""

    month_format = "%Y-%m"
    start = forms.DateField(required=False, input_formats=[month_format], label="From (YYYY-MM)")
    end = forms.DateField(required=False, input_formats=[month_format], label="To (YYYY-MM)")
    currency = forms.ChoiceField(choices=[(code, code) for code in settings.CURRENCIES], required=False)

    def __init__(self, data, *args, **kwargs):
        renamed = {"start": data.get("from", ""), "end": data.get("to", ""), "currency": data.get("currency", "")}
        super().__init__(renamed, *args, **kwargs)
        for name in ("start", "end"):
            self.fields[name].error_messages["invalid"] = "Give months as YYYY-MM, e.g. 2026-11."

    def clean(self):
        cleaned = super().clean()
        today = timezone.localdate()
        end = cleaned.get("end") or today.replace(day=1)
        start = cleaned.get("start") or months_between(date(end.year - 1, end.month, 1), end)[1]
        if start > end:
            raise forms.ValidationError("The first month is after the last one.")
        if len(months_between(start, end)) > 60:
            raise forms.ValidationError("Show at most 60 months at a time.")
        cleaned.update(start=start, end=end, currency=cleaned.get("currency") or settings.CURRENCIES[0])
        return cleaned


def waterfall_csv_rows(report: Waterfall) -> list[list[str]]:
    """The report as CSV rows: revenue per month, then the matrix (invoiced × recognized)."""
    months = [month.month for month in report.months]
    rows = [[f"Revenue waterfall ({report.currency})"], [],
            ["month", *REVENUE_TYPES, "total", "invoiced_deferred", "deferred_balance"]]
    rows += [[f"{m.month:%Y-%m}", f"{m.recurring:.2f}", f"{m.ppv:.2f}", f"{m.one_time:.2f}", f"{m.total:.2f}",
              f"{m.invoiced_deferred:.2f}", f"{m.deferred_balance:.2f}"] for m in report.months]
    rows += [[], ["invoiced \\ recognized", *(f"{month:%Y-%m}" for month in months), "total"]]
    for invoiced in report.invoice_months:
        cells = [report.matrix[invoiced].get(month, 0) for month in months]
        rows.append([f"{invoiced:%Y-%m}", *(f"{cell:.2f}" for cell in cells), f"{sum(cells):.2f}"])
    return rows


@admin.register(RevenueWaterfall)
class RevenueWaterfallAdmin(ReportPageAdmin):
    """The waterfall page replaces the change list; nothing here is edited."""

    def get_urls(self):
        return [path("csv/", self.admin_site.admin_view(self.csv_view), name="billing_revenuewaterfall_csv")] + super().get_urls()

    def _report(self, request) -> tuple[WaterfallForm, Waterfall | None]:
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = WaterfallForm(request.GET)
        if not form.is_valid():
            return form, None
        data = form.cleaned_data
        return form, revenue_waterfall(currency=data["currency"], first_month=data["start"], last_month=data["end"])

    def changelist_view(self, request, extra_context=None):
        form, report = self._report(request)
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "title": "Revenue waterfall",
                   "form": form, "report": report, "revenue_types": REVENUE_TYPES,
                   "matrix_rows": _matrix_rows(report) if report else [], "query": request.GET.urlencode()}
        return TemplateResponse(request, "admin/billing/revenuewaterfall/report.html", context)

    def csv_view(self, request):
        form, report = self._report(request)
        if report is None:
            return HttpResponse("; ".join(message for messages in form.errors.values() for message in messages),
                                status=400, content_type="text/plain; charset=utf-8")
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        first, last = report.months[0].month, report.months[-1].month
        response["Content-Disposition"] = f'attachment; filename="revenue-waterfall-{report.currency}-{first:%Y-%m}-{last:%Y-%m}.csv"'
        csv.writer(response).writerows(waterfall_csv_rows(report))
        return response


def _matrix_rows(report: Waterfall) -> list[tuple[date, list, object]]:
    months = [month.month for month in report.months]
    return [(invoiced, [report.matrix[invoiced].get(month) for month in months], report.row_total(invoiced))
            for invoiced in report.invoice_months]


@admin.register(RevenueRecognition)
class RevenueRecognitionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Every movement of deferred revenue: recognized by the job or taken back by a credit
    note. Read-only; found by the invoice number."""

    list_display = ("recognized_through", "kind", "invoice_line", "component", "amount", "revenue_reversed", "journal_entry")
    list_filter = ("kind",)
    list_select_related = ("invoice_line", "component", "journal_entry")
    search_fields = ("=invoice_line__invoice__number",)
    search_help_text = "Exact invoice number, e.g. INV-2026-000001."
    show_full_result_count = False
    fields = ("kind", "invoice_line", "component", "recognized_through", "amount", "revenue_reversed", "journal_entry",
              "credit_note_line", "created_at")
    readonly_fields = fields
