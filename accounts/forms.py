"""Admin forms for customers. They collect input; the services validate and write."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.conf import settings

from .models import AccountsReceivable, Address, Classification, Contact


class CustomerSignUpForm(forms.Form):
    kind = forms.ChoiceField(choices=Contact.Kind.choices, initial=Contact.Kind.PERSON)
    title = forms.CharField(max_length=20, required=False)
    first_name = forms.CharField(max_length=100, required=False)
    last_name = forms.CharField(max_length=100, required=False)
    company_name = forms.CharField(max_length=200, required=False)
    email = forms.EmailField(required=False)
    phone = forms.CharField(max_length=32, required=False)
    mobile_phone = forms.CharField(max_length=32, required=False)
    language = forms.ChoiceField(choices=settings.LANGUAGES, initial="en")
    line1 = forms.CharField(label="Address line 1", max_length=200, required=False)
    line2 = forms.CharField(label="Address line 2", max_length=200, required=False)
    city = forms.CharField(max_length=100, required=False)
    postal_code = forms.CharField(max_length=20, required=False)
    # Length and format are the service's to check, so every problem is reported at once.
    country = forms.CharField(max_length=100, required=False, initial=settings.DEFAULT_COUNTRY, help_text="ISO code, e.g. CY.")
    classification = forms.ModelChoiceField(queryset=Classification.objects.all(), required=False,
                                            help_text="Leave empty for the default classification.")
    currency = forms.ChoiceField(choices=[(code, code) for code in settings.CURRENCIES])
    credit_limit = forms.DecimalField(max_digits=12, decimal_places=2, min_value=Decimal("0"), initial=Decimal("0.00"))

    CONTACT = ("kind", "title", "first_name", "last_name", "company_name", "email", "phone", "mobile_phone", "language")
    ADDRESS = ("line1", "line2", "city", "postal_code", "country")

    def contact_data(self) -> dict:
        return {name: self.cleaned_data[name] for name in self.CONTACT}

    def address_data(self) -> dict | None:
        data = {name: self.cleaned_data[name] for name in self.ADDRESS}
        if not any(data[name] for name in ("line1", "city")):
            return None
        return {**data, "kind": Address.Kind.BILLING}

    def add_service_errors(self, fields: dict[str, list[str]]) -> None:
        """Show a service's field errors on the matching inputs."""
        for name, messages in fields.items():
            target = name.removeprefix("address.")
            target = target if target in self.fields else None
            for message in messages:
                self.add_error(target, message)


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=500, required=False, widget=forms.Textarea(attrs={"rows": 3}))


class DeviceCredentialForm(forms.Form):
    label = forms.CharField(max_length=100, help_text="What the device is, e.g. 'Living-room decoder'.")


class AccountChangeForm(forms.ModelForm):
    class Meta:
        model = AccountsReceivable
        fields = ["classification", "credit_limit"]
