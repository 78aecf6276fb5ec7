"""Payment methods: saving a card through Stripe (SetupIntent), offline methods, the
default.

Saving a card is two steps, because the card number must never reach us: we create a
SetupIntent and hand its client secret to the customer's browser, where Stripe's element
takes the card; then ``card_setup_complete`` asks Stripe how it went and keeps only the
method id, brand, last four digits and expiry (also reached from the
``setup_intent.succeeded`` webhook).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import IntegrityError, transaction

from accounts.models import AccountsReceivable
from core.choices import Channel
from core.exceptions import Conflict, NotFound, ValidationFailed
from core.services import audit_record

from ..gateways import gateway_get
from ..models import GatewayCustomer, MethodKind, PaymentMethod

OFFLINE_KINDS = {MethodKind.CASH, MethodKind.CHEQUE, MethodKind.BANK_TRANSFER, MethodKind.WALLET, MethodKind.VOUCHER}


def gateway_customer_ensure(*, account: AccountsReceivable) -> GatewayCustomer:
    """The account's Stripe customer, created once (the idempotency key is the account's
    number, so two concurrent first calls make one customer)."""
    existing = GatewayCustomer.objects.filter(account=account, gateway="stripe").first()
    if existing is not None:
        return existing
    gateway = gateway_get()
    external_id = gateway.customer_create(account_number=account.number, email=account.contact.email,
                                          idempotency_key=f"customer-{account.number}")
    try:
        with transaction.atomic():
            return GatewayCustomer.objects.create(account=account, gateway=gateway.name, external_id=external_id)
    except IntegrityError:
        return GatewayCustomer.objects.get(account=account, gateway="stripe")


@dataclass(frozen=True)
class CardSetup:
    method: PaymentMethod
    client_secret: str


def card_setup_start(*, account: AccountsReceivable, performed_by=None, channel: str = Channel.PORTAL) -> CardSetup:
    """Begin saving a card: a PENDING method and the SetupIntent's client secret for
    Stripe's element. Our row is written first; its pk is the idempotency key."""
    if account.state != AccountsReceivable.State.ACTIVE:
        raise Conflict(f"The account is {account.get_state_display()}; cards are added to active accounts only.",
                       code="account_not_active")
    customer = gateway_customer_ensure(account=account)
    with transaction.atomic():
        method = PaymentMethod.objects.create(account=account, kind=MethodKind.CARD, state=PaymentMethod.State.PENDING,
                                              gateway=customer.gateway)
    setup = gateway_get().setup_intent_create(customer_id=customer.external_id, idempotency_key=f"setup-{method.pk}")
    with transaction.atomic():
        PaymentMethod.objects.filter(pk=method.pk).update(setup_intent_id=setup.setup_intent_id)
        method.setup_intent_id = setup.setup_intent_id
        audit_record(target=method, action="card set-up started", performed_by=performed_by, channel=channel)
    return CardSetup(method=method, client_secret=setup.client_secret)


def card_setup_complete(*, setup_intent_id: str, account: AccountsReceivable | None = None, performed_by=None,
                        channel: str = Channel.PORTAL) -> PaymentMethod:
    """Ask Stripe whether the card was saved; if so keep its id and display details and
    make it ACTIVE (and the default when the account has none). ``account`` scopes the
    lookup for portal callers. Calling it again returns the same method."""
    methods = PaymentMethod.objects.filter(setup_intent_id=setup_intent_id)
    if account is not None:
        methods = methods.filter(account=account)
    method = methods.first()
    if method is None:
        raise NotFound("No card set-up with this id.")
    if method.state != PaymentMethod.State.PENDING:
        return method
    status = gateway_get().setup_intent_get(setup_intent_id=setup_intent_id)  # no lock held while asking
    if status.status != "succeeded" or status.card is None:
        raise Conflict(f"The card is not saved yet (Stripe says {status.status}).", code="card_setup_incomplete")
    with transaction.atomic():
        AccountsReceivable.objects.select_for_update().get(pk=method.account_id)
        method = PaymentMethod.objects.select_for_update().get(pk=method.pk)
        if method.state != PaymentMethod.State.PENDING:
            return method
        card = status.card
        method.gateway_method_id, method.card_brand, method.card_last4 = card.method_id, card.brand, card.last4
        method.card_exp_month, method.card_exp_year = card.exp_month, card.exp_year
        method.state = PaymentMethod.State.ACTIVE
        method.is_default = not PaymentMethod.objects.filter(account_id=method.account_id, is_default=True).exists()
        method.save()
        audit_record(target=method, action="card saved", changes={"card": [None, str(method)]},
                     performed_by=performed_by, channel=channel)
    return method


def payment_method_add(*, account: AccountsReceivable, kind: str, label: str = "", make_default: bool = False,
                       performed_by=None, channel: str = Channel.CALL_CENTER) -> PaymentMethod:
    """Record an offline method (cash, cheque, bank transfer, wallet, voucher)."""
    if kind not in OFFLINE_KINDS:
        raise ValidationFailed("Cards are added through Stripe's card form.", fields={"kind": [f"Choose one of {', '.join(sorted(OFFLINE_KINDS))}."]})
    with transaction.atomic():
        AccountsReceivable.objects.select_for_update().get(pk=account.pk)
        method = PaymentMethod.objects.create(account=account, kind=kind, label=label[:100])
        audit_record(target=method, action="added", performed_by=performed_by, channel=channel)
    if make_default or not PaymentMethod.objects.filter(account=account, is_default=True).exists():
        payment_method_set_default(method=method, performed_by=performed_by, channel=channel)
        method.refresh_from_db()
    return method


def payment_method_set_default(*, method: PaymentMethod, performed_by=None, channel: str = Channel.CALL_CENTER) -> PaymentMethod:
    with transaction.atomic():
        AccountsReceivable.objects.select_for_update().get(pk=method.account_id)
        method = PaymentMethod.objects.get(pk=method.pk)
        if method.state != PaymentMethod.State.ACTIVE:
            raise Conflict(f"The method is {method.get_state_display()}; only an active method can be the default.",
                           code="payment_method_not_active")
        PaymentMethod.objects.filter(account_id=method.account_id, is_default=True).exclude(pk=method.pk).update(is_default=False)
        if not method.is_default:
            method.is_default = True
            method.save(update_fields=["is_default"])
            audit_record(target=method, action="made default", performed_by=performed_by, channel=channel)
    return method


def payment_method_remove(*, method: PaymentMethod, performed_by=None, channel: str = Channel.CALL_CENTER) -> PaymentMethod:
    with transaction.atomic():
        method = PaymentMethod.objects.select_for_update().get(pk=method.pk)
        method.state, method.is_default = PaymentMethod.State.REMOVED, False
        method.save(update_fields=["state", "is_default"])
        audit_record(target=method, action="removed", performed_by=performed_by, channel=channel)
    return method
