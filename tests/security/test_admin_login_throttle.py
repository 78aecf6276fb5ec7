"""The admin log-in refuses guessing: five wrong passwords for a login name (or twenty from
one address) and the next attempt is refused, even with the right password, until the
window has passed; other staff are not locked out by someone guessing at a colleague."""

from __future__ import annotations

import time

from django.test import Client

from tests.factories import StaffUserFactory

PASSWORD = "staff-password-1"  # StaffUserFactory's
LOGIN = "/admin/login/"


def log_in(client: Client, username: str, password: str, address: str = "203.0.113.7"):
    return client.post(LOGIN, {"username": username, "password": password, "next": "/admin/"}, REMOTE_ADDR=address)


def logged_in(client: Client) -> bool:
    return client.get("/admin/").status_code == 200


def test_the_sixth_attempt_is_refused_even_with_the_right_password(agent):
    client = Client()
    for _attempt in range(5):
        response = log_in(client, "agent", "wrong")
        assert response.status_code == 200  # the form again, with Django's usual message

    response = log_in(client, "agent", PASSWORD)

    assert response.status_code == 429
    assert "Too many failed log-in attempts" in response.content.decode()
    assert not logged_in(client)


def test_a_colleague_on_another_machine_is_not_affected(agent, finance_user):
    guesser, colleague = Client(), Client()
    for _attempt in range(6):
        log_in(guesser, "agent", "wrong")

    response = log_in(colleague, "finance", PASSWORD, address="198.51.100.20")

    assert response.status_code == 302
    assert logged_in(colleague)


def test_the_login_name_counts_whatever_its_case_and_address(agent):
    for number in range(5):
        log_in(Client(), " AGENT" if number % 2 else "agent", "wrong", address=f"192.0.2.{number}")

    response = log_in(Client(), "agent", PASSWORD, address="192.0.2.99")

    assert response.status_code == 429


def test_one_address_guessing_at_many_names_is_refused(db, settings):
    settings.ADMIN_LOGIN_FAILURES_PER_IP = 3
    StaffUserFactory(username="victim")
    client = Client()
    for name in ("alice", "bob", "carol"):
        log_in(client, name, "wrong")

    response = log_in(client, "victim", PASSWORD)

    assert response.status_code == 429
    assert log_in(Client(), "victim", PASSWORD, address="198.51.100.1").status_code == 302


def test_a_success_clears_the_login_names_count(agent):
    client = Client()
    for _attempt in range(4):
        log_in(client, "agent", "wrong")
    assert log_in(client, "agent", PASSWORD).status_code == 302
    client.logout()

    for _attempt in range(4):
        log_in(client, "agent", "wrong")
    response = log_in(client, "agent", PASSWORD)

    assert response.status_code == 302


def test_the_refusal_ends_with_the_window(agent, settings):
    """The counters live in Redis, whose clock we cannot travel: a one-second window."""
    settings.ADMIN_LOGIN_WINDOW_SECONDS = 1
    client = Client()
    for _attempt in range(5):
        log_in(client, "agent", "wrong")
    assert log_in(client, "agent", PASSWORD).status_code == 429

    time.sleep(1.5)
    response = log_in(client, "agent", PASSWORD)

    assert response.status_code == 302
