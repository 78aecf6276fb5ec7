"""The subscription life cycle: activate, deactivate, rest (suspend) and end resting,
terminate, add / remove / swap a termed service, add / remove / swap an installed item.

Each behavior is a registered ``SubscriptionActionType`` run through ``subscription_act``
(so it is locked, recorded, idempotent by transaction reference and schedulable). The
table ``LIFECYCLE`` below is the whole life cycle at a glance; the classes under it add the
validations and do the processing. Every command for the content platform is written as a
``ProvisioningRequest`` (the outbox) in the same transaction as the change that causes it,
so the platform never hears of a change that was rolled back, nor misses one that was not.

Callers (the admin, the API, dunning) use the small ``subscription_*`` / ``installed_item_*``
functions at the bottom; each returns the EXECUTED (or SCHEDULED) ``SubscriptionAction``
and raises ``core.actions.ActionRejected`` listing every reason when it may not run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import AccountsReceivable
from billing.models import BillingTermScheme
from catalogs.models import PricePlan, PricePlanRate, Product, ProductType
from catalogs.pricing import price_plan_rate_for
from core.actions import ActionRejected
from core.choices import Channel, LifecycleState
from provisioning.models import ProvisioningRequest
from provisioning.selectors import provisioning_entry_for
from provisioning.services.outbox import provisioning_request_add

from ..models import InstalledItem, Subscription, SubscriptionAction, SubscriptionService
from .actions import ACTION_TYPES, Behavior, State, SubscriptionActionType, action_type_register, state_set, subscription_act

DRAFT, EFFECTIVE, NOT_EFFECTIVE, IN_RESTING, CANCELLED = (
    State.DRAFT, State.EFFECTIVE, State.NOT_EFFECTIVE, State.IN_RESTING, State.CANCELLED,
)
NOT_CANCELLED = frozenset({DRAFT, EFFECTIVE, NOT_EFFECTIVE, IN_RESTING})
CHANGEABLE = frozenset({DRAFT, EFFECTIVE, NOT_EFFECTIVE})  # services may be added or swapped
Kind = ProvisioningRequest.Kind
SERIAL_MAX_LENGTH = InstalledItem._meta.get_field("serial_number").max_length
REASON_MAX_LENGTH = 500


@dataclass(frozen=True)
class Rule:
    allowed_from: frozenset[str]                          # restrictions: the subscription states it may start from
    becomes: str | None = None                            # the subscription's state afterwards (None: unchanged)
    services: tuple[frozenset[str], str] | None = None    # its termed services in these states move to that state
    outbox: str = ""                                      # the provisioning requests written


# The life cycle: from which states each behavior may start, where it leaves the
# subscription and its services, and what the content platform is told.
LIFECYCLE: dict[str, Rule] = {
    Behavior.ACTIVATE: Rule(
        allowed_from=frozenset({DRAFT, NOT_EFFECTIVE}), becomes=EFFECTIVE, services=(frozenset({DRAFT, NOT_EFFECTIVE}), EFFECTIVE),
        outbox="CREATE_ACCOUNT the first time a subscription of the account is activated; ADD_ENTITLEMENT per service"),
    Behavior.DEACTIVATE: Rule(
        allowed_from=frozenset({EFFECTIVE}), becomes=NOT_EFFECTIVE, services=(frozenset({EFFECTIVE}), NOT_EFFECTIVE),
        outbox="REMOVE_ENTITLEMENT per service"),
    Behavior.REST: Rule(
        allowed_from=frozenset({EFFECTIVE}), becomes=IN_RESTING, services=(frozenset({EFFECTIVE}), IN_RESTING),
        outbox="REMOVE_ENTITLEMENT per service"),
    Behavior.END_RESTING: Rule(
        allowed_from=frozenset({IN_RESTING}), becomes=EFFECTIVE, services=(frozenset({IN_RESTING}), EFFECTIVE),
        outbox="ADD_ENTITLEMENT per service"),
    Behavior.TERMINATE: Rule(
        allowed_from=NOT_CANCELLED, becomes=CANCELLED, services=(NOT_CANCELLED, CANCELLED),
        outbox="REMOVE_ENTITLEMENT per service that was EFFECTIVE; UNPAIR_DEVICE per installed item"),
    Behavior.ADD_SERVICE: Rule(
        allowed_from=CHANGEABLE, outbox="ADD_ENTITLEMENT when the new service is EFFECTIVE (the subscription is)"),
    Behavior.REMOVE_SERVICE: Rule(
        allowed_from=NOT_CANCELLED, outbox="REMOVE_ENTITLEMENT when the service was EFFECTIVE"),
    Behavior.SWAP_SERVICE: Rule(
        allowed_from=CHANGEABLE, outbox="REMOVE_ENTITLEMENT for the old service and ADD_ENTITLEMENT for the new one, when EFFECTIVE"),
    Behavior.ADD_INSTALLED_ITEM: Rule(allowed_from=NOT_CANCELLED, outbox="PAIR_DEVICE (serial)"),
    Behavior.REMOVE_INSTALLED_ITEM: Rule(allowed_from=NOT_CANCELLED, outbox="UNPAIR_DEVICE (serial)"),
    Behavior.SWAP_INSTALLED_ITEM: Rule(allowed_from=NOT_CANCELLED, outbox="SWAP_DEVICE (old and new serial)"),
}


# --- the outbox ----------------------------------------------------------------------------
# Which commands each behavior writes is provisioning/commands.py's COMMANDS table; the
# outbox refuses any other.

def _request(kind: str, subscription: Subscription, action: SubscriptionAction, *, provider=None, **parameters: Any) -> None:
    provisioning_request_add(kind=kind, cause=action.behavior, account=subscription.account, subscription=subscription,
                             action=action, provider=provider, parameters=parameters)


def _entitlement_request(kind: str, subscription: Subscription, action: SubscriptionAction, product: Product) -> None:
    """ADD_ENTITLEMENT / REMOVE_ENTITLEMENT: the platform knows a product by its
    provisioning id when a usage catalog gives one, otherwise by our product code."""
    entry = provisioning_entry_for(product)
    _request(kind, subscription, action, provider=entry.catalog.provider if entry else None,
             product=product.code, provisioning_id=entry.provisioning_id if entry else product.code)


# --- shared validations --------------------------------------------------------------------

def _account_active_reasons(subscription: Subscription, what: str) -> list[str]:
    account = subscription.account
    if account.state != AccountsReceivable.State.ACTIVE:
        return [f"The account {account.number} is {account.state}; {what} only for ACTIVE accounts."]
    return []


def _service_add_reasons(subscription: Subscription, product: Product | None, price_plan: PricePlan | None) -> list[str]:
    """Why ``product`` may not be added: an active termed service, not on the subscription
    yet, priced for the account's classification now (in ``price_plan`` if one is chosen)."""
    if product is None:
        return ["Choose the service to add."]
    if not product.is_termed_service:
        return [f"{product} is not a termed service."]
    reasons = []
    if not product.is_active:
        reasons.append(f"{product} is no longer sold (inactive).")
    if subscription.services.filter(product=product).exclude(state=CANCELLED).exists():
        reasons.append(f"Subscription {subscription.number} already has {product}.")
    classification = subscription.account.classification
    rate = price_plan_rate_for(product=product, classification=classification, at=timezone.now())
    if rate is None:
        reasons.append(f"No effective price plan has a rate for {product} for {classification} accounts now.")
    if price_plan is not None and not (rate is not None and rate.price_plan_id == price_plan.pk) and not (
            PricePlan.objects.filter(pk=price_plan.pk, state=LifecycleState.EFFECTIVE, rates__product=product).exists()):
        reasons.append(f"The price plan {price_plan} is not an effective plan with a rate for {product}.")
    return reasons


def _current_service(service: SubscriptionService | None) -> SubscriptionService | None:
    """The caller's object may be stale; decide on the row as it is now (under the
    subscription's lock, which every change to its services takes)."""
    if service is None:
        return None
    return SubscriptionService.objects.select_related("product").filter(pk=service.pk).first()


def _service_remove_reasons(subscription: Subscription, service: SubscriptionService | None) -> list[str]:
    service = _current_service(service)
    if service is None:
        return ["Choose the service to remove."]
    if service.subscription_id != subscription.pk:
        return [f"{service.product} is not a service of subscription {subscription.number}."]
    if service.state == CANCELLED:
        return [f"{service.product} is already cancelled on subscription {subscription.number}."]
    return []


def _current_item(item: InstalledItem | None) -> InstalledItem | None:
    if item is None:
        return None
    return InstalledItem.objects.select_related("product").filter(pk=item.pk).first()


def _item_installed_reasons(subscription: Subscription, item: InstalledItem | None) -> list[str]:
    item = _current_item(item)
    if item is None:
        return ["Choose the installed item."]
    if item.subscription_id != subscription.pk or item.state != InstalledItem.State.INSTALLED:
        return [f"{item.product} {item.serial_number} is not installed on subscription {subscription.number}."]
    return []


def _physical_good_reasons(product: Product | None) -> list[str]:
    if product is None:
        return ["Choose the physical good (e.g. the decoder model)."]
    reasons = []
    if product.product_type.classification != ProductType.Classification.PHYSICAL_GOOD:
        reasons.append(f"{product} is not a physical good.")
    if not product.is_active:
        reasons.append(f"{product} is no longer sold (inactive).")
    return reasons


def _serial(serial_number: Any) -> str:
    return str(serial_number or "").strip()


def _serial_taken_reason(serial: str) -> str | None:
    other = InstalledItem.objects.select_related("subscription").filter(serial_number=serial, state=InstalledItem.State.INSTALLED).first()
    if other is None:
        return None
    return f"Serial number {serial} is already installed on subscription {other.subscription.number}."


def _serial_reasons(serial_number: Any) -> list[str]:
    serial = _serial(serial_number)
    if not serial:
        return ["Give the item's serial number."]
    if len(serial) > SERIAL_MAX_LENGTH:
        return [f"A serial number has at most {SERIAL_MAX_LENGTH} characters."]
    taken = _serial_taken_reason(serial)
    return [taken] if taken else []


# --- shared processing ---------------------------------------------------------------------

def _service_add(subscription: Subscription, action: SubscriptionAction, product: Product,
                 price_plan: PricePlan | None) -> SubscriptionService:
    """A new service: EFFECTIVE from today on an EFFECTIVE subscription (and entitled),
    DRAFT otherwise (activation makes it EFFECTIVE)."""
    if price_plan is None:
        price_plan = price_plan_rate_for(product=product, classification=subscription.account.classification,
                                         at=timezone.now()).price_plan
    effective = subscription.state == EFFECTIVE
    service = SubscriptionService.objects.create(
        subscription=subscription, product=product, price_plan=price_plan, state=EFFECTIVE if effective else DRAFT,
        start_date=timezone.localdate() if effective else None,
    )
    if effective:
        _entitlement_request(Kind.ADD_ENTITLEMENT, subscription, action, product)
    return service


def _service_cancel(subscription: Subscription, action: SubscriptionAction, service: SubscriptionService) -> None:
    was_effective = service.state == EFFECTIVE
    service.state, service.end_date = CANCELLED, timezone.localdate()
    service.save(update_fields=["state", "end_date"])
    if was_effective:
        _entitlement_request(Kind.REMOVE_ENTITLEMENT, subscription, action, service.product)


def _item_install(label: str, subscription: Subscription, product: Product, serial: str) -> InstalledItem:
    """Install ``serial``. Two concurrent installs of one serial on different subscriptions
    both pass validation (each holds only its own subscription's lock); the database's
    partial unique constraint stops the second, which gets the same reason validation gives."""
    try:
        with transaction.atomic():
            return InstalledItem.objects.create(subscription=subscription, product=product, serial_number=serial)
    except IntegrityError:
        taken = _serial_taken_reason(serial)
        if taken is None:
            raise
        raise ActionRejected(label, [taken]) from None


def _item_charge(subscription: Subscription, action: SubscriptionAction, product: Product) -> int | None:
    """A sold decoder is charged once on the next bill, at the account's one-time rate for
    it; a product without one (a rented or free decoder) costs nothing. A swap replaces the
    box and charges nothing."""
    from billing.services.charges import one_time_charge_add

    rate = price_plan_rate_for(product=product, classification=subscription.account.classification,
                               charge_type=PricePlanRate.ChargeType.ONE_TIME)
    if rate is None:
        return None
    return one_time_charge_add(account=subscription.account, subscription=subscription, product=product,
                               reference=f"installed-item:{action.transaction_reference}"[:100],
                               performed_by=action.performed_by, channel=action.channel).pk


def _item_remove(item: InstalledItem) -> None:
    item.state, item.removed_at = InstalledItem.State.REMOVED, timezone.now()
    item.save(update_fields=["state", "removed_at"])


# --- the behaviors -------------------------------------------------------------------------

class LifecycleActionType(SubscriptionActionType):
    """A behavior of the ``LIFECYCLE`` table: its restrictions come from its row."""

    rule: ClassVar[Rule]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "behavior" in cls.__dict__:
            cls.rule = LIFECYCLE[cls.behavior]
            cls.allowed_from = cls.rule.allowed_from


class SubscriptionTransition(LifecycleActionType):
    """Moves the subscription and its services as its row says, and tells the platform
    to add or remove each moved service's entitlement."""

    entitlement: ClassVar[str]  # ADD_ENTITLEMENT or REMOVE_ENTITLEMENT, per moved service

    def services_move(self, subscription: Subscription) -> list[SubscriptionService]:
        moved_from, moved_to = self.rule.services
        services = list(subscription.services.select_related("product").filter(state__in=moved_from).order_by("pk"))
        for service in services:
            service.state = moved_to
            service.save(update_fields=["state"])
        return services

    def process(self, subscription: Subscription, *, action: SubscriptionAction, **params: Any) -> dict[str, Any]:
        services = self.services_move(subscription)
        for service in services:
            _entitlement_request(self.entitlement, subscription, action, service.product)
        state_set(subscription, self.rule.becomes)
        return {"services": [service.pk for service in services]}


@action_type_register
class Activate(SubscriptionTransition):
    behavior, label = Behavior.ACTIVATE, "Activate"
    entitlement = Kind.ADD_ENTITLEMENT

    def validate(self, subscription: Subscription, **params: Any):
        yield from _account_active_reasons(subscription, "subscriptions are activated")
        scheme = subscription.billing_term_scheme
        if scheme.state != BillingTermScheme.State.EFFECTIVE:
            yield f"The billing term scheme {scheme} is {scheme.state}; it must be EFFECTIVE."
        if not subscription.services.exclude(state=CANCELLED).exists():
            yield f"Subscription {subscription.number} has no termed services: add one first."

    def services_move(self, subscription: Subscription) -> list[SubscriptionService]:
        services = super().services_move(subscription)
        today = timezone.localdate()
        for service in services:
            # A service activated again after DEACTIVATE keeps its first start date, so a
            # free trial counted from it is not granted twice.
            if service.start_date is None:
                service.start_date = today
                service.save(update_fields=["start_date"])
        return services

    def process(self, subscription: Subscription, *, action: SubscriptionAction, **params: Any) -> dict[str, Any]:
        # Lock order: the subscription (taken by subscription_act), then its account; the
        # account lock makes two subscriptions activated at once ask for one platform account.
        account = AccountsReceivable.objects.select_for_update().get(pk=subscription.account_id)
        account_created = not ProvisioningRequest.objects.filter(account=account, kind=Kind.CREATE_ACCOUNT).exists()
        if account_created:
            _request(Kind.CREATE_ACCOUNT, subscription, action)
        return {**super().process(subscription, action=action), "account_created": account_created}


@action_type_register
class Deactivate(SubscriptionTransition):
    behavior, label = Behavior.DEACTIVATE, "Deactivate"
    entitlement = Kind.REMOVE_ENTITLEMENT


@action_type_register
class Rest(SubscriptionTransition):
    behavior, label = Behavior.REST, "Rest (suspend)"
    entitlement = Kind.REMOVE_ENTITLEMENT


@action_type_register
class EndResting(SubscriptionTransition):
    behavior, label = Behavior.END_RESTING, "End resting (resume)"
    entitlement = Kind.ADD_ENTITLEMENT

    def validate(self, subscription: Subscription, **params: Any):
        yield from _account_active_reasons(subscription, "services resume")


@action_type_register
class Terminate(LifecycleActionType):
    behavior, label = Behavior.TERMINATE, "Terminate"

    def validate(self, subscription: Subscription, *, reason: str | None = None, **params: Any):
        reason = (reason or "").strip()
        if not reason:
            yield f"Give the reason for terminating subscription {subscription.number}."
        elif len(reason) > REASON_MAX_LENGTH:
            yield f"Keep the reason to {REASON_MAX_LENGTH} characters."

    def process(self, subscription: Subscription, *, action: SubscriptionAction, reason: str, **params: Any) -> dict[str, Any]:
        services = list(subscription.services.select_related("product").exclude(state=CANCELLED).order_by("pk"))
        for service in services:
            _service_cancel(subscription, action, service)
        items = list(subscription.installed_items.select_related("product").filter(state=InstalledItem.State.INSTALLED).order_by("pk"))
        for item in items:
            _item_remove(item)
            _request(Kind.UNPAIR_DEVICE, subscription, action, serial_number=item.serial_number, product=item.product.code)
        state_set(subscription, CANCELLED)
        return {"services": [service.pk for service in services], "items": [item.pk for item in items], "reason": reason.strip()}


@action_type_register
class AddService(LifecycleActionType):
    behavior, label = Behavior.ADD_SERVICE, "Add service"

    def validate(self, subscription: Subscription, *, product: Product | None = None, price_plan: PricePlan | None = None,
                 **params: Any):
        return _service_add_reasons(subscription, product, price_plan)

    def process(self, subscription: Subscription, *, action: SubscriptionAction, product: Product,
                price_plan: PricePlan | None = None, **params: Any) -> dict[str, Any]:
        service = _service_add(subscription, action, product, price_plan)
        return {"service": service.pk, "price_plan": service.price_plan.code, "state": service.state}


@action_type_register
class RemoveService(LifecycleActionType):
    behavior, label = Behavior.REMOVE_SERVICE, "Remove service"

    def validate(self, subscription: Subscription, *, service: SubscriptionService | None = None, **params: Any):
        return _service_remove_reasons(subscription, service)

    def process(self, subscription: Subscription, *, action: SubscriptionAction, service: SubscriptionService,
                **params: Any) -> dict[str, Any]:
        service = _current_service(service)
        _service_cancel(subscription, action, service)
        return {"service": service.pk}


@action_type_register
class SwapService(LifecycleActionType):
    """One service for another in one step: the old one cancelled, the new one added, each
    with its own validations (reported together)."""

    behavior, label = Behavior.SWAP_SERVICE, "Swap service"

    def validate(self, subscription: Subscription, *, service: SubscriptionService | None = None,
                 to_product: Product | None = None, price_plan: PricePlan | None = None, **params: Any):
        return _service_remove_reasons(subscription, service) + _service_add_reasons(subscription, to_product, price_plan)

    def process(self, subscription: Subscription, *, action: SubscriptionAction, service: SubscriptionService,
                to_product: Product, price_plan: PricePlan | None = None, **params: Any) -> dict[str, Any]:
        old = _current_service(service)
        _service_cancel(subscription, action, old)
        new = _service_add(subscription, action, to_product, price_plan)
        return {"removed": old.pk, "service": new.pk, "price_plan": new.price_plan.code}


@action_type_register
class AddInstalledItem(LifecycleActionType):
    behavior, label = Behavior.ADD_INSTALLED_ITEM, "Add installed item"

    def validate(self, subscription: Subscription, *, product: Product | None = None, serial_number: str = "", **params: Any):
        return _physical_good_reasons(product) + _serial_reasons(serial_number)

    def process(self, subscription: Subscription, *, action: SubscriptionAction, product: Product, serial_number: str,
                **params: Any) -> dict[str, Any]:
        item = _item_install(self.label, subscription, product, _serial(serial_number))
        _request(Kind.PAIR_DEVICE, subscription, action, serial_number=item.serial_number, product=product.code)
        return {"item": item.pk, "one_time_charge": _item_charge(subscription, action, product)}


@action_type_register
class RemoveInstalledItem(LifecycleActionType):
    behavior, label = Behavior.REMOVE_INSTALLED_ITEM, "Remove installed item"

    def validate(self, subscription: Subscription, *, item: InstalledItem | None = None, **params: Any):
        return _item_installed_reasons(subscription, item)

    def process(self, subscription: Subscription, *, action: SubscriptionAction, item: InstalledItem, **params: Any) -> dict[str, Any]:
        item = _current_item(item)
        _item_remove(item)
        _request(Kind.UNPAIR_DEVICE, subscription, action, serial_number=item.serial_number, product=item.product.code)
        return {"item": item.pk}


@action_type_register
class SwapInstalledItem(LifecycleActionType):
    """A faulty decoder replaced: the old serial removed, the new one installed (the same
    model unless ``product`` names another), and one SWAP_DEVICE command for the platform."""

    behavior, label = Behavior.SWAP_INSTALLED_ITEM, "Swap installed item"

    def validate(self, subscription: Subscription, *, item: InstalledItem | None = None, serial_number: str = "",
                 product: Product | None = None, **params: Any):
        reasons = _item_installed_reasons(subscription, item)
        current = _current_item(item)
        return reasons + _physical_good_reasons(product or (current.product if current else None)) + _serial_reasons(serial_number)

    def process(self, subscription: Subscription, *, action: SubscriptionAction, item: InstalledItem, serial_number: str,
                product: Product | None = None, **params: Any) -> dict[str, Any]:
        old = _current_item(item)
        _item_remove(old)
        new = _item_install(self.label, subscription, product or old.product, _serial(serial_number))
        _request(Kind.SWAP_DEVICE, subscription, action, old_serial_number=old.serial_number,
                 new_serial_number=new.serial_number, product=new.product.code)
        return {"removed": old.pk, "item": new.pk}


# --- what callers use ----------------------------------------------------------------------

def subscription_actions_available(subscription: Subscription) -> list[str]:
    """The behaviors whose restrictions allow the subscription's current state (the admin
    shows a button for each; validations still decide when one is run)."""
    return [behavior for behavior in Behavior.values
            if behavior in ACTION_TYPES and not ACTION_TYPES[behavior].restrictions(subscription)]


def _act(behavior: str, subscription: Subscription, *, transaction_reference: str | None, performed_by, channel: str,
         scheduled_for: datetime | None, **params: Any) -> SubscriptionAction:
    return subscription_act(subscription=subscription, behavior=behavior, transaction_reference=transaction_reference,
                            performed_by=performed_by, channel=channel, scheduled_for=scheduled_for, **params)


def subscription_activate(*, subscription: Subscription, transaction_reference: str | None = None, performed_by=None,
                          channel: str = Channel.CALL_CENTER, scheduled_for: datetime | None = None) -> SubscriptionAction:
    return _act(Behavior.ACTIVATE, subscription, transaction_reference=transaction_reference, performed_by=performed_by,
                channel=channel, scheduled_for=scheduled_for)


def subscription_deactivate(*, subscription: Subscription, transaction_reference: str | None = None, performed_by=None,
                            channel: str = Channel.CALL_CENTER, scheduled_for: datetime | None = None) -> SubscriptionAction:
    return _act(Behavior.DEACTIVATE, subscription, transaction_reference=transaction_reference, performed_by=performed_by,
                channel=channel, scheduled_for=scheduled_for)


def subscription_rest(*, subscription: Subscription, transaction_reference: str | None = None, performed_by=None,
                      channel: str = Channel.CALL_CENTER, scheduled_for: datetime | None = None) -> SubscriptionAction:
    return _act(Behavior.REST, subscription, transaction_reference=transaction_reference, performed_by=performed_by,
                channel=channel, scheduled_for=scheduled_for)


def subscription_end_resting(*, subscription: Subscription, transaction_reference: str | None = None, performed_by=None,
                             channel: str = Channel.CALL_CENTER, scheduled_for: datetime | None = None) -> SubscriptionAction:
    return _act(Behavior.END_RESTING, subscription, transaction_reference=transaction_reference, performed_by=performed_by,
                channel=channel, scheduled_for=scheduled_for)


def subscription_terminate(*, subscription: Subscription, reason: str, transaction_reference: str | None = None,
                           performed_by=None, channel: str = Channel.CALL_CENTER,
                           scheduled_for: datetime | None = None) -> SubscriptionAction:
    return _act(Behavior.TERMINATE, subscription, transaction_reference=transaction_reference, performed_by=performed_by,
                channel=channel, scheduled_for=scheduled_for, reason=reason)


def subscription_service_add(*, subscription: Subscription, product: Product, price_plan: PricePlan | None = None,
                             transaction_reference: str | None = None, performed_by=None, channel: str = Channel.CALL_CENTER,
                             scheduled_for: datetime | None = None) -> SubscriptionAction:
    """Add a termed service (``action.result["service"]`` is the new SubscriptionService)."""
    return _act(Behavior.ADD_SERVICE, subscription, transaction_reference=transaction_reference, performed_by=performed_by,
                channel=channel, scheduled_for=scheduled_for, product=product, price_plan=price_plan)


def subscription_service_remove(*, subscription: Subscription, service: SubscriptionService,
                                transaction_reference: str | None = None, performed_by=None,
                                channel: str = Channel.CALL_CENTER, scheduled_for: datetime | None = None) -> SubscriptionAction:
    return _act(Behavior.REMOVE_SERVICE, subscription, transaction_reference=transaction_reference, performed_by=performed_by,
                channel=channel, scheduled_for=scheduled_for, service=service)


def subscription_service_swap(*, subscription: Subscription, service: SubscriptionService, to_product: Product,
                              price_plan: PricePlan | None = None, transaction_reference: str | None = None,
                              performed_by=None, channel: str = Channel.CALL_CENTER,
                              scheduled_for: datetime | None = None) -> SubscriptionAction:
    return _act(Behavior.SWAP_SERVICE, subscription, transaction_reference=transaction_reference, performed_by=performed_by,
                channel=channel, scheduled_for=scheduled_for, service=service, to_product=to_product, price_plan=price_plan)


def installed_item_add(*, subscription: Subscription, product: Product, serial_number: str,
                       transaction_reference: str | None = None, performed_by=None, channel: str = Channel.CALL_CENTER,
                       scheduled_for: datetime | None = None) -> SubscriptionAction:
    """Install a physical good (``action.result["item"]`` is the new InstalledItem)."""
    return _act(Behavior.ADD_INSTALLED_ITEM, subscription, transaction_reference=transaction_reference,
                performed_by=performed_by, channel=channel, scheduled_for=scheduled_for, product=product,
                serial_number=serial_number)


def installed_item_remove(*, subscription: Subscription, item: InstalledItem, transaction_reference: str | None = None,
                          performed_by=None, channel: str = Channel.CALL_CENTER,
                          scheduled_for: datetime | None = None) -> SubscriptionAction:
    return _act(Behavior.REMOVE_INSTALLED_ITEM, subscription, transaction_reference=transaction_reference,
                performed_by=performed_by, channel=channel, scheduled_for=scheduled_for, item=item)


def installed_item_swap(*, subscription: Subscription, item: InstalledItem, serial_number: str, product: Product | None = None,
                        transaction_reference: str | None = None, performed_by=None, channel: str = Channel.CALL_CENTER,
                        scheduled_for: datetime | None = None) -> SubscriptionAction:
    return _act(Behavior.SWAP_INSTALLED_ITEM, subscription, transaction_reference=transaction_reference,
                performed_by=performed_by, channel=channel, scheduled_for=scheduled_for, item=item,
                serial_number=serial_number, product=product)
