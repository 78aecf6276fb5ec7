"""Every command type reaches the simulator through zeep and changes its state as the
subscription or account change says; each request ends COMPLETED with the platform's
reference and the raw envelopes."""

from __future__ import annotations

import pytest

from accounts import services as account_services
from catalogs.models import Product
from provisioning.models import ProvisioningRequest
from provisioning.services.sending import provisioning_requests_dispatch
from subscriptions.models import InstalledItem
from subscriptions.services import lifecycle
from subscriptions.services.orders import usage_order_place

pytestmark = pytest.mark.django_db


def delivered() -> list[str]:
    """Send what is due; every request must have been accepted by the platform."""
    provisioning_requests_dispatch()
    requests = list(ProvisioningRequest.objects.order_by("pk"))
    assert [(r.pk, r.state, r.error_code) for r in requests if r.state != "COMPLETED"] == []
    return [r.kind for r in requests]


def test_activation_creates_the_platform_account_and_entitles_its_services(zx_subscriber, nagra):
    account = zx_subscriber.account

    assert delivered() == ["CREATE_ACCOUNT", "ADD_ENTITLEMENT"]

    assert nagra.state()["accounts"][account.number]["status"] == "ACTIVE"
    assert nagra.entitlements(account.number) == {"PPV-SERVICE": "SUBSCRIPTION"}
    request = ProvisioningRequest.objects.get(kind="ADD_ENTITLEMENT")
    assert request.platform_reference.startswith("NG-") and request.attempts == 1 and request.completed_at
    assert str(request.request_id) in request.raw_request and "ENTITLED" in request.raw_response
    assert [r.sequence for r in ProvisioningRequest.objects.order_by("pk")] == [1, 2]


def test_services_added_swapped_rested_resumed_removed_and_terminated(zx_subscriber, nagra):
    subscription, number = zx_subscriber, zx_subscriber.account.number
    sports = Product.objects.get(code="SPORTS-PACK")
    delivered()

    lifecycle.subscription_service_add(subscription=subscription, product=sports)
    delivered()
    assert nagra.entitlements(number) == {"PPV-SERVICE": "SUBSCRIPTION", "SPORTS-PACK": "SUBSCRIPTION"}

    lifecycle.subscription_rest(subscription=subscription)
    delivered()
    assert nagra.entitlements(number) == {}

    lifecycle.subscription_end_resting(subscription=subscription)
    delivered()
    assert nagra.entitlements(number) == {"PPV-SERVICE": "SUBSCRIPTION", "SPORTS-PACK": "SUBSCRIPTION"}

    service = subscription.services.get(product=sports)
    lifecycle.subscription_service_remove(subscription=subscription, service=service)
    delivered()
    assert nagra.entitlements(number) == {"PPV-SERVICE": "SUBSCRIPTION"}

    lifecycle.subscription_deactivate(subscription=subscription)
    delivered()
    assert nagra.entitlements(number) == {}

    lifecycle.subscription_activate(subscription=subscription)
    lifecycle.subscription_terminate(subscription=subscription, reason="Moving abroad.")
    kinds = delivered()
    assert nagra.entitlements(number) == {}
    assert kinds.count("CREATE_ACCOUNT") == 1


def test_a_swapped_service_moves_the_entitlement(zx_subscriber, nagra):
    delivered()
    service = zx_subscriber.services.get()

    lifecycle.subscription_service_swap(subscription=zx_subscriber, service=service,
                                        to_product=Product.objects.get(code="SPORTS-PACK"))

    assert delivered()[-2:] == ["REMOVE_ENTITLEMENT", "ADD_ENTITLEMENT"]
    assert nagra.entitlements(zx_subscriber.account.number) == {"SPORTS-PACK": "SUBSCRIPTION"}


def test_decoders_are_paired_swapped_and_unpaired(zx_subscriber, nagra):
    subscription, number = zx_subscriber, zx_subscriber.account.number
    decoder = Product.objects.get(code="THOMSON-DECODER")

    lifecycle.installed_item_add(subscription=subscription, product=decoder, serial_number="TH-1")
    delivered()
    assert nagra.state()["accounts"][number]["devices"] == {"TH-1": "THOMSON-DECODER"}

    lifecycle.installed_item_swap(subscription=subscription, item=InstalledItem.objects.get(serial_number="TH-1"),
                                  serial_number="TH-2")
    delivered()
    assert nagra.state()["accounts"][number]["devices"] == {"TH-2": "THOMSON-DECODER"}

    lifecycle.installed_item_remove(subscription=subscription, item=InstalledItem.objects.get(serial_number="TH-2", state="INSTALLED"))
    assert delivered()[-3:] == ["PAIR_DEVICE", "SWAP_DEVICE", "UNPAIR_DEVICE"]
    assert nagra.state()["accounts"][number]["devices"] == {}


def test_a_ppv_order_entitles_the_movie_under_its_provisioning_id(zx_subscriber, nagra, movie):
    usage_order_place(subscription=zx_subscriber, title=movie("LIMITLESS"))

    assert delivered()[-1] == "PURCHASE_PPV"
    assert nagra.entitlements(zx_subscriber.account.number) == {"PPV-SERVICE": "SUBSCRIPTION", "1BQ1": "PPV"}


def test_account_update_suspend_reactivate_and_cancel_reach_the_platform(zx_subscriber, nagra):
    account = zx_subscriber.account

    account_services.account_update(account=account, data={"classification": "VIP"})
    delivered()
    assert nagra.state()["accounts"][account.number]["classification"] == "VIP"

    account_services.account_suspend(account=account, reason="Unpaid.")
    delivered()
    assert nagra.state()["accounts"][account.number]["status"] == "SUSPENDED"

    account_services.account_reactivate(account=account)
    delivered()
    assert nagra.state()["accounts"][account.number]["status"] == "ACTIVE"

    account_services.account_terminate(account=account, reason="Customer left.")
    kinds = delivered()
    assert kinds[-4:] == ["UPDATE_ACCOUNT", "SUSPEND_ACCOUNT", "UPDATE_ACCOUNT", "CANCEL_ACCOUNT"]
    assert nagra.state()["accounts"][account.number]["status"] == "CANCELLED"


def test_an_account_the_platform_never_created_is_not_told_about_changes(nagra, zx_billing):
    from tests.factories import customer_create

    account = customer_create(first_name="Nikos", last_name="Ioannou", email="nikos@example.com")

    account_services.account_suspend(account=account, reason="Fraud check.")

    assert not ProvisioningRequest.objects.exists()


def test_the_mapping_table_refuses_a_command_its_cause_does_not_list(zx_subscriber):
    from core.exceptions import ApplicationError
    from provisioning.services.outbox import provisioning_request_add

    before = ProvisioningRequest.objects.count()
    with pytest.raises(ApplicationError, match="REST does not send PURCHASE_PPV"):
        provisioning_request_add(kind="PURCHASE_PPV", cause="REST", account=zx_subscriber.account)
    assert ProvisioningRequest.objects.count() == before
