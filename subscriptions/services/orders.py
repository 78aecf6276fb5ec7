"""The PPV order (CRM.COM's "Add Service Usage"), the same from every channel.

The call center (admin), the portal and the decoder all call ``usage_order_place``. It
runs the ADD_SERVICE_USAGE action, which checks the Company ZX rules — an ACTIVE account,
an EFFECTIVE subscription holding the termed service the catalog requires ("PPV
Service"), a catalog the account qualifies for, the title available on the ordering
screen — then, in one transaction: prices the order with the one rating function,
records the UDR (RATED, waiting for billing), invoices it at once when the billing term
scheme's usage billing rules say so (``billing.services.invoicing.usage_bill_if_due``),
grants the rental and writes the PURCHASE_PPV provisioning request (the outbox). A
repeated transaction reference returns the first order and creates nothing.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from accounts.models import AccountsReceivable
from billing.models import UsageDetailRecord
from billing.services.invoicing import usage_bill_if_due
from catalogs.models import ContentTitle, Product
from catalogs.rating import RateQuote, rate_usage, title_ppv_product
from catalogs.selectors import title_is_available
from core.choices import Channel, Screen
from core.exceptions import ApplicationError, ValidationFailed
from core.refcache import versions_read_once
from core.sql import insert as sql_insert
from provisioning.models import ProvisioningRequest
from provisioning.services.outbox import provisioning_request_add

from ..models import Device, Rental, Subscription, SubscriptionAction
from ..selectors_orders import order_get
from .actions import Behavior, State, SubscriptionActionType, action_type_register, effective_termed_products, subscription_act


def order_quote(*, subscription: Subscription, product: Product, usage_at: datetime) -> RateQuote:
    """The price the order would be charged now (raises ApplicationError when none applies)."""
    return rate_usage(product=product, at=usage_at, account=subscription.account,
                      subscription_services=effective_termed_products(subscription))


def _quote_key(subscription: Subscription, product: Product, usage_at: datetime) -> tuple:
    return subscription.pk, product.pk, usage_at


@action_type_register
class AddServiceUsage(SubscriptionActionType):
    behavior = Behavior.ADD_SERVICE_USAGE
    label = "Add service usage"
    allowed_from = frozenset({State.EFFECTIVE})
    # The quote ``validate`` priced, for the ``process`` that follows it in the same thread
    # and transaction, under the subscription's lock (its services cannot change in
    # between). One registered instance serves every thread, hence thread-local.
    _quoted = threading.local()

    def _validated_quote(self, subscription: Subscription, product: Product, usage_at: datetime) -> RateQuote:
        """The quote ``validate`` just made for this very order, else a fresh one."""
        remembered = getattr(self._quoted, "value", None)
        self._quoted.value = None
        if remembered is not None:
            key, quote = remembered
            if key == _quote_key(subscription, product, usage_at):
                return quote
        return order_quote(subscription=subscription, product=product, usage_at=usage_at)

    def validate(self, subscription: Subscription, *, product: Product, usage_at: datetime, title: ContentTitle | None = None,
                 device: Device | None = None, screen: str | None = None, **params: Any):
        account = subscription.account
        if account.state != AccountsReceivable.State.ACTIVE:
            yield f"The account {account.number} is {account.state}; orders need an ACTIVE account."
        if device is not None and (device.account_id != account.pk or device.state != Device.State.ACTIVE):
            yield f"The device {device} is not an active device of this account."
        if not product.is_usage_service:
            yield f"{product} is not a pay-per-view (usage) service."
            return
        try:
            preview = rate_usage(product=product, at=usage_at, account=account)  # without the subscription condition
        except ApplicationError as refusal:
            yield refusal.message
            return
        held = effective_termed_products(subscription)
        required = preview.required_services
        if required and not set(required) & set(held):
            names = " or ".join(str(service) for service in required)
            yield f"The subscription needs an EFFECTIVE {names} to order {product}."
        else:
            # The preview's catalog is the best one ignoring the subscription condition and
            # the subscription meets its condition, so it is also the best one with it: the
            # preview *is* the order's price (``order_quote`` would choose the same catalog,
            # service and tier). Kept for ``process`` so the order is rated once, not three times.
            self._quoted.value = (_quote_key(subscription, product, usage_at), preview)
        screen = device.screen if device is not None else screen
        if title is not None and screen and not title_is_available(title=title, screen=screen, at=usage_at):
            yield f"{title} is not available on {Screen(screen).label} now."

    def process(self, subscription: Subscription, *, action: SubscriptionAction, product: Product, usage_at: datetime,
                title: ContentTitle | None = None, device: Device | None = None, screen: str | None = None, **params: Any):
        quote = self._validated_quote(subscription, product, usage_at)
        udr = sql_insert(UsageDetailRecord(
            account=subscription.account, subscription=subscription, product=product, title=title, catalog=quote.catalog,
            usage_service=quote.usage_service, tier=quote.tier, device=device, usage_at=usage_at, channel=action.channel,
            source="ORDER", external_id=action.transaction_reference, amount=quote.amount, currency=quote.currency,
            rate_reason=quote.reason[:300], state=UsageDetailRecord.State.RATED,
        ))
        rental = None
        if title is not None:
            rental = sql_insert(Rental(account=subscription.account, title=title, udr=udr, starts_at=usage_at,
                                       ends_at=usage_at + timedelta(hours=settings.RENTAL_HOURS)))
        provisioning_request_add(
            kind=ProvisioningRequest.Kind.PURCHASE_PPV, cause=action.behavior, account=subscription.account,
            subscription=subscription, action=action, provider=quote.catalog.provider,
            parameters={"provisioning_id": quote.usage_service.provisioning_id, "title": title.code if title else None,
                        "until": rental.ends_at.isoformat() if rental else None},
        )
        # Invoiced at once when the scheme's usage billing rules say so; otherwise RATED for
        # the billing run. Last on purpose: posting takes the next gapless invoice number,
        # whose row lock serialises every order's invoice until its commit, so the less
        # work after it, the more orders per second.
        invoice = usage_bill_if_due(subscription=subscription, performed_by=action.performed_by, channel=action.channel)
        return {"udr": udr.pk, "amount": str(quote.amount), "currency": quote.currency, "reason": quote.reason,
                "rental_until": rental.ends_at.isoformat() if rental else None, "invoice": invoice.number if invoice else None}


def usage_order_place(
    *, subscription: Subscription, product: Product | None = None, title: ContentTitle | None = None,
    device: Device | None = None, screen: str | None = None, usage_at: datetime | None = None,
    transaction_reference: str | None = None, performed_by=None, channel: str = Channel.CALL_CENTER,
) -> SubscriptionAction:
    """Order a PPV movie (by title or product) for a subscription. Returns the EXECUTED
    action (``action.result["udr"]`` is the UDR); raises ActionRejected with every reason."""
    if product is None and title is None:
        raise ValidationFailed("Say what is ordered: a title or a product.", fields={"title": ["Required."]})
    if product is None:
        product = title_ppv_product(title)
        if product is None:
            raise ValidationFailed(f"{title} is not sold per view.", fields={"title": ["Not a PPV title."]})
    if title is None:
        title = product.titles.first()
    if screen is not None and screen not in Screen.values:
        raise ValidationFailed("Unknown screen.", fields={"screen": [f"Choose one of {', '.join(Screen.values)}."]})
    # An order changes no reference data (catalogs, titles, tax rates, ledger accounts), so
    # each group's version is read once for the whole order, not at every look (core.refcache).
    with versions_read_once():
        return subscription_act(
            subscription=subscription, behavior=Behavior.ADD_SERVICE_USAGE, transaction_reference=transaction_reference,
            performed_by=performed_by, channel=channel, product=product, title=title, device=device, screen=screen,
            usage_at=usage_at or timezone.now(),
        )


def order_udr(action: SubscriptionAction) -> UsageDetailRecord:
    """The order's UDR with what showing it needs (one query: the API answers every order with it)."""
    return order_get(pk=action.result["udr"])
