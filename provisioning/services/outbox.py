"""Writing commands for the platform: the outbox.

Callers (subscription actions, PPV orders, account changes) call ``provisioning_request_add``
inside their own transaction, so the command exists exactly when the change does. After
the commit a Celery task sends it at once (low latency); if that task is lost, the beat
dispatcher finds the PENDING row anyway — the row, not the task, is the record.
"""

from __future__ import annotations

from typing import Any

from core.exceptions import ApplicationError
from core.queueing import signature_queue_on_commit
from core.sql import fetch_one
from core.sql import insert as sql_insert

from ..commands import ACCOUNT_REACTIVATE, ACCOUNT_SUSPEND, ACCOUNT_TERMINATE, ACCOUNT_UPDATE, command_allowed
from ..models import ProvisioningProvider, ProvisioningRequest
from ..selectors import account_known_to_platform, provider_default

Kind = ProvisioningRequest.Kind


def _sequence_next(subscription) -> int:
    """The subscription's next sequence number. Callers hold the subscription's row lock
    (every subscription action does), so max + 1 cannot be taken twice; the unique
    constraint would stop it if it were."""
    # Every order writes a request: prepared (core.sql), not built by the ORM each time.
    last = fetch_one(f"SELECT MAX(sequence) FROM {ProvisioningRequest._meta.db_table} WHERE subscription_id = %s",
                     [subscription.pk])[0]
    return (last or 0) + 1


def provisioning_request_add(
    *, kind: str, cause: str, account, subscription=None, action=None, provider: ProvisioningProvider | None = None,
    parameters: dict[str, Any] | None = None,
) -> ProvisioningRequest:
    """Write one command in the caller's transaction and send it after the commit.

    ``cause`` is the subscription behavior or account change that requires it; the command
    must be one ``provisioning.commands.COMMANDS`` lists for it."""
    if not command_allowed(cause, kind):
        raise ApplicationError(f"{cause} does not send {kind} to the platform (see provisioning/commands.py).",
                               code="provisioning_command_unmapped")
    request = sql_insert(ProvisioningRequest(
        provider=provider or provider_default(), account=account, subscription=subscription, action=action, kind=kind,
        cause=cause, parameters={"account": account.number, **(parameters or {})},
        sequence=_sequence_next(subscription) if subscription is not None else None,
    ))
    from ..tasks import provisioning_request_send_task

    signature_queue_on_commit(provisioning_request_send_task.s(request.pk), recovered_by="the provisioning dispatcher")
    return request


# --- account changes (accounts/services.py calls this in its transaction) ---------------------

ACCOUNT_COMMANDS = {
    ACCOUNT_SUSPEND: (Kind.SUSPEND_ACCOUNT, {}),
    ACCOUNT_REACTIVATE: (Kind.UPDATE_ACCOUNT, {"status": "ACTIVE"}),
    ACCOUNT_TERMINATE: (Kind.CANCEL_ACCOUNT, {}),
    ACCOUNT_UPDATE: (Kind.UPDATE_ACCOUNT, {}),
}


def account_change_provision(*, account, cause: str) -> ProvisioningRequest | None:
    """Tell the platform about an account change (suspend, reactivate, terminate, update).
    Nothing is sent for an account the platform was never asked to create."""
    if not account_known_to_platform(account):
        return None
    kind, parameters = ACCOUNT_COMMANDS[cause]
    if cause == ACCOUNT_UPDATE:
        parameters = {"classification": account.classification.code if account.classification_id else ""}
    return provisioning_request_add(kind=kind, cause=cause, account=account, parameters=parameters)
