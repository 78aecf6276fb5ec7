"""Admin pieces shared by every app: the audit history of an object, and the audit log."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.template.response import TemplateResponse

from core.models import AuditEntry


def audit_entries_for(obj, limit: int = 200):
    return (
        AuditEntry.objects.filter(content_type=ContentType.objects.get_for_model(type(obj)), object_pk=str(obj.pk))
        .select_related("performed_by")[:limit]
    )


class AuditHistoryMixin:
    """The admin's HISTORY button shows the service-written audit trail of the object
    (who changed which price, rate or state, when, through which channel, and rejected
    actions with their reasons) instead of Django's LogEntry."""

    def history_view(self, request, object_id, extra_context=None):
        obj = self.get_object(request, object_id)
        if obj is None or not self.has_view_or_change_permission(request, obj):
            return super().history_view(request, object_id, extra_context)
        context = {
            **self.admin_site.each_context(request),
            "title": f"History: {obj}",
            "object": obj,
            "entries": audit_entries_for(obj),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/core/audit_history.html", context)

    def construct_change_message(self, request, form, formsets, add=False):
        return []  # services write the audit trail

    def log_addition(self, request, obj, message):
        """Audited by the service."""

    def log_change(self, request, obj, message):
        """Audited by the service."""

    def log_deletion(self, request, obj, object_repr):
        """Audited by the service."""


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ("created_at", "object_repr", "content_type", "action", "performed_by", "channel")
    list_filter = ("content_type", "channel")
    list_select_related = ("content_type", "performed_by")
    search_fields = ("=object_pk",)
    show_full_result_count = False
    readonly_fields = ("content_type", "object_pk", "object_repr", "action", "changes", "reasons", "performed_by", "channel", "created_at")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
