"""Promotions and coupons: the discount arithmetic (with properties), the promotion's rules
and life cycle, coupon codes, redemption (idempotent, limited, refused with a reason),
the race for the last use of a coupon on real PostgreSQL, and the admin per role."""

from __future__ import annotations

import threading
import time
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test import Client
from hypothesis import given
from hypothesis import strategies as st

from accounts import services as account_services
from catalogs.models import Coupon, CouponRedemption, Product, ProductType, Promotion
from catalogs.pricing import promotion_discount
from catalogs.services import pricing as services
from catalogs.services.pricing import CouponRefused
from core.actions import ActionRejected
from core.choices import Channel, LifecycleState
from core.exceptions import Conflict, ValidationFailed
from core.models import AuditEntry
from tests.factories import customer_create

NICOSIA = ZoneInfo("Europe/Nicosia")
NOW = datetime(2025, 3, 1, 10, 0, tzinfo=NICOSIA)
DRAFT, EFFECTIVE, NOT_EFFECTIVE, CANCELLED = (LifecycleState.DRAFT, LifecycleState.EFFECTIVE,
                                              LifecycleState.NOT_EFFECTIVE, LifecycleState.CANCELLED)
PERCENT, AMOUNT = Promotion.Kind.PERCENT, Promotion.Kind.AMOUNT
PROMOTIONS = "/admin/catalogs/promotion/"


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def product_make(code: str, *, service_type: str = "TERMED", is_active: bool = True) -> Product:
    product_type, _ = ProductType.objects.get_or_create(
        name=f"SERVICE {service_type}", defaults={"classification": "SERVICE", "service_type": service_type})
    return Product.objects.create(code=code, name=code.replace("-", " ").title(), product_type=product_type, is_active=is_active)


def audit_for(obj) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(content_type=ContentType.objects.get_for_model(type(obj)),
                                          object_pk=str(obj.pk)).order_by("pk"))


def promotion_make(code: str = "spring", *, kind: str = PERCENT, value: str = "25", state: str = DRAFT,
                   coupon: str | None = "SPRING25", max_redemptions: int | None = None, **kwargs) -> Promotion:
    promotion = services.promotion_create(code=code, name=code.title(), kind=kind, value=value,
                                          requires_coupon=coupon is not None, **kwargs)
    if coupon is not None:
        services.coupon_create(promotion=promotion, code=coupon, max_redemptions=max_redemptions)
    if state != DRAFT:
        services.promotion_set_effective(promotion=promotion)
    if state == NOT_EFFECTIVE:
        services.promotion_set_not_effective(promotion=promotion)
    promotion.refresh_from_db()
    return promotion


def unsaved(kind: str, value: str, periods: int | None = None) -> Promotion:
    return Promotion(kind=kind, value=Decimal(value), periods=periods)


# --- The discount -------------------------------------------------------------------------------

def test_a_percentage_rounds_half_up_to_the_cent():
    assert promotion_discount(promotion=unsaved(PERCENT, "25"), amount=Decimal("3.35"), period_number=1) == Decimal("0.84")
    assert promotion_discount(promotion=unsaved(PERCENT, "10"), amount=Decimal("0.05"), period_number=1) == Decimal("0.01")
    assert promotion_discount(promotion=unsaved(PERCENT, "10"), amount=Decimal("0.04"), period_number=1) == Decimal("0.00")
    assert promotion_discount(promotion=unsaved(PERCENT, "100"), amount=Decimal("12.99"), period_number=1) == Decimal("12.99")


def test_an_amount_off_never_takes_a_charge_below_zero():
    five_off = unsaved(AMOUNT, "5.00")

    assert promotion_discount(promotion=five_off, amount=Decimal("12.99"), period_number=1) == Decimal("5.00")
    assert promotion_discount(promotion=five_off, amount=Decimal("3.10"), period_number=1) == Decimal("3.10")
    assert promotion_discount(promotion=unsaved(AMOUNT, "1.2350"), amount=Decimal("9"), period_number=1) == Decimal("1.24")


def test_a_promotion_gives_nothing_after_its_periods_and_for_ever_without_a_limit():
    three_months = unsaved(PERCENT, "50", periods=3)

    assert [promotion_discount(promotion=three_months, amount=Decimal("10"), period_number=n) for n in (1, 3, 4)] == [
        Decimal("5.00"), Decimal("5.00"), Decimal("0.00")]
    assert promotion_discount(promotion=unsaved(PERCENT, "50"), amount=Decimal("10"), period_number=120) == Decimal("5.00")
    with pytest.raises(ValueError, match="numbered from 1"):
        promotion_discount(promotion=three_months, amount=Decimal("10"), period_number=0)


cents = st.decimals(min_value=Decimal("0"), max_value=Decimal("100000"), places=2)
rates = st.decimals(min_value=Decimal("0"), max_value=Decimal("100000"), places=4)
percents = st.decimals(min_value=Decimal("0"), max_value=Decimal("100"), places=4)


@given(
    promotion=st.one_of(
        st.builds(lambda v, p: Promotion(kind=PERCENT, value=v, periods=p), percents, st.none() | st.integers(1, 24)),
        st.builds(lambda v, p: Promotion(kind=AMOUNT, value=v, periods=p), rates, st.none() | st.integers(1, 24)),
    ),
    amount=cents,
    period_number=st.integers(1, 36),
)
def test_a_discount_is_whole_cents_between_zero_and_the_amount(promotion, amount, period_number):
    discount = promotion_discount(promotion=promotion, amount=amount, period_number=period_number)

    assert Decimal("0") <= discount <= amount
    assert discount == discount.quantize(Decimal("0.01"))
    if promotion.periods is not None and period_number > promotion.periods:
        assert discount == 0


# --- Promotions ---------------------------------------------------------------------------------

@pytest.mark.django_db
def test_a_new_promotion_is_a_draft_and_audited(marketing_user):
    sports = product_make("sports-pack")

    promotion = services.promotion_create(code="spring", name="Spring", kind=PERCENT, value="25", periods=3,
                                          products=["sports-pack"], requires_coupon=True, performed_by=marketing_user)

    assert promotion.state == DRAFT and list(promotion.products.all()) == [sports]
    [entry] = audit_for(promotion)
    assert entry.action == "created" and entry.performed_by == marketing_user
    assert entry.changes["value"] == [None, "25.0000"] and entry.changes["products"] == [None, "sports-pack"]


@pytest.mark.django_db
def test_promotion_rules_are_reported_at_once_and_nothing_is_created():
    product_make("ppv-lotr", service_type="USAGE")
    promotion_make("taken", coupon=None)

    with pytest.raises(ValidationFailed) as refused:
        services.promotion_create(code="taken", name="Bad", kind=PERCENT, value="150", periods=0, valid_from=NOW,
                                  valid_until=NOW, products=["ppv-lotr", "nothing"])

    assert refused.value.fields == {
        "value": ["A percentage is between 0 and 100."],
        "periods": ["A promotion lasts at least one period; leave it empty for ever."],
        "valid_until": ["The validity must end after it starts."],
        "code": ["Another promotion has the code taken."],
        "products": ["No such product: nothing.",
                     "Promotions discount recurring charges, so they cover termed services only; not: ppv-lotr."],
    }
    assert Promotion.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(("kind", "value", "message"), [
    (AMOUNT, "-1", "An amount cannot be negative."),
    (PERCENT, "-0.5", "An amount cannot be negative."),
    (PERCENT, "100.0001", "A percentage is between 0 and 100."),
])
def test_percent_is_zero_to_a_hundred_and_amount_off_not_negative(kind, value, message):
    with pytest.raises(ValidationFailed) as refused:
        services.promotion_create(code="p", name="P", kind=kind, value=value)

    assert refused.value.fields == {"value": [message]}
    assert not Promotion.objects.exists()


@pytest.mark.django_db
def test_a_hundred_percent_and_an_amount_of_zero_are_allowed():
    assert services.promotion_create(code="free", name="Free", kind=PERCENT, value="100").value == Decimal("100.0000")
    assert services.promotion_create(code="none", name="None", kind=AMOUNT, value="0").value == Decimal("0.0000")


@pytest.mark.django_db
def test_a_draft_promotion_is_updated_and_audited_but_not_once_effective(marketing_user, frozen):
    draft = promotion_make("draft", coupon=None)
    live = promotion_make("live", state=EFFECTIVE)

    services.promotion_update(promotion=draft, data={"value": "30", "periods": 6}, performed_by=marketing_user)
    with pytest.raises(Conflict, match="can be changed only while it is DRAFT"):
        services.promotion_update(promotion=live, data={"value": "90"}, performed_by=marketing_user)

    draft.refresh_from_db()
    live.refresh_from_db()
    assert (draft.value, draft.periods, live.value) == (Decimal("30"), 6, Decimal("25"))
    assert audit_for(draft)[-1].changes == {"value": ["25.0000", "30.0000"], "periods": [None, 6]}
    assert audit_for(live)[-1].action == "rejected: update"


@pytest.mark.django_db
def test_a_promotion_with_coupons_keeps_requiring_one():
    promotion = promotion_make()

    with pytest.raises(ValidationFailed) as refused:
        services.promotion_update(promotion=promotion, data={"requires_coupon": False})

    assert refused.value.fields == {"requires_coupon": ["It has coupons; it must keep requiring one."]}
    promotion.refresh_from_db()
    assert promotion.requires_coupon


@pytest.mark.django_db
@pytest.mark.parametrize(("start", "service", "end"), [
    (DRAFT, "promotion_set_effective", EFFECTIVE),
    (NOT_EFFECTIVE, "promotion_set_effective", EFFECTIVE),
    (EFFECTIVE, "promotion_set_not_effective", NOT_EFFECTIVE),
    (DRAFT, "promotion_cancel", CANCELLED),
])
def test_allowed_promotion_transitions(marketing_user, start, service, end):
    promotion = promotion_make(state=start)

    getattr(services, service)(promotion=promotion, performed_by=marketing_user)

    promotion.refresh_from_db()
    assert promotion.state == end
    assert audit_for(promotion)[-1].changes == {"state": [start, end]}


@pytest.mark.django_db
@pytest.mark.parametrize(("start", "service"), [
    (EFFECTIVE, "promotion_set_effective"),
    (DRAFT, "promotion_set_not_effective"),
    (EFFECTIVE, "promotion_cancel"),
    (CANCELLED, "promotion_set_effective"),
])
def test_promotion_transitions_from_the_wrong_state_are_refused_and_audited(start, service):
    promotion = promotion_make(state=EFFECTIVE if start == EFFECTIVE else DRAFT)
    if start == CANCELLED:
        services.promotion_cancel(promotion=promotion)

    with pytest.raises(ActionRejected) as refused:
        getattr(services, service)(promotion=promotion)

    assert refused.value.reasons[0].startswith(f"It is {start};")
    promotion.refresh_from_db()
    assert promotion.state == start
    assert audit_for(promotion)[-1].reasons == refused.value.reasons


@pytest.mark.django_db
def test_setting_a_promotion_effective_lists_every_unmet_prerequisite(frozen):
    product_make("old-pack", is_active=False)
    promotion = services.promotion_create(code="late", name="Late", kind=AMOUNT, value="2", requires_coupon=True,
                                          products=["old-pack"], valid_until=datetime(2025, 2, 1, tzinfo=NICOSIA))

    with pytest.raises(ActionRejected) as refused:
        services.promotion_set_effective(promotion=promotion)

    assert refused.value.reasons == [
        "Its validity ended at 2025-02-01 00:00; extend it first.",
        "These products are not active: old-pack.",
        "It requires a coupon but has no active coupon; add one.",
    ]
    promotion.refresh_from_db()
    assert promotion.state == DRAFT
    assert audit_for(promotion)[-1].action == "rejected: set_effective"


# --- Coupons --------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_a_coupon_code_is_stored_upper_case_and_its_creation_audited_on_the_promotion(marketing_user):
    promotion = services.promotion_create(code="spring", name="Spring", kind=PERCENT, value="25", requires_coupon=True)

    coupon = services.coupon_create(promotion=promotion, code="  spring-25 ", max_redemptions=100, performed_by=marketing_user)

    assert coupon.code == "SPRING-25" and coupon.max_per_account == 1
    entry = audit_for(promotion)[-1]
    assert entry.action == "coupon_created" and entry.performed_by == marketing_user
    assert entry.changes == {"coupon SPRING-25.max_redemptions": [None, 100], "coupon SPRING-25.max_per_account": [None, 1],
                             "coupon SPRING-25.is_active": [None, True]}


@pytest.mark.django_db
def test_coupon_codes_are_unique_whatever_the_case():
    promotion = promotion_make(coupon="SPRING25")
    Coupon.objects.create(promotion=promotion, code="legacy")  # stored before codes were normalised

    for code in ("spring25", "LEGACY"):
        with pytest.raises(ValidationFailed) as refused:
            services.coupon_create(promotion=promotion, code=code)
        assert refused.value.fields == {"code": [f"The coupon code {code.upper()} is taken."]}
    assert promotion.coupons.count() == 2


@pytest.mark.django_db
def test_coupon_rules_are_reported_at_once():
    promotion = services.promotion_create(code="auto", name="Automatic", kind=PERCENT, value="10")

    with pytest.raises(ValidationFailed) as refused:
        services.coupon_create(promotion=promotion, code="no spaces!", max_redemptions=0, max_per_account=0)

    assert refused.value.fields == {
        "code": ["Use letters, digits, hyphens and underscores, starting with a letter or digit."],
        "max_redemptions": ["At least 1; leave it empty for unlimited."],
        "max_per_account": ["At least 1."],
        "promotion": ["Automatic is granted without a coupon; make it require one first."],
    }
    assert not Coupon.objects.exists()
    assert audit_for(promotion)[-1].action == "rejected: coupon_create"


@pytest.mark.django_db
def test_a_cancelled_promotion_takes_no_coupons():
    promotion = promotion_make()
    services.promotion_cancel(promotion=promotion)

    with pytest.raises(Conflict, match="cancelled"):
        services.coupon_create(promotion=promotion, code="LATE")

    assert promotion.coupons.count() == 1


@pytest.mark.django_db
def test_a_leaked_coupon_is_switched_off_while_the_promotion_runs(marketing_user):
    promotion = promotion_make(state=EFFECTIVE)

    services.coupon_update(coupon=promotion.coupons.get(), data={"is_active": False}, performed_by=marketing_user)

    assert promotion.coupons.get().is_active is False
    assert audit_for(promotion)[-1].changes == {"coupon SPRING25.is_active": [True, False]}


# --- Redeeming ------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_a_customer_redeems_a_coupon_typed_in_any_case(customer, agent, frozen):
    promotion = promotion_make(state=EFFECTIVE)

    redemption = services.coupon_redeem(code=" spring25 ", account=customer, reference="order-1",
                                        performed_by=agent, channel=Channel.PORTAL)

    assert redemption.coupon.promotion == promotion and redemption.account == customer
    entry = audit_for(redemption.coupon)[-1]
    assert entry.action == "redeemed" and entry.channel == Channel.PORTAL and entry.performed_by == agent
    assert entry.changes == {"account": [None, customer.number], "reference": [None, "order-1"]}


@pytest.mark.django_db
def test_a_repeated_redemption_returns_the_first_and_creates_nothing(customer):
    promotion_make(state=EFFECTIVE, max_redemptions=1)
    first = services.coupon_redeem(code="SPRING25", account=customer, reference="order-1")

    repeat = services.coupon_redeem(code="spring25", account=customer, reference="order-1")

    assert repeat == first
    assert CouponRedemption.objects.count() == 1


@pytest.mark.django_db
def test_a_reference_reused_for_another_account_is_refused(customer, other_customer):
    promotion_make(state=EFFECTIVE)
    services.coupon_redeem(code="SPRING25", account=customer, reference="order-1")

    with pytest.raises(Conflict) as refused:
        services.coupon_redeem(code="SPRING25", account=other_customer, reference="order-1")

    assert refused.value.code == "redemption_reference_reused"
    assert CouponRedemption.objects.count() == 1


def _exhaust(promotion, customer, other_customer):
    services.coupon_update(coupon=promotion.coupons.get(), data={"max_redemptions": 1})
    services.coupon_redeem(code="SPRING25", account=other_customer, reference="earlier")


def _use_twice(promotion, customer, other_customer):
    services.coupon_update(coupon=promotion.coupons.get(), data={"max_per_account": 2})
    for reference in ("earlier-1", "earlier-2"):
        services.coupon_redeem(code="SPRING25", account=customer, reference=reference)


REFUSALS = [
    ("coupon_unknown", lambda promotion, customer, other: None, {"code": "WINTER"}),
    ("coupon_inactive", lambda promotion, customer, other: services.coupon_update(
        coupon=promotion.coupons.get(), data={"is_active": False}), {}),
    ("coupon_inactive", lambda promotion, customer, other: services.promotion_set_not_effective(promotion=promotion), {}),
    ("coupon_outside_validity", lambda promotion, customer, other: None, {"at": datetime(2025, 2, 28, 23, 59, tzinfo=NICOSIA)}),
    ("coupon_outside_validity", lambda promotion, customer, other: None, {"at": datetime(2025, 4, 1, tzinfo=NICOSIA)}),
    ("coupon_exhausted", _exhaust, {}),
    ("coupon_account_limit", _use_twice, {}),
    ("account_not_active", lambda promotion, customer, other: account_services.account_suspend(account=customer), {}),
    ("account_not_active", lambda promotion, customer, other: account_services.account_terminate(
        account=customer, reason="Moved abroad"), {}),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("code", "arrange", "overrides"), REFUSALS)
def test_a_refused_redemption_says_why_and_creates_nothing(customer, other_customer, frozen, code, arrange, overrides):
    promotion = promotion_make(state=EFFECTIVE, valid_from=datetime(2025, 3, 1, tzinfo=NICOSIA),
                               valid_until=datetime(2025, 4, 1, tzinfo=NICOSIA))
    arrange(promotion, customer, other_customer)
    before = CouponRedemption.objects.count()

    with pytest.raises(CouponRefused) as refused:
        services.coupon_redeem(**{"code": "SPRING25", "account": customer, "reference": "order-9", **overrides})

    assert refused.value.code == code
    assert CouponRedemption.objects.count() == before
    assert not CouponRedemption.objects.filter(reference="order-9").exists()


@pytest.mark.django_db
def test_the_validity_window_includes_its_start_and_excludes_its_end(customer, other_customer, frozen):
    promotion_make(state=EFFECTIVE, valid_from=datetime(2025, 3, 1, tzinfo=NICOSIA), valid_until=datetime(2025, 4, 1, tzinfo=NICOSIA))

    services.coupon_redeem(code="SPRING25", account=customer, reference="a", at=datetime(2025, 3, 1, tzinfo=NICOSIA))
    with pytest.raises(CouponRefused, match="from 2025-03-01 00:00 until 2025-04-01 00:00"):
        services.coupon_redeem(code="SPRING25", account=other_customer, reference="b", at=datetime(2025, 4, 1, tzinfo=NICOSIA))


@pytest.mark.django_db
def test_a_reference_is_required(customer):
    promotion_make(state=EFFECTIVE)

    with pytest.raises(ValidationFailed):
        services.coupon_redeem(code="SPRING25", account=customer, reference="  ")

    assert not CouponRedemption.objects.exists()


# --- Concurrency (real PostgreSQL transactions) --------------------------------------------------

def _in_thread(target, outcomes: list, *args) -> threading.Thread:
    def run():
        try:
            outcomes.append(target(*args))
        except CouponRefused as error:
            outcomes.append(error.code)
        finally:
            connection.close()  # each thread has its own connection; give it back

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _waiting_on_locks() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()")
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_two_redemptions_racing_for_the_last_use_cannot_both_succeed():
    """A third transaction holds the coupon row; both redemptions must queue behind it
    (they lock the coupon before counting), and once it lets go, exactly one wins."""
    promotion_make(state=EFFECTIVE, max_redemptions=1)
    coupon = Coupon.objects.get()
    first, second = customer_create(portal=False), customer_create(portal=False)
    locked, release = threading.Event(), threading.Event()

    def hold_the_coupon():
        from django.db import transaction

        with transaction.atomic():
            Coupon.objects.select_for_update().get(pk=coupon.pk)
            locked.set()
            release.wait(timeout=30)
        return "held"

    outcomes: list = []
    holder = _in_thread(hold_the_coupon, outcomes)
    assert locked.wait(timeout=10)
    racers = [_in_thread(lambda account, reference: services.coupon_redeem(code="SPRING25", account=account, reference=reference),
                         outcomes, account, f"order-{n}") for n, account in enumerate((first, second))]
    for _ in range(200):
        if _waiting_on_locks() == 2:
            break
        time.sleep(0.025)
    waiting = _waiting_on_locks()
    release.set()
    for thread in (holder, *racers):
        thread.join(timeout=30)

    assert waiting == 2, "both redemptions must wait for the coupon row lock"
    redeemed = [outcome for outcome in outcomes if isinstance(outcome, CouponRedemption)]
    assert len(redeemed) == 1 and outcomes.count("coupon_exhausted") == 1
    assert CouponRedemption.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_many_simultaneous_redemptions_never_exceed_the_limit():
    promotion_make(state=EFFECTIVE, max_redemptions=2)
    accounts = [customer_create(portal=False) for _ in range(6)]
    barrier = threading.Barrier(len(accounts))

    def redeem(account, reference):
        barrier.wait(timeout=10)
        return services.coupon_redeem(code="SPRING25", account=account, reference=reference)

    outcomes: list = []
    threads = [_in_thread(redeem, outcomes, account, f"order-{n}") for n, account in enumerate(accounts)]
    for thread in threads:
        thread.join(timeout=30)

    assert sum(isinstance(outcome, CouponRedemption) for outcome in outcomes) == 2
    assert outcomes.count("coupon_exhausted") == 4
    assert CouponRedemption.objects.count() == 2


# --- Admin ------------------------------------------------------------------------------------------

def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


PROMOTION_FORM = {
    "code": "spring", "name": "Spring", "kind": PERCENT, "value": "25", "periods": "3", "requires_coupon": "on",
    "coupons-TOTAL_FORMS": "1", "coupons-INITIAL_FORMS": "0", "coupons-MIN_NUM_FORMS": "0", "coupons-MAX_NUM_FORMS": "1000",
    "coupons-0-code": "spring25", "coupons-0-max_redemptions": "100", "coupons-0-max_per_account": "1",
    "coupons-0-is_active": "on",
}


@pytest.mark.django_db
def test_marketing_creates_a_promotion_with_a_coupon(marketing_user):
    response = logged_in(marketing_user).post(f"{PROMOTIONS}add/", PROMOTION_FORM)

    promotion = Promotion.objects.get()
    assert response.status_code == 302
    assert promotion.coupons.get().code == "SPRING25"
    assert [entry.action for entry in audit_for(promotion)] == ["created", "coupon_created"]


@pytest.mark.django_db
def test_an_agent_may_not_change_promotions(agent):
    promotion = promotion_make()
    client = logged_in(agent)

    assert client.get(f"{PROMOTIONS}{promotion.pk}/change/").status_code == 200
    assert client.post(f"{PROMOTIONS}{promotion.pk}/change/", {**PROMOTION_FORM, "value": "90"}).status_code == 403
    assert client.post(f"{PROMOTIONS}{promotion.pk}/act/set_effective/").status_code == 403
    assert client.post(f"{PROMOTIONS}add/", PROMOTION_FORM).status_code == 403
    promotion.refresh_from_db()
    assert promotion.value == Decimal("25") and promotion.state == DRAFT


@pytest.mark.django_db
def test_the_promotion_list_counts_redemptions(finance_user, customer, other_customer):
    promotion_make(state=EFFECTIVE)
    for n, account in enumerate((customer, other_customer)):
        services.coupon_redeem(code="SPRING25", account=account, reference=f"order-{n}")

    page = logged_in(finance_user).get(PROMOTIONS)

    assert page.status_code == 200
    assert [row.redemptions_total for row in page.context["cl"].result_list] == [2]


@pytest.mark.django_db
def test_redemptions_are_read_only_even_for_marketing(marketing_user, customer):
    promotion_make(state=EFFECTIVE)
    redemption = services.coupon_redeem(code="SPRING25", account=customer, reference="order-1")
    client = logged_in(marketing_user)

    assert client.get("/admin/catalogs/couponredemption/").status_code == 200
    assert client.get("/admin/catalogs/couponredemption/add/").status_code == 403
    assert client.post(f"/admin/catalogs/couponredemption/{redemption.pk}/change/", {"reference": "x"}).status_code == 403
    assert client.post(f"/admin/catalogs/couponredemption/{redemption.pk}/delete/", {"post": "yes"}).status_code == 403
    assert CouponRedemption.objects.get().reference == "order-1"
