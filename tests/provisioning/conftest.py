"""The Nagra simulator as a real process on a free port (one per test session), and the
Company ZX world wired to it: settings send every Nagra command there, the simulator's
state is emptied before each test, and timeouts are short so faults show quickly."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from billing.demo import demo_billing_load
from catalogs.models import Product
from provisioning.clients.nagra import nagra_client
from subscriptions.services.actions import subscription_create
from subscriptions.services.lifecycle import subscription_activate
from tests.factories import customer_create

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Simulator:
    process: subprocess.Popen
    base: str

    @property
    def address(self) -> str:
        return f"{self.base}/smsservice_1.2"

    def control(self, **switches) -> None:
        request = urllib.request.Request(f"{self.base}/control", data=json.dumps(switches).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        urllib.request.urlopen(request, timeout=5).read()

    def state(self) -> dict:
        return json.loads(urllib.request.urlopen(f"{self.base}/control", timeout=5).read())

    def applied(self) -> list[dict]:
        return self.state()["applied"]

    def entitlements(self, account_number: str) -> dict:
        """What the platform holds, asked through zeep as any client would."""
        client = nagra_client(address=self.address, credentials=None, connect_timeout=2, operation_timeout=5)
        outcome = client.call("ListEntitlements", {"accountId": account_number})
        assert outcome.ok, outcome.error_description
        return {item["productId"]: item["kind"] for item in outcome.data.get("entitlement") or []}


@pytest.fixture(scope="session")
def nagra_simulator():
    port = free_port()
    process = subprocess.Popen([sys.executable, "manage.py", "nagra_simulator", "--port", str(port)], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    simulator = Simulator(process=process, base=f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{simulator.address}?wsdl", timeout=1).read()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"The Nagra simulator did not start: {process.stdout.read().decode()}") from None
            time.sleep(0.1)
    yield simulator
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture
def nagra(nagra_simulator, settings):
    nagra_simulator.control(reset=True)
    settings.NAGRA_ENDPOINT = nagra_simulator.address
    settings.NAGRA_CONNECT_TIMEOUT = 1.0
    settings.NAGRA_OPERATION_TIMEOUT = 1.5
    return nagra_simulator


@pytest.fixture
def zx_billing(zx_catalog):
    return demo_billing_load()["scheme"]


def activated_subscription(scheme, *, email: str = "maria@example.com", first_name: str = "Maria", services=("PPV-SERVICE",),
                           classification=None):
    """A customer whose subscription was activated through the service (so the platform
    account is created), with these termed services."""
    from subscriptions.services.lifecycle import subscription_service_add

    extra = {"classification": classification} if classification else {}
    account = customer_create(first_name=first_name, last_name="Georgiou", email=email, **extra)
    subscription = subscription_create(account=account, billing_term_scheme=scheme)
    for code in services:
        subscription_service_add(subscription=subscription, product=Product.objects.get(code=code))
    subscription_activate(subscription=subscription)
    subscription.refresh_from_db()
    return subscription


@pytest.fixture
def zx_subscriber(nagra, zx_billing):
    return activated_subscription(zx_billing)
