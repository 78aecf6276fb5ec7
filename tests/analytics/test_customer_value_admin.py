"""The customer page in the admin shows the customer's lifetime revenue and predicted
lifetime value (docs/analytics.md, "ARPU, churn, lifetime value"), read-only."""

from __future__ import annotations

from datetime import date

import pytest
import time_machine
from django.test import Client

from analytics.services.rollups import analytics_rollup

from .history import at, build

pytestmark = pytest.mark.django_db


@pytest.fixture
def history(billing_scheme):
    people = build(billing_scheme, with_billing=True)
    analytics_rollup(through=date(2026, 5, 31))
    return people


def customer_page(user, account) -> str:
    client = Client()
    client.force_login(user)
    with time_machine.travel(at(2026, 5, 20, 12, 0), tick=False):
        response = client.get(f"/admin/accounts/accountsreceivable/{account.pk}/change/")
    assert response.status_code == 200
    return response.content.decode()


def figure(page: str, name: str) -> str:
    start = page.index(f'data-figure="{name}">') + len(f'data-figure="{name}">')
    return page[start:page.index("</td>", start)]


def test_the_customer_page_shows_lifetime_revenue_and_predicted_value(history, finance_user):
    # Given Anna's known history: billed 4.06 (January, net) and 8.39 (February), paying
    # 8.39 a month in May, and her classification losing 25% of its customers a month
    page = customer_page(finance_user, history["anna"])

    # Then her lifetime revenue is 12.45 and her predicted value 12.45 + 8.39 ÷ 0.25 = 46.01
    assert (figure(page, "lifetime_revenue"), figure(page, "mrr"), figure(page, "churn_rate"), figure(page, "predicted_ltv")) == (
        "12.45 EUR", "8.39 EUR", "25.00%", "46.01 EUR")


def test_a_ppv_only_customer_is_worth_what_she_bought(history, agent):
    # Dora never paid a subscription: 8.40 + 4.20 of PPV, nothing more expected (agents see it too)
    page = customer_page(agent, history["dora"])

    assert (figure(page, "lifetime_revenue"), figure(page, "mrr"), figure(page, "predicted_ltv")) == (
        "12.60 EUR", "0.00 EUR", "12.60 EUR")
