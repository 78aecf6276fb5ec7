"""Input and output shapes of the customer API. No logic: services validate and write."""

from __future__ import annotations

from django.conf import settings
from rest_framework import serializers

from core.api.serializers import ModelSerializer

from ..models import AccountEvent, AccountsReceivable, Address, Contact


class AddressSerializer(ModelSerializer):
    country = serializers.CharField(max_length=2, help_text="ISO 3166 code, e.g. CY (any case).")

    class Meta:
        model = Address
        fields = ["id", "kind", "line1", "line2", "city", "postal_code", "region", "country"]
        read_only_fields = ["id"]
        # Uniqueness and country checks are the service's; do not run them twice.
        validators: list = []


class AccountSummarySerializer(ModelSerializer):
    classification = serializers.CharField(source="classification.code", read_only=True)

    class Meta:
        model = AccountsReceivable
        fields = ["number", "state", "currency", "classification", "credit_limit", "created_at"]
        read_only_fields = fields


class ContactSerializer(ModelSerializer):
    """The customer's own profile (``/me/``): contact details, addresses and accounts."""

    addresses = AddressSerializer(many=True, read_only=True)
    accounts = AccountSummarySerializer(many=True, read_only=True)
    display_name = serializers.CharField(read_only=True)

    class Meta:
        model = Contact
        fields = [
            "kind", "title", "first_name", "last_name", "company_name", "display_name",
            "email", "phone", "mobile_phone", "language", "addresses", "accounts",
        ]


class ContactUpdateSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=20, required=False, allow_blank=True)
    first_name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    last_name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    company_name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    email = serializers.EmailField(required=False, allow_blank=True)
    phone = serializers.CharField(max_length=32, required=False, allow_blank=True)
    mobile_phone = serializers.CharField(max_length=32, required=False, allow_blank=True)
    language = serializers.ChoiceField(choices=settings.LANGUAGES, required=False)


class SignUpAddressSerializer(serializers.Serializer):
    line1 = serializers.CharField(max_length=200)
    line2 = serializers.CharField(max_length=200, required=False, allow_blank=True)
    city = serializers.CharField(max_length=100)
    postal_code = serializers.CharField(max_length=20, required=False, allow_blank=True)
    region = serializers.CharField(max_length=100, required=False, allow_blank=True)
    country = serializers.CharField(max_length=2)


class SignUpSerializer(ContactUpdateSerializer):
    kind = serializers.ChoiceField(choices=Contact.Kind.choices, default=Contact.Kind.PERSON)
    email = serializers.EmailField()
    password = serializers.CharField(write_only=True, style={"input_type": "password"}, trim_whitespace=False)
    currency = serializers.ChoiceField(choices=[(code, code) for code in settings.CURRENCIES], required=False)
    address = SignUpAddressSerializer(required=False)


class LoginSerializer(serializers.Serializer):
    email = serializers.CharField(max_length=254)
    password = serializers.CharField(trim_whitespace=False, style={"input_type": "password"})


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField()


class SignUpResultSerializer(serializers.Serializer):
    token = serializers.CharField()
    account = AccountSummarySerializer()


class AccountEventSerializer(ModelSerializer):
    class Meta:
        model = AccountEvent
        fields = ["kind", "from_state", "to_state", "changes", "reason", "channel", "created_at"]
        read_only_fields = fields


class DeviceIdentitySerializer(serializers.Serializer):
    label = serializers.CharField()
    key_prefix = serializers.CharField()
    account = serializers.CharField(source="account.number")
    account_state = serializers.CharField(source="account.state")
