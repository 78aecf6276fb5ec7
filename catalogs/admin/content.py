"""Marketing's screens for product types, products, genres and content titles.

The forms only read what was typed; every save, inline row, delete, import row and
workflow step goes through ``catalogs.services.content``, which validates it and writes
the audit trail (the HISTORY button). A refusal is shown on the form, with what the user
typed kept, or per row for actions and imports; nothing is half-saved.

Roles (permissions from ``catalogs/migrations/0002_roles.py``): Marketing and
Administrators add, change, delete, import and run the title workflow. Call-center agents
and Finance only view; they may also export, since an export holds exactly the rows they
can already read (finance reconciles revenue by product code, agents answer "which movies
are on my phone?"). Importing needs both the add and the change permission.
"""

from __future__ import annotations

from collections.abc import Callable

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from import_export.admin import ImportExportMixin
from import_export.formats import base_formats

from catalogs.admin.inlines import BundleComponentInline
from catalogs.models import BundleComponent, ContentTitle, Genre, Product, ProductType, TitleAvailability
from catalogs.resources import ContentTitleResource, ProductResource
from catalogs.services import content as services
from core.admin import AuditHistoryMixin, ServiceAdminMixin, ServiceModelForm, refusal_fields, state_badge
from core.choices import Channel, Screen
from core.exceptions import ApplicationError, ValidationFailed

# --- forms ------------------------------------------------------------------------------


class NameListField(forms.CharField):
    """Names separated by commas: a title's cast (in order) or its genres (by name; new
    genres are created)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("widget", forms.TextInput(attrs={"size": 80}))
        super().__init__(**kwargs)

    def prepare_value(self, value):
        if isinstance(value, (list, tuple)):
            return ", ".join(str(item) for item in value)
        return value

    def to_python(self, value) -> list[str]:
        return [part.strip() for part in super().to_python(value).split(",") if part.strip()]


def _https_by_default(model_field, **kwargs):
    """Artwork links typed without a scheme are https (Django 6's default, chosen now)."""
    if isinstance(model_field, models.URLField):
        kwargs.setdefault("assume_scheme", "https")
    return model_field.formfield(**kwargs)


class ContentTitleForm(ServiceModelForm):
    genres = NameListField(help_text="Comma-separated, e.g. “Drama, Romance”. New genres are created.")
    cast = NameListField(help_text="Comma-separated names, leading roles first.")

    class Meta:
        model = ContentTitle
        fields = "__all__"
        formfield_callback = _https_by_default


# --- saving through services ------------------------------------------------------------


def _in_context(label: str, refusal: ApplicationError) -> ValidationFailed:
    """An inline row's refusal, as form errors that say which row they are about."""
    reasons = [f"{label}: {message}" for messages_ in refusal_fields(refusal).values() for message in messages_]
    return ValidationFailed(refusal.message, fields={"non_field_errors": reasons})


class CatalogImportExportMixin(ImportExportMixin):
    """CSV and XLSX import with a preview and per-row errors, through the services.

    Import needs the add and change permissions (Marketing, Administrators); export needs
    only the view permission (every catalog role). Nothing is imported unless every row
    is valid.
    """

    formats = [base_formats.CSV, base_formats.XLSX]
    skip_admin_log = True  # the services write the audit trail

    def has_import_permission(self, request) -> bool:
        return self.has_add_permission(request) and self.has_change_permission(request)

    def has_export_permission(self, request) -> bool:
        return self.has_view_permission(request)

    def process_result(self, result, request):
        """The confirmed import failed after all (the data changed since the preview):
        say so, instead of "Import finished"."""
        if not (result.has_errors() or result.has_validation_errors()):
            return super().process_result(result, request)
        problems = [f"row {row.number}: {message}" for row in result.invalid_rows for message in row.error.messages]
        problems += [f"row {number}: {error.error}" for number, errors in result.row_errors() for error in errors]
        problems += [str(error.error) for error in result.base_errors]
        self.message_user(request, "Nothing was imported: " + "; ".join(problems[:10]), messages.ERROR)
        opts = self.model._meta
        return HttpResponseRedirect(reverse(f"admin:{opts.app_label}_{opts.model_name}_import"))


# --- product types, products, genres -----------------------------------------------------


@admin.register(ProductType)
class ProductTypeAdmin(AuditHistoryMixin, ServiceAdminMixin, admin.ModelAdmin):
    list_display = ("name", "classification", "service_type", "composition", "used_for_provisioning")
    list_filter = ("classification", "service_type", "composition")
    search_fields = ("^name",)
    fields = ("name", "classification", "service_type", "composition", "used_for_provisioning")

    def service_create(self, request, data):
        return services.product_type_create(**data, performed_by=request.user, channel=Channel.CALL_CENTER)

    def service_update(self, request, obj, data):
        return services.product_type_update(product_type=obj, data=data, performed_by=request.user, channel=Channel.CALL_CENTER)

    def service_delete(self, request, obj):
        services.product_type_delete(product_type=obj, performed_by=request.user, channel=Channel.CALL_CENTER)


@admin.register(Product)
class ProductAdmin(AuditHistoryMixin, ServiceAdminMixin, CatalogImportExportMixin, admin.ModelAdmin):
    """Products by code and name. Bundles (products whose type composes a BUNDLE) list
    their component services, each with its standalone price."""

    resource_classes = [ProductResource]
    list_display = ("code", "name", "product_type", "is_active")
    list_filter = ("product_type", "is_active")
    list_select_related = ("product_type",)
    search_fields = ("^code", "^name")
    search_help_text = "Code or name (prefix match)."
    autocomplete_fields = ("product_type", "titles")
    fields = ("code", "name", "product_type", "description", "is_active", "titles")

    def get_inlines(self, request, obj):
        if obj is not None and obj.product_type.composition == ProductType.Composition.BUNDLE:
            return [BundleComponentInline]
        return []

    def service_create(self, request, data):
        return services.product_create(**data, performed_by=request.user, channel=Channel.CALL_CENTER)

    def service_update(self, request, obj, data):
        return services.product_update(product=obj, data=data, performed_by=request.user, channel=Channel.CALL_CENTER)

    def service_delete(self, request, obj):
        services.product_delete(product=obj, performed_by=request.user, channel=Channel.CALL_CENTER)

    def save_formset(self, request, form, formset, change):
        if formset.model is not BundleComponent:
            return super().save_formset(request, form, formset, change)
        bundle = form.instance
        saved = {entry.pk: entry.component for entry in BundleComponent.objects.filter(bundle=bundle).select_related("component")}
        removed = []
        for row in formset.forms:
            if row in formset.deleted_forms:
                if row.instance.pk in saved:
                    removed.append(saved[row.instance.pk])
                continue
            if not row.has_changed():
                continue
            component = row.cleaned_data["component"]
            try:
                services.bundle_component_set(bundle=bundle, component=component, standalone_price=row.cleaned_data["standalone_price"],
                                              performed_by=request.user, channel=Channel.CALL_CENTER)
            except ApplicationError as refusal:
                raise _in_context(f"Component {component}", refusal) from refusal
            previous = saved.get(row.instance.pk)
            if previous is not None and previous.pk != component.pk:
                removed.append(previous)
        for component in removed:
            try:
                services.bundle_component_remove(bundle=bundle, component=component, performed_by=request.user, channel=Channel.CALL_CENTER)
            except ApplicationError as refusal:
                raise _in_context(f"Component {component}", refusal) from refusal


@admin.register(Genre)
class GenreAdmin(AuditHistoryMixin, ServiceAdminMixin, admin.ModelAdmin):
    list_display = ("name",)
    search_fields = ("^name",)
    fields = ("name",)

    def service_create(self, request, data):
        return services.genre_create(**data, performed_by=request.user, channel=Channel.CALL_CENTER)

    def service_update(self, request, obj, data):
        return services.genre_update(genre=obj, data=data, performed_by=request.user, channel=Channel.CALL_CENTER)

    def service_delete(self, request, obj):
        services.genre_delete(genre=obj, performed_by=request.user, channel=Channel.CALL_CENTER)


# --- content titles ---------------------------------------------------------------------

#: What a destructive step does to viewers, said on its confirmation page.
CONSEQUENCES = {
    "unpublish": "Viewers will no longer find this title on any screen until it is published again.",
    "retire": "Viewers will no longer find this title on any screen, and a retired title cannot be published again.",
}

#: step code -> (service, done-verb, needs a confirmation page)
WORKFLOW_SERVICES: dict[str, tuple[Callable[..., ContentTitle], str, bool]] = {
    "submit": (services.title_submit, "submitted for review", False),
    "publish": (services.title_publish, "published", False),
    "return_to_draft": (services.title_return_to_draft, "returned to draft", False),
    "unpublish": (services.title_unpublish, "unpublished", True),
    "retire": (services.title_retire, "retired", True),
}


def _refusal_reasons(refusal: ApplicationError) -> str:
    return "; ".join(getattr(refusal, "reasons", None) or [refusal.message])


class TitleAvailabilityInline(admin.TabularInline):
    """Where the title may be watched, each screen within an optional [from, until) window."""

    model = TitleAvailability
    extra = 0
    fields = ("screen", "available_from", "available_until")


class ScreenFilter(admin.SimpleListFilter):
    title = "screen"
    parameter_name = "screen"

    def lookups(self, request, model_admin):
        return Screen.choices

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(availabilities__screen=self.value())  # one row per title and screen: no duplicates
        return queryset


class GenreFilter(admin.SimpleListFilter):
    title = "genre"
    parameter_name = "genre"

    def lookups(self, request, model_admin):
        return Genre.objects.values_list("pk", "name")

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(genres__pk=self.value())  # one row per title and genre: no duplicates
        return queryset


@admin.register(ContentTitle)
class ContentTitleAdmin(AuditHistoryMixin, ServiceAdminMixin, CatalogImportExportMixin, admin.ModelAdmin):
    """Titles with their metadata, screens and workflow: the change page offers the steps
    the title's state allows (retire and unpublish ask for confirmation), and the list has
    actions that run a step on each selected title and report every refusal per title."""

    form = ContentTitleForm
    resource_classes = [ContentTitleResource]
    change_form_template = "admin/catalogs/content/contenttitle/change_form.html"
    list_display = ("title", "year", "state_display", "older_movie", "screens_display")
    list_filter = ("state", GenreFilter, ScreenFilter)
    search_fields = ("^code", "^title")
    search_help_text = "Code or title (prefix match)."
    list_per_page = 50
    readonly_fields = ("state_display",)
    fieldsets = (
        (None, {"fields": ("code", "title", "state_display")}),
        ("Metadata", {"fields": ("synopsis", "genres", "cast", ("year", "duration_minutes"), ("age_rating", "release_date"),
                                 "is_older_movie", "artwork_url")}),
        ("Availability window", {"fields": (("available_from", "available_until"),),
                                 "description": "When the title may be watched at all; each screen below may narrow it."}),
    )
    inlines = [TitleAvailabilityInline]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    actions = ["submit_selected", "publish_selected", "return_to_draft_selected"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("availabilities", "genres")

    # --- list -------------------------------------------------------------------------
    @admin.display(description="state", ordering="state")
    def state_display(self, title: ContentTitle) -> str:
        return state_badge(title.state, title.get_state_display(), css_class="title-state")

    @admin.display(description="older movie", boolean=True, ordering="is_older_movie")
    def older_movie(self, title: ContentTitle) -> bool:
        return title.is_older_movie

    @admin.display(description="screens")
    def screens_display(self, title: ContentTitle) -> str:
        return ", ".join(sorted(availability.get_screen_display() for availability in title.availabilities.all()))

    # --- saving -----------------------------------------------------------------------
    def service_create(self, request, data):
        return services.content_title_create(**data, performed_by=request.user, channel=Channel.CALL_CENTER)

    def service_update(self, request, obj, data):
        return services.content_title_update(title=obj, data=data, performed_by=request.user, channel=Channel.CALL_CENTER)

    def service_delete(self, request, obj):
        services.content_title_delete(title=obj, performed_by=request.user, channel=Channel.CALL_CENTER)

    def has_delete_permission(self, request, obj=None) -> bool:
        # Only drafts; a title that went further is retired, so its history stays.
        return super().has_delete_permission(request, obj) and (obj is None or obj.state == ContentTitle.State.DRAFT)

    def save_formset(self, request, form, formset, change):
        if formset.model is not TitleAvailability:
            return super().save_formset(request, form, formset, change)
        title = form.instance
        saved = dict(TitleAvailability.objects.filter(title=title).values_list("pk", "screen"))
        removed = []
        # Screens are added before any is removed, so a published title is never left without one.
        for row in formset.forms:
            if row in formset.deleted_forms:
                if row.instance.pk in saved:
                    removed.append(saved[row.instance.pk])
                continue
            if not row.has_changed():
                continue
            screen = row.cleaned_data["screen"]
            try:
                services.title_availability_set(
                    title=title, screen=screen, available_from=row.cleaned_data.get("available_from"),
                    available_until=row.cleaned_data.get("available_until"), performed_by=request.user, channel=Channel.CALL_CENTER,
                )
            except ApplicationError as refusal:
                raise _in_context(Screen(screen).label, refusal) from refusal
            previous = saved.get(row.instance.pk)
            if previous is not None and previous != screen:
                removed.append(previous)
        for screen in removed:
            try:
                services.title_availability_remove(title=title, screen=screen, performed_by=request.user, channel=Channel.CALL_CENTER)
            except ApplicationError as refusal:
                raise _in_context(Screen(screen).label, refusal) from refusal

    # --- workflow: change page ----------------------------------------------------------
    def get_urls(self):
        step_view = self.admin_site.admin_view(self.workflow_view)
        return [path("<path:object_id>/workflow/<str:step>/", step_view, name="catalogs_contenttitle_workflow")] + super().get_urls()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        title = self.get_object(request, unquote(object_id))
        extra_context = dict(extra_context or {})
        if title is not None and self.has_change_permission(request, title):
            extra_context["workflow_steps"] = [
                {
                    "label": step.label,
                    "url": reverse("admin:catalogs_contenttitle_workflow", args=[title.pk, step.code]),
                    "confirm": WORKFLOW_SERVICES[step.code][2],
                }
                for step in services.title_workflow_steps(state=title.state)
            ]
        return super().change_view(request, object_id, form_url, extra_context)

    def workflow_view(self, request: HttpRequest, object_id: str, step: str) -> HttpResponse:
        """Run one workflow step (POST). Retire and unpublish first show a confirmation page."""
        if step not in WORKFLOW_SERVICES:
            raise Http404("No such workflow step.")
        title = self.get_object(request, unquote(object_id))
        if title is None:
            raise Http404("No such title.")
        if not self.has_change_permission(request, title):
            raise PermissionDenied
        service, done, confirm = WORKFLOW_SERVICES[step]
        change_url = reverse("admin:catalogs_contenttitle_change", args=[title.pk])
        if request.method != "POST":
            if not confirm:
                return HttpResponseRedirect(change_url)
            label = next(candidate.label for candidate in services.TITLE_WORKFLOW if candidate.code == step)
            context = {
                **self.admin_site.each_context(request),
                "title": f"{label}: {title}?",
                "content_title": title,
                "step_label": label,
                "consequence": CONSEQUENCES[step],
                "change_url": change_url,
                "opts": self.model._meta,
            }
            return TemplateResponse(request, "admin/catalogs/content/confirm_title_step.html", context)
        self._run_step(request, title, service, done)
        return HttpResponseRedirect(change_url)

    # --- workflow: list actions -----------------------------------------------------------
    def _run_step(self, request: HttpRequest, title: ContentTitle, service: Callable[..., ContentTitle], done: str) -> None:
        try:
            service(title=title, performed_by=request.user, channel=Channel.CALL_CENTER)
        except ApplicationError as refusal:
            self.message_user(request, f"{title}: not {done}: {_refusal_reasons(refusal)}", messages.ERROR)
        else:
            self.message_user(request, f"{title}: {done}.", messages.SUCCESS)

    def _run_step_for_each(self, request, queryset, step: str) -> None:
        service, done, _ = WORKFLOW_SERVICES[step]
        for title in queryset:
            self._run_step(request, title, service, done)

    @admin.action(description="Submit selected titles for review", permissions=["change"])
    def submit_selected(self, request, queryset):
        self._run_step_for_each(request, queryset, "submit")

    @admin.action(description="Publish selected titles", permissions=["change"])
    def publish_selected(self, request, queryset):
        self._run_step_for_each(request, queryset, "publish")

    @admin.action(description="Return selected titles to draft", permissions=["change"])
    def return_to_draft_selected(self, request, queryset):
        self._run_step_for_each(request, queryset, "return_to_draft")
