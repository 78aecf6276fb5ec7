"""Revenue recognition: recurring charges recognized daily over their service period to the
cent, PPV and one-time charges at invoicing, bundles per component, an idempotent job that
catches up missed days, credit notes that take unrecognized revenue first and stop its
recognition, and the waterfall report (selector, admin page, CSV)."""

from __future__ import annotations

import csv
import io
import time
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection, transaction
from django.urls import reverse

from billing.models import Invoice, JournalEntry, RevenueAllocation, RevenueRecognition
from billing.selectors import trial_balance
from billing.selectors_revenue import revenue_waterfall
from billing.services.invoicing import credit_note_issue, invoice_create_draft, invoice_line_add, invoice_post
from billing.services.recognition import recognition_positions, revenue_recognize, scheduled_amount
from billing.services.taxes import tax_rate_create
from billing.tasks import revenue_recognize_task
from catalogs.models import BundleComponent, Product, ProductType
from tests.billing.test_invoicing import legs, product
from tests.factories import customer_create

pytestmark = pytest.mark.django_db
D = Decimal
NICOSIA = ZoneInfo("Europe/Nicosia")
NOVEMBER = (date(2026, 11, 1), date(2026, 12, 1))


def at(day: date, hour: int = 9):
    return time_machine.travel(datetime(day.year, day.month, day.day, hour, 0, tzinfo=NICOSIA), tick=False)


@pytest.fixture(autouse=True)
def cy_vat(db):
    return tax_rate_create(country="CY", tax_class="SERVICE", rate=D("19.00"), valid_from=date(2020, 1, 1))


@pytest.fixture
def account(db):
    return customer_create(portal=False)


def monthly_invoice(account, *, gross: str, period=NOVEMBER, on: date | None = None, item: Product | None = None) -> Invoice:
    """A posted invoice with one recurring charge billed in advance (DEFERRED_REVENUE)."""
    with at(on or period[0]):
        draft = invoice_create_draft(account=account)
        invoice_line_add(invoice=draft, description="OTT Basic", unit_price=D(gross), product=item or product("basic", "TERMED"),
                         revenue_ledger="DEFERRED_REVENUE", service_period=period, supplied_on=period[0])
        return invoice_post(invoice=draft)


def recognized(line) -> Decimal:
    return sum((row.amount for row in RevenueRecognition.objects.filter(invoice_line=line, kind="RECOGNIZED")), D("0.00"))


def balances() -> dict[str, Decimal]:
    """The non-zero ledger balances, to the cent (SQLite sums decimals as floats)."""
    rounded = {code: balance.quantize(D("0.01")) for code, balance in trial_balance().items()}
    return {code: balance for code, balance in rounded.items() if balance}


# --- the schedule ------------------------------------------------------------------------

def test_a_monthly_charge_is_recognized_day_by_day_half_up_and_the_last_day_takes_the_remainder(account):
    invoice = monthly_invoice(account, gross="11.90")  # net 10.00 + VAT 1.90, over 30 days
    line = invoice.lines.get()
    assert legs(invoice.journal_entry) == sorted([("AR", account.number, D("11.90")), ("DEFERRED_REVENUE", None, D("-10.00")),
                                                  ("TAX_PAYABLE", None, D("-1.90"))])

    cumulative = []
    for day in range(1, 31):
        revenue_recognize(through=date(2026, 11, day))
        cumulative.append(recognized(line))

    assert cumulative[:4] == [D("0.33"), D("0.67"), D("1.00"), D("1.33")]
    assert cumulative[14] == D("5.00") and cumulative[28] == D("9.67") and cumulative[29] == D("10.00")
    assert cumulative == [(D(10) * day / 30).quantize(D("0.01"), "ROUND_HALF_UP") for day in range(1, 31)]
    assert balances() == {"AR": D("11.90"), "REVENUE_RECURRING": D("-10.00"), "TAX_PAYABLE": D("-1.90")}
    assert sum(trial_balance().values()).quantize(D("0.01")) == 0


def test_scheduled_amount_rounds_exact_halves_up():
    # 0.10 × 1/4 = 0.025 → 0.03; 0.10 × 3/4 = 0.075 → 0.08; the fourth day is the rest.
    period = (date(2026, 11, 1), date(2026, 11, 5))
    assert [scheduled_amount(net=D("0.10"), period_start=period[0], period_end=period[1], through=date(2026, 11, d))
            for d in (1, 2, 3, 4)] == [D("0.03"), D("0.05"), D("0.08"), D("0.10")]
    assert scheduled_amount(net=D("0.10"), period_start=period[0], period_end=period[1], through=date(2026, 10, 31)) == 0
    assert scheduled_amount(net=D("0.10"), period_start=period[0], period_end=period[1], through=date(2027, 1, 1)) == D("0.10")


def test_each_run_posts_one_balanced_entry_per_currency_for_all_lines(account):
    first = monthly_invoice(account, gross="35.70").lines.get()  # net 30.00: 1.00 a day
    second = monthly_invoice(customer_create(portal=False), gross="11.90").lines.get()

    result = revenue_recognize(through=date(2026, 11, 3))

    assert result.recognized == {"EUR": D("4.00")}  # 3.00 + 1.00
    (entry,) = result.entries
    assert (entry.kind, entry.reference) == ("RECOGNITION", "recognition:2026-11-03:EUR:1")
    assert legs(entry) == [("DEFERRED_REVENUE", None, D("4.00")), ("REVENUE_RECURRING", None, D("-4.00"))]
    assert (recognized(first), recognized(second)) == (D("3.00"), D("1.00"))


def test_a_re_run_for_the_same_day_posts_nothing(account):
    monthly_invoice(account, gross="35.70")
    revenue_recognize(through=date(2026, 11, 10))
    rows, entries = RevenueRecognition.objects.count(), JournalEntry.objects.count()

    again = revenue_recognize(through=date(2026, 11, 10))

    assert (again.rows, again.entries, again.recognized) == (0, [], {})
    assert (RevenueRecognition.objects.count(), JournalEntry.objects.count()) == (rows, entries)


def test_a_later_run_the_same_day_recognizes_only_new_lines_under_a_new_reference(account):
    monthly_invoice(account, gross="35.70")
    revenue_recognize(through=date(2026, 11, 1))
    monthly_invoice(customer_create(portal=False), gross="11.90")

    later = revenue_recognize(through=date(2026, 11, 1))

    assert later.recognized == {"EUR": D("0.33")}
    assert later.entries[0].reference == "recognition:2026-11-01:EUR:2"


def test_missed_days_are_caught_up_and_split_at_the_month_end(account):
    line = monthly_invoice(account, gross="35.70", period=(date(2026, 11, 16), date(2026, 12, 16))).lines.get()  # 30 days
    revenue_recognize(through=date(2026, 11, 20))

    revenue_recognize(through=date(2026, 12, 3))  # the job did not run for 13 days

    rows = list(RevenueRecognition.objects.filter(invoice_line=line).values_list("recognized_through", "amount"))
    assert rows == [(date(2026, 11, 20), D("5.00")), (date(2026, 11, 30), D("10.00")), (date(2026, 12, 3), D("3.00"))]


def test_nothing_is_recognized_before_the_period_starts_nor_for_drafts(account):
    monthly_invoice(account, gross="35.70", period=(date(2026, 12, 1), date(2027, 1, 1)), on=date(2026, 11, 25))
    draft = invoice_create_draft(account=account)
    invoice_line_add(invoice=draft, description="draft", unit_price=D("11.90"), product=product("basic", "TERMED"),
                     revenue_ledger="DEFERRED_REVENUE", service_period=NOVEMBER)

    result = revenue_recognize(through=date(2026, 11, 30))

    assert (result.rows, result.entries) == (0, [])
    assert balances()["DEFERRED_REVENUE"] == D("-30.00")


def test_ppv_and_one_time_charges_are_revenue_when_invoiced_and_never_deferred(account):
    with at(date(2026, 11, 5)):
        draft = invoice_create_draft(account=account)
        invoice_line_add(invoice=draft, description="Lord of the Rings", unit_price=D("5.00"), product=product("lotr", "USAGE"))
        invoice_line_add(invoice=draft, description="Installation", unit_price=D("11.90"), product=product("install", "ONE_TIME"))
        invoice_post(invoice=draft)

    result = revenue_recognize(through=date(2026, 11, 30))

    assert result.rows == 0
    assert balances() == {"AR": D("16.90"), "REVENUE_PPV": D("-4.20"), "REVENUE_ONE_TIME": D("-10.00"), "TAX_PAYABLE": D("-2.70")}


def test_the_daily_task_recognizes_through_yesterday(account):
    line = monthly_invoice(account, gross="35.70").lines.get()

    with at(date(2026, 11, 11), hour=0):
        rows = revenue_recognize_task.apply().get()  # run here: the worker path is core Celery

    assert rows == 1
    assert recognized(line) == D("10.00")


def test_the_beat_runs_recognition_every_hour_so_a_missed_night_is_caught_up():
    from django.conf import settings

    entry = settings.CELERY_BEAT_SCHEDULE["recognize-revenue"]
    assert entry["task"] == "billing.tasks.revenue_recognize_task"


# --- bundles -----------------------------------------------------------------------------

@pytest.fixture
def bundle(db):
    bundle_type = ProductType.objects.create(name="Packages", classification="SERVICE", service_type="TERMED", composition="BUNDLE")
    package = Product.objects.create(code="FAMILY", name="Family Pack", product_type=bundle_type)
    BundleComponent.objects.create(bundle=package, component=product("movies", "TERMED"), standalone_price=D("20.00"))
    BundleComponent.objects.create(bundle=package, component=product("sports", "TERMED"), standalone_price=D("10.00"))
    return package


def test_a_bundle_is_recognized_per_component_by_standalone_selling_price(account, bundle):
    line = monthly_invoice(account, gross="23.80", item=bundle).lines.get()  # net 20.00 → 13.33 movies, 6.67 sports

    revenue_recognize(through=date(2026, 11, 1))
    BundleComponent.objects.filter(component__code="sports").update(standalone_price=D("90.00"))  # later price change
    revenue_recognize(through=date(2026, 11, 30))

    movies, sports = Product.objects.get(code="movies"), Product.objects.get(code="sports")
    assert dict(RevenueAllocation.objects.filter(invoice_line=line).values_list("component", "amount")) == {
        movies.pk: D("13.33"), sports.pk: D("6.67")}
    first_day = dict(RevenueRecognition.objects.filter(invoice_line=line, recognized_through=date(2026, 11, 1))
                     .values_list("component", "amount"))
    assert first_day == {movies.pk: D("0.44"), sports.pk: D("0.22")}  # 13.33/30 = 0.444, 6.67/30 = 0.222
    positions = recognition_positions(line=line)
    assert (positions[movies.pk]["recognized"], positions[sports.pk]["recognized"]) == (D("13.33"), D("6.67"))
    assert "DEFERRED_REVENUE" not in balances()


# --- credit notes ------------------------------------------------------------------------

def test_a_mid_period_credit_takes_unrecognized_revenue_and_recognition_stops_recognizing_it(account):
    invoice = monthly_invoice(account, gross="35.70")  # net 30.00, 1.00 a day
    line = invoice.lines.get()
    revenue_recognize(through=date(2026, 11, 10))

    with at(date(2026, 11, 11)):
        note = credit_note_issue(invoice=invoice, reason="Ten days of outage", lines={line: D("11.90")})

    assert legs(note.journal_entry) == sorted([("AR", account.number, D("-11.90")), ("DEFERRED_REVENUE", None, D("10.00")),
                                               ("TAX_PAYABLE", None, D("1.90"))])
    assert recognition_positions(line=line)[line.product_id]["deferred"] == D("10.00")
    revenue_recognize(through=date(2026, 11, 20))
    assert recognized(line) == D("10.00")  # the credited days are not recognized
    revenue_recognize(through=date(2026, 11, 25))
    assert recognized(line) == D("15.00")
    revenue_recognize(through=date(2026, 11, 30))
    assert recognized(line) == D("20.00")
    assert balances() == {"AR": D("23.80"), "REVENUE_RECURRING": D("-20.00"), "TAX_PAYABLE": D("-3.80")}


def test_crediting_more_than_is_deferred_takes_the_rest_from_recognized_revenue(account):
    invoice = monthly_invoice(account, gross="35.70")
    line = invoice.lines.get()
    revenue_recognize(through=date(2026, 11, 20))  # 20.00 recognized, 10.00 deferred

    with at(date(2026, 11, 21)):
        note = credit_note_issue(invoice=invoice, reason="Cancelled: full refund")

    assert legs(note.journal_entry) == sorted([
        ("AR", account.number, D("-35.70")), ("DEFERRED_REVENUE", None, D("10.00")), ("REVENUE_RECURRING", None, D("20.00")),
        ("TAX_PAYABLE", None, D("5.70"))])
    assert Invoice.objects.get(pk=invoice.pk).state == "CANCELLED"
    credited = RevenueRecognition.objects.get(kind="CREDITED")
    assert (credited.amount, credited.revenue_reversed, credited.recognized_through) == (D("10.00"), D("20.00"), date(2026, 11, 21))
    result = revenue_recognize(through=date(2026, 11, 30))
    assert result.recognized == {} and recognized(line) == D("20.00")
    assert balances() == {}
    assert not revenue_recognize(through=date(2026, 12, 31)).rows  # the closing row marked the line done


def test_a_bundle_credit_is_split_across_components_and_each_stays_within_its_share(account, bundle):
    invoice = monthly_invoice(account, gross="23.80", item=bundle)  # 13.33 + 6.67
    line = invoice.lines.get()
    revenue_recognize(through=date(2026, 11, 15))  # 6.67 + 3.34 recognized (half, rounded half-up)

    with at(date(2026, 11, 16)):
        note = credit_note_issue(invoice=invoice, reason="Cancelled mid-month")

    assert legs(note.journal_entry) == sorted([
        ("AR", account.number, D("-23.80")), ("DEFERRED_REVENUE", None, D("9.99")), ("REVENUE_RECURRING", None, D("10.01")),
        ("TAX_PAYABLE", None, D("3.80"))])
    assert all(position["deferred"] == 0 for position in recognition_positions(line=line).values())
    revenue_recognize(through=date(2026, 11, 30))
    assert balances() == {}


def test_a_credit_before_the_period_starts_is_all_deferred_and_recognition_follows_the_reduced_amount(account):
    invoice = monthly_invoice(account, gross="35.70", period=(date(2026, 12, 1), date(2026, 12, 31)), on=date(2026, 11, 25))
    line = invoice.lines.get()
    with at(date(2026, 11, 26)):
        credit_note_issue(invoice=invoice, reason="Goodwill", lines={line: D("5.95")})  # net 5.00

    revenue_recognize(through=date(2026, 12, 5))
    assert recognized(line) == 0
    revenue_recognize(through=date(2026, 12, 30))
    assert recognized(line) == D("25.00")
    assert "DEFERRED_REVENUE" not in balances() and sum(trial_balance().values()).quantize(D("0.01")) == 0


def test_non_deferred_credits_are_unchanged_mirrors_of_the_invoice(account):
    with at(date(2026, 11, 5)):
        draft = invoice_create_draft(account=account)
        invoice_line_add(invoice=draft, description="Lord of the Rings", unit_price=D("5.00"), product=product("lotr", "USAGE"))
        invoice = invoice_post(invoice=draft)
        note = credit_note_issue(invoice=invoice, reason="Could not watch")

    assert legs(note.journal_entry) == sorted([("AR", account.number, D("-5.00")), ("REVENUE_PPV", None, D("4.20")),
                                               ("TAX_PAYABLE", None, D("0.80"))])
    assert not RevenueRecognition.objects.exists()


def test_the_deferred_balance_always_equals_what_is_left_on_the_lines(account, bundle):
    lines = [monthly_invoice(account, gross="35.70").lines.get(),
             monthly_invoice(account, gross="23.80", item=bundle, period=(date(2026, 11, 10), date(2026, 12, 10))).lines.get()]
    revenue_recognize(through=date(2026, 11, 12))
    with at(date(2026, 11, 13)):
        credit_note_issue(invoice=lines[1].invoice, reason="partial", lines={lines[1]: D("3.57")})
    revenue_recognize(through=date(2026, 11, 27))

    left = sum((p["deferred"] for line in lines for p in recognition_positions(line=line).values()), D("0"))
    assert -balances()["DEFERRED_REVENUE"] == left
    assert sum(trial_balance().values()).quantize(D("0.01")) == 0


# --- the waterfall -----------------------------------------------------------------------

@pytest.fixture
def booked(account):
    """November: a €30.00 net monthly charge (1 Nov–1 Dec) and a €4.20 PPV order; December:
    the next month's charge (31 days, €31.00 net) and a mid-month credit of €10.00 net."""
    november = monthly_invoice(account, gross="35.70")
    with at(date(2026, 11, 5)):
        draft = invoice_create_draft(account=account)
        invoice_line_add(invoice=draft, description="Lord of the Rings", unit_price=D("5.00"), product=product("lotr", "USAGE"))
        invoice_post(invoice=draft)
    december = monthly_invoice(account, gross="36.89", period=(date(2026, 12, 1), date(2027, 1, 1)))
    revenue_recognize(through=date(2026, 12, 10))
    with at(date(2026, 12, 11)):
        credit_note_issue(invoice=december, reason="Outage", lines={december.lines.get(): D("11.90")})
    revenue_recognize(through=date(2026, 12, 31))
    return november, december


def test_the_waterfall_shows_revenue_per_month_by_type_and_the_deferred_balance_at_month_end(booked):
    report = revenue_waterfall(currency="EUR", first_month=date(2026, 11, 1), last_month=date(2026, 12, 1))

    november, december = report.months
    assert (november.month, november.recurring, november.ppv, november.one_time, november.total) == (
        date(2026, 11, 1), D("30.00"), D("4.20"), D("0.00"), D("34.20"))
    assert (november.invoiced_deferred, november.deferred_balance) == (D("30.00"), D("0.00"))
    # December: 31.00 invoiced, 10.00 credited from deferred, so 21.00 recognized.
    assert (december.recurring, december.ppv, december.total, december.deferred_balance) == (D("21.00"), D("0.00"), D("21.00"), D("0.00"))
    assert report.matrix == {date(2026, 11, 1): {date(2026, 11, 1): D("34.20")},
                             date(2026, 12, 1): {date(2026, 12, 1): D("21.00")}}


def test_the_waterfall_puts_revenue_in_the_months_it_is_earned(account):
    monthly_invoice(account, gross="35.70", period=(date(2026, 11, 16), date(2026, 12, 16)))
    revenue_recognize(through=date(2026, 12, 31))

    report = revenue_waterfall(currency="EUR", first_month=date(2026, 11, 1), last_month=date(2027, 1, 1))

    assert [(m.month, m.recurring, m.deferred_balance) for m in report.months] == [
        (date(2026, 11, 1), D("15.00"), D("15.00")), (date(2026, 12, 1), D("15.00"), D("0.00")), (date(2027, 1, 1), D("0.00"), D("0.00"))]
    assert report.matrix == {date(2026, 11, 1): {date(2026, 11, 1): D("15.00"), date(2026, 12, 1): D("15.00")}}


def test_finance_sees_the_waterfall_in_the_admin(client, finance_user, booked):
    client.force_login(finance_user)

    response = client.get(reverse("admin:billing_revenuewaterfall_changelist"), {"from": "2026-11", "to": "2026-12"})

    assert response.status_code == 200
    page = response.content.decode()
    assert "Revenue waterfall" in page and "34.20" in page and "21.00" in page


def test_the_waterfall_downloads_as_csv_with_the_same_figures(client, finance_user, booked):
    client.force_login(finance_user)

    response = client.get(reverse("admin:billing_revenuewaterfall_csv"), {"from": "2026-11", "to": "2026-12"})

    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    header = rows.index(["month", "recurring", "ppv", "one_time", "total", "invoiced_deferred", "deferred_balance"])
    assert rows[header + 1] == ["2026-11", "30.00", "4.20", "0.00", "34.20", "30.00", "0.00"]
    assert rows[header + 2] == ["2026-12", "21.00", "0.00", "0.00", "21.00", "31.00", "0.00"]
    matrix = rows.index(["invoiced \\ recognized", "2026-11", "2026-12", "total"])
    assert rows[matrix + 1] == ["2026-11", "34.20", "0.00", "34.20"]
    assert rows[matrix + 2] == ["2026-12", "0.00", "21.00", "21.00"]


def test_a_bad_month_is_refused_with_the_reason(client, finance_user):
    client.force_login(finance_user)

    response = client.get(reverse("admin:billing_revenuewaterfall_changelist"), {"from": "2026-13"})

    assert response.status_code == 200
    assert "Give months as YYYY-MM" in response.content.decode()


def test_agents_and_marketing_cannot_see_the_waterfall(client, agent, marketing_user):
    for user in (agent, marketing_user):
        client.force_login(user)
        assert client.get(reverse("admin:billing_revenuewaterfall_changelist")).status_code == 403
        assert client.get(reverse("admin:billing_revenuewaterfall_csv")).status_code == 403



# --- concurrency (PostgreSQL) --------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_two_workers_recognizing_at_once_recognize_everything_once():
    from tests.billing.test_invoicing import run_in_threads

    assert connection.vendor == "postgresql", "make test runs this on PostgreSQL"
    line = monthly_invoice(customer_create(portal=False), gross="35.70").lines.get()

    def recognize_slowly():
        with transaction.atomic():
            revenue_recognize(through=date(2026, 11, 10))
            time.sleep(0.5)  # still running when the other starts

    assert run_in_threads(recognize_slowly, recognize_slowly) == []
    assert recognized(line) == D("10.00")
    assert JournalEntry.objects.filter(kind="RECOGNITION").count() == 1
    assert balances()["DEFERRED_REVENUE"] == D("-20.00")
