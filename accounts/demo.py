"""Demo data for ``make run``: one staff user per role and a few customers.

Idempotent: running it again finds what exists and changes nothing (the demo passwords are
reset, so the printed logins always work).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from core.choices import Channel

from . import roles, services
from .models import Contact


@dataclass(frozen=True)
class DemoLogin:
    who: str
    username: str
    password: str
    where: str


STAFF = [
    DemoLogin(roles.CALL_CENTER_AGENT, "agent", "agent-demo-pass", "admin"),
    DemoLogin(roles.MARKETING, "marketing", "marketing-demo-pass", "admin"),
    DemoLogin(roles.FINANCE, "finance", "finance-demo-pass", "admin"),
    DemoLogin(roles.ADMINISTRATOR, "administrator", "administrator-demo-pass", "admin"),
]

CUSTOMERS = [
    {
        "contact": {"first_name": "Maria", "last_name": "Georgiou", "email": "maria@example.com", "mobile_phone": "99 123456", "language": "el"},
        "address": {"kind": "BILLING", "line1": "12 Makarios Avenue", "city": "Nicosia", "postal_code": "1065", "country": "CY"},
        "classification": "NORMAL",
        "password": "maria-portal-pass",
    },
    {
        "contact": {"first_name": "Andreas", "last_name": "Nicolaou", "email": "andreas@example.com", "mobile_phone": "99 654321"},
        "address": {"kind": "BILLING", "line1": "3 Ledra Street", "city": "Nicosia", "postal_code": "1011", "country": "CY"},
        "classification": "VIP",
        "password": "andreas-portal-pass",
    },
    {
        "contact": {"kind": "COMPANY", "company_name": "Limassol Sports Bar Ltd", "email": "accounts@sportsbar.example", "phone": "25 123456"},
        "address": {"kind": "BILLING", "line1": "40 Anexartisias", "city": "Limassol", "postal_code": "3036", "country": "CY"},
        "classification": "NORMAL",
        "password": None,
    },
]


def demo_staff_load() -> list[DemoLogin]:
    User = get_user_model()
    for login in STAFF:
        user, _ = User.objects.get_or_create(username=login.username, defaults={"email": f"{login.username}@ott.example"})
        user.is_staff = True
        user.is_superuser = False
        user.set_password(login.password)
        user.save()
        user.groups.set([Group.objects.get(name=login.who)])
    return STAFF


def demo_customers_load() -> list[DemoLogin]:
    logins = []
    for customer in CUSTOMERS:
        email = customer["contact"]["email"]
        with transaction.atomic():
            existing = Contact.objects.filter(email=email).first()
            if existing is None:
                services.customer_sign_up(
                    contact=customer["contact"],
                    address=customer["address"],
                    classification=customer["classification"],
                    password=customer["password"],
                    channel=Channel.SYSTEM,
                )
        if customer["password"]:
            user = get_user_model().objects.get(username=email)
            user.set_password(customer["password"])
            user.save(update_fields=["password"])
            logins.append(DemoLogin(f"Customer ({customer['classification']})", email, customer["password"], "portal API"))
    return logins
