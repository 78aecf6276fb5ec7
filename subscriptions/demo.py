"""Demo subscriptions: the demo customers can order PPV movies straight away.

Maria (Normal) and Andreas (VIP) each get an EFFECTIVE subscription on the "Normal" billing
term scheme holding an EFFECTIVE PPV Service; Maria also has the Sports Pack (a free week,
then €9.99 a month) and a Thomson decoder she bought (a one-time charge on her next bill).
Loaded through the same services the call center uses; idempotent.
"""

from __future__ import annotations

from accounts.models import AccountsReceivable
from billing.models import BillingTermScheme
from billing.services.schemes import billing_term_scheme_create, billing_term_scheme_set_effective
from catalogs.models import Product
from core.choices import Channel

from .models import Subscription
from .services.actions import subscription_create
from .services.lifecycle import installed_item_add, subscription_activate, subscription_service_add

SYSTEM = {"channel": Channel.SYSTEM}
DEMO = [("maria@example.com", "TH-DEMO-0001"), ("andreas@example.com", None)]


def demo_scheme() -> BillingTermScheme:
    scheme = BillingTermScheme.objects.filter(name="Normal").first() or billing_term_scheme_create(name="Normal", **SYSTEM)
    if scheme.state == BillingTermScheme.State.DRAFT:
        scheme = billing_term_scheme_set_effective(scheme=scheme, **SYSTEM)
    return scheme


def demo_subscriptions_load() -> list[Subscription]:
    scheme = demo_scheme()
    ppv, decoder = Product.objects.get(code="PPV-SERVICE"), Product.objects.get(code="THOMSON-DECODER")
    sports = Product.objects.get(code="SPORTS-PACK")
    subscriptions = []
    for email, serial in DEMO:
        account = AccountsReceivable.objects.filter(contact__email=email).order_by("created_at").first()
        if account is None:
            continue
        subscription = account.subscriptions.order_by("created_at").first()
        if subscription is None:
            subscription = subscription_create(account=account, billing_term_scheme=scheme, **SYSTEM)
            subscription_service_add(subscription=subscription, product=ppv, transaction_reference=f"demo-ppv-{account.number}", **SYSTEM)
            if serial:
                subscription_service_add(subscription=subscription, product=sports,
                                         transaction_reference=f"demo-sports-{account.number}", **SYSTEM)
                installed_item_add(subscription=subscription, product=decoder, serial_number=serial,
                                   transaction_reference=f"demo-decoder-{account.number}", **SYSTEM)
            subscription_activate(subscription=subscription, transaction_reference=f"demo-activate-{account.number}", **SYSTEM)
            subscription.refresh_from_db()
        subscriptions.append(subscription)
    return subscriptions
