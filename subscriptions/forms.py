"""Admin forms for subscription actions: one form per behavior, collecting its parameters.

Each form carries a transaction reference made when it is shown, so submitting it twice
(a double click, a browser retry) runs the action once.
"""

from __future__ import annotations

import uuid

from django import forms

from catalogs.models import ContentTitle, PricePlan, Product
from catalogs.rating import title_ppv_product

from .models import Device, InstalledItem, Subscription, SubscriptionAction

Behavior = SubscriptionAction.Behavior

# behaviors whose date may be chosen (the others run now)
SCHEDULABLE = {Behavior.ACTIVATE, Behavior.DEACTIVATE, Behavior.ADD_SERVICE, Behavior.REMOVE_SERVICE, Behavior.SWAP_SERVICE,
               Behavior.REST, Behavior.END_RESTING, Behavior.TERMINATE}


class SubscriptionActionForm(forms.Form):
    transaction_reference = forms.CharField(widget=forms.HiddenInput)

    def __init__(self, *args, subscription: Subscription, behavior: str, **kwargs):
        kwargs.setdefault("initial", {}).setdefault("transaction_reference", uuid.uuid4().hex)
        super().__init__(*args, **kwargs)
        self.subscription, self.behavior = subscription, behavior
        open_services = subscription.services.exclude(state="CANCELLED").select_related("product")
        installed = subscription.installed_items.filter(state=InstalledItem.State.INSTALLED).select_related("product")
        termed = Product.objects.filter(product_type__service_type="TERMED", is_active=True)
        goods = Product.objects.filter(product_type__classification="PHYSICAL_GOOD", is_active=True)
        fields = {
            Behavior.ADD_SERVICE: {"product": forms.ModelChoiceField(termed, label="Service"),
                                   "price_plan": forms.ModelChoiceField(PricePlan.objects.filter(state="EFFECTIVE"), required=False,
                                                                        help_text="Empty: the plan that applies to the account.")},
            Behavior.REMOVE_SERVICE: {"service": forms.ModelChoiceField(open_services)},
            Behavior.SWAP_SERVICE: {"service": forms.ModelChoiceField(open_services, label="Replace"),
                                    "to_product": forms.ModelChoiceField(termed, label="With")},
            Behavior.TERMINATE: {"reason": forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 2}))},
            Behavior.ADD_INSTALLED_ITEM: {"product": forms.ModelChoiceField(goods, label="Item"),
                                          "serial_number": forms.CharField(max_length=64)},
            Behavior.REMOVE_INSTALLED_ITEM: {"item": forms.ModelChoiceField(installed)},
            Behavior.SWAP_INSTALLED_ITEM: {"item": forms.ModelChoiceField(installed, label="Replace"),
                                           "serial_number": forms.CharField(max_length=64, label="New serial number")},
        }.get(behavior, {})
        self.fields.update(fields)
        if behavior in SCHEDULABLE:
            self.fields["scheduled_for"] = forms.SplitDateTimeField(
                required=False, widget=forms.SplitDateTimeWidget(date_attrs={"type": "date"}, time_attrs={"type": "time"}),
                help_text="Empty: now. A later date schedules it; beat runs it then.")

    def parameters(self) -> dict:
        return {name: value for name, value in self.cleaned_data.items()
                if name not in {"transaction_reference", "scheduled_for"} and value not in (None, "")}


class AddServiceUsageForm(forms.Form):
    """The call center's "Add Service Usage": choose the movie (and the device), see the
    price, confirm."""

    transaction_reference = forms.CharField(widget=forms.HiddenInput)
    title = forms.ModelChoiceField(ContentTitle.objects.none(), label="Movie")
    device = forms.ModelChoiceField(Device.objects.none(), required=False, help_text="Empty: ordered by phone, no device check.")
    confirmed = forms.BooleanField(required=False, widget=forms.HiddenInput)
    previewed = forms.CharField(required=False, widget=forms.HiddenInput, help_text="What the shown price was for.")

    def __init__(self, *args, subscription: Subscription, **kwargs):
        kwargs.setdefault("initial", {}).setdefault("transaction_reference", uuid.uuid4().hex)
        super().__init__(*args, **kwargs)
        self.fields["title"].queryset = ContentTitle.objects.filter(state="PUBLISHED", products__product_type__service_type="USAGE").distinct()
        self.fields["device"].queryset = Device.objects.filter(account=subscription.account, state=Device.State.ACTIVE)

    def choice(self) -> str:
        device = self.cleaned_data.get("device")
        return f"{self.cleaned_data['title'].pk}:{device.pk if device else ''}"

    def is_confirmation(self) -> bool:
        """Confirmed, and for the very movie and device whose price was shown."""
        return bool(self.cleaned_data.get("confirmed")) and self.cleaned_data.get("previewed") == self.choice()

    def product(self) -> Product | None:
        return title_ppv_product(self.cleaned_data["title"])
