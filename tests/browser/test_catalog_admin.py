"""Marketing, in Chromium: create a catalog, fail to make it EFFECTIVE because a
provisioning ID is missing (and see why), fix it, and make it EFFECTIVE."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from catalogs.models import UsageServiceCatalog

from .conftest import admin_login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_marketing_makes_a_catalog_effective_after_fixing_a_missing_provisioning_id(page, live_server, marketing_user, zx, tmp_path):
    admin_login(page, live_server, "marketing", "staff-password-1")

    page.goto(f"{live_server.url}/admin/catalogs/usageservicecatalog/add/")
    page.fill("#id_name", "Summer movies")
    page.select_option("#id_provider", label="Nagra Media Platform")
    page.select_option("#id_services-0-product", label="Limitless")
    expect(page.locator("#id_services-0-base_rate")).to_have_value("10.0000")  # the definition's default
    expect(page.locator("#id_services-0-tiers_text")).to_have_value("5.00@00:01-06:59")
    page.click("input[name=_continue]")
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")

    page.click("a[data-action=set_effective]")
    page.click("input[type=submit][value='Yes, set effective']")
    messages = page.locator(".messagelist")
    expect(messages).to_contain_text("Set effective: rejected. Nothing was changed.")
    expect(messages).to_contain_text("Limitless needs a provisioning ID (its type 'Usage Services' is used for provisioning).")
    page.screenshot(path=str(tmp_path / "rejected.png"), full_page=True)
    assert UsageServiceCatalog.objects.get().state == "DRAFT"

    page.fill("#id_services-0-provisioning_id", "1BQ1")
    page.click("input[name=_continue]")
    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    page.click("a[data-action=set_effective]")
    page.click("input[type=submit][value='Yes, set effective']")

    expect(page.locator(".messagelist")).to_contain_text("Set effective: done.")
    expect(page.locator(".field-state")).to_contain_text("Effective")
    page.screenshot(path=str(tmp_path / "effective.png"), full_page=True)
    catalog = UsageServiceCatalog.objects.get()
    assert catalog.state == "EFFECTIVE"
    assert catalog.services.get().provisioning_id == "1BQ1"
