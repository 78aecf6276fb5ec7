"""Celery entry points for subscriptions."""

from celery import shared_task

from .services.actions import subscription_actions_run_due
from .services.devices import pairing_codes_purge


@shared_task
def subscription_actions_run_due_task() -> int:
    """Run the scheduled subscription actions whose date has come (beat: every minute).
    Returns how many were run (executed or rejected)."""
    return subscription_actions_run_due()


@shared_task
def pairing_codes_purge_task() -> int:
    """Delete TV pairing codes past their collection deadline (beat: hourly)."""
    return pairing_codes_purge()
