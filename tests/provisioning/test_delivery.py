"""Delivery: in order per account, exponential backoff on transient faults, REJECTED on
permanent ones, nothing lost and nothing applied twice — when Nagra is down, slow, failing
or when the worker sending a command dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from catalogs.models import Product
from provisioning.models import ProvisioningRequest
from provisioning.services.sending import provisioning_request_send, provisioning_requests_dispatch
from subscriptions.services import lifecycle
from subscriptions.services.orders import usage_order_place
from tests.provisioning.conftest import ROOT, activated_subscription

pytestmark = pytest.mark.django_db


def states() -> list[tuple[str, str]]:
    return list(ProvisioningRequest.objects.order_by("pk").values_list("kind", "state"))


def later(minutes: float):
    return time_machine.travel(timezone.now() + timedelta(minutes=minutes), tick=True)


def test_while_nagra_is_down_requests_pile_up_then_all_arrive_in_order_once(nagra, zx_billing, movie):
    # given the platform is down while two customers subscribe, add services, install a decoder and order
    nagra.control(down=True)
    maria = activated_subscription(zx_billing)
    andreas = activated_subscription(zx_billing, email="andreas@example.com", first_name="Andreas")
    lifecycle.subscription_service_add(subscription=maria, product=Product.objects.get(code="SPORTS-PACK"))
    lifecycle.installed_item_add(subscription=maria, product=Product.objects.get(code="THOMSON-DECODER"), serial_number="TH-9")
    usage_order_place(subscription=andreas, title=movie("LOTR"))
    lifecycle.subscription_rest(subscription=andreas)

    # when the dispatcher runs, and runs again before the backoff ends
    provisioning_requests_dispatch()
    provisioning_requests_dispatch()

    # then nothing is lost: every request PENDING; only each account's first was tried, once
    requests = list(ProvisioningRequest.objects.order_by("pk"))
    assert {r.state for r in requests} == {"PENDING"} and len(requests) == 8
    tried = [r for r in requests if r.attempts]
    assert [(r.kind, r.account_id, r.attempts, r.error_code) for r in tried] == [
        ("CREATE_ACCOUNT", maria.account_id, 1, "http_503"), ("CREATE_ACCOUNT", andreas.account_id, 1, "http_503")]
    assert timedelta(seconds=30) <= tried[0].next_attempt_at - tried[0].last_attempt_at < timedelta(seconds=32)
    assert nagra.applied() == []

    # when Nagra is back and the backoff has passed
    nagra.control(down=False)
    with later(1):
        provisioning_requests_dispatch()

    # then every command arrived once, each account's in the order they were written
    assert {state for _, state in states()} == {"COMPLETED"}
    applied = nagra.applied()
    assert sorted(entry["requestId"] for entry in applied) == sorted(str(r.request_id) for r in requests)
    for account in (maria.account, andreas.account):
        ours = [str(r.request_id) for r in requests if r.account_id == account.pk]
        assert [entry["requestId"] for entry in applied if entry["accountId"] == account.number] == ours
    assert nagra.entitlements(maria.account.number) == {"PPV-SERVICE": "SUBSCRIPTION", "SPORTS-PACK": "SUBSCRIPTION"}
    assert nagra.entitlements(andreas.account.number) == {"1AQ8": "PPV"}  # rested: PPV Service removed


def test_server_faults_are_retried_with_exponential_backoff(zx_subscriber, nagra):
    nagra.control(faults={"CreateAccount": {"code": "Server", "error_code": "DB_BUSY", "times": 3}})

    provisioning_requests_dispatch()
    with later(1):
        provisioning_requests_dispatch()
        with later(2):
            provisioning_requests_dispatch()
            head = ProvisioningRequest.objects.get(kind="CREATE_ACCOUNT")
            assert (head.state, head.attempts, head.error_code) == ("PENDING", 3, "DB_BUSY")
            assert timedelta(seconds=120) <= head.next_attempt_at - head.last_attempt_at < timedelta(seconds=122)  # 30, 60, 120 s
            with later(3):
                provisioning_requests_dispatch()

    assert states() == [("CREATE_ACCOUNT", "COMPLETED"), ("ADD_ENTITLEMENT", "COMPLETED")]
    assert ProvisioningRequest.objects.get(kind="CREATE_ACCOUNT").attempts == 4


def test_a_timeout_after_the_platform_applied_is_resent_and_applied_once(zx_subscriber, nagra):
    # given the platform applies commands but answers after our operation timeout
    nagra.control(latency_after_apply=3)

    provisioning_requests_dispatch()

    head = ProvisioningRequest.objects.get(kind="CREATE_ACCOUNT")
    assert (head.state, head.error_code) == ("PENDING", "timeout")
    nagra.control(latency_after_apply=0)
    with later(1):
        provisioning_requests_dispatch()

    head.refresh_from_db()
    assert states() == [("CREATE_ACCOUNT", "COMPLETED"), ("ADD_ENTITLEMENT", "COMPLETED")]
    applied = [entry for entry in nagra.applied() if entry["requestId"] == str(head.request_id)]
    assert len(applied) == 1 and head.platform_reference == applied[0]["reference"]


def test_an_unreachable_platform_leaves_the_request_pending_with_a_clear_error(zx_subscriber, nagra, settings):
    from tests.provisioning.conftest import free_port

    settings.NAGRA_ENDPOINT = f"http://127.0.0.1:{free_port()}/smsservice_1.2"

    provisioning_requests_dispatch()

    head = ProvisioningRequest.objects.get(kind="CREATE_ACCOUNT")
    assert (head.state, head.error_code) == ("PENDING", "connection_error")
    assert "is not reachable" in head.error_description


def test_a_permanent_fault_is_rejected_with_its_reason_and_the_queue_goes_on(zx_subscriber, nagra, movie):
    nagra.control(faults={"AddEntitlement": {"code": "Client", "error_code": "INVALID_PRODUCT",
                                             "message": "Product PPV-SERVICE is not in the platform catalog.", "times": 1}})
    usage_order_place(subscription=zx_subscriber, title=movie("LOTR"))

    provisioning_requests_dispatch()

    rejected = ProvisioningRequest.objects.get(kind="ADD_ENTITLEMENT")
    assert (rejected.state, rejected.attempts, rejected.error_code) == ("REJECTED", 1, "INVALID_PRODUCT")
    assert rejected.error_description == "Product PPV-SERVICE is not in the platform catalog." and rejected.rejected_at
    assert "INVALID_PRODUCT" in rejected.raw_response
    assert states()[-1] == ("PURCHASE_PPV", "COMPLETED")


def test_exhausted_retries_become_a_dead_letter(zx_subscriber, nagra, settings):
    settings.NAGRA_RETRY_MAX_ATTEMPTS = 2
    nagra.control(down=True)

    provisioning_requests_dispatch()
    with later(1):
        provisioning_requests_dispatch()

    head = ProvisioningRequest.objects.get(kind="CREATE_ACCOUNT")
    assert (head.state, head.error_code, head.exhausted) == ("REJECTED", "retries_exhausted", True)
    assert head.error_description.startswith("Gave up after 2 attempts; last error (http_503)")


def test_a_request_waits_for_the_earlier_one_of_its_account(zx_subscriber, nagra):
    nagra.control(down=True)
    provisioning_requests_dispatch()
    nagra.control(down=False)
    second = ProvisioningRequest.objects.get(kind="ADD_ENTITLEMENT")

    provisioning_request_send(request_pk=second.pk)  # its after-commit task, while the first backs off

    assert states() == [("CREATE_ACCOUNT", "PENDING"), ("ADD_ENTITLEMENT", "PENDING")]
    assert ProvisioningRequest.objects.get(pk=second.pk).attempts == 0 and nagra.applied() == []


def _subprocess_env(nagra) -> dict[str, str]:
    db = connection.settings_dict
    url = f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    return {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "NAGRA_ENDPOINT": nagra.address, "NAGRA_OPERATION_TIMEOUT": "60", "NAGRA_CONNECT_TIMEOUT": "2"}


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_send_loses_nothing_and_the_resend_is_applied_once(nagra, zx_billing):
    # given committed requests, and a platform that applies but answers slowly
    subscription = activated_subscription(zx_billing)
    nagra.control(latency_after_apply=30)
    worker = subprocess.Popen([sys.executable, "manage.py", "provisioning_dispatch"], cwd=ROOT, env=_subprocess_env(nagra),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    # when the worker is killed after the platform applied its command, before it recorded the answer
    deadline = time.monotonic() + 30
    while not nagra.applied():
        assert time.monotonic() < deadline and worker.poll() is None, worker.stdout.read() if worker.poll() is not None else "timeout"
        time.sleep(0.1)
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=10)

    # then the request is still PENDING, claimed until its lease ends
    head = ProvisioningRequest.objects.get(kind="CREATE_ACCOUNT")
    assert (head.state, head.attempts, head.completed_at) == ("PENDING", 1, None)
    assert head.next_attempt_at > timezone.now()

    # when the dispatcher runs after the lease
    nagra.control(latency_after_apply=0)
    with later(5):
        provisioning_requests_dispatch()

    # then both commands completed and the platform applied each exactly once
    assert states() == [("CREATE_ACCOUNT", "COMPLETED"), ("ADD_ENTITLEMENT", "COMPLETED")]
    request_ids = [entry["requestId"] for entry in nagra.applied()]
    assert request_ids == [str(r.request_id) for r in ProvisioningRequest.objects.order_by("pk")]
    assert nagra.entitlements(subscription.account.number) == {"PPV-SERVICE": "SUBSCRIPTION"}


@pytest.mark.django_db(transaction=True)
def test_a_celery_worker_sends_an_order_right_after_it_commits(nagra, zx_billing, movie):
    from celery.contrib.testing.worker import start_worker
    from django.conf import settings

    from config.celery import app

    assert settings.CELERY_BROKER_URL.startswith("redis://"), "run with scripts/testenv.py (a real Redis broker)"
    subscription = activated_subscription(zx_billing)  # its own requests were queued after their commits too
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        usage_order_place(subscription=subscription, title=movie("SERENDIPITY"))
        deadline = time.monotonic() + 20
        while ProvisioningRequest.objects.exclude(state="COMPLETED").exists() and time.monotonic() < deadline:
            time.sleep(0.1)

    assert states() == [("CREATE_ACCOUNT", "COMPLETED"), ("ADD_ENTITLEMENT", "COMPLETED"), ("PURCHASE_PPV", "COMPLETED")]
    assert nagra.entitlements(subscription.account.number) == {"PPV-SERVICE": "SUBSCRIPTION", "1BQ4": "PPV"}


def draft_with_decoder(scheme, *, serial_number: str):
    """A new customer's DRAFT subscription with the PPV Service and a decoder installed: the
    account is not on the platform yet."""
    from subscriptions.services.actions import subscription_create
    from tests.factories import customer_create

    account = customer_create(first_name="Eleni", last_name="Petrou", email="eleni@example.com")
    subscription = subscription_create(account=account, billing_term_scheme=scheme)
    lifecycle.subscription_service_add(subscription=subscription, product=Product.objects.get(code="PPV-SERVICE"))
    lifecycle.installed_item_add(subscription=subscription, product=Product.objects.get(code="THOMSON-DECODER"),
                                 serial_number=serial_number)
    return subscription


def test_a_decoder_installed_before_activation_waits_for_it_when_its_task_runs_at_once(nagra, zx_billing):
    # Each request's after-commit task is sent at once by a worker (or in-process, eager:
    # make run). The decoder's PAIR_DEVICE is written on a DRAFT subscription, before any
    # CREATE_ACCOUNT exists: sent then, the platform refuses it (UNKNOWN_ACCOUNT).
    subscription = draft_with_decoder(zx_billing, serial_number="TH-8")
    account = subscription.account
    pair = ProvisioningRequest.objects.get(kind="PAIR_DEVICE")

    assert provisioning_request_send(request_pk=pair.pk) == 0  # its task: nothing sent yet
    assert states() == [("PAIR_DEVICE", "PENDING")]
    assert nagra.applied() == []

    lifecycle.subscription_activate(subscription=subscription)
    provisioning_request_send(request_pk=ProvisioningRequest.objects.get(kind="CREATE_ACCOUNT").pk)  # its task drains the account

    assert states() == [("PAIR_DEVICE", "COMPLETED"), ("CREATE_ACCOUNT", "COMPLETED"), ("ADD_ENTITLEMENT", "COMPLETED")]
    assert [entry["operation"] for entry in nagra.applied()] == ["CreateAccount", "PairDevice", "AddEntitlement"]
    assert nagra.state()["accounts"][account.number]["devices"] == {"TH-8": "THOMSON-DECODER"}


def test_a_decoder_on_a_draft_subscription_of_an_account_the_platform_has_is_paired_at_once(zx_subscriber, nagra, movie):
    # Only an account the platform was never asked to create makes a command wait for activation.
    from subscriptions.services.actions import subscription_create

    draft = subscription_create(account=zx_subscriber.account, billing_term_scheme=zx_subscriber.billing_term_scheme)
    lifecycle.installed_item_add(subscription=draft, product=Product.objects.get(code="THOMSON-DECODER"), serial_number="TH-6")
    provisioning_request_send(request_pk=ProvisioningRequest.objects.get(kind="PAIR_DEVICE").pk)
    usage_order_place(subscription=zx_subscriber, title=movie("LIMITLESS"))

    provisioning_requests_dispatch()

    assert states() == [("CREATE_ACCOUNT", "COMPLETED"), ("ADD_ENTITLEMENT", "COMPLETED"), ("PAIR_DEVICE", "COMPLETED"),
                        ("PURCHASE_PPV", "COMPLETED")]
    assert nagra.state()["accounts"][zx_subscriber.account.number]["devices"] == {"TH-6": "THOMSON-DECODER"}


def test_the_platform_account_is_created_before_a_decoder_installed_before_activation(nagra, zx_billing):
    subscription = draft_with_decoder(zx_billing, serial_number="TH-7")
    account = subscription.account
    lifecycle.subscription_activate(subscription=subscription)

    provisioning_requests_dispatch()

    assert states() == [("PAIR_DEVICE", "COMPLETED"), ("CREATE_ACCOUNT", "COMPLETED"), ("ADD_ENTITLEMENT", "COMPLETED")]
    assert [entry["operation"] for entry in nagra.applied()] == ["CreateAccount", "PairDevice", "AddEntitlement"]
    assert nagra.state()["accounts"][account.number]["devices"] == {"TH-7": "THOMSON-DECODER"}
