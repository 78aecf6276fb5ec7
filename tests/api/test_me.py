"""A customer views and updates their own profile, addresses and accounts."""

from __future__ import annotations

import pytest

from accounts import services
from accounts.models import AccountsReceivable

pytestmark = pytest.mark.django_db


def test_view_my_profile(portal_client, customer):
    body = portal_client.get("/api/v1/me/").json()
    assert body["display_name"] == "Maria Georgiou"
    assert body["addresses"][0]["city"] == "Nicosia"
    assert body["accounts"] == [
        {"number": customer.number, "state": "ACTIVE", "currency": "EUR", "classification": "NORMAL",
         "credit_limit": "0.00", "created_at": body["accounts"][0]["created_at"]}
    ]


def test_update_my_details(portal_client, customer):
    response = portal_client.patch("/api/v1/me/", {"mobile_phone": "0035796555444", "language": "el"}, format="json")
    assert response.status_code == 200
    assert response.json()["mobile_phone"] == "+35796555444"
    event = customer.events.get(kind="CONTACT_UPDATED")
    assert event.channel == "PORTAL"
    assert event.performed_by == customer.contact.portal_user.user


def test_invalid_update_changes_nothing(portal_client, customer):
    response = portal_client.patch("/api/v1/me/", {"last_name": "", "mobile_phone": "x1", "language": "klingon"}, format="json")
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"language"}  # type errors first, per field
    response = portal_client.patch("/api/v1/me/", {"last_name": "", "mobile_phone": "x1"}, format="json")
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"last_name", "mobile_phone"}
    customer.contact.refresh_from_db()
    assert customer.contact.last_name == "Georgiou"


def test_customers_cannot_change_what_only_staff_may(portal_client, customer):
    portal_client.patch("/api/v1/me/", {"classification": "VIP", "credit_limit": "1000"}, format="json")
    customer.refresh_from_db()
    assert customer.classification.code == "NORMAL"


def test_manage_my_addresses(portal_client, customer):
    created = portal_client.post("/api/v1/me/addresses/", {"kind": "INSTALLATION", "line1": "7 Hill Rd", "city": "Paphos", "country": "cy"}, format="json")
    assert created.status_code == 201, created.json()
    address_id = created.json()["id"]
    assert created.json()["country"] == "CY"

    duplicate = portal_client.post("/api/v1/me/addresses/", {"kind": "INSTALLATION", "line1": "x", "city": "y", "country": "CY"}, format="json")
    assert duplicate.status_code == 400
    assert "kind" in duplicate.json()["error"]["fields"]

    changed = portal_client.patch(f"/api/v1/me/addresses/{address_id}/", {"city": "Limassol"}, format="json")
    assert changed.json()["city"] == "Limassol"
    assert portal_client.delete(f"/api/v1/me/addresses/{address_id}/").status_code == 204
    assert [a["kind"] for a in portal_client.get("/api/v1/me/addresses/").json()] == ["BILLING"]


def test_my_accounts_and_their_history(portal_client, customer):
    services.account_suspend(account=customer, reason="Holiday")
    listing = portal_client.get("/api/v1/accounts/").json()
    assert [a["number"] for a in listing["results"]] == [customer.number]
    history = portal_client.get(f"/api/v1/accounts/{customer.number}/history/").json()
    assert [event["kind"] for event in history["results"]] == ["SUSPENDED", "PORTAL_ACCESS_GRANTED", "SIGNED_UP"]


def test_device_key_authenticates_the_device_not_a_person(api_client, customer):
    _credential, raw_key = services.device_credential_issue(account=customer, label="Decoder")
    api_client.credentials(HTTP_AUTHORIZATION=f"Device {raw_key}")
    response = api_client.get("/api/v1/device/me/")
    assert response.status_code == 200
    assert response.json()["account"] == customer.number
    assert api_client.get("/api/v1/me/").status_code == 401  # a device key is not a portal login

    api_client.credentials(HTTP_AUTHORIZATION="Device not-a-key")
    assert api_client.get("/api/v1/device/me/").status_code == 401


def test_portal_token_is_not_a_device_credential(portal_client):
    assert portal_client.get("/api/v1/device/me/").status_code in (401, 403)


def test_my_profile_costs_the_same_queries_whatever_my_number_of_accounts(portal_client, customer, django_assert_num_queries):
    portal_client.get("/api/v1/me/")
    with django_assert_num_queries(4):  # the token with the portal identity, the contact, its addresses, its accounts
        assert len(portal_client.get("/api/v1/me/").json()["accounts"]) == 1
    AccountsReceivable.objects.create(number="AR9000001", contact=customer.contact, currency="EUR", classification=customer.classification)
    with django_assert_num_queries(4):
        assert len(portal_client.get("/api/v1/me/").json()["accounts"]) == 2
