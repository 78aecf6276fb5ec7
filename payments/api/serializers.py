"""Input and output shapes of the payments API. No card data is ever accepted: cards are
entered in Stripe's element with the client secret we return."""

from __future__ import annotations

from decimal import Decimal

from rest_framework import serializers

from core.api.serializers import ModelSerializer

from ..models import Payment, PaymentMethod


class PaymentMethodSerializer(ModelSerializer):
    class Meta:
        model = PaymentMethod
        fields = ["id", "kind", "state", "is_default", "label", "card_brand", "card_last4", "card_exp_month", "card_exp_year",
                  "created_at"]


class CardSetupSerializer(serializers.Serializer):
    payment_method = serializers.IntegerField(help_text="Our id of the (PENDING) card.")
    setup_intent = serializers.CharField(help_text="Stripe's SetupIntent id; send it to the confirm endpoint afterwards.")
    client_secret = serializers.CharField(help_text="For Stripe.js `confirmCardSetup`: the card is typed into Stripe's element.")
    publishable_key = serializers.CharField()


class CardConfirmInSerializer(serializers.Serializer):
    setup_intent = serializers.CharField(max_length=100)


class PaymentSerializer(ModelSerializer):
    invoice = serializers.CharField(source="invoice.number", default=None)
    payment_method = serializers.IntegerField(source="method_id", default=None)
    client_secret = serializers.SerializerMethodField(help_text="Only while the card needs 3-D Secure: finish with Stripe.js.")

    class Meta:
        model = Payment
        fields = ["id", "kind", "purpose", "state", "amount", "currency", "invoice", "payment_method", "reference", "failure_reason",
                  "client_secret", "created_at", "succeeded_at"]

    def get_client_secret(self, payment: Payment) -> str:
        return payment.client_secret if payment.state == Payment.State.REQUIRES_ACTION else ""


class InvoicePayInSerializer(serializers.Serializer):
    payment_method = serializers.IntegerField(required=False, help_text="One of my methods; empty: my default card. "
                                                                        "A WALLET method spends my credit.")


class InvoicePayOutSerializer(serializers.Serializer):
    invoice = serializers.CharField()
    open_amount = serializers.DecimalField(max_digits=14, decimal_places=2, help_text="Still to pay.")
    paid = serializers.BooleanField()
    wallet_applied = serializers.DecimalField(max_digits=14, decimal_places=2)
    payment = PaymentSerializer(allow_null=True)


class TopUpInSerializer(serializers.Serializer):
    amount = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=Decimal("1.00"))
    payment_method = serializers.IntegerField(required=False, help_text="One of my cards; empty: my default card.")


class WalletSerializer(serializers.Serializer):
    credit = serializers.DecimalField(max_digits=14, decimal_places=2, help_text="Money I paid that is not yet spent.")
    currency = serializers.CharField()
