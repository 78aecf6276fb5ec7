"""The staff screens for payments.

- **Take a payment** (agents and finance: ``payments.add_payment``): cash, cheque, bank
  transfer, voucher, or a charge on the customer's saved card; opened from the customer
  page or the payments list. Stripe is never called inside the admin's transaction: these
  are plain form views calling the services.
- **Refund** a payment and **write off** an invoice: Finance only (``payments.add_refund``,
  ``payments.add_writeoff``), each on its own confirmation page. **Cancel** a recorded
  payment (a bounced cheque): ``payments.change_payment`` (Finance).
- Payments, methods, refunds, chargebacks, write-offs, webhook events and dunning cases
  are read-only lists; dunning schedules are configured here.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from accounts.models import AccountsReceivable
from billing.models import Invoice
from core.admin import AuditedSaveMixin, LargeTableAdminMixin, ReadOnlyAdminMixin, state_badge
from core.choices import Channel
from core.exceptions import ApplicationError

from .models import (Allocation, Chargeback, DunningCase, DunningEvent, DunningSchedule, DunningStep, MethodKind, Payment,
                     PaymentMethod, Refund, WebhookEvent, WriteOff)
from .selectors import invoice_open_amount, payment_refundable
from .services.adjustments import refund_create, write_off_create
from .services.collection import payment_cancel, payment_card_charge, payment_record

TAKE_KINDS = [(MethodKind.CASH, "Cash"), (MethodKind.CHEQUE, "Cheque"), (MethodKind.BANK_TRANSFER, "Bank transfer"),
              (MethodKind.VOUCHER, "Voucher"), (MethodKind.CARD, "Charge the saved card")]


class ReadOnlyAdmin(LargeTableAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    pass


class TakePaymentForm(forms.Form):
    account = forms.CharField(label="Account number", max_length=20)
    kind = forms.ChoiceField(choices=TAKE_KINDS)
    amount = forms.DecimalField(max_digits=14, decimal_places=2, min_value=0.01)
    reference = forms.CharField(required=False, max_length=100, help_text="Cheque number, bank reference or voucher code.")
    invoice = forms.CharField(required=False, max_length=32, help_text="Invoice number to pay; empty: oldest open invoices first.")


class RefundForm(forms.Form):
    amount = forms.DecimalField(max_digits=14, decimal_places=2, min_value=0.01, required=False, help_text="Empty: all that is left.")
    reason = forms.CharField(max_length=300)
    confirm = forms.BooleanField(label="Yes, give this money back")


class CancelForm(forms.Form):
    reason = forms.CharField(max_length=300)
    confirm = forms.BooleanField(label="Yes, reverse this payment")


class WriteOffForm(forms.Form):
    invoice = forms.CharField(label="Invoice number", max_length=32)
    amount = forms.DecimalField(max_digits=14, decimal_places=2, min_value=0.01, required=False, help_text="Empty: all that is open.")
    reason = forms.CharField(max_length=300)
    confirm = forms.BooleanField(label="Yes, write this debt off")


def _form_page(request, admin_site_model, *, form, title: str, submit: str, intro: str = ""):
    opts = admin_site_model.model._meta
    context = {**admin_site_model.admin_site.each_context(request), "opts": opts, "form": form, "title": title,
               "submit_label": submit, "intro": intro}
    return TemplateResponse(request, "admin/payments/form_page.html", context)


class AllocationInline(admin.TabularInline):
    model = Allocation
    fields = ["invoice", "amount", "reason", "created_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class RefundInline(admin.TabularInline):
    model = Refund
    fields = ["amount", "state", "reason", "gateway_refund_id", "created_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = ["pk", "account", "kind", "amount", "currency", "state_display", "invoice", "created_at"]
    list_filter = ["state", "kind"]
    list_select_related = ["account", "invoice"]
    search_fields = ["=account__number", "=gateway_payment_id", "=reference"]
    readonly_fields = ["account", "method", "kind", "purpose", "invoice", "amount", "currency", "state", "reference",
                       "gateway_payment_id", "gateway_charge_id", "failure_reason", "journal_entry", "reversal_entry", "channel",
                       "created_by", "created_at", "succeeded_at", "actions_links"]
    fields = readonly_fields
    inlines = [AllocationInline, RefundInline]

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("payments.view_payment")

    def has_add_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("payments.add_payment")

    @admin.display(description="State")
    def state_display(self, payment: Payment) -> str:
        return state_badge(payment.state, payment.get_state_display())

    @admin.display(description="Actions")
    def actions_links(self, payment: Payment) -> str:
        links = []
        if payment.state == Payment.State.SUCCEEDED:
            links.append(format_html('<a class="button" href="{}">Refund</a>', reverse("admin:payments_payment_refund", args=[payment.pk])))
            if payment.kind != MethodKind.CARD:
                links.append(format_html('<a class="button" href="{}">Cancel (reverse)</a>',
                                         reverse("admin:payments_payment_cancel", args=[payment.pk])))
        return format_html(" ".join(["{}"] * len(links)), *links) if links else "—"

    def get_urls(self):
        return [
            path("<int:pk>/refund/", self.admin_site.admin_view(self.refund_view), name="payments_payment_refund"),
            path("<int:pk>/cancel/", self.admin_site.admin_view(self.cancel_view), name="payments_payment_cancel"),
            *super().get_urls(),
        ]

    def add_view(self, request: HttpRequest, form_url="", extra_context=None):
        """Take a payment (the add page is this form, not a model form)."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        initial = {}
        account_pk = request.GET.get("account")
        if account_pk and account_pk.isdigit():
            account = AccountsReceivable.objects.filter(pk=int(account_pk)).first()
            initial = {"account": account.number} if account else {}
        form = TakePaymentForm(request.POST or None, initial=initial)
        if request.method == "POST" and form.is_valid():
            try:
                payment = self._take(request, form.cleaned_data)
            except ApplicationError as refusal:
                form.add_error(None, str(refusal))
            else:
                level = messages.SUCCESS if payment.state == Payment.State.SUCCEEDED else messages.WARNING
                self.message_user(request, f"{payment}: {payment.get_state_display()}. {payment.failure_reason}".strip(), level)
                return HttpResponseRedirect(reverse("admin:accounts_accountsreceivable_change", args=[payment.account_id]))
        return _form_page(request, self, form=form, title="Take a payment", submit="Take payment")

    @staticmethod
    def _take(request, data) -> Payment:
        account = AccountsReceivable.objects.filter(number=data["account"].strip()).first()
        if account is None:
            raise ApplicationError(f"No account {data['account']}.")
        invoice = None
        if data["invoice"]:
            invoice = Invoice.objects.filter(number=data["invoice"].strip(), account=account).first()
            if invoice is None:
                raise ApplicationError(f"Account {account.number} has no invoice {data['invoice']}.")
        if data["kind"] == MethodKind.CARD:
            return payment_card_charge(account=account, amount=data["amount"], invoice=invoice, performed_by=request.user,
                                       channel=Channel.CALL_CENTER)
        return payment_record(account=account, kind=data["kind"], amount=data["amount"], reference=data["reference"],
                              invoice=invoice, performed_by=request.user, channel=Channel.CALL_CENTER)

    def refund_view(self, request: HttpRequest, pk: int):
        if not request.user.has_perm("payments.add_refund"):
            raise PermissionDenied
        payment = get_object_or_404(Payment, pk=pk)
        form = RefundForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                refund = refund_create(payment=payment, amount=form.cleaned_data["amount"], reason=form.cleaned_data["reason"],
                                       performed_by=request.user)
            except ApplicationError as refusal:
                form.add_error(None, str(refusal))
            else:
                self.message_user(request, f"{refund}: {refund.get_state_display()}.", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:payments_payment_change", args=[pk]))
        return _form_page(request, self, form=form, title=f"Refund {payment}", submit="Refund",
                          intro=f"Up to {payment_refundable(payment=payment)} {payment.currency} may be refunded. "
                                "A card refund goes through Stripe.")

    def cancel_view(self, request: HttpRequest, pk: int):
        if not request.user.has_perm("payments.change_payment"):
            raise PermissionDenied
        payment = get_object_or_404(Payment, pk=pk)
        form = CancelForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                payment_cancel(payment=payment, reason=form.cleaned_data["reason"], performed_by=request.user)
            except ApplicationError as refusal:
                form.add_error(None, str(refusal))
            else:
                self.message_user(request, f"{payment} cancelled by a reversing entry.", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:payments_payment_change", args=[pk]))
        return _form_page(request, self, form=form, title=f"Cancel {payment}", submit="Cancel payment",
                          intro="The payment is reversed in the ledger and the invoices it paid reopen.")


@admin.register(PaymentMethod)
class PaymentMethodAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "account", "kind", "state", "is_default", "created_at"]
    list_filter = ["kind", "state"]
    search_fields = ["=account__number"]
    list_select_related = ["account"]


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdmin):
    list_display = ["pk", "payment", "amount", "state", "reason", "created_by", "created_at"]
    list_filter = ["state"]
    list_select_related = ["payment", "created_by"]


@admin.register(Chargeback)
class ChargebackAdmin(ReadOnlyAdmin):
    list_display = ["gateway_dispute_id", "payment", "amount", "state", "reason", "opened_at", "closed_at"]
    list_filter = ["state"]


@admin.register(WriteOff)
class WriteOffAdmin(ReadOnlyAdmin):
    list_display = ["pk", "invoice", "amount", "reason", "created_by", "created_at"]
    list_select_related = ["invoice", "created_by"]

    def has_add_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("payments.add_writeoff")

    def add_view(self, request: HttpRequest, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = WriteOffForm(request.POST or None, initial={"invoice": request.GET.get("invoice", "")})
        if request.method == "POST" and form.is_valid():
            invoice = Invoice.objects.filter(number=form.cleaned_data["invoice"].strip()).first()
            try:
                if invoice is None:
                    raise ApplicationError(f"No invoice {form.cleaned_data['invoice']}.")
                write_off = write_off_create(invoice=invoice, amount=form.cleaned_data["amount"], reason=form.cleaned_data["reason"],
                                             performed_by=request.user)
            except ApplicationError as refusal:
                form.add_error(None, str(refusal))
            else:
                self.message_user(request, f"{write_off} posted.", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:payments_writeoff_changelist"))
        invoice = Invoice.objects.filter(number=request.GET.get("invoice", "")).first()
        intro = f"{invoice_open_amount(invoice=invoice)} is open on {invoice.number}." if invoice else ""
        return _form_page(request, self, form=form, title="Write off a debt", submit="Write off", intro=intro)


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = ["event_id", "type", "status", "detail", "received_at"]
    list_filter = ["status", "type"]
    search_fields = ["=event_id"]


class DunningStepInline(admin.TabularInline):
    model = DunningStep
    extra = 1


@admin.register(DunningSchedule)
class DunningScheduleAdmin(AuditedSaveMixin, admin.ModelAdmin):
    list_display = ["name", "is_active", "overdue_after_days"]
    inlines = [DunningStepInline]


class DunningEventInline(admin.TabularInline):
    model = DunningEvent
    fields = ["created_at", "kind", "step", "detail"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(DunningCase)
class DunningCaseAdmin(ReadOnlyAdmin):
    list_display = ["pk", "account", "state", "reason", "opened_at", "resolved_at"]
    list_filter = ["state"]
    search_fields = ["=account__number"]
    list_select_related = ["account"]
    inlines = [DunningEventInline]
