"""One-time charges and promotion grants in the admin: agents add a charge or grant a
promotion (or a customer's coupon) to a subscription; both go through the services, so a
refusal shows every reason on the form and a repeat of the same reference adds nothing."""

from __future__ import annotations

import uuid

from django import forms
from django.contrib import admin

from core.admin import ServiceAdminMixin, ServiceModelForm, state_badge
from core.choices import Channel

from .models import OneTimeCharge, PromotionGrant
from .services.charges import one_time_charge_add, promotion_grant


class OneTimeChargeForm(ServiceModelForm):
    class Meta:
        model = OneTimeCharge
        fields = ("account", "subscription", "product", "charged_on")


@admin.register(OneTimeCharge)
class OneTimeChargeAdmin(ServiceAdminMixin, admin.ModelAdmin):
    form = OneTimeChargeForm
    list_display = ("description", "account", "amount", "currency", "state_display", "charged_on", "invoice_line")
    list_filter = ("state",)
    list_select_related = ("account", "invoice_line")
    search_fields = ("=account__number", "=reference")
    autocomplete_fields = ("account", "subscription", "product")
    readonly_fields = ("description", "amount", "currency", "state_display", "reference", "invoice_line")

    def get_fields(self, request, obj=None):
        return OneTimeChargeForm.Meta.fields if obj is None else (*OneTimeChargeForm.Meta.fields, *self.readonly_fields)

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is None else (*OneTimeChargeForm.Meta.fields, *self.readonly_fields)

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="state", ordering="state")
    def state_display(self, obj):
        return state_badge(obj.state, obj.get_state_display())

    def service_create(self, request, data):
        return one_time_charge_add(account=data["account"], subscription=data.get("subscription"), product=data["product"],
                                   charged_on=data.get("charged_on"), reference=f"admin:{uuid.uuid4()}",
                                   performed_by=request.user, channel=Channel.CALL_CENTER)


class PromotionGrantForm(ServiceModelForm):
    coupon_code = forms.CharField(required=False, max_length=40, help_text="The customer's coupon (instead of a promotion).")

    class Meta:
        model = PromotionGrant
        fields = ("subscription", "promotion", "coupon_code", "starts_on")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["promotion"].required = False
        self.fields["starts_on"].required = False


@admin.register(PromotionGrant)
class PromotionGrantAdmin(ServiceAdminMixin, admin.ModelAdmin):
    form = PromotionGrantForm
    list_display = ("promotion", "subscription", "starts_on", "redemption", "channel", "granted_by", "created_at")
    list_select_related = ("promotion", "subscription", "redemption", "granted_by")
    search_fields = ("=subscription__number", "=reference")
    autocomplete_fields = ("subscription",)
    readonly_fields = ("redemption", "reference", "granted_by", "channel", "created_at")

    def get_fields(self, request, obj=None):
        return PromotionGrantForm.Meta.fields if obj is None else ("subscription", "promotion", "starts_on", *self.readonly_fields)

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else ("subscription", "promotion", "starts_on", *self.readonly_fields)

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def service_create(self, request, data):
        return promotion_grant(subscription=data["subscription"], promotion=data.get("promotion"),
                               coupon_code=data.get("coupon_code") or None, starts_on=data.get("starts_on"),
                               reference=f"admin:{uuid.uuid4()}", performed_by=request.user, channel=Channel.CALL_CENTER)
