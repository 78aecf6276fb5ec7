"""Admin pieces shared by every app: the audit history of an object, and the audit log."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import get_fields_from_path, lookup_spawns_duplicates
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import Q
from django.template.response import TemplateResponse
from django.utils.functional import cached_property

from core.exceptions import ApplicationError, ValidationFailed
from core.models import AuditEntry


# One colour per state, whatever the model: green is in force, orange is paused, grey is over.
STATE_COLOURS = {
    "ACTIVE": "#2e7d32", "EFFECTIVE": "#2e7d32", "PUBLISHED": "#2e7d32", "POSTED": "#2e7d32", "EXECUTED": "#2e7d32",
    "SUSPENDED": "#ef6c00", "NOT_EFFECTIVE": "#ef6c00", "READY": "#ef6c00",
    "IN_RESTING": "#8e24aa", "SCHEDULED": "#1565c0", "REJECTED": "#c62828",
    "DRAFT": "#607d8b", "TERMINATED": "#757575", "CANCELLED": "#757575", "RETIRED": "#37474f",
}


def state_badge(state: str, label: str, *, css_class: str = "state-badge") -> str:
    """A coloured pill for a state in list and change pages."""
    return format_html('<span class="{}" style="background:{};color:#fff;padding:2px 8px;border-radius:10px;font-size:11px">{}</span>',
                       css_class, STATE_COLOURS.get(state, "#455a64"), label)


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

    def log_deletions(self, request, queryset):
        """Audited by the service."""


def _field_values(obj) -> dict:
    return {field.attname: getattr(obj, field.attname) for field in obj._meta.concrete_fields if not field.primary_key}


class AuditedSaveMixin(AuditHistoryMixin):
    """For reference data the admin saves itself (no service behind it, e.g. customer
    classifications or the dunning schedule): every add, change and delete, and every
    inline row added, changed or removed, writes an audit row with who and the fields
    before and after, like the services do."""

    def save_model(self, request, obj, form, change):
        from core.services import audit_changes, audit_record

        before = _field_values(type(obj).objects.get(pk=obj.pk)) if change else {}
        super().save_model(request, obj, form, change)
        changes = audit_changes(before, _field_values(obj))
        if changes or not change:
            audit_record(target=obj, action="updated" if change else "created", changes=changes,
                         performed_by=request.user, channel="CALL_CENTER")

    def save_formset(self, request, form, formset, change):
        from core.services import audit_changes, audit_record

        before = {row.pk: _field_values(type(row).objects.get(pk=row.pk))
                  for row in (f.instance for f in formset.initial_forms) if row.pk}
        super().save_formset(request, form, formset, change)
        label = formset.model._meta.verbose_name
        changes = {}
        for row in formset.new_objects:
            changes[f"{label} {row.pk}"] = [None, str(row)]
        for row, _fields in formset.changed_objects:
            for name, (old, new) in audit_changes(before.get(row.pk, {}), _field_values(row)).items():
                changes[f"{label} {row.pk}.{name}"] = [old, new]
        for number, row in enumerate(formset.deleted_objects, start=1):
            changes[f"{label} removed #{number}"] = [str(row), None]  # its pk is gone once deleted
        if changes:
            audit_record(target=form.instance, action="updated", changes=changes, performed_by=request.user, channel="CALL_CENTER")

    def delete_model(self, request, obj):
        from core.services import audit_changes, audit_record

        audit_record(target=obj, action="deleted", changes=audit_changes(_field_values(obj), dict.fromkeys(_field_values(obj))),
                     performed_by=request.user, channel="CALL_CENTER")
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)


class CappedCountPaginator(Paginator):
    """The admin list's paginator for tables that grow without bound (usage records, the
    ledger, invoices, the audit log): it never counts a whole table.

    * Unfiltered, on PostgreSQL, the count is the planner's own estimate of the table's rows
      (``pg_class.reltuples``, kept current by autovacuum's ANALYZE) when that is above
      ``cap``: the list says "about 1,000,000 usage records" and every page stays reachable.
    * Otherwise (a filter or search, SQLite, a small or never analysed table) at most
      ``cap + 1`` matching rows are counted (``SELECT COUNT(*) FROM (... LIMIT cap + 1)``):
      an exact number up to the cap, else "more than 10,000", with the first ``cap`` rows'
      pages to browse; a narrower filter or a search finds the rest.

    ``count_label`` is what the list shows instead of the number (``None``: exact); the
    admin's pagination and search templates (``templates/admin/``) use it."""

    cap = 10_000
    count_label: str | None = None

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if not queryset.query.where and connections[queryset.db].vendor == "postgresql":
            estimate = _estimated_rows(queryset)
            if estimate > self.cap:
                self.count_label = f"about {estimate:,}"
                return estimate
        counted = queryset.order_by()[: self.cap + 1].count()
        if counted > self.cap:
            self.count_label = f"more than {self.cap:,}"
            return self.cap
        return counted


def _estimated_rows(queryset) -> int:
    """The planner's row estimate of the model's table, or of its partitions when it is
    partitioned (docs/operations.md, scaling out: usage records by month); 0 when never
    analysed (``reltuples`` is -1 then)."""
    with connections[queryset.db].cursor() as cursor:
        cursor.execute("SELECT coalesce(sum(reltuples) FILTER (WHERE reltuples > 0), 0)::bigint FROM pg_class "
                       "WHERE oid = %s::regclass OR oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = %s::regclass)",
                       [queryset.model._meta.db_table] * 2)
        return cursor.fetchone()[0]


class LargeTableAdminMixin:
    """A change list over a table that grows without bound: no full-table COUNT for the
    pagination (``CappedCountPaginator``), for the "N total" of a search or for the filters'
    facet counts ("Show counts" is not offered), and searches that use an index.

    Django's ``"=field"`` search is ``iexact`` (``UPPER(col) = UPPER(term)``), which no plain
    index serves: each search read the whole table (0.4 s at 1 M usage records). Here a
    ``"=field"`` search matches the term exactly, as typed or upper-cased (identifiers —
    invoice numbers, references, external ids — are stored in their own case, codes upper),
    so the field's index finds it."""

    paginator = CappedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # "Show counts" would count every filter choice over the whole table

    def get_search_results(self, request, queryset, search_term):
        fields = list(self.get_search_fields(request))
        term = search_term.strip()
        if not term or not fields or not all(field.startswith("=") for field in fields):
            return super().get_search_results(request, queryset, search_term)
        condition = Q()
        for field in fields:
            path = field[1:]
            target = get_fields_from_path(self.model, path)[-1]
            values = []
            for typed in dict.fromkeys((term, term.upper())):
                try:  # a term that cannot be this field's value (not a UUID, say) does not match it
                    values.append(target.to_python(typed))
                except ValidationError:
                    continue
            if values:
                condition |= Q(**{f"{path}__in": values})
        if not condition:
            return queryset.none(), False
        duplicates = any(lookup_spawns_duplicates(self.opts, field[1:]) for field in fields)
        return queryset.filter(condition), duplicates


class ReadOnlyAdminMixin:
    """An admin (or inline) that only shows: its rows are written by services (documents,
    ledger, audit and event trails, payments) and never added, edited or deleted here; who
    may see them is the view permission."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(AuditEntry)
class AuditEntryAdmin(LargeTableAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("created_at", "object_repr", "content_type", "action", "performed_by", "channel")
    list_filter = ("content_type", "channel")
    list_select_related = ("content_type", "performed_by")
    search_fields = ("=object_pk",)
    readonly_fields = ("content_type", "object_pk", "object_repr", "action", "changes", "reasons", "performed_by", "channel", "created_at")


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


# --- saving through services -------------------------------------------------------------

class ServiceModelForm(forms.ModelForm):
    """Reads and converts the input only. The service validates it (model rules, domain
    rules, uniqueness), so the admin, the import files and the API share one set of rules
    and one wording."""

    def _post_clean(self):
        """No ``instance.full_clean()`` here: the service does it when it saves."""


def adopt_saved(obj, saved) -> None:
    """Let the admin carry on (inlines, redirect, message) with the row a service saved."""
    for field in saved._meta.concrete_fields:
        setattr(obj, field.attname, getattr(saved, field.attname))
    obj._state.adding = False
    obj._state.db = saved._state.db


def refusal_fields(refusal: ApplicationError) -> dict[str | None, list[str]]:
    if isinstance(refusal, ValidationFailed) and refusal.fields:
        return {(None if name == "non_field_errors" else name): messages_ for name, messages_ in refusal.fields.items()}
    return {None: [refusal.message]}


class ServiceAdminMixin:
    """Saves and deletes through services, and shows their refusals on the form.

    When a service refuses, the whole request is rolled back (the admin wraps it in a
    transaction) and the form is shown again, as typed, with the service's messages on
    the fields they concern.
    """

    form = ServiceModelForm
    show_full_result_count = False

    # --- what each admin provides -----------------------------------------------------
    def service_create(self, request: HttpRequest, data: dict):
        raise NotImplementedError

    def service_update(self, request: HttpRequest, obj, data: dict):
        raise NotImplementedError

    def service_delete(self, request: HttpRequest, obj) -> None:
        raise NotImplementedError

    # --- the admin's save hooks -------------------------------------------------------
    def save_model(self, request, obj, form, change):
        saved = self.service_update(request, obj, form.cleaned_data) if change else self.service_create(request, form.cleaned_data)
        adopt_saved(obj, saved)

    def save_related(self, request, form, formsets, change):
        """Relations on the form (genres, titles) were passed to the service; inline rows
        are saved by ``save_formset``. ``form.save_m2m()`` is never called."""
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def save_formset(self, request, form, formset, change):
        raise NotImplementedError(f"{type(self).__name__} must save {formset.model.__name__} rows through a service.")

    def delete_model(self, request, obj):
        self.service_delete(request, obj)

    def log_deletions(self, request, queryset):
        """Audited by the service (and Django 6 drops the ``log_deletion`` hook)."""

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # one at a time, each through its service
        return actions

    # --- refusals ---------------------------------------------------------------------
    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ApplicationError as refusal:
            request.service_refusal = refusal
            return super().changeform_view(request, object_id, form_url, extra_context)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form_class = super().get_form(request, obj, change=change, **kwargs)
        refusal = getattr(request, "service_refusal", None)
        if refusal is None:
            return form_class

        class RefusedForm(form_class):
            def clean(self):
                cleaned_data = super().clean()
                for name, messages_ in refusal_fields(refusal).items():
                    on_form = name is None or name in self.fields
                    for message in messages_:
                        self.add_error(name if on_form else None, message if on_form else f"{name}: {message}")
                return cleaned_data

        return RefusedForm

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except ApplicationError as refusal:
            self.message_user(request, f"Nothing was deleted: {refusal.message}", messages.ERROR)
            opts = self.model._meta
            return HttpResponseRedirect(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[object_id]))




class ReportPageAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """A report page registered in the admin (its page replaces the change list): nothing
    is added, changed or deleted through it; who may see it is its view permission."""
