"""The Company ZX world the end-to-end tests start from, written through the services (and
committed: the topology's processes read it): the demo catalog and billing scheme, a
normal customer (Maria, with a decoder), a VIP (Andreas), a customer whose subscription
lacks the PPV Service (Nikos), a call-center agent and a source system's service user."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import Permission
from rest_framework.authtoken.models import Token

from accounts import roles
from accounts.services import device_credential_issue
from billing.demo import demo_billing_load
from catalogs.demo import demo_catalog_load
from catalogs.models import Product
from provisioning.clients.nagra import nagra_client
from subscriptions.models import Subscription
from subscriptions.services.actions import subscription_create
from subscriptions.services.lifecycle import subscription_activate, subscription_service_add
from tests.factories import PORTAL_PASSWORD, StaffUserFactory, customer_create
from tests.world import effective_subscription


@dataclass
class ZxWorld:
    maria: Subscription
    andreas: Subscription
    nikos: Subscription
    decoder_key: str
    ingest_token: str
    password: str = PORTAL_PASSWORD


def subscription_activated(scheme, *, first_name: str, email: str, classification: str = "NORMAL") -> Subscription:
    """A customer whose subscription holds the PPV Service and was activated through the
    service, so the platform is asked to create the account (the outbox; the topology's
    dispatcher sends it)."""
    account = customer_create(first_name=first_name, last_name="Zx", email=email, classification=classification)
    subscription = subscription_create(account=account, billing_term_scheme=scheme)
    subscription_service_add(subscription=subscription, product=Product.objects.get(code="PPV-SERVICE"))
    subscription_activate(subscription=subscription)
    subscription.refresh_from_db()
    return subscription


def world_create() -> ZxWorld:
    demo_catalog_load()
    scheme = demo_billing_load()["scheme"]
    maria = subscription_activated(scheme, first_name="Maria", email="maria@example.com")
    andreas = subscription_activated(scheme, first_name="Andreas", email="andreas@example.com", classification="VIP")
    nikos = effective_subscription(customer_create(first_name="Nikos", last_name="Zx", email="nikos@example.com"), scheme, services=())
    _credential, key = device_credential_issue(account=maria.account, label="Thomson decoder")
    StaffUserFactory(username="agent", role=roles.CALL_CENTER_AGENT)
    ingest = StaffUserFactory(username="ingest")
    ingest.user_permissions.add(Permission.objects.get(codename="add_usagedetailrecord"))
    token = Token.objects.create(user=ingest)  # a source system's API token
    return ZxWorld(maria=maria, andreas=andreas, nikos=nikos, decoder_key=key, ingest_token=token.key)


def nagra_entitlements(endpoint: str, account_number: str) -> dict[str, str]:
    """What the platform holds for an account, asked over SOAP as any client would."""
    client = nagra_client(address=endpoint, credentials=None, connect_timeout=2, operation_timeout=5)
    outcome = client.call("ListEntitlements", {"accountId": account_number})
    assert outcome.ok, outcome.error_description
    return {item["productId"]: item["kind"] for item in outcome.data.get("entitlement") or []}
