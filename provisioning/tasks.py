"""Celery entry points for provisioning: each takes ids and calls one service."""

from celery import shared_task

from .services.reconciliation import provisioning_reconcile
from .services.sending import provisioning_account_drain, provisioning_request_send, provisioning_requests_dispatch


@shared_task
def provisioning_request_send_task(request_pk: int) -> int:
    """Send a request right after the action that wrote it committed (and what follows it)."""
    return provisioning_request_send(request_pk=request_pk)


@shared_task
def provisioning_account_drain_task(account_id: int) -> int:
    return provisioning_account_drain(account_id=account_id)


@shared_task
def provisioning_requests_dispatch_task() -> int:
    """Send every due request (beat: every 30 s): lost tasks, retries, dead workers' claims."""
    return provisioning_requests_dispatch()


@shared_task
def provisioning_reconcile_task(performed_by_id: int | None = None) -> int:
    """Compare entitlements with the platform and repair (beat: daily; the admin on demand)."""
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.filter(pk=performed_by_id).first() if performed_by_id else None
    return provisioning_reconcile(performed_by=user).pk
