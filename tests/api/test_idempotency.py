"""The Idempotency-Key header: a repeated POST returns the first result and does the work once."""

from __future__ import annotations

import threading

import pytest

from accounts.models import Contact
from core.models import IdempotencyRecord

from .test_auth import SIGN_UP


@pytest.mark.django_db
def test_a_repeated_sign_up_returns_the_first_response(api_client):
    first = api_client.post("/api/v1/auth/signup/", SIGN_UP, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    second = api_client.post("/api/v1/auth/signup/", SIGN_UP, format="json", HTTP_IDEMPOTENCY_KEY="k-1")

    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert Contact.objects.count() == 1


@pytest.mark.django_db
def test_a_key_reused_for_another_request_is_refused(api_client):
    api_client.post("/api/v1/auth/signup/", SIGN_UP, format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    response = api_client.post("/api/v1/auth/signup/", {**SIGN_UP, "email": "other@example.com"}, format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert Contact.objects.count() == 1


@pytest.mark.django_db
def test_a_failed_request_does_not_hold_the_key(api_client):
    bad = api_client.post("/api/v1/auth/signup/", {**SIGN_UP, "password": "1"}, format="json", HTTP_IDEMPOTENCY_KEY="k-3")
    assert bad.status_code == 400
    assert not IdempotencyRecord.objects.exists()
    good = api_client.post("/api/v1/auth/signup/", {**SIGN_UP, "password": "1"}, format="json", HTTP_IDEMPOTENCY_KEY="k-3")
    assert good.status_code == 400  # same request, same (re-computed) answer, still nothing created
    assert Contact.objects.count() == 0


@pytest.mark.django_db
def test_keys_are_per_caller(customer, other_customer):
    from tests.conftest import portal_client_for

    body = {"kind": "SHIPPING", "line1": "1 Road", "city": "Larnaca", "country": "CY"}
    a = portal_client_for(customer).post("/api/v1/me/addresses/", body, format="json", HTTP_IDEMPOTENCY_KEY="same")
    b = portal_client_for(other_customer).post("/api/v1/me/addresses/", body, format="json", HTTP_IDEMPOTENCY_KEY="same")
    assert a.status_code == b.status_code == 201
    assert a.json()["id"] != b.json()["id"]


@pytest.mark.django_db(transaction=True)
def test_concurrent_repeats_create_one_customer(live_server):
    """Two real HTTP requests with the same key at the same moment: one customer."""
    import json
    import urllib.error
    import urllib.request

    statuses: list[int] = []
    barrier = threading.Barrier(4)

    def post():
        request = urllib.request.Request(
            f"{live_server.url}/api/v1/auth/signup/", data=json.dumps(SIGN_UP).encode(),
            headers={"Content-Type": "application/json", "Idempotency-Key": "race"}, method="POST",
        )
        barrier.wait()
        try:
            with urllib.request.urlopen(request, timeout=20) as response:
                statuses.append(response.status)
        except urllib.error.HTTPError as error:
            statuses.append(error.code)

    threads = [threading.Thread(target=post) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert Contact.objects.count() == 1
    assert statuses.count(201) >= 1
    assert set(statuses) <= {201, 409}
