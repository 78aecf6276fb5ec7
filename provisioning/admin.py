"""Provisioning in the admin: providers (credentials by name only), the outbox, the dead
letters Finance and Administrators retry or cancel, and the reconciliation runs.

Requests are never edited by hand: their state changes only through the retry and cancel
services, each audited. Retry, cancel and "reconcile now" need the
``provisioning.manage_provisioningrequest`` permission (Finance, Administrator).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import HttpRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from core.admin import AuditedSaveMixin, AuditHistoryMixin, LargeTableAdminMixin, ReadOnlyAdminMixin, state_badge
from core.choices import Channel
from core.exceptions import ApplicationError

from .models import (
    ProvisioningDeadLetter,
    ProvisioningDistributor,
    ProvisioningProvider,
    ProvisioningRequest,
    ReconciliationDifference,
    ReconciliationRun,
)
from .services.reconciliation import provisioning_reconcile
from .services.sending import provider_address, provisioning_request_cancel, provisioning_request_retry

MANAGE = "provisioning.manage_provisioningrequest"


class DistributorInline(admin.TabularInline):
    model = ProvisioningDistributor
    extra = 0


@admin.register(ProvisioningProvider)
class ProvisioningProviderAdmin(AuditedSaveMixin, admin.ModelAdmin):
    """Providers are set up by administrators. The password is never here: the provider
    names a credentials entry of the server's settings (environment variables)."""

    list_display = ("name", "protocol", "endpoint", "state", "credentials_configured")
    search_fields = ("name",)
    inlines = [DistributorInline]
    filter_horizontal = ("physical_goods",)
    readonly_fields = ("credentials_configured", "sends_to", "services_handled")
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    fields = ("name", "protocol", "endpoint", "sends_to", "encoding", "state", "credentials_name", "credentials_configured",
              "physical_goods", "services_handled")

    @admin.display(description="credentials set on the server", boolean=True)
    def credentials_configured(self, obj: ProvisioningProvider) -> bool:
        return obj.credentials is not None

    @admin.display(description="commands are sent to")
    def sends_to(self, obj: ProvisioningProvider) -> str:
        return provider_address(obj) if obj.pk else "-"

    @admin.display(description="services handled (provisioning IDs)")
    def services_handled(self, obj: ProvisioningProvider) -> str:
        from catalogs.models import UsageService

        if not obj.pk:
            return "-"
        entries = (UsageService.objects.filter(catalog__provider=obj).exclude(provisioning_id="")
                   .select_related("product", "catalog").order_by("catalog__name", "provisioning_id")[:200])
        return format_html_join(mark_safe("<br>"), "{} — {} ({})",
                                ((e.provisioning_id, e.product.name, e.catalog.name) for e in entries)) or "-"


class CancelForm(forms.Form):
    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 3}),
                             help_text="Why the command is dropped (kept in the request's history).")


class RequestAdminBase(LargeTableAdminMixin, AuditHistoryMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("pk", "kind", "account_link", "subscription", "sequence", "state_display", "attempts", "next_attempt_at",
                    "error_code", "created_at")
    list_filter = ("state", "kind")
    search_fields = ("=account__number", "=request_id", "=platform_reference")
    list_select_related = ("account", "subscription")
    ordering = ("-pk",)
    actions = ["retry_selected", "cancel_selected"]
    fields = ("kind", "cause", "state_display", "account_link", "subscription", "action", "provider", "sequence", "request_id",
              "parameters", "attempts", "next_attempt_at", "last_attempt_at", "platform_reference", "error_code",
              "error_description", "created_at", "completed_at", "rejected_at", "raw_request", "raw_response")
    readonly_fields = fields

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        if not request.user.has_perm(MANAGE):
            actions.pop("retry_selected", None)
            actions.pop("cancel_selected", None)
        return actions

    @admin.display(description="state", ordering="state")
    def state_display(self, obj: ProvisioningRequest) -> str:
        label = "Retries exhausted" if obj.exhausted else obj.get_state_display()
        return state_badge(obj.state, label)

    @admin.display(description="account", ordering="account__number")
    def account_link(self, obj: ProvisioningRequest) -> str:
        url = reverse("admin:accounts_accountsreceivable_change", args=[obj.account_id])
        return format_html('<a href="{}">{}</a>', url, obj.account.number)

    @admin.action(description="Retry the selected rejected requests")
    def retry_selected(self, request: HttpRequest, queryset):
        if not request.user.has_perm(MANAGE):
            raise PermissionDenied
        for row in queryset.order_by("pk"):
            try:
                provisioning_request_retry(request=row, performed_by=request.user, channel=Channel.CALL_CENTER)
            except ApplicationError as error:
                self.message_user(request, f"#{row.pk}: {error.message}", messages.ERROR)
            else:
                self.message_user(request, f"#{row.pk} {row.get_kind_display()}: queued again.", messages.SUCCESS)

    @admin.action(description="Cancel the selected requests…")
    def cancel_selected(self, request: HttpRequest, queryset):
        """Asks for confirmation and a reason first: a cancelled command never reaches the platform."""
        if not request.user.has_perm(MANAGE):
            raise PermissionDenied
        form = CancelForm(request.POST if "confirm" in request.POST else None)
        if "confirm" in request.POST and form.is_valid():
            for row in queryset.order_by("pk"):
                try:
                    provisioning_request_cancel(request=row, reason=form.cleaned_data["reason"], performed_by=request.user,
                                                channel=Channel.CALL_CENTER)
                except ApplicationError as error:
                    self.message_user(request, f"#{row.pk}: {error.message}", messages.ERROR)
                else:
                    self.message_user(request, f"#{row.pk} {row.get_kind_display()}: cancelled.", messages.SUCCESS)
            return None
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "title": "Cancel provisioning requests?",
                   "rows": queryset.order_by("pk"), "form": form, "action": "cancel_selected",
                   "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME}
        return TemplateResponse(request, "admin/provisioning/cancel_requests.html", context)


@admin.register(ProvisioningRequest)
class ProvisioningRequestAdmin(RequestAdminBase):
    """The outbox: every command, its attempts and the platform's answer."""

    list_filter = ("state", "kind", "cause")


@admin.register(ProvisioningDeadLetter)
class ProvisioningDeadLetterAdmin(RequestAdminBase):
    """The dead letters: REJECTED requests (a permanent fault, or retries exhausted) with
    the platform's reason. Retry sends one again; cancel drops it."""

    list_display = ("pk", "kind", "account_link", "state_display", "attempts", "error_code", "error_description", "rejected_at")
    list_filter = ("kind", "error_code")

    def get_queryset(self, request):
        return super().get_queryset(request).filter(state=ProvisioningRequest.State.REJECTED)


class DifferenceInline(admin.TabularInline):
    model = ReconciliationDifference
    fields = ("account", "kind", "provisioning_id", "entitlement_kind", "detail", "repair")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(ReconciliationRun)
class ReconciliationRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Reconciliation runs and the differences each found (and the repairs it queued).
    "Reconcile now" runs one on demand; beat runs one daily."""

    list_display = ("__str__", "provider", "state", "accounts_checked", "accounts_skipped", "differences_found",
                    "requests_created", "started_by")
    list_filter = ("state",)
    inlines = [DifferenceInline]
    readonly_fields = ("provider", "state", "started_at", "finished_at", "started_by", "accounts_checked", "accounts_skipped",
                       "differences_found", "requests_created", "error")
    change_list_template = "admin/provisioning/reconciliationrun/change_list.html"
    show_full_result_count = False

    def get_urls(self):
        return [path("run/", self.admin_site.admin_view(self.run_view), name="provisioning_reconciliationrun_run")] + super().get_urls()

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "may_reconcile": request.user.has_perm(MANAGE)}
        return super().changelist_view(request, extra_context)

    def run_view(self, request: HttpRequest):
        """POST: run a reconciliation now and show its differences."""
        if request.method != "POST" or not request.user.has_perm(MANAGE):
            raise PermissionDenied
        try:
            run = provisioning_reconcile(performed_by=request.user)
        except ApplicationError as error:
            self.message_user(request, error.message, messages.ERROR)
            return HttpResponseRedirect(reverse("admin:provisioning_reconciliationrun_changelist"))
        level = messages.SUCCESS if run.state == ReconciliationRun.State.DONE else messages.ERROR
        self.message_user(request, f"{run}: {run.differences_found} difference(s), {run.requests_created} repair request(s). "
                                   f"{run.error}", level)
        return HttpResponseRedirect(reverse("admin:provisioning_reconciliationrun_change", args=[run.pk]))
