"""The Company ZX world shared by subscription, billing and API tests (a pytest plugin
loaded by tests/conftest.py): the demo catalog (through the catalog
services), a normal billing term scheme, and customers with subscriptions."""

from __future__ import annotations

from datetime import time
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.models import BillingTermScheme
from catalogs.demo import demo_catalog_load
from catalogs.models import ContentTitle, Product, ProductType, UsageServiceCatalog
from catalogs.services import usage_catalogs
from provisioning.models import ProvisioningProvider
from subscriptions.models import Subscription, SubscriptionService
from subscriptions.services.actions import subscription_create
from tests.factories import customer_create


@pytest.fixture
def zx_catalog(db):
    return demo_catalog_load()


@pytest.fixture
def billing_scheme(db):
    return BillingTermScheme.objects.create(name="Normal", kind="NORMAL", state="EFFECTIVE")


def effective_subscription(account, scheme, *, services=("PPV-SERVICE",)) -> Subscription:
    """A subscription already EFFECTIVE with these termed services EFFECTIVE (set up
    directly: the activation actions have their own tests)."""
    subscription = subscription_create(account=account, billing_term_scheme=scheme)
    Subscription.objects.filter(pk=subscription.pk).update(state="EFFECTIVE")
    for code in services:
        SubscriptionService.objects.create(subscription=subscription, product=Product.objects.get(code=code),
                                           state="EFFECTIVE", start_date=timezone.localdate())
    subscription.refresh_from_db()
    return subscription


@pytest.fixture
def subscriber(zx_catalog, billing_scheme):
    """A NORMAL customer with an EFFECTIVE subscription holding an EFFECTIVE PPV Service."""
    account = customer_create(first_name="Maria", last_name="Georgiou", email="maria@example.com")
    return effective_subscription(account, billing_scheme)


@pytest.fixture
def vip_subscriber(zx_catalog, billing_scheme):
    account = customer_create(first_name="Andreas", last_name="Nicolaou", email="andreas@example.com", classification="VIP")
    return effective_subscription(account, billing_scheme)


@pytest.fixture
def movie():
    return lambda code: ContentTitle.objects.get(code=code)


# --- usage catalog tests: the Company ZX products, built directly -----------------------

NIGHT = {"rate": Decimal("5.00"), "start_time": time(0, 1), "end_time": time(6, 59)}


@pytest.fixture
def zx():
    """The Company ZX products, provider and an EFFECTIVE definition (€10, €5 at night)."""
    usage = ProductType.objects.create(name="Usage Services", classification="SERVICE", service_type="USAGE", used_for_provisioning=True)
    termed = ProductType.objects.create(name="Termed Services", classification="SERVICE", service_type="TERMED", used_for_provisioning=True)
    nagra = ProvisioningProvider.objects.create(name="Nagra Media Platform", endpoint="http://ott.nagra.example/smsservice_1.2?wsdl")
    products = {
        "ppv": Product.objects.create(code="PPV-SERVICE", name="PPV Service", product_type=termed),
        "lotr": Product.objects.create(code="LOTR", name="Lord of the Rings", product_type=usage),
        "limitless": Product.objects.create(code="LIMITLESS", name="Limitless", product_type=usage),
        "serendipity": Product.objects.create(code="SERENDIPITY", name="Serendipity", product_type=usage),
    }
    definition = usage_catalogs.usage_definition_create(name="OTT definition", usage_service_types=[usage], providers=[nagra])
    usage_catalogs.usage_definition_default_rate_set(definition=definition, product_type=usage, base_rate="10.00", tiers=[NIGHT])
    usage_catalogs.usage_definition_act(definition=definition, action="set_effective")
    return {"usage": usage, "termed": termed, "nagra": nagra, "definition": definition, **products}


def normal_catalog(zx) -> UsageServiceCatalog:
    catalog = usage_catalogs.usage_catalog_create(name="Normal subscribers", required_services=[zx["ppv"]])
    usage_catalogs.usage_service_add(catalog=catalog, product=zx["lotr"], provisioning_id="1AQ8")
    usage_catalogs.usage_service_add(catalog=catalog, product=zx["limitless"], provisioning_id="1BQ1")
    usage_catalogs.usage_service_add(catalog=catalog, product=zx["serendipity"], provisioning_id="1BQ4", base_rate="3.00", tiers=[])
    return catalog
