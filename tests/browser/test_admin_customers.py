"""An agent, in Chromium, finds a customer, reads their page and suspends them."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from accounts.models import AccountsReceivable

from .conftest import admin_login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_agent_finds_a_customer_and_suspends_them(page, live_server, agent, customer, other_customer, tmp_path):
    admin_login(page, live_server, "agent", "staff-password-1")

    page.goto(f"{live_server.url}/admin/accounts/accountsreceivable/")
    page.fill("#searchbar", "georgiou")
    page.press("#searchbar", "Enter")
    page.wait_for_url("**q=georgiou")
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(1)
    rows.first.locator("a", has_text=customer.number).click()

    panel = page.locator("section[aria-label=contact]")
    assert "Maria Georgiou" in panel.inner_text()
    assert "+35799123456" in panel.inner_text()
    assert "Signed up" in page.locator("fieldset[aria-label=history]").inner_text()

    page.click("a.button:has-text('Suspend')")
    page.fill("#id_reason", "Customer asked for a pause")
    page.click("input[type=submit][value='Yes, suspend']")

    expect(page.locator(".messagelist")).to_contain_text(f"{customer.number}: suspend done.")
    assert "Suspended" in page.locator("section[aria-label=account]").inner_text()
    assert "Customer asked for a pause" in page.locator("fieldset[aria-label=history]").inner_text()
    page.screenshot(path=str(tmp_path / "customer-page.png"), full_page=True)
    assert AccountsReceivable.objects.get(pk=customer.pk).state == "SUSPENDED"
    assert AccountsReceivable.objects.get(pk=other_customer.pk).state == "ACTIVE"


def test_marketing_does_not_see_customers(page, live_server, marketing_user):
    admin_login(page, live_server, "marketing", "staff-password-1")
    nav = page.locator("#content-main").inner_text()
    assert "Classifications" in nav
    assert "Customer accounts" not in nav
