"""The demo (`make run`) loads the Company ZX configuration, prices as the scenario says,
and loading it again changes nothing."""

from __future__ import annotations

import io

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command

from accounts.models import AccountsReceivable
from catalogs.models import ContentTitle, Product, UsageServiceCatalog
from catalogs.rating import rate_usage
from core.models import AuditEntry

pytestmark = pytest.mark.django_db
NICOSIA = ZoneInfo("Europe/Nicosia")


def load() -> None:
    call_command("demo_load", stdout=io.StringIO())


def test_the_demo_loads_twice_without_changing_anything():
    load()
    counts = (AuditEntry.objects.count(), Product.objects.count(), UsageServiceCatalog.objects.count(), AccountsReceivable.objects.count())
    load()
    assert (AuditEntry.objects.count(), Product.objects.count(), UsageServiceCatalog.objects.count(),
            AccountsReceivable.objects.count()) == counts


@pytest.mark.parametrize(
    "code, classification, local_time, price",
    [
        ("LOTR", "NORMAL", (3, 0), "5.00"), ("LOTR", "NORMAL", (21, 0), "10.00"),
        ("LIMITLESS", "NORMAL", (0, 1), "5.00"), ("LIMITLESS", "NORMAL", (7, 0), "10.00"),
        ("SERENDIPITY", "NORMAL", (3, 0), "3.00"), ("SERENDIPITY", "NORMAL", (15, 0), "3.00"),
        ("LOTR", "VIP", (3, 0), "0.00"), ("SERENDIPITY", "VIP", (15, 0), "0.00"),
    ],
)
def test_company_zx_prices(code, classification, local_time, price):
    load()
    at = datetime(2026, 11, 20, *local_time, tzinfo=NICOSIA)
    quote = rate_usage(product=Product.objects.get(code=code), at=at, classification=classification)
    assert quote.amount == Decimal(price)
    assert [service.code for service in quote.required_services] == ["PPV-SERVICE"]


def test_the_demo_movies_are_published_on_every_screen():
    load()
    assert set(ContentTitle.objects.values_list("state", flat=True)) == {"PUBLISHED"}
    assert all(title.availabilities.count() == 4 for title in ContentTitle.objects.all())
    assert ContentTitle.objects.get(code="SERENDIPITY").is_older_movie


@pytest.mark.parametrize("email, expected", [("maria@example.com", "5.0000"), ("andreas@example.com", "0.0000")])
def test_demo_customers_can_order_from_the_portal(email, expected):
    import time_machine

    load()
    from rest_framework.test import APIClient

    from accounts import services

    client = APIClient()
    token = services.portal_login(username=email, password={"maria@example.com": "maria-portal-pass",
                                                            "andreas@example.com": "andreas-portal-pass"}[email])
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    with time_machine.travel(datetime(2026, 11, 20, 1, 0, tzinfo=NICOSIA)):
        response = client.post("/api/v1/orders/", {"title": ContentTitle.objects.get(code="LOTR").pk}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["amount"] == expected
