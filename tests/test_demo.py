"""The demo (`make run`) loads the Company ZX configuration, prices as the scenario says,
and loading it again changes nothing."""

from __future__ import annotations

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
    call_command("demo_load", stdout=open("/dev/null", "w"))


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
