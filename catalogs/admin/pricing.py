"""Price plans, promotions and coupons, for marketing staff (agents and finance may look).

Every save goes through ``catalogs.services.pricing`` inside one transaction: a refusal
shows every reason and nothing is saved. Life cycle actions are buttons on the object's
page (with a confirmation) and bulk actions on the list, both reporting per row. A plan or
promotion is editable only while DRAFT; after that its fields and rates are read-only.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db.models import Count, Exists, OuterRef


from core.actions import ActionRejected
from core.admin import AuditHistoryMixin, LifecycleActionsMixin, ReadOnlyAdminMixin, ServiceAdminMixin, adopt_saved, state_badge
from core.choices import Channel, LifecycleState
from core.exceptions import ApplicationError

from ..models import Coupon, CouponRedemption, PricePlan, PricePlanRate, Product, ProductType, Promotion
from ..services import pricing as services

LIFECYCLE_LABELS = {"set_effective": "Set effective", "set_not_effective": "Set not effective", "cancel": "Cancel"}


def _is_draft(obj) -> bool:
    return obj is None or obj.state == LifecycleState.DRAFT


def _currency_field() -> forms.ChoiceField:
    return forms.ChoiceField(choices=[(code, code) for code in settings.CURRENCIES])


class _ServiceSavingAdmin(ServiceAdminMixin, AuditHistoryMixin, LifecycleActionsMixin, admin.ModelAdmin):
    """The form and its inlines are saved by services in one transaction; the admin never
    saves a model itself. Subclasses name their ``service_param`` and ``act`` service."""

    lifecycle_actions = LIFECYCLE_LABELS
    service_param: str
    editable_fields: tuple[str, ...] = ()

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # cancelled or set not effective, never deleted: the audit trail refers to them

    def get_readonly_fields(self, request, obj=None):
        if _is_draft(obj):
            return ("state_display",)
        return ("state_display", *self.editable_fields)

    @staticmethod
    def changed(form, names) -> dict:
        return {name: form.cleaned_data[name] for name in form.changed_data if name in names}

    # --- life cycle -----------------------------------------------------------------
    def lifecycle_run(self, request, obj, code: str):
        return self.act(**{self.service_param: obj, "action": code, "performed_by": request.user, "channel": Channel.CALL_CENTER})

    def _act_on_each(self, request, queryset, code: str) -> None:
        label = LIFECYCLE_LABELS[code]
        for obj in queryset:
            try:
                self.lifecycle_run(request, obj, code)
            except ActionRejected as rejected:
                self.message_user(request, f"{obj}: {label.lower()} rejected: {' '.join(rejected.reasons)}", messages.ERROR)
            except ApplicationError as error:
                self.message_user(request, f"{obj}: {label.lower()} refused: {error}", messages.ERROR)
            else:
                self.message_user(request, f"{obj}: {label.lower()} done.", messages.SUCCESS)

    @admin.action(description="Set selected effective", permissions=["change"])
    def set_effective_selected(self, request, queryset):
        self._act_on_each(request, queryset, "set_effective")

    @admin.action(description="Set selected not effective", permissions=["change"])
    def set_not_effective_selected(self, request, queryset):
        self._act_on_each(request, queryset, "set_not_effective")

    @admin.action(description="Cancel selected (drafts only)", permissions=["change"])
    def cancel_selected(self, request, queryset):
        self._act_on_each(request, queryset, "cancel")

    @admin.display(description="state", ordering="state")
    def state_display(self, obj):
        return state_badge(obj.state, obj.get_state_display())


# --- Price plans ---------------------------------------------------------------------------

class PricePlanForm(forms.ModelForm):
    currency = _currency_field()

    class Meta:
        model = PricePlan
        fields = "__all__"


class PricePlanRateInline(admin.TabularInline):
    """The plan's rates; read-only once the plan has left DRAFT."""

    model = PricePlanRate
    extra = 0
    fields = ("product", "charge_type", "amount", "billing_period", "free_trial_days")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "product":  # usage services are priced in usage service catalogs
            kwargs["queryset"] = Product.objects.exclude(product_type__service_type=ProductType.ServiceType.USAGE).filter(is_active=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_add_permission(self, request, obj=None) -> bool:
        return _is_draft(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None) -> bool:
        return _is_draft(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return _is_draft(obj) and super().has_delete_permission(request, obj)


@admin.register(PricePlan)
class PricePlanAdmin(_ServiceSavingAdmin):
    form = PricePlanForm
    list_display = ("name", "code", "state_display", "currency", "valid_from", "valid_until", "is_free")
    list_filter = ("state", "currency")
    search_fields = ("code", "name")
    show_full_result_count = False
    fields = ("code", "name", "state_display", "currency", "prices_include_tax", ("valid_from", "valid_until"), "classifications")
    editable_fields = ("code", "name", "currency", "prices_include_tax", "valid_from", "valid_until", "classifications")
    filter_horizontal = ("classifications",)
    inlines = [PricePlanRateInline]
    actions = ["set_effective_selected", "set_not_effective_selected", "cancel_selected"]
    service_param = "price_plan"
    act = staticmethod(services.price_plan_act)

    def get_queryset(self, request):
        rates = PricePlanRate.objects.filter(price_plan=OuterRef("pk"))
        return super().get_queryset(request).annotate(has_rates=Exists(rates), has_paid_rates=Exists(rates.filter(amount__gt=0)))

    @admin.display(description="free", boolean=True)
    def is_free(self, plan) -> bool:
        """Freemium: every rate is 0.00."""
        return plan.has_rates and not plan.has_paid_rates

    def lifecycle_action_objects(self):
        return services.PRICE_PLAN_ACTIONS

    def save_model(self, request, obj, form, change):
        fields = (*services.PRICE_PLAN_FIELDS, "classifications")
        if change:
            data = self.changed(form, fields)
            if data:
                services.price_plan_update(price_plan=obj, data=data, performed_by=request.user, channel=Channel.CALL_CENTER)
            return
        adopt_saved(obj, services.price_plan_create(
            **{name: form.cleaned_data[name] for name in fields}, performed_by=request.user, channel=Channel.CALL_CENTER,
        ))

    def save_formset(self, request, form, formset, change):
        plan = form.instance
        for inline in formset.forms:
            rate = inline.instance if inline.instance.pk else None
            if formset._should_delete_form(inline):
                if rate is not None:
                    services.price_plan_rate_remove(rate=PricePlanRate.objects.get(pk=rate.pk), performed_by=request.user)
                continue
            if not inline.has_changed():
                continue
            data = inline.cleaned_data
            if rate is not None and ({"product", "charge_type"} & set(inline.changed_data)):
                # Another product or charge type is another rate: replace this one.
                services.price_plan_rate_remove(rate=PricePlanRate.objects.get(pk=rate.pk), performed_by=request.user)
            services.price_plan_rate_set(
                price_plan=plan, product=data["product"], charge_type=data["charge_type"], amount=data["amount"],
                billing_period=data.get("billing_period") or "", free_trial_days=data.get("free_trial_days") or 0,
                performed_by=request.user, channel=Channel.CALL_CENTER,
            )


# --- Promotions and coupons ----------------------------------------------------------------

class PromotionForm(forms.ModelForm):
    class Meta:
        model = Promotion
        fields = "__all__"
        help_texts = {"products": "Termed services it discounts; none selected: every recurring charge."}


class CouponForm(forms.ModelForm):
    class Meta:
        model = Coupon
        fields = ("code", "max_redemptions", "max_per_account", "is_active")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["code"].disabled = True  # customers already hold it

    def clean_code(self):
        return services.coupon_code_normalize(self.cleaned_data["code"])


class CouponInline(admin.TabularInline):
    """Coupons are switched off, never deleted (redemptions refer to them)."""

    model = Coupon
    form = CouponForm
    extra = 0
    can_delete = False
    fields = ("code", "max_redemptions", "max_per_account", "is_active", "redemption_count")
    readonly_fields = ("redemption_count",)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(redemptions_total=Count("redemptions"))

    @admin.display(description="redeemed")
    def redemption_count(self, coupon) -> int:
        return getattr(coupon, "redemptions_total", 0)

    def _open(self, obj) -> bool:
        return obj is None or obj.state != LifecycleState.CANCELLED

    def has_add_permission(self, request, obj=None) -> bool:
        return self._open(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None) -> bool:
        return self._open(obj) and super().has_change_permission(request, obj)


@admin.register(Promotion)
class PromotionAdmin(_ServiceSavingAdmin):
    form = PromotionForm
    list_display = ("name", "code", "state_display", "kind", "value", "periods", "valid_from", "valid_until",
                    "requires_coupon", "redemptions")
    list_filter = ("state", "kind", "requires_coupon")
    search_fields = ("code", "name")
    show_full_result_count = False
    fields = ("code", "name", "state_display", ("kind", "value"), "periods", ("valid_from", "valid_until"),
              "requires_coupon", "products")
    editable_fields = services.PROMOTION_FIELDS + ("products",)
    filter_horizontal = ("products",)
    inlines = [CouponInline]
    actions = ["set_effective_selected", "set_not_effective_selected", "cancel_selected"]
    service_param = "promotion"
    act = staticmethod(services.promotion_act)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(redemptions_total=Count("coupons__redemptions"))

    @admin.display(description="redemptions", ordering="redemptions_total")
    def redemptions(self, promotion) -> int:
        return promotion.redemptions_total

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "products":
            kwargs["queryset"] = Product.objects.filter(product_type__service_type=ProductType.ServiceType.TERMED)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def lifecycle_action_objects(self):
        return services.PROMOTION_ACTIONS

    def save_model(self, request, obj, form, change):
        fields = (*services.PROMOTION_FIELDS, "products")
        if change:
            data = self.changed(form, fields)
            if data:
                services.promotion_update(promotion=obj, data=data, performed_by=request.user, channel=Channel.CALL_CENTER)
            return
        adopt_saved(obj, services.promotion_create(
            **{name: form.cleaned_data[name] for name in fields}, performed_by=request.user, channel=Channel.CALL_CENTER,
        ))

    def save_formset(self, request, form, formset, change):
        promotion = form.instance
        for inline in formset.forms:
            if not inline.has_changed() or formset._should_delete_form(inline):
                continue
            data = inline.cleaned_data
            if inline.instance.pk:
                services.coupon_update(
                    coupon=Coupon.objects.get(pk=inline.instance.pk),
                    data={name: data[name] for name in inline.changed_data if name in services.COUPON_EDITABLE_FIELDS},
                    performed_by=request.user, channel=Channel.CALL_CENTER,
                )
            else:
                services.coupon_create(
                    promotion=promotion, code=data["code"], max_redemptions=data.get("max_redemptions"),
                    max_per_account=data.get("max_per_account") or 1, performed_by=request.user, channel=Channel.CALL_CENTER,
                )


@admin.register(CouponRedemption)
class CouponRedemptionAdmin(AuditHistoryMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Who redeemed which coupon, when, under which reference. Read-only: redemptions are
    made by ``coupon_redeem`` (an order, the portal), never typed in."""

    list_display = ("redeemed_at", "coupon", "promotion", "account", "reference")
    list_select_related = ("coupon__promotion", "account__contact")
    search_fields = ("=reference", "=coupon__code")
    show_full_result_count = False
    fields = ("coupon", "account", "reference", "redeemed_at")
    readonly_fields = fields

    @admin.display(description="promotion")
    def promotion(self, redemption) -> str:
        return str(redemption.coupon.promotion)
