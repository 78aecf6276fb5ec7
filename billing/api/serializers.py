"""Output shapes of the billing API (read-only: customers do not write invoices)."""

from __future__ import annotations

from rest_framework import serializers

from core.api.serializers import ModelSerializer

from ..models import CreditNote, Invoice, InvoiceLine


class InvoiceLineSerializer(ModelSerializer):
    product = serializers.CharField(source="product.code", default=None)
    udr = serializers.IntegerField(source="udr_id", default=None, help_text="The order (usage record) this line bills.")

    class Meta:
        model = InvoiceLine
        fields = ["position", "description", "product", "udr", "quantity", "unit_price", "price_includes_tax", "net", "tax_rate",
                  "tax_name", "tax", "gross"]


class CreditNoteSummarySerializer(ModelSerializer):
    class Meta:
        model = CreditNote
        fields = ["id", "number", "issued_at", "reason", "net_total", "tax_total", "gross_total"]


class CreditNoteSerializer(CreditNoteSummarySerializer):
    invoice = serializers.CharField(source="invoice.number", help_text="The invoice it corrects.")

    class Meta(CreditNoteSummarySerializer.Meta):
        fields = ["id", "number", "invoice", "currency", "issued_at", "reason", "net_total", "tax_total", "gross_total"]


class InvoiceSerializer(ModelSerializer):
    account = serializers.CharField(source="account.number")
    subscription = serializers.CharField(source="subscription.number", default=None)
    state = serializers.ChoiceField(choices=Invoice.State.choices, help_text="POSTED, or CANCELLED by credit notes.")

    class Meta:
        model = Invoice
        fields = ["id", "number", "account", "subscription", "state", "currency", "issued_at", "net_total", "tax_total",
                  "gross_total"]


class InvoiceDetailSerializer(InvoiceSerializer):
    lines = InvoiceLineSerializer(many=True)
    credit_notes = CreditNoteSummarySerializer(many=True)

    class Meta(InvoiceSerializer.Meta):
        fields = [*InvoiceSerializer.Meta.fields, "lines", "credit_notes"]


class StatementLineSerializer(serializers.Serializer):
    posted_at = serializers.DateTimeField()
    kind = serializers.CharField(help_text="Invoice, Credit note, Payment, ...")
    reference = serializers.CharField()
    description = serializers.CharField()
    debit = serializers.DecimalField(max_digits=14, decimal_places=2)
    credit = serializers.DecimalField(max_digits=14, decimal_places=2)
    balance = serializers.DecimalField(max_digits=14, decimal_places=2, help_text="Running balance after this line.")


class StatementSerializer(serializers.Serializer):
    account = serializers.CharField()
    currency = serializers.CharField()
    balance = serializers.DecimalField(max_digits=14, decimal_places=2, help_text="What you owe (negative: in your favour).")
    lines = StatementLineSerializer(many=True, help_text="Oldest first; the most recent `limit` lines.")
