"""Scheduled subscription actions: recorded now, run by Celery beat at their date, and
validated again when they run."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone as dt_timezone

import pytest
import time_machine
from celery.contrib.testing.worker import start_worker
from django.conf import settings

from accounts import services as account_services
from catalogs.models import Product
from config.celery import app
from core.exceptions import ApplicationError
from provisioning.models import ProvisioningRequest
from subscriptions.models import Subscription, SubscriptionService
from subscriptions.services.actions import subscription_action_cancel, subscription_actions_run_due, subscription_create
from subscriptions.services.lifecycle import subscription_activate, subscription_rest, subscription_service_add
from subscriptions.tasks import subscription_actions_run_due_task
from tests.factories import customer_create

from tests.world import effective_subscription

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 5, 4, 9, 0, tzinfo=dt_timezone.utc)


def draft_with_ppv_service(scheme, account=None) -> Subscription:
    subscription = subscription_create(account=account or customer_create(), billing_term_scheme=scheme)
    SubscriptionService.objects.create(subscription=subscription, product=Product.objects.get(code="PPV-SERVICE"))
    return subscription


def state_of(subscription: Subscription) -> str:
    subscription.refresh_from_db()
    return subscription.state


def test_an_action_for_later_is_only_scheduled(zx_catalog, billing_scheme, agent):
    subscription = draft_with_ppv_service(billing_scheme)
    with time_machine.travel(NOW, tick=False):
        action = subscription_activate(subscription=subscription, scheduled_for=NOW + timedelta(days=1), performed_by=agent,
                                       transaction_reference="go-live")

    assert (action.state, action.scheduled_for, action.executed_at, action.performed_by) == ("SCHEDULED", NOW + timedelta(days=1),
                                                                                              None, agent)
    assert state_of(subscription) == "DRAFT"
    assert subscription.services.get().state == "DRAFT" and not ProvisioningRequest.objects.exists()


def test_due_actions_run_and_later_ones_wait(zx_catalog, billing_scheme):
    # given one activation due in an hour and one in two days
    soon, later = draft_with_ppv_service(billing_scheme), draft_with_ppv_service(billing_scheme)
    with time_machine.travel(NOW, tick=False):
        due = subscription_activate(subscription=soon, scheduled_for=NOW + timedelta(hours=1))
        waiting = subscription_activate(subscription=later, scheduled_for=NOW + timedelta(days=2))

    # when beat runs that night (21:30 UTC is already 5 May in Nicosia)
    run_at = datetime(2026, 5, 4, 21, 30, tzinfo=dt_timezone.utc)
    with time_machine.travel(run_at, tick=False):
        assert subscription_actions_run_due() == 1

    due.refresh_from_db()
    waiting.refresh_from_db()
    assert (due.state, due.executed_at) == ("EXECUTED", run_at)
    assert state_of(soon) == "EFFECTIVE" and soon.services.get().start_date == date(2026, 5, 5)
    assert ProvisioningRequest.objects.filter(action=due).count() == 2  # CREATE_ACCOUNT, ADD_ENTITLEMENT
    assert waiting.state == "SCHEDULED" and state_of(later) == "DRAFT"
    assert subscription_actions_run_due(now=run_at) == 0  # nothing runs twice


def test_the_parameters_of_a_scheduled_action_are_kept(zx_catalog, billing_scheme):
    subscription = effective_subscription(customer_create(), billing_scheme)
    with time_machine.travel(NOW, tick=False):
        action = subscription_service_add(subscription=subscription, product=Product.objects.get(code="SPORTS-PACK"),
                                          scheduled_for=NOW + timedelta(minutes=5))

    with time_machine.travel(NOW + timedelta(minutes=6), tick=False):
        subscription_actions_run_due()

    action.refresh_from_db()
    added = SubscriptionService.objects.get(pk=action.result["service"])
    assert (action.state, added.product.code, added.state, added.price_plan.code) == ("EXECUTED", "SPORTS-PACK", "EFFECTIVE",
                                                                                      "OTT-BASIC")


def test_a_scheduled_action_whose_validations_fail_at_its_date_is_rejected(zx_catalog, billing_scheme):
    # given an activation scheduled for tomorrow, and the account suspended in between
    account = customer_create()
    subscription = draft_with_ppv_service(billing_scheme, account)
    with time_machine.travel(NOW, tick=False):
        action = subscription_activate(subscription=subscription, scheduled_for=NOW + timedelta(days=1))
    account_services.account_suspend(account=account)

    with time_machine.travel(NOW + timedelta(days=1, minutes=1), tick=False):
        assert subscription_actions_run_due() == 1

    action.refresh_from_db()
    assert action.state == "REJECTED"
    assert action.reasons == [f"The account {account.number} is SUSPENDED; subscriptions are activated only for ACTIVE accounts."]
    assert state_of(subscription) == "DRAFT" and not ProvisioningRequest.objects.exists()


def test_a_scheduled_action_refused_by_its_restrictions_at_its_date_is_rejected(zx_catalog, billing_scheme):
    subscription = effective_subscription(customer_create(), billing_scheme)
    with time_machine.travel(NOW, tick=False):
        action = subscription_rest(subscription=subscription, scheduled_for=NOW + timedelta(hours=1))
    Subscription.objects.filter(pk=subscription.pk).update(state="CANCELLED")

    with time_machine.travel(NOW + timedelta(hours=2), tick=False):
        subscription_actions_run_due()

    action.refresh_from_db()
    assert (action.state, action.reasons) == ("REJECTED", ["It is CANCELLED; rest (suspend) is allowed only from EFFECTIVE."])


def test_a_cancelled_scheduled_action_never_runs(zx_catalog, billing_scheme):
    subscription = draft_with_ppv_service(billing_scheme)
    with time_machine.travel(NOW, tick=False):
        action = subscription_activate(subscription=subscription, scheduled_for=NOW + timedelta(hours=1))

    subscription_action_cancel(action=action)

    with time_machine.travel(NOW + timedelta(hours=2), tick=False):
        assert subscription_actions_run_due() == 0
    action.refresh_from_db()
    assert action.state == "CANCELLED" and state_of(subscription) == "DRAFT"
    with pytest.raises(ApplicationError, match="Only scheduled actions can be cancelled; this one is CANCELLED."):
        subscription_action_cancel(action=action)


def test_beat_runs_the_due_actions_every_minute():
    entry = settings.CELERY_BEAT_SCHEDULE["run-due-subscription-actions"]
    assert (entry["task"], entry["schedule"]) == (subscription_actions_run_due_task.name, 60.0)


@pytest.fixture
def celery_worker():
    assert settings.CELERY_BROKER_URL.startswith("redis://"), "make test runs the suite with a real Redis broker"
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10) as worker:
        yield worker


@pytest.mark.django_db(transaction=True)
def test_a_worker_runs_the_due_actions_through_redis(zx_catalog, billing_scheme, celery_worker):
    # given an activation scheduled an hour ago (its date has come) and one for tomorrow
    subscription, tomorrow = draft_with_ppv_service(billing_scheme), draft_with_ppv_service(billing_scheme)
    real_now = datetime.now(dt_timezone.utc)
    with time_machine.travel(real_now - timedelta(hours=2), tick=False):
        due = subscription_activate(subscription=subscription, scheduled_for=real_now - timedelta(hours=1))
    waiting = subscription_activate(subscription=tomorrow, scheduled_for=real_now + timedelta(days=1))

    result = subscription_actions_run_due_task.apply_async(ignore_result=False)

    assert result.get(timeout=20) == 1
    due.refresh_from_db()
    waiting.refresh_from_db()
    assert due.state == "EXECUTED" and state_of(subscription) == "EFFECTIVE"
    assert waiting.state == "SCHEDULED" and state_of(tomorrow) == "DRAFT"
