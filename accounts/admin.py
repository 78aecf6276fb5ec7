"""The call-center screens: find a customer, see everything about them, act on them.

Admin classes stay thin: searches go through ``selectors``, every write through
``services``. Actions report per row; terminating asks for confirmation and a reason.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse

from core.admin import AuditedSaveMixin, ReadOnlyAdminMixin, state_badge
from core.choices import Channel
from core.exceptions import ApplicationError, ValidationFailed

from . import selectors, services
from .forms import AccountChangeForm, CustomerSignUpForm, DeviceCredentialForm, ReasonForm
from .models import AccountEvent, AccountsReceivable, Address, Classification, Contact, DeviceCredential

class DeviceCredentialInline(admin.TabularInline):
    model = DeviceCredential
    extra = 0
    can_delete = False
    fields = ("label", "key_prefix", "created_at", "last_used_at", "revoked_at")
    readonly_fields = fields
    verbose_name_plural = "device keys"

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(AccountsReceivable)
class CustomerAccountAdmin(admin.ModelAdmin):
    form = AccountChangeForm
    change_form_template = "admin/accounts/accountsreceivable/change_form.html"
    list_display = ("number", "customer_name", "email", "phone", "classification", "state_display", "created_at")
    list_display_links = ("number", "customer_name")
    list_select_related = ("contact", "classification")
    list_filter = ("state", "classification")
    search_fields = ("number",)  # the real search is selectors.customer_search
    search_help_text = "Account number, name, company, e-mail or phone (prefix match)."
    show_full_result_count = False
    list_per_page = 50
    ordering = ("-created_at",)
    fields = ("classification", "credit_limit")
    inlines = [DeviceCredentialInline]
    actions = ["suspend_selected", "reactivate_selected"]

    # --- list -----------------------------------------------------------------------
    @admin.display(description="customer", ordering="contact__last_name")
    def customer_name(self, account: AccountsReceivable) -> str:
        return account.contact.display_name

    @admin.display(description="e-mail")
    def email(self, account: AccountsReceivable) -> str:
        return account.contact.email

    @admin.display(description="phone")
    def phone(self, account: AccountsReceivable) -> str:
        return account.contact.mobile_phone or account.contact.phone

    @admin.display(description="state", ordering="state")
    def state_display(self, account: AccountsReceivable) -> str:
        return state_badge(account.state, account.get_state_display())

    def get_search_results(self, request, queryset, search_term):
        return selectors.customer_search(query=search_term, queryset=queryset), False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # accounts are terminated, never deleted

    # --- per-row actions ------------------------------------------------------------
    def _run_for_each(self, request, queryset, service, verb: str) -> None:
        for account in queryset:
            try:
                service(account=account, performed_by=request.user, channel=Channel.CALL_CENTER)
            except ApplicationError as error:
                self.message_user(request, f"{account.number}: not {verb}: {error}", messages.ERROR)
            else:
                self.message_user(request, f"{account.number}: {verb}.", messages.SUCCESS)

    @admin.action(description="Suspend selected accounts", permissions=["suspend"])
    def suspend_selected(self, request, queryset):
        self._run_for_each(request, queryset, services.account_suspend, "suspended")

    @admin.action(description="Reactivate selected accounts", permissions=["suspend"])
    def reactivate_selected(self, request, queryset):
        self._run_for_each(request, queryset, services.account_reactivate, "reactivated")

    def has_suspend_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("accounts.suspend_accountsreceivable")

    def has_terminate_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("accounts.terminate_accountsreceivable")

    # --- the customer page ----------------------------------------------------------
    def get_readonly_fields(self, request, obj=None):
        return ()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        account = self.get_object(request, object_id)
        extra_context = extra_context or {}
        if account is not None:
            allowed = {
                "suspend": self.has_suspend_permission(request),
                "reactivate": self.has_suspend_permission(request),
                "terminate": self.has_terminate_permission(request),
            }
            extra_context.update(
                account=account,
                contact=account.contact,
                addresses=account.contact.addresses.all(),
                events=selectors.account_events(account=account, limit=30),
                lifecycle_actions=[
                    action for action in AccountsReceivable.LIFECYCLE.actions_from(account.state) if allowed[action]
                ],
                state_badge=state_badge(account.state, account.get_state_display()),
                can_change_contact=request.user.has_perm("accounts.change_contact"),
                can_issue_device_key=request.user.has_perm("accounts.add_devicecredential")
                and account.state != AccountsReceivable.State.TERMINATED,
                show_save_and_add_another=False,
                **self._subscription_overview(request, account),
                **self._billing_overview(request, account),
                **self._payments_overview(request, account),
                **self._value_overview(request, account),
            )
        return super().change_view(request, object_id, form_url, extra_context)

    @staticmethod
    def _subscription_overview(request, account) -> dict:
        """Subscriptions, devices, orders and actions (the subscriptions app's panel)."""
        from subscriptions.selectors_customer import customer_overview

        if not request.user.has_perm("subscriptions.view_subscription"):
            return {}
        return {
            **customer_overview(account=account),
            "can_subscribe": request.user.has_perm("subscriptions.add_subscription") and account.state == AccountsReceivable.State.ACTIVE,
            "can_order": request.user.has_perm("subscriptions.order_usage"),
            "can_remove_devices": request.user.has_perm("subscriptions.change_device"),
        }

    @staticmethod
    def _billing_overview(request, account) -> dict:
        """Balance, last invoices and statement lines (the billing app's panel)."""
        from billing.selectors import account_statement, ar_balance, invoice_list_for_account

        if not request.user.has_perm("billing.view_invoice"):
            return {}
        return {"billing": {"balance": ar_balance(account=account), "invoices": invoice_list_for_account(account=account, limit=10),
                            "statement": account_statement(account=account, limit=10)[::-1]}}

    @staticmethod
    def _payments_overview(request, account) -> dict:
        """Credit, payment methods, payments and dunning (the payments app's panel)."""
        from payments.selectors import customer_payments_overview

        if not request.user.has_perm("payments.view_payment"):
            return {}
        return {"payments_panel": {**customer_payments_overview(account=account),
                                   "can_take_payment": request.user.has_perm("payments.add_payment")}}

    @staticmethod
    def _value_overview(request, account) -> dict:
        """Lifetime revenue and predicted lifetime value (the analytics app's panel; read-only)."""
        from analytics.selectors import customer_value_panel

        if not request.user.has_perm("analytics.view_accountmonth"):
            return {}
        return {"customer_value": customer_value_panel(account=account)}

    def save_model(self, request, obj, form, change):
        if not change:
            raise DjangoPermissionDenied("Customers are created with the sign-up form.")
        data = {name: form.cleaned_data[name] for name in form.changed_data}
        if data:
            services.account_update(
                account=obj, data=data, performed_by=request.user, channel=Channel.CALL_CENTER
            )

    def save_related(self, request, form, formsets, change):
        """Inlines here are read-only; nothing else is saved behind the service's back."""

    def construct_change_message(self, request, form, formsets, add=False):
        return []  # the services write the audit trail (AccountEvent), not the admin log

    def log_change(self, request, obj, message):
        """The AccountEvent written by the service is the audit trail."""

    def log_addition(self, request, obj, message):
        """The AccountEvent written by the service is the audit trail."""

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ApplicationError as error:
            self.message_user(request, str(error), messages.ERROR)
            return HttpResponseRedirect(request.path)

    # --- extra pages ----------------------------------------------------------------
    def get_urls(self):
        custom = [
            path("<int:pk>/lifecycle/<str:action>/", self.admin_site.admin_view(self.lifecycle_view), name="accounts_accountsreceivable_lifecycle"),
            path("<int:pk>/device-key/", self.admin_site.admin_view(self.device_key_view), name="accounts_accountsreceivable_device_key"),
        ]
        return custom + super().get_urls()

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context=None) -> HttpResponse:
        """Sign a new customer up: contact, billing address and account in one step."""
        if not self.has_add_permission(request):
            raise DjangoPermissionDenied
        form = CustomerSignUpForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                account = services.customer_sign_up(
                    contact=form.contact_data(),
                    address=form.address_data(),
                    currency=form.cleaned_data["currency"],
                    classification=form.cleaned_data["classification"],
                    credit_limit=form.cleaned_data["credit_limit"],
                    performed_by=request.user,
                    channel=Channel.CALL_CENTER,
                )
            except ValidationFailed as error:
                form.add_service_errors(error.fields)
            else:
                self.message_user(request, f"Signed up {account.contact.display_name} as {account.number}.", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:accounts_accountsreceivable_change", args=[account.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": "Sign up a customer",
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/accounts/customer_sign_up.html", context)

    LIFECYCLE_SERVICES = {
        "suspend": (services.account_suspend, "suspend", "has_suspend_permission"),
        "reactivate": (services.account_reactivate, "reactivate", "has_suspend_permission"),
        "terminate": (services.account_terminate, "terminate", "has_terminate_permission"),
    }

    def lifecycle_view(self, request: HttpRequest, pk: int, action: str) -> HttpResponse:
        """Confirm a state change, with a reason, then run its service."""
        if action not in self.LIFECYCLE_SERVICES:
            raise DjangoPermissionDenied
        service, verb, permission = self.LIFECYCLE_SERVICES[action]
        if not getattr(self, permission)(request):
            raise DjangoPermissionDenied
        account = get_object_or_404(AccountsReceivable.objects.select_related("contact"), pk=pk)
        change_url = reverse("admin:accounts_accountsreceivable_change", args=[account.pk])
        form = ReasonForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                service(account=account, reason=form.cleaned_data["reason"], performed_by=request.user, channel=Channel.CALL_CENTER)
            except ValidationFailed as error:
                for message in error.fields.get("reason", [error.message]):
                    form.add_error("reason", message)
            except ApplicationError as error:
                self.message_user(request, str(error), messages.ERROR)
                return HttpResponseRedirect(change_url)
            else:
                self.message_user(request, f"{account.number}: {verb} done.", messages.SUCCESS)
                return HttpResponseRedirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "title": f"{verb.capitalize()} {account.number} {account.contact.display_name}?",
            "form": form,
            "account": account,
            "action": verb,
            "destructive": action == "terminate",
            "change_url": change_url,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/accounts/confirm_lifecycle.html", context)

    def device_key_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Issue a device key and show it once."""
        if not request.user.has_perm("accounts.add_devicecredential"):
            raise DjangoPermissionDenied
        account = get_object_or_404(AccountsReceivable.objects.select_related("contact"), pk=pk)
        form = DeviceCredentialForm(request.POST or None)
        raw_key = None
        if request.method == "POST" and form.is_valid():
            try:
                credential, raw_key = services.device_credential_issue(
                    account=account, label=form.cleaned_data["label"], performed_by=request.user, channel=Channel.CALL_CENTER
                )
            except ApplicationError as error:
                form.add_error(None, str(error))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Device key for {account.number} {account.contact.display_name}",
            "form": form,
            "raw_key": raw_key,
            "account": account,
            "change_url": reverse("admin:accounts_accountsreceivable_change", args=[account.pk]),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/accounts/device_key.html", context)


class AddressInline(admin.StackedInline):
    model = Address
    extra = 0
    fields = (("kind", "country"), "line1", "line2", ("city", "postal_code", "region"))


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ("__str__", "kind", "email", "mobile_phone", "phone", "language")
    search_fields = ("last_name",)
    search_help_text = "Name, company or e-mail (prefix match)."
    show_full_result_count = False
    fieldsets = (
        (None, {"fields": ("kind", "title", ("first_name", "last_name"), "company_name")}),
        ("Reach", {"fields": ("email", ("mobile_phone", "phone"), "language")}),
    )
    inlines = [AddressInline]

    def get_search_results(self, request, queryset, search_term):
        accounts = selectors.customer_search(query=search_term)
        return queryset.filter(pk__in=accounts.values("contact_id")), False

    def has_add_permission(self, request) -> bool:
        return False  # contacts come with a customer sign-up

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def response_change(self, request, obj):
        account = obj.accounts.order_by("created_at").first()
        if account is not None and "_continue" not in request.POST:
            self.message_user(request, f"Saved {obj.display_name}.", messages.SUCCESS)
            return HttpResponseRedirect(reverse("admin:accounts_accountsreceivable_change", args=[account.pk]))
        return super().response_change(request, obj)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # The contact and its addresses change together or not at all.
        try:
            with transaction.atomic():
                return super().changeform_view(request, object_id, form_url, extra_context)
        except ApplicationError as error:
            self.message_user(request, f"Nothing was saved: {error}", messages.ERROR)
            return HttpResponseRedirect(request.path)

    def save_model(self, request, obj, form, change):
        data = {name: form.cleaned_data[name] for name in form.changed_data}
        if data:
            services.contact_update(contact=obj, data=data, performed_by=request.user, channel=Channel.CALL_CENTER)

    def save_formset(self, request, form, formset, change):
        contact = form.instance
        for inline_form in formset.forms:
            if not inline_form.has_changed() and not formset._should_delete_form(inline_form):
                continue
            address = inline_form.instance
            if formset._should_delete_form(inline_form):
                if address.pk:
                    services.address_delete(address=address, performed_by=request.user, channel=Channel.CALL_CENTER)
                continue
            existing = Address.objects.get(pk=address.pk) if address.pk else None
            services.address_save(
                contact=contact,
                address=existing,
                data={name: inline_form.cleaned_data.get(name, "") for name in services.ADDRESS_FIELDS},
                performed_by=request.user,
                channel=Channel.CALL_CENTER,
            )

    def construct_change_message(self, request, form, formsets, add=False):
        return []  # the services write the audit trail (AccountEvent), not the admin log

    def log_change(self, request, obj, message):
        """The AccountEvent written by the service is the audit trail."""


@admin.register(Classification)
class ClassificationAdmin(AuditedSaveMixin, admin.ModelAdmin):
    list_display = ("name", "code", "is_default")
    fields = ("name", "code", "description", "is_default")

    def has_delete_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.accounts.exists():
            return False  # in use: keep history intact
        return super().has_delete_permission(request, obj)


@admin.register(AccountEvent)
class AccountEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The audit trail of every customer change, read-only."""

    list_display = ("created_at", "account", "kind", "from_state", "to_state", "channel", "performed_by")
    list_filter = ("kind", "channel")
    list_select_related = ("account__contact", "performed_by")
    show_full_result_count = False
    date_hierarchy = None
    readonly_fields = ("account", "kind", "from_state", "to_state", "changes", "reason", "performed_by", "channel", "created_at")
