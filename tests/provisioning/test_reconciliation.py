"""Reconciliation: the platform's entitlements are compared with ours (effective termed
services and running PPV rentals); differences are reported and repaired."""

from __future__ import annotations

import uuid

import pytest

from provisioning.clients.nagra import nagra_client
from provisioning.models import ProvisioningRequest, ReconciliationRun
from provisioning.services.reconciliation import provisioning_reconcile
from provisioning.services.sending import provisioning_requests_dispatch
from subscriptions.services.orders import usage_order_place

pytestmark = pytest.mark.django_db


def tamper(nagra, operation: str, **arguments) -> None:
    """Someone changes the platform behind our back (its own console, a bad migration)."""
    client = nagra_client(address=nagra.address, credentials=None, connect_timeout=2, operation_timeout=5)
    assert client.call(operation, {"requestId": f"console-{uuid.uuid4()}", **arguments}).ok


@pytest.fixture
def delivered_subscriber(zx_subscriber, nagra, movie):
    usage_order_place(subscription=zx_subscriber, title=movie("LOTR"))
    provisioning_requests_dispatch()
    assert nagra.entitlements(zx_subscriber.account.number) == {"PPV-SERVICE": "SUBSCRIPTION", "1AQ8": "PPV"}
    return zx_subscriber


def test_differences_are_reported_and_repaired(delivered_subscriber, nagra):
    number = delivered_subscriber.account.number
    tamper(nagra, "RemoveEntitlement", accountId=number, productId="PPV-SERVICE")
    tamper(nagra, "RemoveEntitlement", accountId=number, productId="1AQ8")
    tamper(nagra, "AddEntitlement", accountId=number, productId="ROGUE-1")

    run = provisioning_reconcile()

    assert (run.state, run.accounts_checked, run.differences_found, run.requests_created) == ("DONE", 1, 3, 3)
    assert sorted(run.differences.values_list("kind", "provisioning_id", "entitlement_kind", "repair__kind")) == [
        ("EXTRA_ON_PLATFORM", "ROGUE-1", "SUBSCRIPTION", "REMOVE_ENTITLEMENT"),
        ("MISSING_ON_PLATFORM", "1AQ8", "PPV", "PURCHASE_PPV"),
        ("MISSING_ON_PLATFORM", "PPV-SERVICE", "SUBSCRIPTION", "ADD_ENTITLEMENT"),
    ]
    provisioning_requests_dispatch()
    assert nagra.entitlements(number) == {"PPV-SERVICE": "SUBSCRIPTION", "1AQ8": "PPV"}
    again = provisioning_reconcile()
    assert (again.differences_found, again.requests_created, again.differences.count()) == (0, 0, 0)


def test_an_account_with_commands_in_flight_is_skipped(delivered_subscriber, nagra):
    nagra.control(down=True)
    tamper_free = ProvisioningRequest.objects.count()
    from subscriptions.services.lifecycle import subscription_rest

    subscription_rest(subscription=delivered_subscriber)
    nagra.control(down=False)

    run = provisioning_reconcile()

    assert (run.accounts_checked, run.accounts_skipped, run.requests_created) == (0, 1, 0)
    assert list(run.differences.values_list("kind", flat=True)) == ["SKIPPED"]
    assert ProvisioningRequest.objects.count() == tamper_free + 1


def test_a_platform_that_cannot_be_reached_fails_the_run_and_changes_nothing(delivered_subscriber, nagra):
    nagra.control(down=True)
    before = ProvisioningRequest.objects.count()

    run = provisioning_reconcile()

    assert run.state == "FAILED" and "could not be reached" in run.error
    assert ProvisioningRequest.objects.count() == before


def test_finance_reconciles_on_demand_from_the_admin_and_sees_the_differences(delivered_subscriber, nagra, client, finance_user):
    tamper(nagra, "AddEntitlement", accountId=delivered_subscriber.account.number, productId="ROGUE-2")
    client.force_login(finance_user)

    response = client.post("/admin/provisioning/reconciliationrun/run/")

    run = ReconciliationRun.objects.get()
    assert response.status_code == 302 and response["Location"].endswith(f"/reconciliationrun/{run.pk}/change/")
    page = client.get(response["Location"]).content.decode()
    assert "ROGUE-2" in page and "Extra on the platform" in page


def test_an_agent_may_not_run_a_reconciliation(delivered_subscriber, client, agent):
    client.force_login(agent)

    response = client.post("/admin/provisioning/reconciliationrun/run/")

    assert response.status_code == 403 and not ReconciliationRun.objects.exists()


def test_beat_schedules_dispatch_and_reconciliation():
    from django.conf import settings

    schedule = settings.CELERY_BEAT_SCHEDULE
    assert schedule["dispatch-provisioning-requests"]["task"] == "provisioning.tasks.provisioning_requests_dispatch_task"
    assert schedule["reconcile-provisioning"]["task"] == "provisioning.tasks.provisioning_reconcile_task"
