"""Usage service catalog definitions and catalogs, for marketing staff.

Tiered rates are typed in one field per service as ``rate@HH:MM-HH:MM`` separated by
commas, e.g. ``5.00@00:01-06:59``; ``none`` means no tiers. New rows start from the
effective definition's defaults (shown pre-filled); leaving the base rate or tiers empty
on a new row takes the default too.
"""

from __future__ import annotations

import re
from datetime import time
from decimal import Decimal, InvalidOperation

from django import forms
from django.contrib import admin

from core.admin import AuditHistoryMixin, LifecycleActionsMixin, ServiceAdminMixin, adopt_saved, state_badge
from core.choices import Channel
from core.exceptions import ApplicationError

from ..models import DefinitionDefaultRate, UsageService, UsageServiceCatalog, UsageServiceCatalogDefinition
from ..services import usage_catalogs as services

TIER = re.compile(r"^\s*(?P<rate>[0-9.]+)\s*@\s*(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})\s*$")


def tiers_parse(text: str) -> list[dict] | None:
    """``"5.00@00:01-06:59, 3@22:00-23:59"`` → tiers; ``""`` → None; ``"none"`` → []."""
    text = (text or "").strip()
    if not text:
        return None
    if text.lower() == "none":
        return []
    tiers = []
    for part in text.split(","):
        match = TIER.match(part)
        if not match:
            raise forms.ValidationError(f"'{part.strip()}' is not rate@HH:MM-HH:MM (e.g. 5.00@00:01-06:59).")
        try:
            rate = Decimal(match["rate"])
            start, end = (time(*map(int, match[key].split(":"))) for key in ("start", "end"))
        except (InvalidOperation, ValueError) as error:
            raise forms.ValidationError(f"'{part.strip()}': {error}.") from error
        tiers.append({"rate": rate, "start_time": start, "end_time": end})
    return tiers


class TieredRateForm(forms.ModelForm):
    tiers_text = forms.CharField(label="Tiered rates", required=False, help_text="rate@HH:MM-HH:MM, comma-separated; 'none' for no tiers.",
                                 widget=forms.TextInput(attrs={"size": 28}))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["base_rate"].required = False
        if self.instance.pk:
            self.fields["tiers_text"].initial = services.tiers_text(services._tiers_of(self.instance)) or "none"

    def clean_tiers_text(self):
        return tiers_parse(self.cleaned_data["tiers_text"])

    def _post_clean(self):
        # Cross-row rules (duplicates, overlaps) are the service's; skip the model's checks.
        pass


class UsageServiceInline(admin.TabularInline):
    model = UsageService
    form = TieredRateForm
    fields = ("product", "provisioning_id", "base_rate", "tiers_text")
    extra = 1

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "product":
            from ..models import Product

            kwargs["queryset"] = Product.objects.filter(product_type__service_type="USAGE", is_active=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class DefaultRateInline(admin.TabularInline):
    model = DefinitionDefaultRate
    form = TieredRateForm
    fields = ("product_type", "base_rate", "tiers_text")
    extra = 1


class ConfigurationAdmin(ServiceAdminMixin, AuditHistoryMixin, LifecycleActionsMixin, admin.ModelAdmin):
    """Saves go through services inside the admin's transaction; a refusal shows the form
    again as typed, with every reason. Configuration is never deleted: it is cancelled or
    set not effective, and the audit trail keeps referring to it."""

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(UsageServiceCatalogDefinition)
class DefinitionAdmin(ConfigurationAdmin):
    list_display = ("name", "state_display")
    fields = ("name", "state", "usage_service_types", "providers")
    readonly_fields = ("state",)
    filter_horizontal = ("usage_service_types", "providers")
    inlines = [DefaultRateInline]
    lifecycle_actions = {"set_effective": "Set effective", "set_not_effective": "Set not effective", "cancel": "Cancel"}

    @admin.display(description="state", ordering="state")
    def state_display(self, obj):
        return state_badge(obj.state, obj.get_state_display())

    def lifecycle_action_objects(self):
        return services.DEFINITION_ACTIONS

    def lifecycle_run(self, request, obj, code):
        return services.usage_definition_act(definition=obj, action=code, performed_by=request.user, channel=Channel.CALL_CENTER)

    def save_model(self, request, obj, form, change):
        if change:
            if form.changed_data:
                raise ApplicationError("A definition's name, types and providers are fixed once created; "
                                       "create a new definition instead.", code="definition_fixed")
            return
        adopt_saved(obj, services.usage_definition_create(
            name=form.cleaned_data["name"], usage_service_types=form.cleaned_data["usage_service_types"],
            providers=form.cleaned_data["providers"], performed_by=request.user,
        ))

    def save_formset(self, request, form, formset, change):
        for inline in formset.forms:
            if not inline.has_changed() or formset._should_delete_form(inline):
                continue
            services.usage_definition_default_rate_set(
                definition=form.instance, product_type=inline.cleaned_data["product_type"],
                base_rate=inline.cleaned_data["base_rate"], tiers=inline.cleaned_data["tiers_text"] or [],
                performed_by=request.user,
            )


@admin.register(UsageServiceCatalog)
class UsageServiceCatalogAdmin(ConfigurationAdmin):
    list_display = ("name", "version", "state_display", "provider", "conditions", "validity", "priority")
    list_filter = ("state", "provider", "classifications")
    search_fields = ("name",)
    show_full_result_count = False
    fields = ("name", "provider", "currency", ("valid_from", "valid_until"), "priority", "classifications",
              "required_services", "state", "definition", "version", "previous_version")
    readonly_fields = ("state", "definition", "version", "previous_version")
    filter_horizontal = ("classifications", "required_services")
    inlines = [UsageServiceInline]
    lifecycle_actions = {"set_effective": "Set effective", "set_not_effective": "Set not effective", "cancel": "Cancel",
                         "revise": "New version"}

    @admin.display(description="state", ordering="state")
    def state_display(self, obj):
        return state_badge(obj.state, obj.get_state_display())

    @admin.display(description="accounts")
    def conditions(self, obj):
        codes = [c.name for c in obj.classifications.all()]
        return ", ".join(codes) if codes else "any"

    @admin.display(description="valid")
    def validity(self, obj):
        if not obj.valid_from and not obj.valid_until:
            return "always"
        return f"{obj.valid_from or '…'} – {obj.valid_until or '…'}"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("provider").prefetch_related("classifications")

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "required_services":
            from ..models import Product

            kwargs["queryset"] = Product.objects.filter(product_type__service_type="TERMED")
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def lifecycle_available(self, obj):
        available = super().lifecycle_available(obj)
        if obj.state not in ("EFFECTIVE", "NOT_EFFECTIVE") or hasattr(obj, "next_version"):
            available = [(code, label) for code, label in available if code != "revise"]
        return available

    def lifecycle_action_objects(self):
        return services.CATALOG_ACTIONS

    def lifecycle_run(self, request, obj, code):
        if code == "revise":
            return services.usage_catalog_revise(catalog=obj, performed_by=request.user)
        return services.usage_catalog_act(catalog=obj, action=code, performed_by=request.user, channel=Channel.CALL_CENTER)

    def get_formset_kwargs(self, request, obj, inline, prefix):
        kwargs = super().get_formset_kwargs(request, obj, inline, prefix)
        definition = obj.definition if obj is not None and obj.pk else services.usage_definition_effective()
        default = definition.default_rates.first() if definition else None
        if isinstance(inline, UsageServiceInline) and default is not None:
            kwargs["initial"] = [{"base_rate": default.base_rate, "tiers_text": services.tiers_text(services._tiers_of(default)) or "none"}]
        return kwargs

    def save_model(self, request, obj, form, change):
        data = {name: form.cleaned_data[name] for name in form.changed_data if name in services.CATALOG_FIELDS
                or name in ("classifications", "required_services")}
        if change:
            if data:
                services.usage_catalog_update(catalog=obj, data=data, performed_by=request.user)
            return
        adopt_saved(obj, services.usage_catalog_create(
            name=form.cleaned_data["name"], provider=form.cleaned_data["provider"], currency=form.cleaned_data["currency"],
            valid_from=form.cleaned_data["valid_from"], valid_until=form.cleaned_data["valid_until"],
            priority=form.cleaned_data["priority"], classifications=form.cleaned_data["classifications"],
            required_services=form.cleaned_data["required_services"], performed_by=request.user,
        ))

    def save_formset(self, request, form, formset, change):
        catalog = form.instance
        for inline in formset.forms:
            service = inline.instance if inline.instance.pk else None
            if formset._should_delete_form(inline):
                if service is not None:
                    services.usage_service_remove(usage_service=service, performed_by=request.user)
                continue
            if not inline.has_changed():
                continue
            data = inline.cleaned_data
            if service is None:
                services.usage_service_add(
                    catalog=catalog, product=data["product"], provisioning_id=data.get("provisioning_id", ""),
                    base_rate=data.get("base_rate"), tiers=data.get("tiers_text"), performed_by=request.user,
                )
            else:
                tiers = data.get("tiers_text")
                services.usage_service_update(
                    usage_service=UsageService.objects.get(pk=service.pk), provisioning_id=data.get("provisioning_id", ""),
                    base_rate=data.get("base_rate"), tiers=[] if tiers is None else tiers, performed_by=request.user,
                )
