"""Marketing, in Chromium, opens the analytics dashboard and sees real charts."""

from __future__ import annotations

import os
from datetime import date

import pytest
from playwright.sync_api import expect, sync_playwright

from analytics.services.rollups import analytics_rollup
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, admin_login

from .history import build

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page(monkeypatch):
    """Chromium for this test only: tests/browser keeps its own session-wide browser, and
    two Playwright instances may not be alive at once in one thread."""
    monkeypatch.setitem(os.environ, "DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(15_000)
        yield page
        browser.close()


def test_marketing_sees_the_dashboard_charts_and_filters_by_channel(page, live_server, marketing_user, billing_scheme,
                                                                  tmp_path):
    build(billing_scheme)
    analytics_rollup(through=date(2026, 5, 31))
    admin_login(page, live_server, "marketing", "staff-password-1")

    page.goto(f"{live_server.url}/admin/")
    page.click("a:has-text('Analytics dashboard')")
    page.fill("#id_first", "2026-01")
    page.fill("#id_last", "2026-05")
    page.click("input[type=submit][value=Show]")

    charts = page.locator("svg.chart")
    expect(charts).to_have_count(3)
    box = charts.first.bounding_box()
    assert box["width"] > 600 and box["height"] > 150
    assert charts.nth(1).locator("rect").count() >= 9  # five months of movements and the legend
    assert "16.78" in page.locator(".analytics-cards").inner_text()
    page.screenshot(path=str(tmp_path / "analytics-dashboard.png"), full_page=True)

    page.select_option("#id_channel", "PORTAL")
    page.click("input[type=submit][value=Show]")
    expect(page.locator("#analytics-months tbody tr").nth(1)).to_contain_text("4.19")
