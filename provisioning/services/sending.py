"""Sending the outbox to the platform: in order per account, with retries, never twice.

A request is sent only when it heads its account's queue (no earlier request of the same
account is PENDING), so commands reach the platform in the order the changes happened —
within a subscription and across the account's subscriptions and account changes.

Each attempt is three steps, and no database lock is held during the SOAP call:

1. **claim** (a short transaction): lock the row with SKIP LOCKED, count the attempt and
   push ``next_attempt_at`` past the call's timeouts (a lease). Another worker skips it.
2. **call** the platform with the request's ``request_id``.
3. **record** (a short transaction): COMPLETED with the platform's reference; or, on a
   transient fault, PENDING again with exponential backoff (REJECTED once the attempts
   are exhausted); or, on a permanent fault, REJECTED with the reason.

A worker that dies between 1 and 3 leaves the row PENDING; when the lease runs out the
dispatcher sends it again with the same ``request_id``, which the platform applies once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.choices import Channel, LifecycleState
from core.exceptions import ApplicationError
from core.queueing import signature_queue_on_commit
from core.services import audit_record

from ..clients.nagra import CallOutcome, nagra_client
from ..commands import OPERATIONS
from ..models import ProvisioningProvider, ProvisioningRequest
from ..selectors import requests_due

logger = logging.getLogger(__name__)
State = ProvisioningRequest.State
LEASE_MARGIN_SECONDS = 30


@dataclass(frozen=True)
class Claim:
    pk: int
    attempt: int


def provider_address(provider: ProvisioningProvider) -> str:
    """Where the provider's commands go: ``NAGRA_ENDPOINT`` when set (sandbox, simulator,
    a laptop), otherwise the provider's own endpoint without ``?wsdl``."""
    return settings.NAGRA_ENDPOINT or provider.endpoint.split("?", 1)[0]


def provider_client(provider: ProvisioningProvider):
    return nagra_client(address=provider_address(provider), credentials=provider.credentials,
                        connect_timeout=settings.NAGRA_CONNECT_TIMEOUT, operation_timeout=settings.NAGRA_OPERATION_TIMEOUT)


def retry_delay(attempt: int) -> timedelta:
    """Exponential backoff: base, 2×base, 4×base, ... capped."""
    seconds = settings.NAGRA_RETRY_BASE_SECONDS * 2 ** max(attempt - 1, 0)
    return timedelta(seconds=min(seconds, settings.NAGRA_RETRY_MAX_SECONDS))


def _lease() -> timedelta:
    return timedelta(seconds=settings.NAGRA_CONNECT_TIMEOUT + settings.NAGRA_OPERATION_TIMEOUT + LEASE_MARGIN_SECONDS)


# --- the three steps ------------------------------------------------------------------------

def _claim(*, now: datetime, account_id: int | None = None) -> Claim | None:
    with transaction.atomic():
        request = requests_due(now=now, account_id=account_id).select_for_update(skip_locked=True, of=("self",)).first()
        if request is None:
            return None
        request.attempts += 1
        request.last_attempt_at = now
        request.next_attempt_at = now + _lease()
        request.save(update_fields=["attempts", "last_attempt_at", "next_attempt_at"])
        return Claim(pk=request.pk, attempt=request.attempts)


def _call(request: ProvisioningRequest) -> CallOutcome:
    provider = request.provider
    if provider is None:
        return CallOutcome(ok=False, transient=True, error_code="no_provider",
                           error_description="No EFFECTIVE provisioning provider handles this request.")
    if provider.state != LifecycleState.EFFECTIVE:
        return CallOutcome(ok=False, transient=True, error_code="provider_not_effective",
                           error_description=f"{provider} is NOT_EFFECTIVE; its requests wait until it is effective again.")
    operation, arguments = OPERATIONS[request.kind]
    try:
        payload = {"requestId": str(request.request_id), **arguments(request.parameters)}
    except KeyError as missing:
        return CallOutcome(ok=False, transient=False, error_code="invalid_request",
                           error_description=f"The request has no {missing} parameter.")
    return provider_client(provider).call(operation, payload)


def _record(claim: Claim, outcome: CallOutcome) -> ProvisioningRequest | None:
    now = timezone.now()
    with transaction.atomic():
        request = ProvisioningRequest.objects.select_for_update().filter(pk=claim.pk).first()
        if request is None or request.state != State.PENDING or request.attempts != claim.attempt:
            return request  # cancelled by staff, or another worker took over after our lease ran out
        request.raw_request, request.raw_response = outcome.raw_request, outcome.raw_response
        if outcome.ok:
            request.state, request.completed_at = State.COMPLETED, now
            request.platform_reference, request.error_code, request.error_description = outcome.reference[:100], "", ""
        elif outcome.transient and request.attempts < settings.NAGRA_RETRY_MAX_ATTEMPTS:
            request.next_attempt_at = now + retry_delay(request.attempts)
            request.error_code, request.error_description = outcome.error_code[:64], outcome.error_description
        else:
            request.state, request.rejected_at = State.REJECTED, now
            request.error_code = outcome.error_code[:64] if not outcome.transient else "retries_exhausted"
            request.error_description = (outcome.error_description if not outcome.transient else
                                         f"Gave up after {request.attempts} attempts; last error "
                                         f"({outcome.error_code}): {outcome.error_description}")
        request.save()
    if not outcome.ok:
        logger.warning("Provisioning request %s (%s) attempt %s: %s %s", request.pk, request.kind, request.attempts,
                       outcome.error_code, outcome.error_description)
    return request


def _attempt(claim: Claim) -> ProvisioningRequest | None:
    request = ProvisioningRequest.objects.select_related("provider").get(pk=claim.pk)
    return _record(claim, _call(request))


# --- what tasks, commands and the admin call ---------------------------------------------------

def provisioning_account_drain(*, account_id: int, limit: int = 100) -> int:
    """Send the account's due requests, in order, until one must wait. Returns how many
    attempts were made."""
    attempts = 0
    while attempts < limit:
        claim = _claim(now=timezone.now(), account_id=account_id)
        if claim is None:
            break
        attempts += 1
        request = _attempt(claim)
        if request is None or request.state == State.PENDING:
            break  # backing off: its successors wait for it
    return attempts


def provisioning_request_send(*, request_pk: int) -> int:
    """Send a new request now (the after-commit task): it and whatever follows it in its
    account's queue. If it is not its turn yet, the request before it brings it along."""
    account_id = ProvisioningRequest.objects.filter(pk=request_pk).values_list("account_id", flat=True).first()
    if account_id is None:
        return 0
    return provisioning_account_drain(account_id=account_id)


def provisioning_requests_dispatch(*, limit: int = 500) -> int:
    """Send every due request (the beat entry, every 30 s): new ones whose task was lost,
    retries whose backoff ended, and claims whose worker died. Several workers may run it
    at once; SKIP LOCKED and the lease keep them from sending one request twice."""
    attempts = 0
    while attempts < limit:
        claim = _claim(now=timezone.now())
        if claim is None:
            break
        attempts += 1
        _attempt(claim)
    return attempts


# --- the dead-letter actions -----------------------------------------------------------------

def provisioning_request_retry(*, request: ProvisioningRequest, performed_by=None, channel: str = Channel.CALL_CENTER) -> ProvisioningRequest:
    """REJECTED → PENDING: send it again now, with the same request id (the platform never
    applied a rejected request, and applies a resend of an applied one only once)."""
    with transaction.atomic():
        locked = ProvisioningRequest.objects.select_for_update().get(pk=request.pk)
        if locked.state != State.REJECTED:
            raise ApplicationError(f"Only rejected requests can be retried; #{locked.pk} is {locked.state}.",
                                   code="provisioning_not_rejected")
        audit_record(target=locked, action="retry", changes={"state": [locked.state, State.PENDING],
                                                             "error": [f"{locked.error_code}: {locked.error_description}", ""]},
                     performed_by=performed_by, channel=channel)
        locked.state, locked.attempts, locked.next_attempt_at, locked.rejected_at = State.PENDING, 0, timezone.now(), None
        locked.save(update_fields=["state", "attempts", "next_attempt_at", "rejected_at"])
        _queue(locked.pk)
    return locked


def provisioning_request_cancel(*, request: ProvisioningRequest, reason: str, performed_by=None,
                                channel: str = Channel.CALL_CENTER) -> ProvisioningRequest:
    """PENDING or REJECTED → CANCELLED: the command is dropped (e.g. made moot by a later
    change); the account's later requests go ahead."""
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError("Say why the request is cancelled.", code="reason_required")
    with transaction.atomic():
        locked = ProvisioningRequest.objects.select_for_update().get(pk=request.pk)
        if locked.state not in (State.PENDING, State.REJECTED):
            raise ApplicationError(f"Request #{locked.pk} is {locked.state}; only pending or rejected requests can be cancelled.",
                                   code="provisioning_not_cancellable")
        audit_record(target=locked, action="cancel", changes={"state": [locked.state, State.CANCELLED]}, reasons=[reason],
                     performed_by=performed_by, channel=channel)
        locked.state = State.CANCELLED
        locked.save(update_fields=["state"])
        account_id = locked.account_id
        _queue_account(account_id)
    return locked


def _queue(request_pk: int) -> None:
    from ..tasks import provisioning_request_send_task

    signature_queue_on_commit(provisioning_request_send_task.s(request_pk), recovered_by="the provisioning dispatcher")


def _queue_account(account_id: int) -> None:
    from ..tasks import provisioning_account_drain_task

    signature_queue_on_commit(provisioning_account_drain_task.s(account_id), recovered_by="the provisioning dispatcher")
