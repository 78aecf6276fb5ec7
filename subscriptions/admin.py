"""The call center's subscription screens: the subscription with its services, items and
history; a button per action its state allows; and "Add Service Usage" (the PPV order)
with a price preview before confirming. Every button runs the same services as the API."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from accounts.models import AccountsReceivable
from billing.models import BillingTermScheme
from core.actions import ActionRejected
from core.admin import state_badge
from core.choices import Channel
from core.exceptions import ApplicationError

from .forms import AddServiceUsageForm, SubscriptionActionForm
from .models import Device, InstalledItem, Subscription, SubscriptionAction, SubscriptionService
from .services.actions import ACTION_TYPES, subscription_act, subscription_create
from .services.lifecycle import subscription_actions_available
from .services.devices import device_remove
from .services.orders import order_quote, order_udr, usage_order_place

def actions_available(subscription: Subscription) -> list[tuple[str, str]]:
    """(behavior, label) of every action the subscription's state allows, except the order
    (which has its own page)."""
    return [(behavior, SubscriptionAction.Behavior(behavior).label) for behavior in subscription_actions_available(subscription)
            if behavior != SubscriptionAction.Behavior.ADD_SERVICE_USAGE]


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class ServiceInline(ReadOnlyInline):
    model = SubscriptionService
    fields = readonly_fields = ("product", "price_plan", "state", "start_date", "end_date")


class InstalledItemInline(ReadOnlyInline):
    model = InstalledItem
    fields = readonly_fields = ("product", "serial_number", "state", "installed_at", "removed_at")


class ActionInline(ReadOnlyInline):
    model = SubscriptionAction
    fields = readonly_fields = ("created_at", "behavior", "state_badge", "channel", "performed_by", "scheduled_for", "outcome")
    ordering = ("-created_at", "-pk")
    verbose_name_plural = "actions (history)"

    @admin.display(description="state")
    def state_badge(self, action):
        return state_badge(action.state, action.get_state_display())

    @admin.display(description="reasons / result")
    def outcome(self, action):
        if action.reasons:
            return " ".join(action.reasons)
        return ", ".join(f"{key}: {value}" for key, value in action.result.items() if key in {"amount", "currency", "udr"})


class NewSubscriptionForm(forms.Form):
    account = forms.ModelChoiceField(AccountsReceivable.objects.filter(state="ACTIVE").select_related("contact"))
    billing_term_scheme = forms.ModelChoiceField(BillingTermScheme.objects.filter(state="EFFECTIVE"))


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = ("number", "account", "state_display", "billing_term_scheme", "created_at")
    list_select_related = ("account__contact", "billing_term_scheme")
    list_filter = ("state", "billing_term_scheme")
    search_fields = ("=number", "=account__number")
    show_full_result_count = False
    fields = ("number", "account", "state_display", "billing_term_scheme", "state_changed_at", "created_at")
    readonly_fields = fields
    inlines = [ServiceInline, InstalledItemInline, ActionInline]
    change_form_template = "admin/subscriptions/subscription/change_form.html"

    @admin.display(description="state", ordering="state")
    def state_display(self, subscription):
        return state_badge(subscription.state, subscription.get_state_display())

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # terminated, never deleted

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # changed only through actions

    def may_act(self, request) -> bool:
        return request.user.has_perm("subscriptions.act_subscription")

    def may_order(self, request) -> bool:
        return request.user.has_perm("subscriptions.order_usage")

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("<int:pk>/action/<str:behavior>/", wrap(self.action_view), name="subscriptions_subscription_action"),
            path("<int:pk>/add-service-usage/", wrap(self.usage_view), name="subscriptions_subscription_usage"),
            path("device/<int:pk>/remove/", wrap(self.device_remove_view), name="subscriptions_device_remove"),
        ] + super().get_urls()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        subscription = self.get_object(request, object_id)
        extra_context = extra_context or {}
        if subscription is not None:
            extra_context["subscription_actions"] = actions_available(subscription) if self.may_act(request) else []
            extra_context["may_order"] = self.may_order(request) and subscription.state == Subscription.State.EFFECTIVE
        return super().change_view(request, object_id, form_url, extra_context)

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context=None) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = NewSubscriptionForm(request.POST or None, initial={"account": request.GET.get("account")})
        if request.method == "POST" and form.is_valid():
            try:
                subscription = subscription_create(account=form.cleaned_data["account"],
                                                   billing_term_scheme=form.cleaned_data["billing_term_scheme"],
                                                   performed_by=request.user, channel=Channel.CALL_CENTER)
            except ApplicationError as error:
                for name, problems in (error.fields or {None: [error.message]}).items():
                    for problem in problems:
                        form.add_error(name if name in form.fields else None, problem)
            else:
                self.message_user(request, f"Subscription {subscription.number} created (DRAFT): add services, then activate.",
                                  messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:subscriptions_subscription_change", args=[subscription.pk]))
        return self._page(request, "admin/subscriptions/form_page.html", title="New subscription", form=form,
                          submit="Create subscription")

    def _page(self, request, template: str, **context) -> TemplateResponse:
        return TemplateResponse(request, template, {**self.admin_site.each_context(request), "opts": self.model._meta, **context})

    def action_view(self, request: HttpRequest, pk: int, behavior: str) -> HttpResponse:
        if not self.may_act(request) or behavior not in ACTION_TYPES or behavior == SubscriptionAction.Behavior.ADD_SERVICE_USAGE:
            raise PermissionDenied
        subscription = get_object_or_404(Subscription.objects.select_related("account__contact"), pk=pk)
        label = SubscriptionAction.Behavior(behavior).label
        form = SubscriptionActionForm(request.POST or None, subscription=subscription, behavior=behavior)
        change_url = reverse("admin:subscriptions_subscription_change", args=[pk])
        if request.method == "POST" and form.is_valid():
            try:
                action = subscription_act(subscription=subscription, behavior=behavior, performed_by=request.user,
                                          channel=Channel.CALL_CENTER, scheduled_for=form.cleaned_data.get("scheduled_for"),
                                          transaction_reference=form.cleaned_data["transaction_reference"], **form.parameters())
            except ActionRejected as rejected:
                for reason in rejected.reasons:
                    form.add_error(None, reason)
            except ApplicationError as error:
                form.add_error(None, error.message)
            else:
                done = "scheduled" if action.state == SubscriptionAction.State.SCHEDULED else "done"
                self.message_user(request, f"{label}: {done}.", messages.SUCCESS)
                return HttpResponseRedirect(change_url)
        return self._page(request, "admin/subscriptions/form_page.html", title=f"{label}: {subscription}", form=form,
                          submit=label, subscription=subscription, change_url=change_url)

    def device_remove_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Remove a customer's device (its key is revoked, its streams end; the slot frees
        after the cooldown). Asks for confirmation first."""
        if not request.user.has_perm("subscriptions.change_device"):
            raise PermissionDenied
        device = get_object_or_404(Device.objects.select_related("account__contact"), pk=pk)
        account_url = reverse("admin:accounts_accountsreceivable_change", args=[device.account_id])
        if request.method == "POST":
            try:
                device_remove(device=device, performed_by=request.user, channel=Channel.CALL_CENTER)
            except ApplicationError as error:
                self.message_user(request, f"{device}: {error.message}", messages.ERROR)
            else:
                self.message_user(request, f"Removed {device}.", messages.SUCCESS)
            return HttpResponseRedirect(account_url)
        return self._page(request, "admin/core/confirm_action.html", title=f"Remove {device}?", object=device,
                          label="Remove", change_url=account_url)

    def usage_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Add Service Usage: choose the movie, see the price it will be charged, confirm."""
        if not self.may_order(request):
            raise PermissionDenied
        subscription = get_object_or_404(Subscription.objects.select_related("account__contact"), pk=pk)
        form = AddServiceUsageForm(request.POST or None, subscription=subscription)
        quote = None
        if request.method == "POST" and form.is_valid():
            title, device = form.cleaned_data["title"], form.cleaned_data["device"]
            product = form.product()
            try:
                if not form.is_confirmation():
                    quote = order_quote(subscription=subscription, product=product, usage_at=timezone.now())
                    form = AddServiceUsageForm(initial={**form.cleaned_data, "confirmed": True, "previewed": form.choice()},
                                               subscription=subscription)
                else:
                    action = usage_order_place(subscription=subscription, title=title, product=product, device=device,
                                               transaction_reference=form.cleaned_data["transaction_reference"],
                                               performed_by=request.user, channel=Channel.CALL_CENTER)
                    udr = order_udr(action)
                    self.message_user(request, f"Ordered {title} for {udr.amount:.2f} {udr.currency}: {udr.rate_reason}.", messages.SUCCESS)
                    account_url = reverse("admin:accounts_accountsreceivable_change", args=[subscription.account_id])
                    return HttpResponseRedirect(account_url)
            except ActionRejected as rejected:
                for reason in rejected.reasons:
                    form.add_error(None, reason)
            except ApplicationError as error:
                form.add_error(None, error.message)
        return self._page(request, "admin/subscriptions/add_service_usage.html", title=f"Add Service Usage: {subscription.account}",
                          form=form, quote=quote, subscription=subscription,
                          change_url=reverse("admin:subscriptions_subscription_change", args=[pk]))
