"""An agent, in Chromium, orders a PPV movie for a caller: finds the customer, opens Add
Service Usage, chooses the movie, sees the price, confirms, and sees the order on the
customer page."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from billing.models import UsageDetailRecord

from .conftest import admin_login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def subscriber(db):
    from billing.models import BillingTermScheme
    from catalogs.demo import demo_catalog_load
    from tests.factories import customer_create
    from tests.world import effective_subscription

    demo_catalog_load()
    scheme = BillingTermScheme.objects.create(name="Normal", state="EFFECTIVE")
    return effective_subscription(customer_create(first_name="Maria", last_name="Georgiou", email="maria@example.com"), scheme)


def test_agent_orders_a_movie_with_add_service_usage(page, live_server, agent, subscriber, tmp_path):
    admin_login(page, live_server, "agent", "staff-password-1")
    page.goto(f"{live_server.url}/admin/accounts/accountsreceivable/?q=georgiou")
    page.locator("#result_list a", has_text=subscriber.account.number).click()

    subscriptions = page.locator("fieldset[aria-label=subscriptions]")
    expect(subscriptions).to_contain_text("PPV Service")
    subscriptions.locator("a.button", has_text="Add Service Usage").click()

    page.select_option("#id_title", label="Serendipity (2001)")
    page.click("input[type=submit][value='Preview price']")
    expect(page.locator("#price-preview")).to_contain_text("3.00 EUR")
    assert not UsageDetailRecord.objects.exists()
    page.screenshot(path=str(tmp_path / "preview.png"), full_page=True)
    page.click("input[type=submit][value='Confirm order']")

    expect(page.locator(".messagelist")).to_contain_text("Ordered Serendipity (2001) for 3.00 EUR")
    expect(page.locator("fieldset[aria-label=orders]")).to_contain_text("Serendipity")
    page.screenshot(path=str(tmp_path / "ordered.png"), full_page=True)
    udr = UsageDetailRecord.objects.get()
    assert (str(udr.amount), udr.channel, udr.state) == ("3.0000", "CALL_CENTER", "RATED")
