"""Sign-up, log-in, log-out, throttling and the error format."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token

from accounts import services
from accounts.models import AccountsReceivable, Contact
from accounts.selectors import account_primary_for_user, user_get_by_token

User = get_user_model()

pytestmark = pytest.mark.django_db

SIGN_UP = {
    "first_name": "Eleni",
    "last_name": "Christou",
    "email": "eleni@example.com",
    "mobile_phone": "99 111 222",
    "password": "a-long-enough-secret",
    "address": {"line1": "5 Stasinou", "city": "Nicosia", "country": "CY"},
}


def test_sign_up_creates_the_customer_and_returns_a_working_token(api_client):
    response = api_client.post("/api/v1/auth/signup/", SIGN_UP, format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["account"]["state"] == "ACTIVE"
    assert body["account"]["classification"] == "NORMAL"
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {body['token']}")
    me = api_client.get("/api/v1/me/").json()
    assert me["email"] == "eleni@example.com"
    assert me["mobile_phone"] == "+35799111222"
    assert me["accounts"][0]["number"] == body["account"]["number"]
    assert AccountsReceivable.objects.get().events.first().channel == "PORTAL"


def test_sign_up_with_bad_data_answers_field_errors_and_changes_nothing(api_client):
    response = api_client.post(
        "/api/v1/auth/signup/", {**SIGN_UP, "email": "nope", "password": "123", "address": {"city": ""}}, format="json"
    )

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert {"email", "address.line1", "address.city", "address.country"} <= set(error["fields"])
    assert Contact.objects.count() == 0


def test_sign_up_domain_errors_use_the_same_format(api_client):
    response = api_client.post("/api/v1/auth/signup/", {**SIGN_UP, "password": "password"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["password"]
    assert get_user_model().objects.count() == 0


def test_log_in_and_log_out(api_client, customer):
    response = api_client.post("/api/v1/auth/login/", {"email": "Maria@Example.com", "password": "correct-horse-battery"}, format="json")
    assert response.status_code == 200
    token = response.json()["token"]
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api_client.get("/api/v1/me/").status_code == 200

    assert api_client.post("/api/v1/auth/logout/").status_code == 204

    assert not Token.objects.filter(key=token).exists()
    response = api_client.get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_wrong_password_gets_a_clear_error(api_client, customer):
    response = api_client.post("/api/v1/auth/login/", {"email": "maria@example.com", "password": "wrong"}, format="json")
    assert response.status_code == 400
    assert response.json() == {"error": {"code": "invalid_credentials", "message": "The e-mail or password is not correct.", "fields": {}}}


def test_staff_cannot_use_the_portal_login(api_client, agent):
    response = api_client.post("/api/v1/auth/login/", {"email": "agent", "password": "staff-password-1"}, format="json")
    assert response.status_code == 400


def test_login_is_throttled_per_login_name(api_client, customer):
    attempts = [
        api_client.post("/api/v1/auth/login/", {"email": "maria@example.com", "password": f"guess-{n}"}, format="json").status_code
        for n in range(6)
    ]
    assert attempts == [400] * 5 + [429]
    response = api_client.post("/api/v1/auth/login/", {"email": "maria@example.com", "password": "correct-horse-battery"}, format="json")
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "throttled"
    assert "Retry-After" in response


def test_login_throttle_per_client_address(api_client, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "login_ip": "3/min"}}
    from rest_framework.settings import api_settings
    from rest_framework.throttling import SimpleRateThrottle

    SimpleRateThrottle.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES
    try:
        codes = [
            api_client.post("/api/v1/auth/login/", {"email": f"user{n}@example.com", "password": "x"}, format="json").status_code
            for n in range(4)
        ]
    finally:
        SimpleRateThrottle.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES
    assert codes == [400, 400, 400, 429]


@pytest.mark.parametrize(
    "method, path, status, code",
    [
        ("get", "/api/v1/me/", 401, "not_authenticated"),
        ("get", "/api/v1/does-not-exist/", 404, "not_found"),
        ("get", "/api/nothing-here", 404, "not_found"),
        ("delete", "/api/v1/auth/login/", 405, "method_not_allowed"),
    ],
)
def test_every_4xx_has_the_same_shape(api_client, method, path, status, code):
    response = getattr(api_client, method)(path)
    assert response.status_code == status
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "fields"}
    assert body["error"]["code"] == code


def test_malformed_json_is_a_parse_error(api_client):
    response = api_client.post("/api/v1/auth/login/", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"


# --- The token's identity, read in one query (accounts.selectors.user_get_by_token) ---------

def test_a_staff_integration_token_is_a_user_without_a_portal_identity(api_client, agent):
    token = Token.objects.create(user=agent)
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")

    response = api_client.get("/api/v1/me/")

    assert response.status_code == 403  # authenticated as the agent, who is no portal customer
    assert response.json()["error"]["code"] == "permission_denied"


def test_a_deactivated_users_token_is_refused(api_client, customer):
    token = services.portal_login(username=customer.contact.email, password="correct-horse-battery")
    User.objects.filter(pk=token.user_id).update(is_active=False)
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")

    response = api_client.get("/api/v1/me/")

    assert response.status_code == 401
    assert response.json()["error"]["message"] == "User inactive or deleted."


def test_a_read_acts_on_the_account_opened_first(customer):
    later = AccountsReceivable.objects.create(number="AR9000002", contact=customer.contact, currency="EUR",
                                              classification=customer.classification)
    token = services.portal_login(username=customer.contact.email, password="correct-horse-battery")

    user = user_get_by_token(key=token.key, with_account=True)

    assert account_primary_for_user(user=user) == customer != later
    assert account_primary_for_user(user=user).classification.code == "NORMAL"
    assert user.portal_user.contact_id == customer.contact_id
    assert user_get_by_token(key=token.key[:-1] + "x") is None
