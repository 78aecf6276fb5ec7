"""Reconciliation: compare what the platform holds with what we sold, and repair.

For each account the platform created for us, the run lists its entitlements on the
platform (``ListEntitlements``) and compares them with ours — the effective termed services
of its effective subscriptions (by provisioning id) and its PPV rentals still running.
Each difference is recorded on the run (shown in the admin) and repaired with a new
request through the outbox: ADD_ENTITLEMENT / PURCHASE_PPV for what is missing,
REMOVE_ENTITLEMENT for what the platform holds and we did not sell (or no longer do).

An account with commands in flight (a PENDING request, or one written while the run was
looking) is skipped and reported: its differences may be those very commands. Our side is
the truth; the platform is corrected, never our records.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from accounts.models import AccountsReceivable
from core.exceptions import ApplicationError

from ..commands import RECONCILE
from ..models import ProvisioningProvider, ProvisioningRequest, ReconciliationDifference, ReconciliationRun
from ..selectors import accounts_on_platform, expected_entitlements, provider_default
from .outbox import provisioning_request_add
from .sending import provider_client

logger = logging.getLogger(__name__)
Kind = ProvisioningRequest.Kind
Difference = ReconciliationDifference.Kind


class PlatformUnreachable(Exception):
    pass


def _platform_entitlements(provider: ProvisioningProvider, account: AccountsReceivable, now: datetime) -> dict[str, str]:
    """provisioning id -> kind, as the platform holds them now (expired PPV left out)."""
    outcome = provider_client(provider).call("ListEntitlements", {"accountId": account.number})
    if not outcome.ok:
        if outcome.transient:
            raise PlatformUnreachable(f"{outcome.error_code}: {outcome.error_description}")
        raise ApplicationError(f"{outcome.error_code}: {outcome.error_description}", code="platform_refused")
    held = {}
    for item in outcome.data.get("entitlement") or []:
        until = item.get("validUntil")
        if item.get("kind") == "PPV" and until is not None and until <= now:
            continue
        held[item["productId"]] = item.get("kind") or "SUBSCRIPTION"
    return held


def _last_request_pk(account: AccountsReceivable) -> int:
    return ProvisioningRequest.objects.filter(account=account).aggregate(last=Max("pk"))["last"] or 0


def _in_flight(account: AccountsReceivable) -> bool:
    return ProvisioningRequest.objects.filter(account=account, state=ProvisioningRequest.State.PENDING).exists()


def _account_reconcile(run: ReconciliationRun, account: AccountsReceivable, now: datetime) -> None:
    def note(kind: str, **fields) -> ReconciliationDifference:
        return ReconciliationDifference.objects.create(run=run, account=account, kind=kind, **fields)

    if _in_flight(account):
        note(Difference.SKIPPED, detail="Commands for this account are still pending.")
        run.accounts_skipped += 1
        return
    seen = _last_request_pk(account)
    try:
        held = _platform_entitlements(run.provider, account, now)  # no lock is held during the call
    except ApplicationError as refusal:
        note(Difference.ACCOUNT_UNREACHABLE, detail=refusal.message)
        run.differences_found += 1
        return
    with transaction.atomic():
        AccountsReceivable.objects.select_for_update().get(pk=account.pk)
        if _last_request_pk(account) != seen:
            note(Difference.SKIPPED, detail="The account changed while it was being compared.")
            run.accounts_skipped += 1
            return
        expected = expected_entitlements(account, now=now)
        run.accounts_checked += 1
        for provisioning_id, (kind, until) in sorted(expected.items()):
            if provisioning_id in held:
                continue
            command = Kind.PURCHASE_PPV if kind == "PPV" else Kind.ADD_ENTITLEMENT
            repair = provisioning_request_add(kind=command, cause=RECONCILE, account=account, provider=run.provider,
                                              parameters={"provisioning_id": provisioning_id, **({"until": until} if until else {})})
            note(Difference.MISSING_ON_PLATFORM, provisioning_id=provisioning_id, entitlement_kind=kind, repair=repair,
                 detail=f"We sold {provisioning_id}; the platform did not have it.")
        for provisioning_id, kind in sorted(held.items()):
            if provisioning_id in expected:
                continue
            repair = provisioning_request_add(kind=Kind.REMOVE_ENTITLEMENT, cause=RECONCILE, account=account, provider=run.provider,
                                              parameters={"provisioning_id": provisioning_id})
            note(Difference.EXTRA_ON_PLATFORM, provisioning_id=provisioning_id, entitlement_kind=kind, repair=repair,
                 detail=f"The platform had {provisioning_id}; nothing we sold entitles it.")
        missing = sum(1 for pid in expected if pid not in held)
        extra = sum(1 for pid in held if pid not in expected)
        run.differences_found += missing + extra
        run.requests_created += missing + extra


def provisioning_reconcile(*, provider: ProvisioningProvider | None = None, performed_by=None) -> ReconciliationRun:
    """Run a reconciliation for ``provider`` (the default one if not given) and return the
    run with its differences. A platform that cannot be reached ends the run FAILED."""
    provider = provider or provider_default()
    if provider is None:
        raise ApplicationError("No effective provisioning provider to reconcile.", code="no_provider")
    user = performed_by if performed_by is not None and getattr(performed_by, "is_authenticated", False) else None
    run = ReconciliationRun.objects.create(provider=provider, started_by=user)
    now = timezone.now()
    try:
        for account in accounts_on_platform(provider).iterator():
            _account_reconcile(run, account, now)
    except PlatformUnreachable as error:
        run.state, run.error = ReconciliationRun.State.FAILED, f"The platform could not be reached: {error}"
    else:
        run.state = ReconciliationRun.State.DONE
    run.finished_at = timezone.now()
    run.save()
    logger.info("Reconciliation %s: %s accounts, %s differences, %s repairs", run.pk, run.accounts_checked,
                run.differences_found, run.requests_created)
    return run
