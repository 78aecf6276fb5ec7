"""Billing term schemes: how subscriptions are billed (NORMAL or PREPAID, how often, on
which day, termed services billed in advance or not).

Life cycle: DRAFT → EFFECTIVE → TERMINATED. A scheme is edited only while DRAFT: once
EFFECTIVE, subscriptions are billed by its terms, so changing them in place would change
what those customers agreed to; a new scheme is made instead. Terminating one is refused
while subscriptions that are not cancelled still use it. Every change, and every refused
action with its reasons, is written to the scheme's audit trail.

Usage billing rules (maximum unbilled UDRs / amount) are terms of the scheme like the
others; ``billing.services.invoicing.usage_bill_if_due`` applies them.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction

from core.actions import AuditedAction, actions_by_code
from core.choices import Channel
from core.exceptions import ApplicationError, Conflict, ValidationFailed
from core.services import audit_changes, audit_record

from ..models import BillingTermScheme

DRAFT, EFFECTIVE, TERMINATED = BillingTermScheme.State.DRAFT, BillingTermScheme.State.EFFECTIVE, BillingTermScheme.State.TERMINATED
SCHEME_FIELDS = ("name", "kind", "billing_frequency", "billing_day", "pre_bill", "max_unbilled_udrs", "max_unbilled_amount")

Errors = dict[str, list[str]]


def _scheme_check(scheme: BillingTermScheme) -> Errors:
    """Every problem with the scheme's fields (model rules and the unique name), by field."""
    errors: Errors = {}
    try:
        scheme.full_clean(exclude=["state"])
    except DjangoValidationError as error:
        for name, messages in error.message_dict.items():
            errors.setdefault("non_field_errors" if name == "__all__" else name, []).extend(messages)
    return errors


def _values(scheme: BillingTermScheme) -> dict[str, Any]:
    return {name: getattr(scheme, name) for name in SCHEME_FIELDS}


def _name_taken(name: str) -> ValidationFailed:
    return ValidationFailed("The billing term scheme is not valid.", fields={"name": [f"Another billing term scheme is called {name}."]})


def billing_term_scheme_create(
    *, name: str, kind: str = BillingTermScheme.Kind.NORMAL, billing_frequency: str = BillingTermScheme.Frequency.MONTHLY,
    billing_day: int = 1, pre_bill: bool = True, max_unbilled_udrs: int | None = None, max_unbilled_amount=None,
    performed_by=None, channel: str = Channel.CALL_CENTER,
) -> BillingTermScheme:
    """A new DRAFT scheme; set it effective before subscriptions may use it. The usage
    billing rules (``max_unbilled_udrs``, ``max_unbilled_amount``) are optional."""
    scheme = BillingTermScheme(name=(name or "").strip(), kind=kind, billing_frequency=billing_frequency,
                               billing_day=billing_day, pre_bill=pre_bill, max_unbilled_udrs=max_unbilled_udrs,
                               max_unbilled_amount=max_unbilled_amount)
    errors = _scheme_check(scheme)
    if errors:
        raise ValidationFailed("The billing term scheme is not valid.", fields=errors)
    try:
        with transaction.atomic():
            scheme.save()
            audit_record(target=scheme, action="created", changes=audit_changes({}, _values(scheme)),
                         performed_by=performed_by, channel=channel)
    except IntegrityError:  # a concurrent create took the name
        raise _name_taken(scheme.name) from None
    return scheme


def billing_term_scheme_update(
    *, scheme: BillingTermScheme, data: dict[str, Any], performed_by=None, channel: str = Channel.CALL_CENTER,
) -> BillingTermScheme:
    """Change a DRAFT scheme's terms (``SCHEME_FIELDS``)."""
    unknown = set(data) - set(SCHEME_FIELDS)
    if unknown:
        raise ValidationFailed("These fields cannot be changed.", fields={name: ["Not editable."] for name in sorted(unknown)})
    try:
        return _update(scheme, data, performed_by=performed_by, channel=channel)
    except ApplicationError as refusal:
        # Kept in the audit trail, in its own transaction now that the refused one is rolled back.
        with transaction.atomic():
            audit_record(target=scheme, action="rejected: update", reasons=_reasons(refusal),
                         performed_by=performed_by, channel=channel)
        raise


def _reasons(refusal: ApplicationError) -> list[str]:
    details = [f"{name}: {message}" for name, messages in refusal.fields.items() for message in messages]
    return details or [refusal.message]


def _update(scheme: BillingTermScheme, data: dict[str, Any], *, performed_by, channel: str) -> BillingTermScheme:
    try:
        with transaction.atomic():
            locked = BillingTermScheme.objects.select_for_update().get(pk=scheme.pk)
            if locked.state != DRAFT:
                raise Conflict(
                    f"The billing term scheme {locked} is {locked.state}: its terms can be changed only while it is DRAFT, "
                    "because subscriptions are billed by them. Create a new scheme instead.",
                    code="scheme_not_draft",
                )
            before = _values(locked)
            for name, value in data.items():
                setattr(locked, name, value.strip() if name == "name" and isinstance(value, str) else value)
            errors = _scheme_check(locked)
            if errors:
                raise ValidationFailed("The billing term scheme is not valid.", fields=errors)
            changes = audit_changes(before, _values(locked))
            if changes:
                locked.save()
                audit_record(target=locked, action="updated", changes=changes, performed_by=performed_by, channel=channel)
    except IntegrityError:
        raise _name_taken(data.get("name", "")) from None
    return locked


# --- life cycle --------------------------------------------------------------------------

class SchemeSetEffective(AuditedAction):
    """DRAFT → EFFECTIVE: subscriptions may be created with it from now on."""

    code, label = "set_effective", "Set effective"
    allowed_from = frozenset({DRAFT})
    target_state = EFFECTIVE


class SchemeTerminate(AuditedAction):
    """EFFECTIVE → TERMINATED: no longer offered. Final."""

    code, label = "terminate", "Terminate"
    allowed_from = frozenset({EFFECTIVE})
    target_state = TERMINATED

    def validate(self, scheme: BillingTermScheme, **params: Any):
        in_use = scheme.subscriptions.exclude(state="CANCELLED").count()
        if in_use:
            which = "subscription that is not cancelled still uses" if in_use == 1 else "subscriptions that are not cancelled still use"
            them = "it" if in_use == 1 else "them"
            yield f"{in_use} {which} the billing term scheme {scheme}; move or terminate {them} first."


SCHEME_ACTIONS = actions_by_code(SchemeSetEffective, SchemeTerminate)


def billing_term_scheme_act(*, scheme: BillingTermScheme, action: str, performed_by=None,
                            channel: str = Channel.CALL_CENTER) -> BillingTermScheme:
    """Run a life cycle action by its code (``SCHEME_ACTIONS``); raises ActionRejected with
    every reason, and records the rejection in the audit trail."""
    if action not in SCHEME_ACTIONS:
        raise ValidationFailed(f"Unknown action {action!r}.", fields={"action": [f"Choose one of {', '.join(SCHEME_ACTIONS)}."]})
    return SCHEME_ACTIONS[action].execute(scheme, performed_by=performed_by, channel=channel)


def billing_term_scheme_set_effective(*, scheme: BillingTermScheme, performed_by=None,
                                      channel: str = Channel.CALL_CENTER) -> BillingTermScheme:
    return billing_term_scheme_act(scheme=scheme, action="set_effective", performed_by=performed_by, channel=channel)


def billing_term_scheme_terminate(*, scheme: BillingTermScheme, performed_by=None,
                                  channel: str = Channel.CALL_CENTER) -> BillingTermScheme:
    return billing_term_scheme_act(scheme=scheme, action="terminate", performed_by=performed_by, channel=channel)
