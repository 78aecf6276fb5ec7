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


class LifecycleActionsMixin:
    """Buttons on an object's page for its life cycle actions (``core.actions.Action``).

    Each button opens a confirmation page; confirming runs the service. A rejected action
    shows every reason and changes nothing. Subclasses list ``lifecycle_actions`` as
    ``{code: label}`` and implement ``lifecycle_run(request, obj, code)`` by calling their
    service. Running an action needs the change permission.
    """

    lifecycle_actions: dict[str, str] = {}
    change_form_template = "admin/core/change_form_lifecycle.html"

    def lifecycle_run(self, request, obj, code: str):
        raise NotImplementedError

    def lifecycle_available(self, obj) -> list[tuple[str, str]]:
        actions = self.lifecycle_action_objects()
        return [(code, label) for code, label in self.lifecycle_actions.items()
                if code not in actions or not actions[code].restrictions(obj)]

    def lifecycle_action_objects(self) -> dict:
        """``{code: Action instance}`` so buttons show only where restrictions allow."""
        return {}

    def get_urls(self):
        from django.urls import path

        info = self.model._meta.app_label, self.model._meta.model_name
        return [
            path("<path:object_id>/act/<str:code>/", self.admin_site.admin_view(self.lifecycle_view), name="%s_%s_lifecycle" % info),
        ] + super().get_urls()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, object_id)
        extra_context = extra_context or {}
        if obj is not None and self.has_change_permission(request, obj):
            extra_context["lifecycle_buttons"] = self.lifecycle_available(obj)
        return super().change_view(request, object_id, form_url, extra_context)

    def lifecycle_view(self, request, object_id, code):
        from django.contrib import messages
        from django.core.exceptions import PermissionDenied
        from django.http import Http404, HttpResponseRedirect
        from django.urls import reverse

        from core.actions import ActionRejected
        from core.exceptions import ApplicationError

        obj = self.get_object(request, object_id)
        if obj is None or code not in self.lifecycle_actions:
            raise Http404
        if not self.has_change_permission(request, obj):
            raise PermissionDenied
        info = self.model._meta.app_label, self.model._meta.model_name
        change_url = reverse("admin:%s_%s_change" % info, args=[obj.pk])
        label = self.lifecycle_actions[code]
        if request.method == "POST":
            try:
                self.lifecycle_run(request, obj, code)
            except ActionRejected as rejected:
                self.message_user(request, f"{label}: rejected. Nothing was changed.", messages.ERROR)
                for reason in rejected.reasons:
                    self.message_user(request, reason, messages.ERROR)
            except ApplicationError as error:
                self.message_user(request, f"{label}: {error}", messages.ERROR)
            else:
                self.message_user(request, f"{label}: done.", messages.SUCCESS)
            return HttpResponseRedirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "title": f"{label}: {obj}?",
            "object": obj,
            "label": label,
            "change_url": change_url,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/core/confirm_action.html", context)
