"""Price plans: rates and their rules, the DRAFT → EFFECTIVE → NOT_EFFECTIVE life cycle,
the audit trail, which rate applies to whom, recurring and one-time charges, and the
admin per role.

Products are made with the ORM: these tests are about pricing, not the product services.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.contenttypes.models import ContentType
from django.test import Client

from accounts.models import Classification
from catalogs.models import PricePlan, PricePlanRate, Product, ProductType, Promotion
from catalogs.pricing import (
    ChargeBreakdown,
    months_add,
    one_time_charge,
    price_plan_is_free,
    price_plan_rate_for,
    recurring_charge,
)
from catalogs.services import pricing as services
from core.actions import ActionRejected
from core.choices import Channel, LifecycleState
from core.exceptions import Conflict, ValidationFailed
from core.models import AuditEntry

pytestmark = pytest.mark.django_db

NICOSIA = ZoneInfo("Europe/Nicosia")
NOW = datetime(2025, 3, 1, 10, 0, tzinfo=NICOSIA)
DRAFT, EFFECTIVE, NOT_EFFECTIVE, CANCELLED = (LifecycleState.DRAFT, LifecycleState.EFFECTIVE,
                                              LifecycleState.NOT_EFFECTIVE, LifecycleState.CANCELLED)
RECURRING, ONE_TIME = PricePlanRate.ChargeType.RECURRING, PricePlanRate.ChargeType.ONE_TIME
PLANS = "/admin/catalogs/priceplan/"


@pytest.fixture(autouse=True)
def frozen_now():
    with time_machine.travel(NOW, tick=False):
        yield


def product_make(code: str, *, service_type: str = "TERMED", classification: str = "SERVICE",
                 composition: str = "FLAT", is_active: bool = True) -> Product:
    product_type, _ = ProductType.objects.get_or_create(
        name=f"{classification} {service_type} {composition}",
        defaults={"classification": classification, "service_type": service_type if classification == "SERVICE" else "",
                  "composition": composition},
    )
    return Product.objects.create(code=code, name=code.replace("-", " ").title(), product_type=product_type, is_active=is_active)


@pytest.fixture
def sports(db) -> Product:
    return product_make("sports-pack")


@pytest.fixture
def installation(db) -> Product:
    return product_make("installation", service_type="ONE_TIME")


@pytest.fixture
def decoder(db) -> Product:
    return product_make("thomson-decoder", classification="PHYSICAL_GOOD", service_type="")


@pytest.fixture
def movie(db) -> Product:
    return product_make("ppv-lotr", service_type="USAGE")


@pytest.fixture
def vip() -> Classification:
    return Classification.objects.get(code="VIP")


@pytest.fixture
def normal() -> Classification:
    return Classification.objects.get(code="NORMAL")


def audit_for(obj) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(content_type=ContentType.objects.get_for_model(type(obj)),
                                          object_pk=str(obj.pk)).order_by("pk"))


def plan_make(code: str = "standard", **kwargs) -> PricePlan:
    return services.price_plan_create(code=code, name=code.title(), **kwargs)


def plan_with_rate(product: Product, amount: str = "12.9900", *, code: str = "standard", state: str = DRAFT,
                   free_trial_days: int = 0, **plan_kwargs) -> PricePlan:
    plan = plan_make(code, **plan_kwargs)
    services.price_plan_rate_set(price_plan=plan, product=product, charge_type=RECURRING, amount=amount,
                                 billing_period="MONTH", free_trial_days=free_trial_days)
    if state != DRAFT:
        services.price_plan_set_effective(price_plan=plan)
    if state == NOT_EFFECTIVE:
        services.price_plan_set_not_effective(price_plan=plan)
    plan.refresh_from_db()
    return plan


def rate_of(plan: PricePlan, product: Product, charge_type: str = RECURRING) -> PricePlanRate:
    return PricePlanRate.objects.select_related("product").get(price_plan=plan, product=product, charge_type=charge_type)


# --- Creating and editing plans ------------------------------------------------------------

def test_a_new_plan_is_a_draft_and_its_creation_is_audited(marketing_user, vip):
    plan = services.price_plan_create(code="vip-plans", name="VIP plans", classifications=["VIP"],
                                      valid_from=NOW, performed_by=marketing_user, channel=Channel.CALL_CENTER)

    assert plan.state == DRAFT and plan.currency == "EUR"
    assert list(plan.classifications.all()) == [vip]
    [entry] = audit_for(plan)
    assert entry.action == "created" and entry.performed_by == marketing_user and entry.channel == Channel.CALL_CENTER
    assert entry.changes["code"] == [None, "vip-plans"] and entry.changes["classifications"] == [None, "VIP"]


def test_plan_creation_reports_every_problem_at_once_and_creates_nothing():
    plan_make("taken")

    with pytest.raises(ValidationFailed) as refused:
        services.price_plan_create(code="taken", name="", currency="USD", valid_from=NOW, valid_until=NOW,
                                   classifications=["GOLD"])

    assert set(refused.value.fields) == {"code", "name", "currency", "valid_until", "classifications"}
    assert "USD is not one of the operator's currencies (EUR)." in refused.value.fields["currency"]
    assert refused.value.fields["valid_until"] == ["The validity must end after it starts."]
    assert PricePlan.objects.count() == 1


def test_a_draft_plan_is_updated_and_the_old_and_new_values_audited(marketing_user):
    plan = plan_make()

    services.price_plan_update(price_plan=plan, data={"name": "Standard 2025", "classifications": ["VIP", "NORMAL"]},
                               performed_by=marketing_user)

    plan.refresh_from_db()
    assert plan.name == "Standard 2025"
    entry = audit_for(plan)[-1]
    assert entry.action == "updated"
    assert entry.changes == {"name": ["Standard", "Standard 2025"], "classifications": ["", "NORMAL, VIP"]}


def test_an_effective_plan_cannot_be_edited_in_place_and_the_attempt_is_audited(sports, marketing_user):
    plan = plan_with_rate(sports, state=EFFECTIVE)

    with pytest.raises(Conflict) as refused:
        services.price_plan_update(price_plan=plan, data={"name": "Cheaper"}, performed_by=marketing_user)

    assert "is EFFECTIVE" in refused.value.message and "never edited in place" in refused.value.message
    assert "create a new one with the new terms" in refused.value.message
    plan.refresh_from_db()
    assert plan.name == "Standard"
    entry = audit_for(plan)[-1]
    assert entry.action == "rejected: update" and entry.performed_by == marketing_user
    assert "never edited in place" in entry.reasons[0]


@pytest.mark.parametrize("state", [EFFECTIVE, NOT_EFFECTIVE])
def test_rates_of_a_plan_that_has_been_effective_cannot_change(sports, state):
    plan = plan_with_rate(sports, state=state)

    with pytest.raises(Conflict, match="can be changed only while it is DRAFT"):
        services.price_plan_rate_set(price_plan=plan, product=sports, charge_type=RECURRING, amount="9.99", billing_period="MONTH")
    with pytest.raises(Conflict):
        services.price_plan_rate_remove(rate=rate_of(plan, sports))

    assert rate_of(plan, sports).amount == Decimal("12.9900")
    assert [entry.action for entry in audit_for(plan)][-2:] == ["rejected: rate_set", "rejected: rate_remove"]


def test_unknown_fields_are_refused():
    plan = plan_make()

    with pytest.raises(ValidationFailed) as refused:
        services.price_plan_update(price_plan=plan, data={"state": EFFECTIVE})

    assert refused.value.fields == {"state": ["Not editable."]}


# --- Rates -----------------------------------------------------------------------------------

def test_setting_a_rate_records_the_amount_and_changing_it_records_old_and_new(sports, marketing_user):
    plan = plan_make()

    rate = services.price_plan_rate_set(price_plan=plan, product=sports, charge_type=RECURRING, amount="12.99",
                                        billing_period="MONTH", free_trial_days=14, performed_by=marketing_user)
    services.price_plan_rate_set(price_plan=plan, product=sports, charge_type=RECURRING, amount=Decimal("14.4950"),
                                 billing_period="MONTH", free_trial_days=14, performed_by=marketing_user)

    assert rate_of(plan, sports).pk == rate.pk and rate_of(plan, sports).amount == Decimal("14.4950")
    created, changed = audit_for(plan)[-2:]
    assert created.action == changed.action == "rate_set"
    assert created.changes == {"sports-pack/recurring.amount": [None, "12.9900"],
                               "sports-pack/recurring.billing_period": [None, "MONTH"],
                               "sports-pack/recurring.free_trial_days": [None, 14]}
    assert changed.changes == {"sports-pack/recurring.amount": ["12.9900", "14.4950"]}


def test_setting_the_same_rate_again_changes_and_audits_nothing(sports):
    plan = plan_with_rate(sports)
    entries = len(audit_for(plan))

    services.price_plan_rate_set(price_plan=plan, product=sports, charge_type=RECURRING, amount="12.99", billing_period="MONTH")

    assert len(audit_for(plan)) == entries


def test_one_time_rates_for_one_time_services_and_physical_goods(installation, decoder):
    plan = plan_make()

    services.price_plan_rate_set(price_plan=plan, product=installation, charge_type=ONE_TIME, amount="25")
    services.price_plan_rate_set(price_plan=plan, product=decoder, charge_type=ONE_TIME, amount="89.5")

    assert rate_of(plan, installation, ONE_TIME).amount == Decimal("25.0000")
    assert rate_of(plan, decoder, ONE_TIME).billing_period == ""


def test_usage_services_are_never_priced_in_price_plans(movie):
    plan = plan_make()

    with pytest.raises(ValidationFailed) as refused:
        services.price_plan_rate_set(price_plan=plan, product=movie, charge_type=ONE_TIME, amount="5.00")

    assert refused.value.fields == {"product": ["Usage services are added in usage service catalogs, not price plans."]}
    assert not plan.rates.exists()


@pytest.mark.parametrize(("product_fixture", "charge_type", "billing_period", "free_trial_days", "expected"), [
    ("installation", RECURRING, "MONTH", 0,
     {"charge_type": ["Recurring rates are for termed services; Installation is a one-time product."]}),
    ("decoder", RECURRING, "MONTH", 0,
     {"charge_type": ["Recurring rates are for termed services; Thomson Decoder is a physical good product."]}),
    ("sports", ONE_TIME, "", 0,
     {"charge_type": ["One-time rates are for one-time services and physical goods; Sports Pack is a termed product."]}),
    ("sports", RECURRING, "", 0, {"billing_period": ["A recurring rate needs a billing period."]}),
    ("installation", ONE_TIME, "MONTH", 7, {"billing_period": ["A one-time rate has no billing period."],
                                           "free_trial_days": ["Free trials apply to recurring rates only."]}),
])
def test_each_kind_of_product_takes_only_its_kind_of_rate(request, product_fixture, charge_type, billing_period,
                                                          free_trial_days, expected):
    product = request.getfixturevalue(product_fixture)
    plan = plan_make()

    with pytest.raises(ValidationFailed) as refused:
        services.price_plan_rate_set(price_plan=plan, product=product, charge_type=charge_type, amount="10",
                                     billing_period=billing_period, free_trial_days=free_trial_days)

    assert refused.value.fields == expected
    assert not plan.rates.exists()
    assert audit_for(plan)[-1].action == "rejected: rate_set"


@pytest.mark.parametrize(("amount", "message"), [
    ("-0.01", "An amount cannot be negative."),
    ("1.00001", "Rates keep at most 4 decimal places."),
    ("12,99", "Enter a number."),
    (12.99, "Give the amount as text or a Decimal, not a float."),
    ("100000000", "An amount must be below 100,000,000."),
])
def test_amounts_are_not_negative_and_keep_at_most_four_decimals(sports, amount, message):
    plan = plan_make()

    with pytest.raises(ValidationFailed) as refused:
        services.price_plan_rate_set(price_plan=plan, product=sports, charge_type=RECURRING, amount=amount, billing_period="MONTH")

    assert refused.value.fields == {"amount": [message]}
    assert not plan.rates.exists()


def test_every_problem_with_a_rate_is_reported_at_once(sports):
    plan = plan_make()

    with pytest.raises(ValidationFailed) as refused:
        services.price_plan_rate_set(price_plan=plan, product=sports, charge_type=RECURRING, amount="-5",
                                     billing_period="", free_trial_days=-1)

    assert set(refused.value.fields) == {"amount", "billing_period", "free_trial_days"}
    assert "rejected: rate_set" == audit_for(plan)[-1].action
    assert len(audit_for(plan)[-1].reasons) == 3


def test_trailing_zeros_beyond_four_decimals_are_not_extra_precision(sports):
    plan = plan_make()

    rate = services.price_plan_rate_set(price_plan=plan, product=sports, charge_type=RECURRING, amount="12.990000",
                                        billing_period="MONTH")

    assert rate.amount == Decimal("12.9900") and str(rate_of(plan, sports).amount) == "12.9900"


def test_removing_a_rate_from_a_draft_is_audited_with_its_amount(sports, marketing_user):
    plan = plan_with_rate(sports)

    services.price_plan_rate_remove(rate=rate_of(plan, sports), performed_by=marketing_user)

    assert not plan.rates.exists()
    entry = audit_for(plan)[-1]
    assert entry.action == "rate_removed" and entry.changes["sports-pack/recurring.amount"] == ["12.9900", None]


# --- Life cycle ------------------------------------------------------------------------------

@pytest.mark.parametrize(("start", "service", "end"), [
    (DRAFT, "price_plan_set_effective", EFFECTIVE),
    (NOT_EFFECTIVE, "price_plan_set_effective", EFFECTIVE),
    (EFFECTIVE, "price_plan_set_not_effective", NOT_EFFECTIVE),
    (DRAFT, "price_plan_cancel", CANCELLED),
])
def test_allowed_transitions_change_the_state_and_are_audited(sports, marketing_user, start, service, end):
    plan = plan_with_rate(sports, state=start)

    result = getattr(services, service)(price_plan=plan, performed_by=marketing_user)

    plan.refresh_from_db()
    assert result.state == plan.state == end
    entry = audit_for(plan)[-1]
    assert entry.changes == {"state": [start, end]} and entry.reasons == [] and entry.performed_by == marketing_user


@pytest.mark.parametrize(("start", "service", "allowed_from"), [
    (EFFECTIVE, "price_plan_set_effective", "DRAFT, NOT_EFFECTIVE"),
    (DRAFT, "price_plan_set_not_effective", "EFFECTIVE"),
    (NOT_EFFECTIVE, "price_plan_set_not_effective", "EFFECTIVE"),
    (EFFECTIVE, "price_plan_cancel", "DRAFT"),
    (NOT_EFFECTIVE, "price_plan_cancel", "DRAFT"),
])
def test_transitions_from_the_wrong_state_are_refused_and_the_refusal_audited(sports, marketing_user, start, service, allowed_from):
    plan = plan_with_rate(sports, state=start)

    with pytest.raises(ActionRejected) as refused:
        getattr(services, service)(price_plan=plan, performed_by=marketing_user)

    assert refused.value.reasons == [f"It is {start}; {refused.value.action.lower()} is allowed only from {allowed_from}."]
    plan.refresh_from_db()
    assert plan.state == start
    entry = audit_for(plan)[-1]
    assert entry.action.startswith("rejected: ") and entry.reasons == refused.value.reasons and entry.changes == {}


def test_a_cancelled_plan_stays_cancelled(sports):
    plan = plan_with_rate(sports)
    services.price_plan_cancel(price_plan=plan)

    for service in (services.price_plan_set_effective, services.price_plan_set_not_effective, services.price_plan_cancel):
        with pytest.raises(ActionRejected):
            service(price_plan=plan)

    plan.refresh_from_db()
    assert plan.state == CANCELLED


def test_setting_effective_lists_every_unmet_prerequisite(marketing_user):
    plan = plan_make(valid_from=datetime(2025, 1, 1, tzinfo=NICOSIA), valid_until=datetime(2025, 2, 1, tzinfo=NICOSIA))

    with pytest.raises(ActionRejected) as refused:
        services.price_plan_set_effective(price_plan=plan, performed_by=marketing_user)

    assert refused.value.reasons == ["It has no rates; add at least one.",
                                     "Its validity ended at 2025-02-01 00:00; extend it first."]
    plan.refresh_from_db()
    assert plan.state == DRAFT
    entry = audit_for(plan)[-1]
    assert entry.action == "rejected: set_effective" and entry.reasons == refused.value.reasons


def test_a_plan_with_an_inactive_product_cannot_become_effective(sports, installation):
    plan = plan_with_rate(sports)
    services.price_plan_rate_set(price_plan=plan, product=installation, charge_type=ONE_TIME, amount="20")
    Product.objects.filter(pk__in=[sports.pk, installation.pk]).update(is_active=False)

    with pytest.raises(ActionRejected) as refused:
        services.price_plan_set_effective(price_plan=plan)

    assert refused.value.reasons == ["These products are not active: installation, sports-pack."]
    plan.refresh_from_db()
    assert plan.state == DRAFT


def test_a_plan_whose_validity_ends_in_the_future_may_become_effective(sports):
    plan = plan_with_rate(sports, valid_until=datetime(2025, 3, 1, 10, 1, tzinfo=NICOSIA))

    assert services.price_plan_set_effective(price_plan=plan).state == EFFECTIVE


# --- Freemium --------------------------------------------------------------------------------

def test_a_free_plan_has_only_zero_rates_and_can_be_offered(sports, installation):
    free = plan_with_rate(sports, "0.00", code="free-tier")
    paid = plan_with_rate(sports, "12.99", code="paid")
    services.price_plan_rate_set(price_plan=free, product=installation, charge_type=ONE_TIME, amount="0")

    services.price_plan_set_effective(price_plan=free)

    assert price_plan_is_free(price_plan=free) is True
    assert price_plan_is_free(price_plan=paid) is False
    assert price_plan_is_free(price_plan=plan_make("empty")) is False
    charge = recurring_charge(rate=rate_of(free, sports), period_start=date(2025, 3, 1), period_end=date(2025, 4, 1),
                              service_start=date(2025, 3, 1))
    assert charge == ChargeBreakdown(gross=Decimal("0.00"), trial=Decimal("0.00"), discount=Decimal("0.00"), net=Decimal("0.00"))


# --- Which rate applies ------------------------------------------------------------------------

def test_a_plan_naming_the_classification_beats_an_unconditioned_one_even_if_dearer(sports, vip, normal):
    plan_with_rate(sports, "9.99", code="everyone", state=EFFECTIVE)
    plan_with_rate(sports, "11.99", code="vip", state=EFFECTIVE, classifications=["VIP"])

    assert price_plan_rate_for(product=sports, classification=vip, at=NOW).amount == Decimal("11.9900")
    assert price_plan_rate_for(product=sports, classification=normal, at=NOW).amount == Decimal("9.9900")
    assert price_plan_rate_for(product=sports, classification=None, at=NOW).amount == Decimal("9.9900")


def test_among_equally_specific_plans_the_lowest_price_then_the_oldest_rate_wins(sports, normal):
    plan_with_rate(sports, "12.99", code="a", state=EFFECTIVE)
    cheaper = plan_with_rate(sports, "10.99", code="b", state=EFFECTIVE)
    same_price_later = plan_with_rate(sports, "10.99", code="c", state=EFFECTIVE)

    chosen = price_plan_rate_for(product=sports, classification=normal, at=NOW)

    assert chosen == rate_of(cheaper, sports) and chosen != rate_of(same_price_later, sports)


def test_only_effective_plans_valid_at_the_time_and_for_the_classification_apply(sports, vip, normal):
    plan_with_rate(sports, "1.00", code="draft")
    plan_with_rate(sports, "2.00", code="retired", state=NOT_EFFECTIVE)
    plan_with_rate(sports, "3.00", code="vip-only", state=EFFECTIVE, classifications=["VIP"])
    spring = plan_with_rate(sports, "8.00", code="spring", state=EFFECTIVE,
                            valid_from=datetime(2025, 3, 1, tzinfo=NICOSIA), valid_until=datetime(2025, 6, 1, tzinfo=NICOSIA))

    assert price_plan_rate_for(product=sports, classification=normal, at=NOW) == rate_of(spring, sports)
    assert price_plan_rate_for(product=sports, classification=normal, at=datetime(2025, 6, 1, tzinfo=NICOSIA)) is None
    assert price_plan_rate_for(product=sports, classification=normal,
                               at=datetime(2025, 2, 28, 23, 59, tzinfo=NICOSIA)) is None
    assert price_plan_rate_for(product=sports, classification=normal, at=NOW, charge_type=ONE_TIME) is None
    assert price_plan_rate_for(product=sports, classification=vip, at=NOW).amount == Decimal("3.0000")


def test_the_applicable_one_time_rate(installation, normal):
    plan = plan_make()
    services.price_plan_rate_set(price_plan=plan, product=installation, charge_type=ONE_TIME, amount="25.005")
    services.price_plan_set_effective(price_plan=plan)

    rate = price_plan_rate_for(product=installation, classification=normal, at=NOW, charge_type=ONE_TIME)

    assert one_time_charge(rate=rate) == ChargeBreakdown(Decimal("25.01"), Decimal("0.00"), Decimal("0.00"), Decimal("25.01"))


# --- Recurring charges ----------------------------------------------------------------------------

def monthly_rate(amount: str, free_trial_days: int = 0, period: str = "MONTH") -> PricePlanRate:
    product = Product.objects.filter(code="sports-pack").first() or product_make("sports-pack")
    plan = plan_make(f"p{PricePlan.objects.count()}")
    return services.price_plan_rate_set(price_plan=plan, product=product, charge_type=RECURRING, amount=amount,
                                        billing_period=period, free_trial_days=free_trial_days)


def test_a_full_period_is_charged_the_rate_rounded_half_up_to_the_cent():
    full = {"period_start": date(2025, 4, 1), "period_end": date(2025, 5, 1), "service_start": date(2025, 1, 1)}

    assert recurring_charge(rate=monthly_rate("12.99"), **full).net == Decimal("12.99")
    assert recurring_charge(rate=monthly_rate("10.0050"), **full).gross == Decimal("10.01")
    assert recurring_charge(rate=monthly_rate("10.0049"), **full).gross == Decimal("10.00")


def test_a_partial_period_is_prorated_by_days_of_the_period_starting_that_day():
    rate = monthly_rate("12.99")

    charge = recurring_charge(rate=rate, period_start=date(2025, 3, 10), period_end=date(2025, 4, 1), service_start=date(2025, 3, 10))

    # 22 of the 31 days from 10 March to 10 April: 12.99 × 22 / 31 = 9.2187… → 9.22
    assert charge == ChargeBreakdown(gross=Decimal("9.22"), trial=Decimal("0.00"), discount=Decimal("0.00"), net=Decimal("9.22"))


def test_quarterly_and_yearly_rates_cover_three_and_twelve_months():
    quarterly, yearly = monthly_rate("30.00", period="QUARTER"), monthly_rate("120.00", period="YEAR")

    assert recurring_charge(rate=quarterly, period_start=date(2025, 1, 1), period_end=date(2025, 4, 1),
                            service_start=date(2025, 1, 1)).net == Decimal("30.00")
    # one month of a year that starts 1 Jan 2025: 31 of 365 days
    assert recurring_charge(rate=yearly, period_start=date(2025, 1, 1), period_end=date(2025, 2, 1),
                            service_start=date(2025, 1, 1)).net == Decimal("10.19")


def test_a_free_trial_waives_the_days_within_it():
    rate = monthly_rate("12.99", free_trial_days=14)

    inside = recurring_charge(rate=rate, period_start=date(2025, 3, 1), period_end=date(2025, 3, 15), service_start=date(2025, 3, 1))
    straddling = recurring_charge(rate=rate, period_start=date(2025, 3, 1), period_end=date(2025, 4, 1), service_start=date(2025, 3, 1))
    after = recurring_charge(rate=rate, period_start=date(2025, 4, 1), period_end=date(2025, 5, 1), service_start=date(2025, 3, 1))

    assert inside.net == Decimal("0.00") and inside.trial == inside.gross == Decimal("5.87")
    # 14 of 31 days free: 12.99 × 14 / 31 = 5.866… → 5.87
    assert straddling == ChargeBreakdown(gross=Decimal("12.99"), trial=Decimal("5.87"), discount=Decimal("0.00"), net=Decimal("7.12"))
    assert after.trial == Decimal("0.00") and after.net == Decimal("12.99")


def test_a_promotion_discounts_what_the_trial_leaves_for_its_periods_only(sports):
    rate = monthly_rate("12.99", free_trial_days=14)
    quarter_off = Promotion.objects.create(code="q", name="25% off", kind=Promotion.Kind.PERCENT, value=Decimal("25"), periods=3)

    first = recurring_charge(rate=rate, period_start=date(2025, 3, 10), period_end=date(2025, 4, 1),
                             service_start=date(2025, 3, 10), promotion=quarter_off, period_number=1)
    second = recurring_charge(rate=rate, period_start=date(2025, 4, 1), period_end=date(2025, 5, 1),
                              service_start=date(2025, 3, 10), promotion=quarter_off, period_number=2)
    third = recurring_charge(rate=rate, period_start=date(2025, 5, 1), period_end=date(2025, 6, 1),
                             service_start=date(2025, 3, 10), promotion=quarter_off, period_number=3)
    fourth = recurring_charge(rate=rate, period_start=date(2025, 6, 1), period_end=date(2025, 7, 1),
                              service_start=date(2025, 3, 10), promotion=quarter_off, period_number=4)

    # The worked example of docs/pricing.md.
    assert first == ChargeBreakdown(gross=Decimal("9.22"), trial=Decimal("5.87"), discount=Decimal("0.84"), net=Decimal("2.51"))
    assert second == third == ChargeBreakdown(gross=Decimal("12.99"), trial=Decimal("0.00"), discount=Decimal("3.25"),
                                              net=Decimal("9.74"))
    assert fourth.discount == Decimal("0.00") and fourth.net == Decimal("12.99")


def test_a_promotion_for_other_products_does_not_discount_this_one():
    rate = monthly_rate("12.99")
    other = product_make("movies-pack")
    movies_only = Promotion.objects.create(code="m", name="Movies", kind=Promotion.Kind.AMOUNT, value=Decimal("5"))
    movies_only.products.set([other])

    charge = recurring_charge(rate=rate, period_start=date(2025, 4, 1), period_end=date(2025, 5, 1),
                              service_start=date(2025, 4, 1), promotion=movies_only)

    assert charge.discount == Decimal("0.00") and charge.net == Decimal("12.99")


@pytest.mark.parametrize(("period_start", "period_end", "service_start", "message"), [
    (date(2025, 4, 1), date(2025, 4, 1), date(2025, 4, 1), "must end after it starts"),
    (date(2025, 4, 1), date(2025, 5, 2), date(2025, 4, 1), "at most one month"),
    (date(2025, 4, 1), date(2025, 5, 1), date(2025, 4, 2), "cannot start before the service"),
])
def test_impossible_periods_are_programming_errors(period_start, period_end, service_start, message):
    with pytest.raises(ValueError, match=message):
        recurring_charge(rate=monthly_rate("1"), period_start=period_start, period_end=period_end, service_start=service_start)


def test_one_time_and_recurring_rates_are_not_mixed_up(installation):
    plan = plan_make()
    one_time = services.price_plan_rate_set(price_plan=plan, product=installation, charge_type=ONE_TIME, amount="20")

    with pytest.raises(ValueError, match="use one_time_charge"):
        recurring_charge(rate=one_time, period_start=date(2025, 4, 1), period_end=date(2025, 5, 1), service_start=date(2025, 4, 1))
    with pytest.raises(ValueError, match="use recurring_charge"):
        one_time_charge(rate=monthly_rate("1"))


def test_month_arithmetic_clamps_to_the_end_of_shorter_months():
    assert months_add(date(2025, 1, 31), 1) == date(2025, 2, 28)
    assert months_add(date(2024, 1, 31), 1) == date(2024, 2, 29)
    assert months_add(date(2025, 11, 30), 3) == date(2026, 2, 28)
    assert months_add(date(2025, 3, 10), 12) == date(2026, 3, 10)


# --- Admin --------------------------------------------------------------------------------------

def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


PLAN_FORM = {
    "code": "family", "name": "Family", "currency": "EUR", "prices_include_tax": "on",
    "rates-TOTAL_FORMS": "1", "rates-INITIAL_FORMS": "0", "rates-MIN_NUM_FORMS": "0", "rates-MAX_NUM_FORMS": "1000",
    "rates-0-charge_type": RECURRING, "rates-0-amount": "12.99", "rates-0-billing_period": "MONTH",
    "rates-0-free_trial_days": "7",
}


def test_marketing_creates_a_plan_with_its_rates_through_the_services(marketing_user, sports):
    response = logged_in(marketing_user).post(f"{PLANS}add/", {**PLAN_FORM, "rates-0-product": sports.pk})

    plan = PricePlan.objects.get(code="family")
    assert response.status_code == 302
    assert rate_of(plan, sports).free_trial_days == 7
    assert [entry.action for entry in audit_for(plan)] == ["created", "rate_set"]
    assert all(entry.performed_by == marketing_user for entry in audit_for(plan))


def test_the_admin_does_not_offer_usage_services_for_rates(marketing_user, movie, sports):
    client = logged_in(marketing_user)

    offered = client.get(f"{PLANS}add/").context["inline_admin_formsets"][0].formset.empty_form.fields["product"].queryset
    response = client.post(f"{PLANS}add/", {**PLAN_FORM, "rates-0-product": movie.pk})

    assert list(offered) == [sports]
    assert response.status_code == 200  # the form again, with the error
    assert "Select a valid choice" in str(response.context["inline_admin_formsets"][0].formset.errors)
    assert not PricePlan.objects.exists()


def test_a_service_refusal_in_the_admin_shows_every_reason_and_saves_nothing(marketing_user, installation):
    response = logged_in(marketing_user).post(
        f"{PLANS}add/", {**PLAN_FORM, "rates-0-product": installation.pk, "rates-0-free_trial_days": "0"},
    )

    assert not PricePlan.objects.exists()
    assert response.status_code == 200  # the form again, as typed, with the reasons
    form = response.context["adminform"].form
    assert "charge_type: Recurring rates are for termed services; Installation is a one-time product." in form.non_field_errors()
    assert form["name"].value() == PLAN_FORM["name"]


def test_an_agent_may_look_at_plans_but_not_change_them(agent, sports):
    plan = plan_with_rate(sports)
    client = logged_in(agent)

    assert client.get(f"{PLANS}{plan.pk}/change/").status_code == 200
    assert client.post(f"{PLANS}{plan.pk}/change/", {**PLAN_FORM, "name": "Hacked"}).status_code == 403
    assert client.post(f"{PLANS}{plan.pk}/act/set_effective/").status_code == 403
    assert client.get(f"{PLANS}add/").status_code == 403
    plan.refresh_from_db()
    assert plan.name == "Standard" and plan.state == DRAFT


def test_finance_may_look_at_plans_but_not_change_them(finance_user, sports):
    plan = plan_with_rate(sports)

    client = logged_in(finance_user)

    assert client.get(f"{PLANS}").status_code == 200
    assert client.post(f"{PLANS}{plan.pk}/act/cancel/").status_code == 403
    plan.refresh_from_db()
    assert plan.state == DRAFT


def test_marketing_sets_a_plan_effective_with_the_button(marketing_user, sports):
    plan = plan_with_rate(sports)
    client = logged_in(marketing_user)

    page = client.get(f"{PLANS}{plan.pk}/change/")
    assert [code for code, _ in page.context["lifecycle_buttons"]] == ["set_effective", "cancel"]
    response = client.post(f"{PLANS}{plan.pk}/act/set_effective/", follow=True)

    plan.refresh_from_db()
    assert plan.state == EFFECTIVE
    assert "Set effective: done." in [str(message) for message in response.context["messages"]]
    assert audit_for(plan)[-1].performed_by == marketing_user


def test_an_effective_plan_shows_its_rates_read_only(marketing_user, sports):
    plan = plan_with_rate(sports, state=EFFECTIVE)

    page = logged_in(marketing_user).get(f"{PLANS}{plan.pk}/change/")

    assert page.status_code == 200
    assert "name" in page.context["adminform"].readonly_fields
    [inline] = page.context["inline_admin_formsets"]
    assert not inline.has_add_permission and not inline.has_change_permission and not inline.has_delete_permission


def test_the_bulk_action_reports_every_reason_per_row(marketing_user, sports):
    ready = plan_with_rate(sports, code="ready")
    empty = plan_make("empty")

    response = logged_in(marketing_user).post(
        PLANS, {"action": "set_effective_selected", "_selected_action": [ready.pk, empty.pk]}, follow=True,
    )

    shown = [str(message) for message in response.context["messages"]]
    assert "Ready: set effective done." in shown
    assert "Empty: set effective rejected: It has no rates; add at least one." in shown
    ready.refresh_from_db()
    empty.refresh_from_db()
    assert (ready.state, empty.state) == (EFFECTIVE, DRAFT)


def test_plans_are_cancelled_never_deleted(marketing_user, sports):
    plan = plan_with_rate(sports)

    response = logged_in(marketing_user).post(f"{PLANS}{plan.pk}/delete/", {"post": "yes"})

    assert response.status_code == 403
    assert PricePlan.objects.filter(pk=plan.pk).exists()


def test_the_history_button_shows_the_audit_trail(marketing_user, sports):
    plan = plan_with_rate(sports)

    page = logged_in(marketing_user).get(f"{PLANS}{plan.pk}/history/")

    assert page.status_code == 200
    assert [entry.action for entry in page.context["entries"]] == ["rate_set", "created"]
