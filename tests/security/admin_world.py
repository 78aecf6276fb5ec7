"""What the admin security tests walk: every ModelAdmin, its bulk actions and its own views,
and a world with one object of each kind those views act on."""

from __future__ import annotations

from decimal import Decimal

from django.contrib import admin
from django.db import models
from django.test import Client
from django.urls import URLPattern, reverse

from accounts import roles

#: the fixtures (tests/conftest.py) holding one staff user per role
ROLE_FIXTURES = {
    roles.CALL_CENTER_AGENT: "agent",
    roles.MARKETING: "marketing_user",
    roles.FINANCE: "finance_user",
    roles.ADMINISTRATOR: "administrator",
}
DJANGO_VIEWS = ("changelist", "add", "history", "delete", "change", "autocomplete")


def client_for(user) -> Client:
    """A test client logged in to the admin as ``user``."""
    client = Client()
    client.force_login(user)
    return client


def model_admins() -> list[tuple[type[models.Model], admin.ModelAdmin]]:
    return sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label)


def bulk_actions() -> list[tuple[str, str]]:
    """(model label, action name) for every changelist action we wrote (not Django's delete)."""
    found = []
    for model, model_admin in model_admins():
        for action in model_admin.actions or []:
            name = action if isinstance(action, str) else action.__name__
            if name != "delete_selected":
                found.append((model._meta.label, name))
    return found


def own_views() -> list[tuple[str, str, str]]:
    """(model label, URL name, route) for every admin view an app added to its ModelAdmin."""
    found = []
    for model, model_admin in model_admins():
        for pattern in model_admin.get_urls():
            if isinstance(pattern, URLPattern) and pattern.name and not pattern.name.endswith(
                    tuple(f"_{view}" for view in DJANGO_VIEWS)):
                found.append((model._meta.label, pattern.name, str(pattern.pattern)))
    return found


def admin_world() -> dict[str, models.Model]:
    """One object per model the admin's own views act on: the Company ZX catalog and
    billing, a customer with an order (so an invoice), a credit note, a recorded payment and
    a device."""
    from billing.demo import demo_billing_load
    from billing.models import CreditNote, Invoice
    from catalogs.demo import demo_catalog_load
    from catalogs.models import ContentTitle, PricePlan, Product, Promotion, UsageServiceCatalog, UsageServiceCatalogDefinition
    from payments.services.collection import payment_record
    from subscriptions.models import Device, Subscription
    from subscriptions.services.devices import device_register
    from tests.api.test_api_scoping import place_an_order
    from tests.factories import customer_create

    account = customer_create(first_name="Irene", last_name="Kyriacou", email="irene@example.com")
    place_an_order(account)  # loads the demo catalog and billing too
    demo_catalog_load()
    scheme = demo_billing_load()["scheme"]
    device, _key = device_register(account=account, name="Irene's TV", screen="SMART_TV")
    payment = payment_record(account=account, kind="CASH", amount=Decimal("2.00"), reference="till 4")
    return {
        "accounts.AccountsReceivable": account,
        "billing.BillingTermScheme": scheme,
        "billing.Invoice": Invoice.objects.filter(account=account).first(),
        "billing.CreditNote": CreditNote.objects.filter(account=account).first(),
        "catalogs.ContentTitle": ContentTitle.objects.order_by("pk").first(),
        "catalogs.PricePlan": PricePlan.objects.order_by("pk").first(),
        "catalogs.Product": Product.objects.order_by("pk").first(),
        "catalogs.Promotion": Promotion.objects.order_by("pk").first(),
        "catalogs.UsageServiceCatalog": UsageServiceCatalog.objects.order_by("pk").first(),
        "catalogs.UsageServiceCatalogDefinition": UsageServiceCatalogDefinition.objects.order_by("pk").first(),
        "payments.Payment": payment,
        "subscriptions.Subscription": Subscription.objects.filter(account=account).first(),
        "subscriptions.Device": device,
    }


#: a value for each non-id route parameter (the first step or action a view knows)
ROUTE_VALUES = {
    "action": "suspend",
    "code": None,  # the ModelAdmin's first lifecycle action
    "step": "submit",
    "behavior": "DEACTIVATE",
    "document_format": "pdf",
}


def view_url(model_label: str, url_name: str, route: str, world: dict) -> str:
    """The URL of one of the admin's own views, naming an object of the world."""
    import re

    from django.apps import apps

    model = apps.get_model(model_label)
    model_admin = admin.site._registry[model]
    kwargs = {}
    for name in re.findall(r"<(?:\w+:)?(\w+)>", route):
        if name in ("pk", "object_id"):
            target_label = "subscriptions.Device" if url_name == "subscriptions_device_remove" else model_label
            target = world.get(target_label)
            assert target is not None, f"{url_name}: the admin world has no {target_label}; add one"
            kwargs[name] = target.pk
        elif name == "code":
            kwargs[name] = next(iter(model_admin.lifecycle_actions))
        else:
            assert name in ROUTE_VALUES, f"{url_name}: give the route parameter {name} a value in ROUTE_VALUES"
            kwargs[name] = ROUTE_VALUES[name]
    return reverse(f"admin:{url_name}", kwargs=kwargs)


def snapshot(world: dict) -> dict:
    """Every field of every world object, to prove a refused request changed nothing."""
    state = {}
    for label, obj in world.items():
        fresh = type(obj).objects.filter(pk=obj.pk).values().first()
        state[label] = fresh
    return state
