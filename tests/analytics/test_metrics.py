"""The worked example of docs/analytics.md, asserted to the cent and to the customer."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from analytics.models import AccountMonth, MrrSnapshot
from analytics.selectors import churn_rate, cohort_retention, customer_value, metrics_by_month, mrr_by, predicted_ltv
from analytics.services.rollups import analytics_rollup

from .history import build

pytestmark = pytest.mark.django_db
D = Decimal
JAN, FEB, MAR, APR, MAY = (date(2026, month, 1) for month in range(1, 6))


def movements(account, *months):
    rows = {row.month: row for row in AccountMonth.objects.filter(account=account)}
    return [(rows[m].mrr, rows[m].movement, rows[m].movement_amount) if m in rows else None for m in months]


def test_mrr_and_its_movements_follow_sign_ups_promotions_cancellations_and_returns(billing_scheme):
    # Given the four customers' January–May
    people = build(billing_scheme)

    # When the months are rolled up
    assert analytics_rollup(through=date(2026, 5, 31)) == [JAN, FEB, MAR, APR, MAY]

    # Then each customer's month-end MRR (net of VAT and of the promotion) and its movement
    months = (JAN, FEB, MAR, APR, MAY)
    assert movements(people["anna"], *months) == [
        (D("8.39"), "NEW", D("8.39")), (D("8.39"), "NONE", D("0")), (D("4.19"), "CONTRACTION", D("-4.20")),
        (D("4.19"), "NONE", D("0")), (D("8.39"), "EXPANSION", D("4.20"))]
    assert movements(people["ben"], *months) == [
        (D("4.19"), "NEW", D("4.19")), (D("4.19"), "NONE", D("0")), (D("8.39"), "EXPANSION", D("4.20")),
        (D("0"), "CHURN", D("-8.39")), None]
    assert movements(people["chris"], *months) == [
        (D("0"), "NONE", D("0")), (D("8.39"), "NEW", D("8.39")), (D("0"), "CHURN", D("-8.39")), None,
        (D("8.39"), "REACTIVATION", D("8.39"))]
    # Dora keeps her free PPV Service: a customer month without MRR
    assert movements(people["dora"], *months) == [(D("0"), "NONE", D("0"))] * 5

    # And the business's months
    figures = metrics_by_month(first=JAN, last=MAY)
    assert [(m.mrr, m.new, m.expansion, m.contraction, m.churned, m.reactivation, m.net_new_mrr) for m in figures] == [
        (D("12.58"), D("12.58"), D("0"), D("0"), D("0"), D("0"), D("12.58")),
        (D("20.97"), D("8.39"), D("0"), D("0"), D("0"), D("0"), D("8.39")),
        (D("12.58"), D("0"), D("4.20"), D("4.20"), D("8.39"), D("0"), D("-8.39")),
        (D("4.19"), D("0"), D("0"), D("0"), D("8.39"), D("0"), D("-8.39")),
        (D("16.78"), D("0"), D("4.20"), D("0"), D("0"), D("8.39"), D("12.59")),
    ]
    # MRR at a month's end is the previous month's plus the net new MRR
    assert [m.mrr_at_start for m in figures] == [D("0"), *(m.mrr for m in figures[:-1])]
    assert [m.customers for m in figures] == [2, 3, 2, 1, 2]
    assert [m.arpu for m in figures] == [D("6.29"), D("6.99"), D("6.29"), D("4.19"), D("8.39")]
    assert [m.logo_churn for m in figures] == [None, D("0"), D("0.3333"), D("0.5000"), D("0")]
    assert [m.revenue_churn for m in figures] == [None, D("0"), D("0.6004"), D("0.6669"), D("0")]
    assert figures[2].net_revenue_churn == D("0.4001")


def test_mrr_splits_by_plan_classification_and_channel(billing_scheme):
    build(billing_scheme)
    analytics_rollup(through=date(2026, 3, 31))

    assert mrr_by(month=FEB, dimension="plan") == {"PPV Service": D("0.00"), "Sports Pack": D("20.97")}
    assert mrr_by(month=FEB, dimension="channel") == {"CALL_CENTER": D("16.78"), "PORTAL": D("4.19")}
    assert mrr_by(month=FEB, dimension="classification") == {"Normal": D("20.97")}
    assert [m.mrr for m in metrics_by_month(first=FEB, last=FEB, segment={"channel": "PORTAL"})] == [D("4.19")]


def test_churn_cohorts_and_lifetime_value(billing_scheme):
    people = build(billing_scheme)
    analytics_rollup(through=date(2026, 5, 31))

    # 2 customers lost over 8 paying customer-months at risk (Feb 2, Mar 3, Apr 2, May 1)
    assert churn_rate(last=date(2026, 5, 31)) == D("0.2500")
    # The January cohort: Anna, Ben and Chris paid at some point (Dora never subscribed to a paid plan)
    assert cohort_retention(first=JAN, last=MAY) == [{"cohort": JAN, "customers": 3, "retention": [
        D("0.6667"), D("1.0000"), D("0.6667"), D("0.3333"), D("0.6667")]}]
    # ARPU 8.39 ÷ 25% monthly churn
    assert predicted_ltv(last=date(2026, 5, 31)) == D("33.56")
    value = customer_value(account=people["anna"], as_of=date(2026, 5, 31))
    assert (value.lifetime_revenue, value.mrr, value.predicted_ltv) == (D("0"), D("8.39"), D("33.56"))


def test_recognized_revenue_and_ppv_beside_mrr(billing_scheme):
    # Given the history with the billing runs of 1 February and 1 March and recognition through each month's end
    people = build(billing_scheme, with_billing=True)

    analytics_rollup(through=date(2026, 2, 28))

    january, february = metrics_by_month(first=JAN, last=FEB)
    # January: Anna 10–31 Jan (22 days, 7 free: 4.83 gross, 4.06 net), Ben 15–31 Jan (half price: 1.61, 1.35 net),
    # Chris's 7 days are all trial; Dora's evening Limitless €10.00 (8.40 net)
    assert (january.recurring_revenue, january.ppv_revenue, january.total_revenue, january.ppv_orders) == (
        D("5.41"), D("8.40"), D("13.81"), 1)
    # February: 8.39 + 4.19 + 8.39 recurring; Dora's night Lord of the Rings €5.00 (4.20 net)
    assert (february.recurring_revenue, february.ppv_revenue, february.total_revenue, february.ppv_orders) == (
        D("20.97"), D("4.20"), D("25.17"), 1)
    assert customer_value(account=people["anna"], as_of=date(2026, 2, 28)).lifetime_revenue == D("12.45")
    assert customer_value(account=people["dora"], as_of=date(2026, 2, 28)).lifetime_revenue == D("12.60")


def test_rolling_a_month_up_again_changes_nothing(billing_scheme):
    build(billing_scheme)
    analytics_rollup(through=date(2026, 5, 31))
    before = sorted(AccountMonth.objects.values_list("pk", "month", "account_id", "mrr", "movement"))
    snapshots = sorted(MrrSnapshot.objects.values_list("pk", "month", "service_id", "mrr"))

    assert analytics_rollup(through=date(2026, 5, 31), since=JAN) == [JAN, FEB, MAR, APR, MAY]

    assert sorted(AccountMonth.objects.values_list("pk", "month", "account_id", "mrr", "movement")) == before
    assert sorted(MrrSnapshot.objects.values_list("pk", "month", "service_id", "mrr")) == snapshots


def _from_customer_months(rows, first, last):
    """The month-by-month figures summed in Python straight from the customer months."""
    result = []
    for month in (m for m in (JAN, FEB, MAR, APR, MAY) if first <= m <= last):
        mine = [row for row in rows if row.month == month]

        def moved(kind):
            return sum((row.movement_amount for row in mine if row.movement == kind), D("0"))

        result.append((month, sum((row.mrr for row in mine), D("0")), moved("NEW"), moved("EXPANSION"), -moved("CONTRACTION"),
                       -moved("CHURN"), moved("REACTIVATION"), sum(1 for row in mine if row.mrr > 0),
                       sum(1 for row in mine if row.previous_mrr > 0), sum(1 for row in mine if row.movement == "NEW"),
                       sum(1 for row in mine if row.movement == "CHURN"), sum((row.recurring_revenue for row in mine), D("0")),
                       sum((row.ppv_revenue for row in mine), D("0")), sum((row.one_time_revenue for row in mine), D("0")),
                       sum(row.ppv_orders for row in mine)))
    return result


def test_month_figures_from_segment_months_equal_the_customer_months_summed_for_every_filter(billing_scheme):
    # Given the four customers' January–May rolled up, with billing (revenue and PPV orders)
    build(billing_scheme, with_billing=True)
    analytics_rollup(through=date(2026, 5, 31))
    rows = list(AccountMonth.objects.all())
    filters = [{}, *({key: value} for key in ("classification", "country", "channel")
                     for value in sorted({getattr(row, key) for row in rows}))]
    assert len(filters) > 3

    for segment in filters:
        # When the dashboard's figures are read (from the segment months)
        figures = metrics_by_month(first=FEB, last=MAY, segment=segment)

        # Then they are the customer months' sums and counts, month by month
        mine = [row for row in rows if all(getattr(row, key) == value for key, value in segment.items())]
        assert [(m.month, m.mrr, m.new, m.expansion, m.contraction, m.churned, m.reactivation, m.customers,
                 m.customers_at_start, m.new_customers, m.churned_customers, m.recurring_revenue, m.ppv_revenue,
                 m.one_time_revenue, m.ppv_orders) for m in figures] == _from_customer_months(mine, FEB, MAY), segment
        lost = sum(1 for row in mine if row.movement == "CHURN")
        at_risk = sum(1 for row in mine if row.previous_mrr > 0)
        expected = (D(lost) / D(at_risk)).quantize(D("0.0001")) if at_risk else None
        assert churn_rate(last=date(2026, 5, 31), segment=segment) == expected, segment
    assert any(m.ppv_orders for m in metrics_by_month(first=JAN, last=MAY))


def test_segment_months_are_replaced_with_their_month_and_refilled_by_the_migration(billing_scheme):
    from analytics.models import SegmentMonth
    from analytics.services.rollups import segment_months_write

    # Given the months rolled up
    build(billing_scheme, with_billing=True)
    analytics_rollup(through=date(2026, 5, 31))
    written = sorted(SegmentMonth.objects.values_list("month", "classification", "country", "channel", "currency", "mrr",
                                                      "customers", "ppv_revenue"))
    assert written

    # When a month is rolled up again, nothing changes (its rows are replaced, not added)
    analytics_rollup(through=date(2026, 5, 31), since=MAR)
    assert sorted(SegmentMonth.objects.values_list("month", "classification", "country", "channel", "currency", "mrr",
                                                   "customers", "ppv_revenue")) == written

    # And filling them from the customer months alone (what the migration does) gives the same rows
    SegmentMonth.objects.all().delete()
    for month in (JAN, FEB, MAR, APR, MAY):
        segment_months_write(month)
    assert sorted(SegmentMonth.objects.values_list("month", "classification", "country", "channel", "currency", "mrr",
                                                   "customers", "ppv_revenue")) == written


def test_a_month_rolls_up_with_the_cycle_collector_paused_and_restores_it(billing_scheme, collector_watch):
    """core.memory: the month's instances live until it is written; the collector is back
    on after it, and the month's figures are the same."""
    import gc

    from analytics.services import rollups

    build(billing_scheme)
    seen = collector_watch(rollups, "_snapshots")

    rows = rollups.analytics_month_rollup(month=date(2026, 3, 1))

    assert seen == [False] and gc.isenabled()
    assert rows and AccountMonth.objects.filter(month=date(2026, 3, 1)).count() == len(rows)


@pytest.mark.parametrize("module, inner, run", [
    ("viewing", "_views", lambda module: module.viewing_rollup(through=date(2026, 5, 31))),
    ("recommendations", "interactions_load", lambda module: module.recommendations_rebuild(today=date(2026, 5, 31))),
])
def test_the_viewing_rollup_and_the_recommendations_rebuild_pause_the_collector(module, inner, run, collector_watch):
    import gc
    import importlib

    target = importlib.import_module(f"analytics.services.{module}")
    seen = collector_watch(target, inner)

    run(target)

    assert seen == [False] and gc.isenabled()
