"""Staff see the figures (admin dashboard with SVG charts and CSV; the read-only API);
portal customers and call-center agents do not."""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest
import time_machine
from django.test import Client
from rest_framework.test import APIClient

from analytics.services.rollups import analytics_rollup
from analytics.models import AccountMonth
from analytics.tasks import analytics_rollup_task
from tests.conftest import portal_client_for

from .history import at, build

pytestmark = pytest.mark.django_db
PERIOD = "first=2026-01&last=2026-05"


@pytest.fixture
def history(billing_scheme):
    people = build(billing_scheme)
    analytics_rollup(through=date(2026, 5, 31))
    return people


def staff_client(user, api: bool = False):
    client = APIClient() if api else Client()
    client.force_login(user)
    return client


def test_marketing_reads_the_monthly_figures_through_the_api(history, marketing_user):
    response = staff_client(marketing_user, api=True).get(f"/api/v1/analytics/months/?{PERIOD}")

    assert response.status_code == 200
    assert [(row["month"], row["mrr"], row["churned"], row["logo_churn"]) for row in response.json()] == [
        ("2026-01-01", "12.58", "0.00", None), ("2026-02-01", "20.97", "0.00", "0.0000"),
        ("2026-03-01", "12.58", "8.39", "0.3333"), ("2026-04-01", "4.19", "8.39", "0.5000"),
        ("2026-05-01", "16.78", "0.00", "0.0000")]


def test_the_api_filters_by_segment_and_splits_by_plan(history, finance_user):
    client = staff_client(finance_user, api=True)

    portal = client.get("/api/v1/analytics/months/?first=2026-02&last=2026-02&channel=PORTAL").json()
    plans = client.get("/api/v1/analytics/mrr-breakdown/?dimension=plan&last=2026-02").json()
    value = client.get(f"/api/v1/analytics/customer-value/?account={history['anna'].number}&last=2026-05").json()

    assert [row["mrr"] for row in portal] == ["4.19"]
    assert plans == [{"key": "PPV Service", "mrr": "0.00"}, {"key": "Sports Pack", "mrr": "20.97"}]
    assert value == {"account": history["anna"].number, "lifetime_revenue": "0.00", "mrr": "8.39", "churn_rate": "0.2500",
                     "predicted_ltv": "33.56"}


def test_bad_filters_are_reported_all_at_once(history, marketing_user):
    response = staff_client(marketing_user, api=True).get("/api/v1/analytics/months/?first=2026-13&last=soon")

    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"first", "last"}


@pytest.mark.parametrize("path", ["months/", "mrr-breakdown/?dimension=plan", "cohorts/", "customer-value/?account=AR1", "insights/",
                                  "top-titles/"])
def test_portal_customers_and_agents_are_refused(history, agent, path):
    portal = portal_client_for(history["anna"]).get(f"/api/v1/analytics/{path}")
    agent_response = staff_client(agent, api=True).get(f"/api/v1/analytics/{path}")
    anonymous = APIClient().get(f"/api/v1/analytics/{path}")

    assert (portal.status_code, agent_response.status_code, anonymous.status_code) == (403, 403, 401)


def test_the_dashboard_draws_svg_charts_and_tables(history, marketing_user):
    response = staff_client(marketing_user).get(f"/admin/analytics/analyticsdashboard/?{PERIOD}")

    assert response.status_code == 200
    page = response.content.decode()
    assert page.count('class="chart"') == 3 and "<rect" in page
    assert "MRR May 2026<strong>16.78</strong>" in page
    assert "Predicted LTV<strong>33.56</strong>" in page


def test_the_dashboard_exports_its_months_as_csv(history, marketing_user):
    response = staff_client(marketing_user).get(f"/admin/analytics/analyticsdashboard/csv/?{PERIOD}&channel=CALL_CENTER")

    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert response["Content-Type"].startswith("text/csv")
    assert rows[0][:4] == ["month", "mrr", "new", "expansion"]
    # Call-center sign-ups: Anna and Chris (Ben came through the portal)
    assert [(row[0], row[1]) for row in rows[1:]] == [("2026-01", "8.39"), ("2026-02", "16.78"), ("2026-03", "4.19"),
                                                     ("2026-04", "4.19"), ("2026-05", "16.78")]


def test_agents_do_not_see_the_dashboard(history, agent):
    assert staff_client(agent).get("/admin/analytics/analyticsdashboard/").status_code == 403


def test_the_hourly_task_rolls_up_what_is_missing_and_the_last_two_months(billing_scheme):
    build(billing_scheme)

    with time_machine.travel(at(2026, 5, 20, 3, 0), tick=False):
        assert analytics_rollup_task() == ["2026-01-01", "2026-02-01", "2026-03-01", "2026-04-01", "2026-05-01"]
        assert analytics_rollup_task() == ["2026-04-01", "2026-05-01"]
    # May: Anna, Chris and Dora (Ben left in April, so he no longer has a month)
    assert AccountMonth.objects.filter(month=date(2026, 5, 1)).count() == 3
