"""Billing term schemes (finance sets them up; agents look) and usage detail records
(read-only: UDRs are written by orders and billed by billing runs, never typed in)."""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html

from core.admin import AuditHistoryMixin, LifecycleActionsMixin, ServiceAdminMixin
from core.choices import Channel

from .services import schemes as services
from .models import BillingTermScheme, UsageDetailRecord

STATE_COLOURS = {"DRAFT": "#607d8b", "EFFECTIVE": "#2e7d32", "TERMINATED": "#757575"}


@admin.register(BillingTermScheme)
class BillingTermSchemeAdmin(ServiceAdminMixin, AuditHistoryMixin, LifecycleActionsMixin, admin.ModelAdmin):
    """Saved through ``billing.services``: a refusal shows the form again with every
    reason. Terms are editable only while DRAFT; schemes are terminated, never deleted."""

    list_display = ("name", "state_display", "kind", "billing_frequency", "billing_day", "pre_bill")
    list_filter = ("state", "kind")
    search_fields = ("name",)
    fields = ("name", "state_display", "kind", "billing_frequency", "billing_day", "pre_bill")
    lifecycle_actions = {"set_effective": "Set effective", "terminate": "Terminate"}

    @admin.display(description="state", ordering="state")
    def state_display(self, obj):
        return format_html('<span style="background:{};color:#fff;padding:2px 8px;border-radius:10px;font-size:11px">{}</span>',
                           STATE_COLOURS.get(obj.state, "#455a64"), obj.get_state_display())

    def get_readonly_fields(self, request, obj=None):
        if obj is None or obj.state == BillingTermScheme.State.DRAFT:
            return ("state_display",)
        return ("state_display", *services.SCHEME_FIELDS)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # terminated, never deleted: subscriptions and the audit trail refer to it

    def service_create(self, request, data):
        return services.billing_term_scheme_create(**{name: data[name] for name in services.SCHEME_FIELDS},
                                                   performed_by=request.user, channel=Channel.CALL_CENTER)

    def service_update(self, request, obj, data):
        changed = {name: data[name] for name in services.SCHEME_FIELDS if name in data and data[name] != getattr(obj, name)}
        if not changed:
            return obj
        return services.billing_term_scheme_update(scheme=obj, data=changed, performed_by=request.user, channel=Channel.CALL_CENTER)

    def lifecycle_action_objects(self):
        return services.SCHEME_ACTIONS

    def lifecycle_run(self, request, obj, code):
        return services.billing_term_scheme_act(scheme=obj, action=code, performed_by=request.user, channel=Channel.CALL_CENTER)


@admin.register(UsageDetailRecord)
class UsageDetailRecordAdmin(admin.ModelAdmin):
    """The usage record of every order: what was rated at which price and why. Found by
    its external id (the order's transaction reference); the list never counts the table."""

    list_display = ("usage_at", "account", "product", "amount", "currency", "state", "channel")
    list_filter = ("state", "channel")
    list_select_related = ("account__contact", "product")
    search_fields = ("=external_id",)
    show_full_result_count = False
    readonly_fields = ("account", "subscription", "product", "title", "catalog", "usage_service", "tier", "device",
                       "usage_at", "channel", "source", "external_id", "amount", "currency", "rate_reason", "state",
                       "rejection_reason", "created_at")
    fields = readonly_fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
