"""The Company ZX world for subscription tests: the demo catalog (through the catalog
services), a normal billing term scheme, and customers with subscriptions."""

from __future__ import annotations

import pytest
from django.utils import timezone

from billing.models import BillingTermScheme
from catalogs.demo import demo_catalog_load
from catalogs.models import ContentTitle, Product
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
