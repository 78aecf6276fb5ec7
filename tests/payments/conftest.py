"""The payments test harness: localstripe as a separate process (it is GPL: run, never
imported), Stripe settings pointed at it, and helpers that play the parts of the
customer's browser (Stripe.js) and of Stripe's webhook sender.

The "browser" helpers talk to localstripe directly with the publishable key, exactly as
Stripe.js does: card numbers go to the fake Stripe and never to our server.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from django.urls import reverse

WEBHOOK_SECRET = "whsec_test_payments_suite"
PUBLISHABLE_KEY = "pk_test_payments_suite"
SECRET_KEY = "sk_test_payments_suite"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def localstripe_url(tmp_path_factory):
    port = _free_port()
    executable = Path(sys.executable).with_name("localstripe")
    log = (tmp_path_factory.mktemp("localstripe") / "localstripe.log").open("w")
    process = subprocess.Popen([str(executable), "--port", str(port), "--from-scratch"], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            urllib.request.urlopen(f"{url}/js.stripe.com/v3/", timeout=1).read()
            break
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError("localstripe did not start") from None
            time.sleep(0.1)
    yield url
    process.terminate()
    process.wait(timeout=10)
    log.close()


@pytest.fixture
def world(zx_catalog, settings):
    """A Company ZX customer (portal login) with an EFFECTIVE subscription on the "Normal"
    scheme, which invoices every PPV order at once."""
    from billing.demo import demo_billing_load
    from tests.conftest import portal_client_for
    from tests.factories import customer_create
    from tests.world import effective_subscription

    settings.CELERY_TASK_ALWAYS_EAGER = True  # automatic collection runs in the test process
    scheme = demo_billing_load()["scheme"]
    account = customer_create(first_name="Eleni", last_name="Pavlou", email="eleni@example.com")
    return {"account": account, "subscription": effective_subscription(account, scheme), "portal": portal_client_for(account)}


@pytest.fixture(autouse=True)
def stripe_settings(settings, localstripe_url):
    """Every payments test talks to a fresh localstripe (its store is emptied)."""
    settings.STRIPE_API_BASE = localstripe_url
    settings.STRIPE_SECRET_KEY = SECRET_KEY
    settings.STRIPE_PUBLISHABLE_KEY = PUBLISHABLE_KEY
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    request = urllib.request.Request(f"{localstripe_url}/_config/data", method="DELETE")
    urllib.request.urlopen(request).read()
    return settings


class FakeBrowser:
    """What Stripe.js does in the customer's browser, against localstripe."""

    def __init__(self, base_url: str):
        self.base_url = base_url

    def _post(self, path: str, data: dict) -> dict:
        body = urllib.parse.urlencode({"key": PUBLISHABLE_KEY, **data}).encode()
        try:
            return json.loads(urllib.request.urlopen(f"{self.base_url}{path}", body).read())
        except urllib.error.HTTPError as error:
            return json.loads(error.read())

    def card_setup_confirm(self, *, setup_intent: str, client_secret: str, number: str) -> dict:
        """``stripe.confirmCardSetup(clientSecret, {payment_method: {card: element}})``."""
        return self._post(f"/v1/setup_intents/{setup_intent}/confirm", {
            "client_secret": client_secret, "payment_method_data[type]": "card", "payment_method_data[card][number]": number,
            "payment_method_data[card][exp_month]": "12", "payment_method_data[card][exp_year]": "2034",
            "payment_method_data[card][cvc]": "123"})

    def card_setup_authenticate(self, *, setup_intent: str, client_secret: str) -> dict:
        """The 3-D Secure challenge passed: Stripe.js confirms the SetupIntent again."""
        return self._post(f"/v1/setup_intents/{setup_intent}/confirm", {"client_secret": client_secret})

    def payment_authenticate(self, *, payment_intent: str, client_secret: str, success: bool = True) -> dict:
        """``stripe.handleCardAction(clientSecret)``: the customer passes (or fails) 3-D Secure."""
        return self._post(f"/v1/payment_intents/{payment_intent}/_authenticate",
                          {"client_secret": client_secret, "success": "true" if success else "false"})


@pytest.fixture
def browser(localstripe_url) -> FakeBrowser:
    return FakeBrowser(localstripe_url)


def signed_headers(payload: bytes, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> dict:
    timestamp = int(time.time()) if timestamp is None else timestamp
    signature = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return {"HTTP_STRIPE_SIGNATURE": f"t={timestamp},v1={signature}"}


class StripeSender:
    """Stripe's webhook sender: takes localstripe's events (or events we build, for what
    localstripe lacks, such as disputes) and posts them, signed, to our endpoint."""

    def __init__(self, client):
        self.client = client
        self.url = reverse("api-webhook-stripe")

    def send(self, event: dict, **signing):
        payload = json.dumps(event).encode()
        return self.client.post(self.url, data=payload, content_type="application/json", **signed_headers(payload, **signing))

    def localstripe_events(self) -> list[dict]:
        from payments.gateways.stripe import stripe_client

        events = stripe_client().v1.events.list(params={"limit": 100})
        return sorted((event.to_dict() for event in events.data), key=lambda event: event["created"])

    def deliver_all(self) -> list[int]:
        return [self.send(event).status_code for event in self.localstripe_events()]

    @staticmethod
    def event(type_: str, obj: dict, *, event_id: str | None = None) -> dict:
        return {"id": event_id or f"evt_test_{time.time_ns()}", "object": "event", "type": type_, "created": int(time.time()),
                "api_version": "2026-10-28.endive", "data": {"object": obj}}


@pytest.fixture
def stripe_sender(client) -> StripeSender:
    return StripeSender(client)
