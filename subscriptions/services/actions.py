"""Subscription actions: every change to a subscription is a recorded action.

An action (``SubscriptionActionType``) declares its restrictions (the subscription states
it may start from), its validations (every reason collected) and its processing. Running
one — now or at a scheduled date — goes through ``subscription_act``:

- the subscription row is locked, so actions on one subscription run one at a time;
- a ``transaction_reference`` identifies the request: a repeat (a retried HTTP call, a
  double click, a second worker) gets the first outcome back — the same executed action,
  or the same rejection — and nothing runs twice;
- an executed action is a ``SubscriptionAction`` row (EXECUTED) written in the same
  transaction as its effects and its provisioning requests (the outbox);
- a rejected one is a REJECTED row with every reason, and nothing else changes;
- a scheduled one is a SCHEDULED row that Celery beat runs at its date
  (``subscription_actions_run_due``).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any, ClassVar

from django.db import IntegrityError, connection, models, transaction
from django.utils import timezone

from accounts.models import AccountsReceivable
from billing.models import BillingTermScheme
from catalogs.models import Product
from core.actions import Action, ActionRejected
from core.choices import Channel
from core.exceptions import ApplicationError, Conflict, ValidationFailed
from core.services import audit_record, sequence_next
from core.sql import execute, fetch_all, fetch_one, insert, instance_from_row, select_columns, split_row

from ..models import Device, InstalledItem, Subscription, SubscriptionAction, SubscriptionService

Behavior = SubscriptionAction.Behavior
ActionState = SubscriptionAction.State
State = Subscription.State

# Parameters are stored as JSON: model instances by primary key, datetimes as ISO text.
PARAMETER_MODELS: dict[str, str] = {
    "product": "catalogs.Product",
    "to_product": "catalogs.Product",
    "title": "catalogs.ContentTitle",
    "device": "subscriptions.Device",
    "service": "subscriptions.SubscriptionService",
    "item": "subscriptions.InstalledItem",
    "price_plan": "catalogs.PricePlan",
}
DATETIME_PARAMETERS = {"usage_at"}


def parameters_to_json(params: dict[str, Any]) -> dict[str, Any]:
    data = {}
    for name, value in params.items():
        if isinstance(value, models.Model):
            data[name] = value.pk
        elif isinstance(value, datetime):
            data[name] = value.isoformat()
        else:
            data[name] = value
    return data


def parameters_from_json(data: dict[str, Any]) -> dict[str, Any]:
    from django.apps import apps

    params = {}
    for name, value in data.items():
        if name in PARAMETER_MODELS and value is not None:
            params[name] = apps.get_model(PARAMETER_MODELS[name])._default_manager.get(pk=value)
        elif name in DATETIME_PARAMETERS and value:
            params[name] = datetime.fromisoformat(value)
        else:
            params[name] = value
    return params


class SubscriptionActionType(Action[Subscription]):
    """One behavior. Subclasses set ``behavior``, ``label``, ``allowed_from`` and implement
    ``validate`` and ``process`` (which returns a JSON-able result, e.g. ``{"udr": 12}``)."""

    behavior: ClassVar[str]

    @property
    def code(self) -> str:  # type: ignore[override]
        return self.behavior

    def validate(self, subscription: Subscription, **params: Any) -> Iterable[str]:
        return ()

    def process(self, subscription: Subscription, *, action: SubscriptionAction, **params: Any) -> dict[str, Any]:
        raise NotImplementedError

    def lock(self, subscription: Subscription) -> Subscription:
        """The subscription (and its account) locked for the action, with its billing term
        scheme read along but not locked: locking every joined row (a bare
        ``select_for_update()``) made every order of every subscriber on a scheme wait for
        the one before it to commit. ``FOR NO KEY UPDATE``: rows written meanwhile that
        only reference the subscription or the account (FOR KEY SHARE) need not wait either.
        Hand-written and prepared (``core.sql``): every action and every order runs it."""
        row = fetch_one(_lock_sql(connection.vendor), [subscription.pk])
        if row is None:
            raise Subscription.DoesNotExist(f"No subscription {subscription.pk}.")
        locked, account, scheme = split_row(row, _LOCKED_MODELS)
        Subscription._meta.get_field("account").set_cached_value(locked, account)
        Subscription._meta.get_field("billing_term_scheme").set_cached_value(locked, scheme)
        return locked


_LOCKED_MODELS = (Subscription, AccountsReceivable, BillingTermScheme)


@functools.cache
def _lock_sql(vendor: str) -> str:
    columns = ", ".join(select_columns(model, alias) for model, alias in zip(_LOCKED_MODELS, ("s", "a", "b")))
    lock = " FOR NO KEY UPDATE OF s, a" if vendor == "postgresql" else ""  # SQLite locks the whole database on write
    return (f"SELECT {columns} FROM {Subscription._meta.db_table} s "
            f"JOIN {AccountsReceivable._meta.db_table} a ON a.id = s.account_id "
            f"JOIN {BillingTermScheme._meta.db_table} b ON b.id = s.billing_term_scheme_id WHERE s.id = %s{lock}")


ACTION_TYPES: dict[str, SubscriptionActionType] = {}


def action_type_register(action_class: type[SubscriptionActionType]) -> type[SubscriptionActionType]:
    """Class decorator: make a behavior runnable through ``subscription_act``."""
    ACTION_TYPES[action_class.behavior] = action_class()
    return action_class


def state_set(subscription: Subscription, state: str) -> None:
    subscription.state = state
    subscription.state_changed_at = timezone.now()
    subscription.save(update_fields=["state", "state_changed_at"])


def _replay(previous: SubscriptionAction, subscription: Subscription, behavior: str) -> SubscriptionAction:
    """A repeated transaction reference: the first outcome, or a conflict if the reference
    was used for something else."""
    if previous.subscription_id != subscription.pk or previous.behavior != behavior:
        raise Conflict(f"Transaction reference {previous.transaction_reference} was already used for another action.",
                       code="transaction_reference_reused")
    if previous.state == ActionState.REJECTED:
        raise ActionRejected(previous.get_behavior_display(), previous.reasons)
    return previous


def subscription_act(
    *, subscription: Subscription, behavior: str, transaction_reference: str | None = None, performed_by=None,
    channel: str = Channel.CALL_CENTER, scheduled_for: datetime | None = None, **params: Any,
) -> SubscriptionAction:
    """Run ``behavior`` on ``subscription`` once per ``transaction_reference`` (or schedule
    it for ``scheduled_for``). Returns the EXECUTED (or SCHEDULED) action; raises
    ``ActionRejected`` with every reason when it may not run."""
    if behavior not in ACTION_TYPES:
        raise ValidationFailed(f"Unknown action {behavior!r}.", fields={"behavior": ["Unknown action."]})
    reference = (transaction_reference or uuid.uuid4().hex).strip()
    if not reference or len(reference) > 100:
        raise ValidationFailed("A transaction reference is 1 to 100 characters.", fields={"transaction_reference": ["Invalid length."]})
    user = performed_by if performed_by is not None and getattr(performed_by, "is_authenticated", False) else None
    if scheduled_for is not None and scheduled_for > timezone.now():
        return _schedule(subscription, behavior, reference, user, channel, scheduled_for, params)
    return _execute(ACTION_TYPES[behavior], subscription, reference, user, channel, params)


def _schedule(subscription, behavior, reference, user, channel, scheduled_for, params) -> SubscriptionAction:
    with transaction.atomic():
        locked = Subscription.objects.select_for_update().get(pk=subscription.pk)
        previous = SubscriptionAction.objects.filter(transaction_reference=reference).first()
        if previous is not None:
            return _replay(previous, locked, behavior)
        return SubscriptionAction.objects.create(
            subscription=locked, behavior=behavior, state=ActionState.SCHEDULED, performed_by=user, channel=channel,
            scheduled_for=scheduled_for, transaction_reference=reference, parameters=parameters_to_json(params),
        )


def _execute(action_type: SubscriptionActionType, subscription: Subscription, reference: str, user, channel: str,
             params: dict[str, Any], scheduled: SubscriptionAction | None = None) -> SubscriptionAction:
    behavior = action_type.behavior
    with transaction.atomic():
        locked = action_type.lock(subscription)
        previous = _action_with_reference(reference, other_than=scheduled)
        if previous is not None:
            return _replay(previous, locked, behavior)
        reasons = action_type.check(locked, **params)
        if not reasons:
            row = scheduled or SubscriptionAction(subscription=locked, behavior=behavior, performed_by=user, channel=channel,
                                                  transaction_reference=reference, parameters=parameters_to_json(params))
            row.state, row.executed_at = ActionState.EXECUTED, timezone.now()
            if scheduled:
                row.save()
            else:
                insert(row)  # every order writes one: prepared (core.sql)
            row.result = action_type.process(locked, action=row, **params) or {}
            _result_save(row)
            return row
    try:
        with transaction.atomic():
            row = scheduled or SubscriptionAction(subscription=subscription, behavior=behavior, performed_by=user, channel=channel,
                                                  transaction_reference=reference, parameters=parameters_to_json(params))
            row.state, row.reasons, row.executed_at = ActionState.REJECTED, reasons, timezone.now()
            row.save()
    except IntegrityError:  # a concurrent twin recorded its outcome first
        return _replay(SubscriptionAction.objects.get(transaction_reference=reference), subscription, behavior)
    raise ActionRejected(action_type.label, reasons)


def _result_save(action: SubscriptionAction) -> None:
    """``action.save(update_fields=["result"])``, prepared."""
    field = SubscriptionAction._meta.get_field("result")
    execute(f"UPDATE {SubscriptionAction._meta.db_table} SET {field.column} = %s WHERE id = %s",
            [field.get_db_prep_save(action.result, connection=connection), action.pk])


def _action_with_reference(reference: str, *, other_than: SubscriptionAction | None) -> SubscriptionAction | None:
    """The action already recorded under this (unique) transaction reference, other than
    ``other_than``; prepared (``core.sql``), as every action and order asks it."""
    row = fetch_one(_action_by_reference_sql(), [reference, other_than.pk if other_than else 0])
    return instance_from_row(SubscriptionAction, row) if row else None


@functools.cache
def _action_by_reference_sql() -> str:
    return (f"SELECT {select_columns(SubscriptionAction, 'x')} FROM {SubscriptionAction._meta.db_table} x "
            "WHERE x.transaction_reference = %s AND x.id <> %s")


def subscription_action_cancel(*, action: SubscriptionAction, performed_by=None) -> SubscriptionAction:
    """Cancel a SCHEDULED action before it runs."""
    with transaction.atomic():
        locked = SubscriptionAction.objects.select_for_update().get(pk=action.pk)
        if locked.state != ActionState.SCHEDULED:
            raise ApplicationError(f"Only scheduled actions can be cancelled; this one is {locked.state}.", code="action_not_scheduled")
        locked.state = ActionState.CANCELLED
        locked.save(update_fields=["state"])
    return locked


def subscription_actions_run_due(*, now: datetime | None = None, limit: int = 500) -> int:
    """Run the SCHEDULED actions whose date has come (Celery beat calls this every minute).
    Workers claim rows with SKIP LOCKED, so several can run without doing one twice."""
    now = now or timezone.now()
    done = 0
    while done < limit:
        with transaction.atomic():
            due = (SubscriptionAction.objects.select_for_update(skip_locked=True)
                   .filter(state=ActionState.SCHEDULED, scheduled_for__lte=now).order_by("scheduled_for", "pk").first())
            if due is None:
                break
            try:
                _execute(ACTION_TYPES[due.behavior], due.subscription, due.transaction_reference, due.performed_by,
                         due.channel, parameters_from_json(due.parameters), scheduled=due)
            except ActionRejected:
                pass  # recorded on the row with its reasons
            except ApplicationError as error:
                SubscriptionAction.objects.filter(pk=due.pk).update(state=ActionState.REJECTED, reasons=[error.message],
                                                                    executed_at=timezone.now())
        done += 1
    return done


# --- creating a subscription -----------------------------------------------------------

def subscription_create(*, account: AccountsReceivable, billing_term_scheme, performed_by=None,
                        channel: str = Channel.CALL_CENTER) -> Subscription:
    """A new DRAFT subscription; services are added with ADD_SERVICE, then ACTIVATE."""
    errors: dict[str, list[str]] = {}
    if account.state != AccountsReceivable.State.ACTIVE:
        errors["account"] = [f"The account is {account.state}; subscriptions are opened for ACTIVE accounts."]
    if billing_term_scheme is None or billing_term_scheme.state != "EFFECTIVE":
        errors["billing_term_scheme"] = ["Choose an EFFECTIVE billing term scheme."]
    if errors:
        raise ValidationFailed("The subscription cannot be created.", fields=errors)
    with transaction.atomic():
        subscription = Subscription.objects.create(
            number=sequence_next(name="subscription", prefix="SUB", padding=7), account=account,
            billing_term_scheme=billing_term_scheme, state_changed_at=timezone.now(),
        )
        # What it will bill on, and by whom it was opened; its services and states are the
        # SubscriptionAction rows from here on.
        audit_record(target=subscription, action="created",
                     changes={"account": [None, account.number], "billing_term_scheme": [None, billing_term_scheme.name],
                              "state": [None, subscription.state]},
                     performed_by=performed_by, channel=channel)
    return subscription


def effective_termed_products(subscription: Subscription) -> list:
    """The products of the subscription's EFFECTIVE services (in the order they were added):
    what an order's catalog condition is checked against. Prepared (``core.sql``): every
    order asks it."""
    return [instance_from_row(Product, row) for row in fetch_all(_effective_products_sql(), [subscription.pk, State.EFFECTIVE])]


@functools.cache
def _effective_products_sql() -> str:
    return (f"SELECT {select_columns(Product, 'p')} FROM {SubscriptionService._meta.db_table} ss "
            f"JOIN {Product._meta.db_table} p ON p.id = ss.product_id WHERE ss.subscription_id = %s AND ss.state = %s ORDER BY ss.id")


__all__ = [
    "ACTION_TYPES", "Behavior", "State", "SubscriptionActionType", "action_type_register", "effective_termed_products",
    "state_set", "subscription_act", "subscription_action_cancel", "subscription_actions_run_due", "subscription_create",
    "Device", "InstalledItem", "SubscriptionService",
]
