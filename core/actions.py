"""Business actions with restrictions, validations and processing.

CRM.COM models every change to a configured object (a catalog, a subscription) as an
*action* that declares:

- **restrictions**: the states the object may be in for the action to start;
- **validations**: prerequisites on the object and its related records;
- **processing**: what the action does and guarantees once it passes.

``Action.execute`` runs them in that order inside one transaction, after locking the row.
Every failing restriction and validation is collected, so a rejected action tells the user
every reason at once (``ActionRejected.reasons``), and nothing is changed. Subclasses
write the outcome where their domain keeps its history (``record``).

A subclass sets ``code`` (e.g. ``"set_effective"``), ``allowed_from`` and ``target_state``
(or overrides ``process``), and yields reasons from ``validate``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar, Generic, TypeVar

from django.db import models, transaction

from core.choices import Channel, LifecycleState
from core.exceptions import ApplicationError

M = TypeVar("M", bound=models.Model)


class ActionRejected(ApplicationError):
    """The action's restrictions or validations failed; ``reasons`` lists every one."""

    code = "action_rejected"
    http_status = 409

    def __init__(self, action: str, reasons: list[str]):
        self.action = action
        self.reasons = list(reasons)
        super().__init__(f"{action} was rejected: " + " ".join(self.reasons), fields={"reasons": self.reasons})


class Action(Generic[M]):
    code: ClassVar[str]
    label: ClassVar[str]
    #: states the object may start from; None means any state
    allowed_from: ClassVar[frozenset[str] | None] = None
    #: the state the object ends in, if the action changes state
    target_state: ClassVar[str | None] = None
    state_field: ClassVar[str] = "state"

    # --- to override ------------------------------------------------------------------
    def validate(self, obj: M, **params: Any) -> Iterable[str]:
        """Yield a human reason for every prerequisite that does not hold."""
        return ()

    def process(self, obj: M, **params: Any) -> M:
        """Do the work; the default moves the object to ``target_state``."""
        if self.target_state is not None:
            setattr(obj, self.state_field, self.target_state)
            obj.save()
        return obj

    def record(self, obj: M, *, executed: bool, reasons: list[str], performed_by, channel: str, changes: dict) -> None:
        """Write the outcome to the domain's history (an audit row, an action row)."""

    # --- the pattern ------------------------------------------------------------------
    def restrictions(self, obj: M) -> list[str]:
        state = getattr(obj, self.state_field)
        if self.allowed_from is not None and state not in self.allowed_from:
            allowed = ", ".join(sorted(self.allowed_from))
            return [f"It is {state}; {self.label.lower()} is allowed only from {allowed}."]
        return []

    def check(self, obj: M, **params: Any) -> list[str]:
        """Every reason the action would be rejected now (empty: it may run)."""
        return self.restrictions(obj) + list(self.validate(obj, **params))

    def lock(self, obj: M) -> M:
        return type(obj)._default_manager.select_for_update().get(pk=obj.pk)

    def execute(self, obj: M, *, performed_by=None, channel: str = Channel.CALL_CENTER, **params: Any) -> M:
        with transaction.atomic():
            locked = self.lock(obj)
            reasons = self.check(locked, **params)
            if not reasons:
                before = getattr(locked, self.state_field, None)
                result = self.process(locked, **params)
                after = getattr(result, self.state_field, None)
                changes = {self.state_field: [before, after]} if before != after else {}
                self.record(result, executed=True, reasons=[], performed_by=performed_by, channel=channel, changes=changes)
                return result
        # Rejected: nothing changed; the rejection itself is kept in its own transaction.
        with transaction.atomic():
            self.record(obj, executed=False, reasons=reasons, performed_by=performed_by, channel=channel, changes={})
        raise ActionRejected(self.label, reasons)


class AuditedAction(Action[M]):
    """An action whose outcome, executed or rejected with every reason, is written to the
    object's audit trail (``AuditEntry``): "set_effective", or "rejected: set_effective"."""

    def record(self, obj, *, executed: bool, reasons: list[str], performed_by, channel: str, changes: dict) -> None:
        from core.services import audit_record

        audit_record(target=obj, action=self.code if executed else f"rejected: {self.code}", changes=changes,
                     reasons=reasons, performed_by=performed_by, channel=channel)


# The configuration life cycle of price plans, promotions and usage service catalogs:
# DRAFT → EFFECTIVE ⇄ NOT_EFFECTIVE, DRAFT → CANCELLED. Subclass to add validations.

class SetEffective(AuditedAction):
    code, label = "set_effective", "Set effective"
    allowed_from = frozenset({LifecycleState.DRAFT, LifecycleState.NOT_EFFECTIVE})
    target_state = LifecycleState.EFFECTIVE


class SetNotEffective(AuditedAction):
    code, label = "set_not_effective", "Set not effective"
    allowed_from = frozenset({LifecycleState.EFFECTIVE})
    target_state = LifecycleState.NOT_EFFECTIVE


class Cancel(AuditedAction):
    code, label = "cancel", "Cancel"
    allowed_from = frozenset({LifecycleState.DRAFT})
    target_state = LifecycleState.CANCELLED


def actions_by_code(*classes: type[Action]) -> dict[str, Action]:
    return {action.code: action() for action in classes}
