"""Billing runs, one-time charges and promotion grants in the admin: finance starts a run
and watches its progress; agents add charges and grant coupons but cannot start runs."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine

from billing.models import BillingRun, OneTimeCharge, PromotionGrant
from billing.services.runs import billing_run_execute
from catalogs.models import Product, Promotion
from tests.billing.test_billing_admin import logged_in
from tests.billing.test_billing_runs import monthly, sports_subscriber

pytestmark = pytest.mark.django_db
RUNS = "/admin/billing/billingrun/"
FEB_1 = datetime(2026, 2, 1, 9, 0, tzinfo=ZoneInfo("Europe/Nicosia"))


def test_finance_starts_a_run_and_its_page_shows_the_progress_bar_until_it_completes(zx_catalog, billing_scheme, finance_user):
    sports_subscriber(monthly())
    client = logged_in(finance_user)
    with time_machine.travel(FEB_1, tick=False):
        response = client.post(f"{RUNS}add/", {"run_date": "2026-02-01", "scheme": ""})
    assert response.status_code == 302
    run = BillingRun.objects.get()
    assert run.created_by == finance_user

    running = client.get(f"{RUNS}{run.pk}/change/")
    assert 'http-equiv="refresh"' in running.content.decode() and 'value="0"' in running.content.decode()

    with time_machine.travel(FEB_1, tick=False):
        billing_run_execute(run=run)
    done = client.get(f"{RUNS}{run.pk}/change/").content.decode()
    assert 'value="100"' in done and "Completed" in done and 'http-equiv="refresh"' not in done


def test_a_run_for_tomorrow_is_refused_on_the_form_and_nothing_is_created(zx_catalog, billing_scheme, finance_user):
    with time_machine.travel(FEB_1, tick=False):
        response = logged_in(finance_user).post(f"{RUNS}add/", {"run_date": "2026-02-02", "scheme": ""})
    assert response.status_code == 200
    assert "A billing run cannot be for a day that has not come yet." in response.content.decode()
    assert not BillingRun.objects.exists()


def test_agents_cannot_start_runs_but_add_charges_and_grant_coupons(zx_catalog, billing_scheme, agent):
    subscription = sports_subscriber(monthly())
    client = logged_in(agent)
    assert client.get(f"{RUNS}add/").status_code == 403

    response = client.post("/admin/billing/onetimecharge/add/", {
        "account": subscription.account.pk, "subscription": subscription.pk,
        "product": Product.objects.get(code="INSTALLATION").pk, "charged_on": "2026-01-20"})
    assert response.status_code == 302
    assert list(OneTimeCharge.objects.values_list("description", "amount", "state")) == [("Installation", Decimal("25.0000"), "PENDING")]

    response = client.post("/admin/billing/promotiongrant/add/", {"subscription": subscription.pk, "coupon_code": "welcome50"})
    assert response.status_code == 302
    grant = PromotionGrant.objects.get()
    assert (grant.promotion, grant.redemption.coupon.code, grant.granted_by) == (Promotion.objects.get(code="WELCOME50"), "WELCOME50", agent)


def test_a_coupon_promotion_granted_without_its_coupon_is_refused_with_the_reason(zx_catalog, billing_scheme, agent):
    subscription = sports_subscriber(monthly())
    response = logged_in(agent).post("/admin/billing/promotiongrant/add/", {
        "subscription": subscription.pk, "promotion": Promotion.objects.get(code="WELCOME50").pk})
    assert response.status_code == 200
    assert "is granted with a coupon code only" in response.content.decode()
    assert not PromotionGrant.objects.exists()
