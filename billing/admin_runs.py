"""Finance's billing runs: start one for a day (and optionally one scheme), watch its
progress bar while workers bill it, see the accounts it left out and why, resume it."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html

from core.admin import AuditHistoryMixin, ServiceAdminMixin, ServiceModelForm, state_badge
from core.choices import Channel
from core.exceptions import ApplicationError

from .models import BillingRun, BillingTermScheme
from .services.runs import billing_run_create, billing_run_errors, billing_run_resume

RUN_FIELDS = ("run_date", "scheme")
PROGRESS_FIELDS = ("state_display", "progress", "accounts_total", "accounts_done", "invoices_created", "invoiced_total",
                   "errors_count", "created_by", "created_at", "started_at", "finished_at", "left_out")


class BillingRunForm(ServiceModelForm):
    scheme = forms.ModelChoiceField(queryset=BillingTermScheme.objects.filter(state=BillingTermScheme.State.EFFECTIVE),
                                    required=False, empty_label="Every scheme")

    class Meta:
        model = BillingRun
        fields = RUN_FIELDS


def progress_bar(run: BillingRun):
    return format_html('<progress class="billing-run-progress" max="100" value="{}" style="width: 20em">{}%</progress> {}%',
                       run.progress_percent, run.progress_percent, run.progress_percent)


@admin.register(BillingRun)
class BillingRunAdmin(ServiceAdminMixin, AuditHistoryMixin, admin.ModelAdmin):
    form = BillingRunForm
    change_form_template = "admin/billing/billingrun/change_form.html"
    list_display = ("__str__", "state_display", "progress", "scheme", "invoices_created", "invoiced_total", "errors_count",
                    "created_at")
    list_filter = ("state",)
    list_select_related = ("scheme",)
    date_hierarchy = "run_date"
    actions = ["resume"]

    def get_fields(self, request, obj=None):
        return RUN_FIELDS if obj is None else (*RUN_FIELDS, *PROGRESS_FIELDS)

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else (*RUN_FIELDS, *PROGRESS_FIELDS)

    def has_add_permission(self, request) -> bool:
        return request.user.has_perm("billing.run_billing")

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # a run is started and watched, never edited

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # its invoices and billed periods refer to it

    @admin.display(description="state", ordering="state")
    def state_display(self, obj):
        return state_badge(obj.state, obj.get_state_display())

    @admin.display(description="progress")
    def progress(self, obj):
        return progress_bar(obj)

    @admin.display(description="accounts left out")
    def left_out(self, obj):
        errors = billing_run_errors(run=obj)
        if not errors:
            return "None"
        return format_html("<ul>{}</ul>", format_html("".join(
            format_html("<li>Account #{}: {}</li>", error["account"], error["reason"]) for error in errors[:200])))

    def service_create(self, request, data):
        return billing_run_create(run_date=data["run_date"], scheme=data.get("scheme"), performed_by=request.user,
                                  channel=Channel.CALL_CENTER)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["auto_refresh"] = obj is not None and obj.state in (BillingRun.State.PENDING, BillingRun.State.RUNNING)
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)

    @admin.action(description="Resume the selected runs (bill what a stopped worker left)", permissions=["run"])
    def resume(self, request, queryset):
        for run in queryset:
            try:
                billing_run_resume(run=run, performed_by=request.user, channel=Channel.CALL_CENTER)
            except ApplicationError as refusal:
                self.message_user(request, refusal.message, messages.WARNING)
            else:
                self.message_user(request, f"{run}: resumed.", messages.SUCCESS)

    def has_run_permission(self, request) -> bool:
        return request.user.has_perm("billing.run_billing")
