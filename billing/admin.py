"""The finance screens: billing term schemes, tax rates, invoices (with their documents and
the credit note page), credit notes, the journal and the chart of accounts with the trial
balance. Usage detail records, documents and ledger rows are read-only: they are written
by orders, billing and the ledger services, never typed in."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import DecimalField, Sum, Value
from django.db.models.functions import Coalesce
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from core.actions import ActionRejected
from core.admin import (AuditHistoryMixin, LargeTableAdminMixin, LifecycleActionsMixin, ReadOnlyAdminMixin, ServiceAdminMixin,
                        state_badge)
from core.choices import Channel
from core.exceptions import ApplicationError

from . import documents, selectors
from .models import (
    BillingTermScheme,
    CreditNote,
    CreditNoteLine,
    Invoice,
    InvoiceLine,
    JournalEntry,
    LedgerAccount,
    Posting,
    TaxRate,
    UsageDetailRecord,
)
from .services import invoicing, taxes
from .services import schemes as services

@admin.register(BillingTermScheme)
class BillingTermSchemeAdmin(ServiceAdminMixin, AuditHistoryMixin, LifecycleActionsMixin, admin.ModelAdmin):
    """Saved through ``billing.services``: a refusal shows the form again with every
    reason. Terms are editable only while DRAFT; schemes are terminated, never deleted."""

    list_display = ("name", "state_display", "kind", "billing_frequency", "billing_day", "pre_bill", "max_unbilled_udrs")
    list_filter = ("state", "kind")
    search_fields = ("name",)
    fields = ("name", "state_display", "kind", "billing_frequency", "billing_day", "pre_bill", "max_unbilled_udrs",
              "max_unbilled_amount")
    lifecycle_actions = {"set_effective": "Set effective", "terminate": "Terminate"}

    @admin.display(description="state", ordering="state")
    def state_display(self, obj):
        return state_badge(obj.state, obj.get_state_display())

    def get_readonly_fields(self, request, obj=None):
        if obj is None or obj.state == BillingTermScheme.State.DRAFT:
            return ("state_display",)
        return ("state_display", *services.SCHEME_FIELDS)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # terminated, never deleted: subscriptions and the audit trail refer to it

    def service_create(self, request, data):
        return services.billing_term_scheme_create(**{name: data[name] for name in services.SCHEME_FIELDS},
                                                   performed_by=request.user, channel=Channel.CALL_CENTER)

    def service_update(self, request, obj, data):
        changed = {name: data[name] for name in services.SCHEME_FIELDS if name in data and data[name] != getattr(obj, name)}
        if not changed:
            return obj
        return services.billing_term_scheme_update(scheme=obj, data=changed, performed_by=request.user, channel=Channel.CALL_CENTER)

    def lifecycle_action_objects(self):
        return services.SCHEME_ACTIONS

    def lifecycle_run(self, request, obj, code):
        return services.billing_term_scheme_act(scheme=obj, action=code, performed_by=request.user, channel=Channel.CALL_CENTER)


@admin.register(UsageDetailRecord)
class UsageDetailRecordAdmin(LargeTableAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """The usage record of every order: what was rated at which price and why. Found by
    its external id (the order's transaction reference); the list never counts the table.

    Newest recorded first, by primary key, and no column sorts: on a table of millions of
    rows any other order is a sort of the whole table (1.2 s at 1 M rows; by key, ~20 ms).
    Filters and the search narrow it instead."""

    list_display = ("usage_at", "account", "product", "amount", "currency", "state", "channel")
    list_filter = ("state", "channel")
    list_select_related = ("account__contact", "product")
    search_fields = ("=external_id",)
    ordering = ("-pk",)
    sortable_by = ()
    readonly_fields = ("account", "subscription", "product", "title", "catalog", "usage_service", "tier", "device",
                       "usage_at", "channel", "source", "external_id", "amount", "currency", "rate_reason", "state",
                       "rejection_reason", "created_at")
    fields = readonly_fields


# --- taxes, invoices, credit notes, the ledger ----------------------------------------------

@admin.register(TaxRate)
class TaxRateAdmin(ServiceAdminMixin, AuditHistoryMixin, admin.ModelAdmin):
    """Finance keeps the tax rates; a change of rate is a new row starting when the old one
    ends (overlaps are refused). Never deleted: issued invoices name them."""

    list_display = ("country", "tax_class", "name", "rate", "valid_from", "valid_until")
    list_filter = ("country", "tax_class")
    search_fields = ("=country",)
    fields = taxes.TAX_RATE_FIELDS

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def service_create(self, request, data):
        return taxes.tax_rate_create(**{name: data[name] for name in taxes.TAX_RATE_FIELDS}, performed_by=request.user,
                                     channel=Channel.CALL_CENTER)

    def service_update(self, request, obj, data):
        changed = {name: data[name] for name in taxes.TAX_RATE_FIELDS if name in data and data[name] != getattr(obj, name)}
        if not changed:
            return obj
        return taxes.tax_rate_update(tax_rate=obj, data=changed, performed_by=request.user, channel=Channel.CALL_CENTER)


class InvoiceLineInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = InvoiceLine
    extra = 0
    can_delete = False
    fields = ("position", "description", "quantity", "unit_price", "net", "tax_rate", "tax", "gross", "revenue_ledger", "udr")
    readonly_fields = fields


class CreditNoteForm(forms.Form):
    """The credit note page: a reason, what to credit (everything left, or amounts per
    line), and an explicit confirmation, because a posted credit note cannot be undone."""

    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 2, "cols": 60}))
    scope = forms.ChoiceField(choices=[("all", "Everything left on the invoice"), ("lines", "The amounts below")],
                              initial="all", widget=forms.RadioSelect)
    confirm = forms.BooleanField(label="I confirm: the credit note is posted to the ledger and cannot be undone.")

    def __init__(self, *args, lines: list[tuple[InvoiceLine, Decimal]], **kwargs):
        super().__init__(*args, **kwargs)
        self.invoice_lines = lines
        for line, left in lines:
            self.fields[f"line_{line.pk}"] = forms.DecimalField(
                required=False, min_value=Decimal("0.01"), max_digits=14, decimal_places=2,
                label=f"{line.position}. {line.description}"[:120], help_text=f"{left} of {line.gross} left to credit")

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("scope") == "lines" and not self.amounts():
            raise forms.ValidationError("Give an amount for at least one line, or credit everything left.")
        return cleaned

    def amounts(self) -> dict[int, Decimal] | None:
        if self.cleaned_data.get("scope") == "all":
            return None
        return {line.pk: self.cleaned_data[f"line_{line.pk}"] for line, _left in self.invoice_lines
                if self.cleaned_data.get(f"line_{line.pk}")}

    def line_fields(self):
        return [self[f"line_{line.pk}"] for line, _left in self.invoice_lines]


@admin.register(Invoice)
class InvoiceAdmin(LargeTableAdminMixin, AuditHistoryMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Invoices as issued: read-only, with their documents and, for finance, the credit
    note page (the only way to cancel one). Found by exact number; never counted."""

    change_form_template = "admin/billing/invoice/change_form.html"
    list_display = ("display_number", "account", "state_display", "issued_at", "gross_total", "currency")
    list_filter = ("state",)
    list_select_related = ("account__contact",)
    search_fields = ("=number",)
    search_help_text = "Exact invoice number, e.g. INV-2026-000001."
    ordering = ("-created_at",)
    fields = ("number", "state_display", "account", "subscription", "currency", "tax_country", "issued_at", "net_total",
              "tax_total", "gross_total", "journal_entry", "documents_links")
    readonly_fields = fields
    inlines = [InvoiceLineInline]

    @admin.display(description="number", ordering="number")
    def display_number(self, invoice: Invoice) -> str:
        return str(invoice)

    @admin.display(description="state", ordering="state")
    def state_display(self, invoice: Invoice) -> str:
        return state_badge(invoice.state, invoice.get_state_display())

    @admin.display(description="documents")
    def documents_links(self, invoice: Invoice) -> str:
        return format_html('<a href="{}">HTML</a> · <a href="{}">PDF</a>',
                           reverse("admin:billing_invoice_document", args=[invoice.pk, "html"]),
                           reverse("admin:billing_invoice_document", args=[invoice.pk, "pdf"]))

    def get_urls(self):
        return [
            path("<int:pk>/document/<str:document_format>/", self.admin_site.admin_view(self.document_view),
                 name="billing_invoice_document"),
            path("<int:pk>/credit/", self.admin_site.admin_view(self.credit_note_view), name="billing_invoice_credit"),
        ] + super().get_urls()

    def has_credit_permission(self, request) -> bool:
        return request.user.has_perm("billing.add_creditnote")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        invoice = self.get_object(request, object_id)
        extra_context = extra_context or {}
        if invoice is not None:
            extra_context.update(
                can_credit=self.has_credit_permission(request) and invoice.state == Invoice.State.POSTED,
                credit_notes=invoice.credit_notes.order_by("issued_at"),
            )
        return super().change_view(request, object_id, form_url, extra_context)

    def document_view(self, request, pk: int, document_format: str):
        invoice = get_object_or_404(Invoice.objects.select_related("account__contact"), pk=pk)
        if not self.has_view_permission(request, invoice):
            raise PermissionDenied
        if document_format == "html":
            return HttpResponse(documents.invoice_html(invoice), content_type="text/html; charset=utf-8")
        if document_format == "pdf":
            response = HttpResponse(documents.invoice_pdf(invoice), content_type="application/pdf")
            response["Content-Disposition"] = f'inline; filename="{documents.invoice_filename(invoice, "pdf")}"'
            return response
        raise Http404

    def credit_note_view(self, request, pk: int):
        invoice = get_object_or_404(Invoice.objects.select_related("account__contact"), pk=pk)
        if not self.has_credit_permission(request):
            raise PermissionDenied
        change_url = reverse("admin:billing_invoice_change", args=[invoice.pk])
        credited = selectors.invoice_credited(invoice=invoice)
        lines = [(line, line.gross - credited.get(line.pk, Decimal("0"))) for line in invoice.lines.order_by("position")]
        form = CreditNoteForm(request.POST or None, lines=[(line, left) for line, left in lines if left > 0])
        if request.method == "POST" and form.is_valid():
            try:
                note = invoicing.credit_note_issue(invoice=invoice, reason=form.cleaned_data["reason"], lines=form.amounts(),
                                                   performed_by=request.user, channel=Channel.CALL_CENTER)
            except ActionRejected as rejected:
                for reason in rejected.reasons:
                    form.add_error(None, reason)
            except ApplicationError as error:
                form.add_error(None, error.message)
            else:
                self.message_user(request, f"Credit note {note.number} issued: {note.gross_total} {note.currency}.", messages.SUCCESS)
                return HttpResponseRedirect(change_url)
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "title": f"Issue a credit note on {invoice}",
                   "invoice": invoice, "form": form, "change_url": change_url}
        return TemplateResponse(request, "admin/billing/invoice/credit_note.html", context)


class CreditNoteLineInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = CreditNoteLine
    extra = 0
    can_delete = False
    fields = ("invoice_line", "description", "net", "tax_rate", "tax", "gross", "revenue_ledger")
    readonly_fields = fields


@admin.register(CreditNote)
class CreditNoteAdmin(LargeTableAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("number", "invoice", "account", "issued_at", "gross_total", "currency", "issued_by")
    list_select_related = ("invoice", "account__contact", "issued_by")
    search_fields = ("=number",)
    fields = ("number", "invoice", "account", "reason", "issued_at", "issued_by", "net_total", "tax_total", "gross_total",
              "currency", "journal_entry")
    readonly_fields = fields
    inlines = [CreditNoteLineInline]


class PostingInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Posting
    extra = 0
    can_delete = False
    fields = ("ledger_account", "account", "debit", "credit")
    readonly_fields = fields

    @admin.display(description="debit")
    def debit(self, posting: Posting):
        return posting.amount if posting.amount > 0 else ""

    @admin.display(description="credit")
    def credit(self, posting: Posting):
        return -posting.amount if posting.amount < 0 else ""


@admin.register(JournalEntry)
class JournalEntryAdmin(LargeTableAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """The journal: append-only; corrections are reversing entries."""

    list_display = ("posted_at", "kind", "reference", "account", "currency", "description")
    list_filter = ("kind",)
    list_select_related = ("account__contact",)
    search_fields = ("=reference",)
    search_help_text = "Exact reference, e.g. invoice:INV-2026-000001."
    fields = ("kind", "reference", "description", "currency", "account", "reversal_of", "posted_at")
    readonly_fields = fields
    inlines = [PostingInline]


@admin.register(LedgerAccount)
class LedgerAccountAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The chart of accounts with each account's balance: the trial balance."""

    change_list_template = "admin/billing/ledgeraccount/change_list.html"
    list_display = ("code", "name", "kind", "balance_display")
    list_filter = ("kind",)
    fields = ("code", "name", "kind")
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            balance=Coalesce(Sum("postings__amount"), Value(Decimal("0.00")), output_field=DecimalField()))

    @admin.display(description="balance (debit +, credit −)", ordering="balance")
    def balance_display(self, ledger: LedgerAccount):
        return ledger.balance

    def changelist_view(self, request, extra_context=None):
        balances = selectors.trial_balance()
        extra_context = {**(extra_context or {}), "trial_balance_total": sum(balances.values(), Decimal("0.00"))}
        return super().changelist_view(request, extra_context)

from . import admin_charges, admin_runs  # noqa: E402,F401  (one-time charges, promotion grants; billing runs)
from . import admin_credit_notes, admin_revenue  # noqa: E402,F401  (credit note documents; revenue waterfall)
