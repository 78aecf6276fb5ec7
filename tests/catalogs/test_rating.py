"""Rating a PPV usage: which catalog, which rate, why — and that rating never writes.

The Company ZX configuration (DESIGN.md §4) is built with the ORM: this module tests the
rating function, not the catalog services that normally build it.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from accounts.models import Classification
from catalogs.models import (
    DefinitionDefaultRate,
    DefinitionDefaultTier,
    Product,
    ProductType,
    UsageService,
    UsageServiceCatalog,
    UsageServiceCatalogDefinition,
    UsageTier,
)
from catalogs.rating import (
    RateQuote,
    rate_usage,
    tier_for,
    tier_overlaps,
    usage_catalog_for,
    usage_quotes_for,
    usage_service_quote,
    wall_clock,
    window_contains,
    windows_overlap,
)
from core.choices import LifecycleState
from core.exceptions import ApplicationError, ValidationFailed
from core.models import AuditEntry
from provisioning.models import ProvisioningProvider
from tests.factories import customer_create

pytestmark = pytest.mark.django_db

NICOSIA = ZoneInfo("Europe/Nicosia")
EFFECTIVE = LifecycleState.EFFECTIVE


def local(*args: int) -> datetime:
    """An aware datetime on the operator's wall clock (Europe/Nicosia)."""
    return datetime(*args, tzinfo=NICOSIA)


NIGHT_IN_MAY = datetime(2026, 5, 12, 3, 12, tzinfo=NICOSIA)


def hm(text: str) -> time:
    return time.fromisoformat(text)


def usage_service_add(catalog, product, base_rate: str, provisioning_id: str = "", tiers=()) -> UsageService:
    service = UsageService.objects.create(catalog=catalog, product=product, provisioning_id=provisioning_id, base_rate=Decimal(base_rate))
    for start, end, rate in tiers:
        UsageTier.objects.create(usage_service=service, start_time=hm(start), end_time=hm(end), rate=Decimal(rate))
    return service


def catalog_add(zx, name: str, *, state=EFFECTIVE, classifications=(), required=(), **fields) -> UsageServiceCatalog:
    catalog = UsageServiceCatalog.objects.create(name=name, definition=zx.definition, provider=zx.provider, state=state, **fields)
    catalog.classifications.set(Classification.objects.filter(code__in=classifications))
    catalog.required_services.set(required)
    return catalog


def company_zx_create() -> SimpleNamespace:
    """The Company ZX pay-per-view configuration, exactly as the scenario states it."""
    provider = ProvisioningProvider.objects.create(
        name="Nagra Media Platform", endpoint="https://nagra.example/smsservice_1.2?wsdl", encoding="UTF-8"
    )
    usage_type = ProductType.objects.create(
        name="Usage Services", classification="SERVICE", service_type="USAGE", composition="FLAT", used_for_provisioning=True
    )
    termed_type = ProductType.objects.create(
        name="Termed Services", classification="SERVICE", service_type="TERMED", composition="FLAT", used_for_provisioning=True
    )
    ppv_service = Product.objects.create(code="ppv-service", name="PPV Service", product_type=termed_type)
    lotr = Product.objects.create(code="lord-of-the-rings", name="Lord of the Rings", product_type=usage_type)
    limitless = Product.objects.create(code="limitless", name="Limitless", product_type=usage_type)
    serendipity = Product.objects.create(code="serendipity", name="Serendipity", product_type=usage_type)

    definition = UsageServiceCatalogDefinition.objects.create(name="Company ZX usage services", state=EFFECTIVE)
    definition.usage_service_types.set([usage_type])
    definition.providers.set([provider])
    default_rate = DefinitionDefaultRate.objects.create(definition=definition, product_type=usage_type, base_rate=Decimal("10.00"))
    DefinitionDefaultTier.objects.create(default_rate=default_rate, start_time=hm("00:01"), end_time=hm("06:59"), rate=Decimal("5.00"))

    zx = SimpleNamespace(
        provider=provider, usage_type=usage_type, termed_type=termed_type, definition=definition,
        ppv_service=ppv_service, lotr=lotr, limitless=limitless, serendipity=serendipity,
    )
    zx.normal = catalog_add(zx, "Normal subscribers", required=[ppv_service])
    night = [("00:01", "06:59", "5.00")]
    zx.normal_lotr = usage_service_add(zx.normal, lotr, "10.00", "1AQ8", night)
    usage_service_add(zx.normal, limitless, "10.00", "1BQ1", night)
    usage_service_add(zx.normal, serendipity, "3.00", "1BQ4")
    zx.vip = catalog_add(zx, "VIP subscribers", classifications=["VIP"])
    for product, provisioning_id in ((lotr, "1AQ8"), (limitless, "1BQ1"), (serendipity, "1BQ4")):
        usage_service_add(zx.vip, product, "0.00", provisioning_id)
    zx.titles = [lotr, limitless, serendipity]
    return zx


@pytest.fixture(autouse=True)
def _operator_in_nicosia(settings):
    settings.TIME_ZONE = "Europe/Nicosia"


@pytest.fixture
def zx():
    return company_zx_create()


@contextlib.contextmanager
def reads_only():
    """Everything inside only reads: no INSERT/UPDATE/DELETE reaches the database."""
    audit_rows = AuditEntry.objects.count()
    with CaptureQueriesContext(connection) as captured:
        yield captured
    writes = [query["sql"] for query in captured.captured_queries if not query["sql"].lstrip().upper().startswith("SELECT")]
    assert writes == []
    assert AuditEntry.objects.count() == audit_rows


def set_tiers(service: UsageService, *windows: tuple[str, str, str]) -> None:
    service.tiers.all().delete()
    for start, end, rate in windows:
        UsageTier.objects.create(usage_service=service, start_time=hm(start), end_time=hm(end), rate=Decimal(rate))


# --- Company ZX prices ------------------------------------------------------------------

@pytest.mark.parametrize(
    "wall, amount",
    [
        ((0, 0, 0), "10.0000"),
        ((0, 0, 59), "10.0000"),
        ((0, 1, 0), "5.0000"),
        ((3, 12, 0), "5.0000"),
        ((6, 59, 59), "5.0000"),
        ((7, 0, 0), "10.0000"),
        ((14, 5, 0), "10.0000"),
        ((23, 59, 59), "10.0000"),
    ],
)
def test_normal_subscribers_pay_five_euros_between_00_01_and_06_59_inclusive(zx, wall, amount):
    quote = rate_usage(product=zx.lotr, at=local(2026, 5, 12, *wall), classification="NORMAL")

    assert str(quote.amount) == amount
    assert quote.currency == "EUR"
    assert quote.catalog == zx.normal


def test_the_last_microsecond_of_the_window_is_still_the_night_price(zx):
    quote = rate_usage(product=zx.limitless, at=local(2026, 5, 12, 6, 59, 59) + timedelta(microseconds=999_999), classification="NORMAL")

    assert quote.amount == Decimal("5")


def test_a_tier_price_explains_itself(zx):
    quote = rate_usage(product=zx.lotr, at=local(2026, 5, 12, 3, 12, 30), classification="NORMAL")

    assert quote.tier is not None and quote.tier.rate == Decimal("5")
    assert quote.usage_service == zx.normal_lotr
    assert quote.local_time == local(2026, 5, 12, 3, 12, 30)
    assert quote.time_zone == "Europe/Nicosia"
    assert quote.reason == "tier 00:01–06:59 (Europe/Nicosia wall clock 03:12) in catalog 'Normal subscribers'"


def test_a_base_price_explains_itself(zx):
    quote = rate_usage(product=zx.lotr, at=local(2026, 5, 12, 14, 5), classification="NORMAL")

    assert quote.tier is None
    assert quote.reason == "base rate in catalog 'Normal subscribers' (no tier matches 14:05 Europe/Nicosia)"


def test_the_wall_clock_is_read_whatever_zone_the_instant_comes_in(zx):
    # 01:30 UTC in May is 04:30 in Nicosia (EEST, UTC+3): night.
    quote = rate_usage(product=zx.lotr, at=datetime(2026, 5, 12, 1, 30, tzinfo=UTC), classification="NORMAL")

    assert quote.amount == Decimal("5")
    assert quote.local_time.hour == 4


@pytest.mark.parametrize("wall", [(3, 0), (20, 0)], ids=["night", "day"])
def test_serendipity_costs_three_euros_night_and_day(zx, wall):
    quote = rate_usage(product=zx.serendipity, at=local(2026, 5, 12, *wall), classification="NORMAL")

    assert quote.amount == Decimal("3.00")
    assert quote.tier is None
    assert quote.reason == "base rate in catalog 'Normal subscribers' (the service has no tiers)"


@pytest.mark.parametrize("wall", [(3, 0), (20, 0)], ids=["night", "day"])
def test_vip_subscribers_watch_every_title_free(zx, wall):
    for product in zx.titles:
        quote = rate_usage(product=product, at=local(2026, 5, 12, *wall), classification="VIP")

        assert (quote.amount, quote.catalog) == (Decimal("0"), zx.vip)


def test_the_account_gives_the_classification(zx):
    vip_account = customer_create(classification="VIP")
    normal_account = customer_create(classification="NORMAL")

    assert rate_usage(product=zx.lotr, at=local(2026, 5, 12, 20, 0), account=vip_account).amount == Decimal("0")
    assert rate_usage(product=zx.lotr, at=local(2026, 5, 12, 20, 0), account=normal_account).amount == Decimal("10")


def test_an_explicit_classification_wins_over_the_accounts(zx):
    normal_account = customer_create(classification="NORMAL")

    quote = rate_usage(product=zx.lotr, at=local(2026, 5, 12, 20, 0), account=normal_account, classification="VIP")

    assert quote.catalog == zx.vip


def test_a_classification_object_works_like_its_code(zx):
    vip = Classification.objects.get(code="VIP")

    assert rate_usage(product=zx.lotr, at=local(2026, 5, 12, 20, 0), classification=vip).catalog == zx.vip


def test_amounts_keep_four_decimals(zx):
    UsageService.objects.filter(pk=zx.normal_lotr.pk).update(base_rate=Decimal("7.1235"))

    assert str(rate_usage(product=zx.lotr, at=local(2026, 5, 12, 20, 0), classification="NORMAL").amount) == "7.1235"


# --- Windows ----------------------------------------------------------------------------

@pytest.mark.parametrize(
    "wall, tier_applies",
    [
        ((21, 59, 59), False),
        ((22, 0, 0), True),
        ((23, 59, 59), True),
        ((0, 0, 0), True),
        ((5, 59, 59), True),
        ((6, 0, 0), False),
        ((12, 0, 0), False),
    ],
)
def test_a_window_may_cross_midnight(zx, wall, tier_applies):
    set_tiers(zx.normal_lotr, ("22:00", "05:59", "4.00"))

    quote = rate_usage(product=zx.lotr, at=local(2026, 5, 12, *wall), classification="NORMAL")

    assert quote.amount == (Decimal("4") if tier_applies else Decimal("10"))


@pytest.mark.parametrize("wall, tier_applies", [((11, 59, 59), False), ((12, 0, 0), True), ((12, 0, 59), True), ((12, 1, 0), False)])
def test_a_window_whose_start_is_its_end_is_that_one_minute(zx, wall, tier_applies):
    set_tiers(zx.normal_lotr, ("12:00", "12:00", "1.00"))

    quote = rate_usage(product=zx.lotr, at=local(2026, 5, 12, *wall), classification="NORMAL")

    assert quote.amount == (Decimal("1") if tier_applies else Decimal("10"))


def test_several_tiers_each_price_their_own_minutes(zx):
    set_tiers(zx.normal_lotr, ("00:01", "06:59", "5.00"), ("18:00", "21:59", "12.00"))

    prices = {hour: rate_usage(product=zx.lotr, at=local(2026, 5, 12, hour, 30), classification="NORMAL").amount for hour in (3, 12, 19, 22)}

    assert prices == {3: Decimal("5"), 12: Decimal("10"), 19: Decimal("12"), 22: Decimal("10")}


@pytest.mark.parametrize(
    "a, b, overlap",
    [
        (("00:01", "06:59"), ("07:00", "23:59"), False),
        (("00:01", "06:59"), ("06:59", "08:00"), True),  # they share the minute 06:59
        (("22:00", "05:59"), ("06:00", "21:59"), False),  # together: the whole day, once
        (("22:00", "05:59"), ("05:00", "05:00"), True),
        (("22:00", "05:59"), ("23:00", "01:00"), True),  # both cross midnight
        (("22:00", "05:59"), ("12:00", "12:00"), False),
        (("12:00", "12:00"), ("12:00", "12:00"), True),
        (("00:00", "23:59"), ("13:37", "13:37"), True),
        (("23:59", "00:00"), ("00:01", "23:58"), False),
    ],
)
def test_windows_overlap_when_they_share_a_minute(a, b, overlap):
    assert windows_overlap(hm(a[0]), hm(a[1]), hm(b[0]), hm(b[1])) is overlap
    assert windows_overlap(hm(b[0]), hm(b[1]), hm(a[0]), hm(a[1])) is overlap


def test_window_bounds_are_whole_minutes():
    assert window_contains(hm("00:01:30"), hm("06:59:00"), hm("00:01:00"))
    assert window_contains(hm("00:01"), hm("06:59"), hm("06:59:59.999999"))
    assert not window_contains(hm("00:01"), hm("06:59"), hm("00:00:59.999999"))


def test_tier_overlaps_names_every_overlapping_pair():
    night = SimpleNamespace(start_time=hm("00:01"), end_time=hm("06:59"))
    late = SimpleNamespace(start_time=hm("22:00"), end_time=hm("00:30"))
    noon = SimpleNamespace(start_time=hm("12:00"), end_time=hm("12:00"))
    evening = SimpleNamespace(start_time=hm("19:00"), end_time=hm("22:00"))

    assert tier_overlaps([night, late, noon, evening]) == [(night, late), (late, evening)]
    assert tier_overlaps([night, noon]) == []


def test_overlapping_tiers_if_ever_stored_still_rate_deterministically():
    early = SimpleNamespace(start_time=hm("01:00"), end_time=hm("05:00"), pk=9)
    wide = SimpleNamespace(start_time=hm("00:01"), end_time=hm("06:59"), pk=1)

    assert tier_for([early, wide], local(2026, 5, 12, 3, 0)) is wide
    assert tier_for([wide, early], local(2026, 5, 12, 3, 0)) is wide


# --- Daylight saving time (Europe/Nicosia: 2026-03-29 and 2026-10-25) -------------------

def test_on_the_fall_back_day_the_repeated_hour_is_priced_by_its_wall_clock_both_times(zx):
    set_tiers(zx.normal_lotr, ("02:30", "03:30", "4.00"))
    first_0310 = datetime(2026, 10, 25, 0, 10, tzinfo=UTC)  # 03:10 EEST (UTC+3)
    second_0310 = datetime(2026, 10, 25, 1, 10, tzinfo=UTC)  # 03:10 EET (UTC+2), an hour later

    quotes = [rate_usage(product=zx.lotr, at=at, classification="NORMAL") for at in (first_0310, second_0310)]

    assert [(q.local_time.hour, q.local_time.minute, q.local_time.fold) for q in quotes] == [(3, 10, 0), (3, 10, 1)]
    assert [q.amount for q in quotes] == [Decimal("4"), Decimal("4")]


def test_on_the_fall_back_day_the_window_is_not_stretched(zx):
    set_tiers(zx.normal_lotr, ("02:30", "03:30", "4.00"))
    just_after = [datetime(2026, 10, 25, 0, 31, tzinfo=UTC), datetime(2026, 10, 25, 1, 31, tzinfo=UTC)]  # 03:31 twice
    before = datetime(2026, 10, 24, 23, 29, 59, tzinfo=UTC)  # 02:29:59 EEST

    assert [rate_usage(product=zx.lotr, at=at, classification="NORMAL").amount for at in [before, *just_after]] == [Decimal("10")] * 3


def test_on_the_spring_forward_day_the_skipped_hour_never_occurs(zx):
    set_tiers(zx.normal_lotr, ("03:00", "03:59", "4.00"))
    local_midnight, next_local_midnight = datetime(2026, 3, 28, 22, tzinfo=UTC), datetime(2026, 3, 29, 21, tzinfo=UTC)
    minutes = int((next_local_midnight - local_midnight) / timedelta(minutes=1))

    wall_hours = {wall_clock(local_midnight + timedelta(minutes=n)).hour for n in range(minutes)}
    before = rate_usage(product=zx.lotr, at=datetime(2026, 3, 29, 0, 59, 59, tzinfo=UTC), classification="NORMAL")
    after = rate_usage(product=zx.lotr, at=datetime(2026, 3, 29, 1, 0, 0, tzinfo=UTC), classification="NORMAL")

    assert minutes == 23 * 60 and 3 not in wall_hours
    assert f"{before.local_time:%H:%M:%S}" == "02:59:59" and before.amount == Decimal("10")
    assert f"{after.local_time:%H:%M:%S}" == "04:00:00" and after.amount == Decimal("10")


def test_on_the_spring_forward_day_the_night_tier_keeps_its_wall_clock_bounds(zx):
    # 06:59 EEST is 03:59 UTC: the window ends by the wall clock, not an hour later in UTC.
    assert rate_usage(product=zx.lotr, at=datetime(2026, 3, 29, 1, 0, tzinfo=UTC), classification="NORMAL").amount == Decimal("5")
    assert rate_usage(product=zx.lotr, at=datetime(2026, 3, 29, 3, 59, 59, tzinfo=UTC), classification="NORMAL").amount == Decimal("5")
    assert rate_usage(product=zx.lotr, at=datetime(2026, 3, 29, 4, 0, tzinfo=UTC), classification="NORMAL").amount == Decimal("10")


# --- Which catalog applies --------------------------------------------------------------

@pytest.mark.parametrize("state", [LifecycleState.DRAFT, LifecycleState.NOT_EFFECTIVE, LifecycleState.CANCELLED])
def test_only_effective_catalogs_rate(zx, state):
    cheaper = catalog_add(zx, f"{state} promotion", state=state, classifications=["NORMAL"], priority=1)
    usage_service_add(cheaper, zx.lotr, "1.00")

    quote = rate_usage(product=zx.lotr, at=local(2026, 5, 12, 20, 0), classification="NORMAL")

    assert quote.catalog == zx.normal


def test_a_catalog_rates_only_within_its_validity(zx):
    summer = catalog_add(zx, "Summer", classifications=["NORMAL"], valid_from=local(2026, 6, 1), valid_until=local(2026, 9, 1))
    usage_service_add(summer, zx.lotr, "6.00")

    def catalog_at(*wall):
        return rate_usage(product=zx.lotr, at=local(*wall), classification="NORMAL").catalog

    assert catalog_at(2026, 5, 31, 23, 59, 59) == zx.normal
    assert catalog_at(2026, 6, 1, 0, 0, 0) == summer  # valid_from is inclusive
    assert catalog_at(2026, 8, 31, 23, 59, 59) == summer
    assert catalog_at(2026, 9, 1, 0, 0, 0) == zx.normal  # valid_until is exclusive


def test_a_catalog_naming_the_classification_beats_one_without_conditions(zx):
    for_normal = catalog_add(zx, "For normal accounts", classifications=["NORMAL", "VIP"], priority=500)
    usage_service_add(for_normal, zx.lotr, "8.00")

    assert usage_catalog_for(classification="NORMAL", at=local(2026, 5, 12, 20, 0)) == for_normal
    assert usage_catalog_for(classification=None, at=local(2026, 5, 12, 20, 0)) == zx.normal


def test_among_equally_qualified_catalogs_the_lower_priority_wins(zx):
    preferred = catalog_add(zx, "Preferred", priority=50)

    assert usage_catalog_for(classification="NORMAL", at=local(2026, 5, 12, 20, 0)) == preferred


def test_then_the_newest_validity_wins(zx):
    older = catalog_add(zx, "Spring", valid_from=local(2026, 3, 1))
    newer = catalog_add(zx, "May", valid_from=local(2026, 5, 1))

    assert usage_catalog_for(classification="NORMAL", at=local(2026, 5, 12, 20, 0)) == newer
    assert usage_catalog_for(classification="NORMAL", at=local(2026, 4, 12, 20, 0)) == older


def test_then_the_oldest_row_wins(zx):
    twin = catalog_add(zx, "Normal subscribers (copy)", required=[zx.ppv_service])

    assert twin.pk > zx.normal.pk
    assert usage_catalog_for(classification="NORMAL", at=local(2026, 5, 12, 20, 0)) == zx.normal


def test_a_catalog_for_other_classifications_never_applies(zx):
    vip_special = catalog_add(zx, "VIP special", classifications=["VIP"], priority=1)
    usage_service_add(vip_special, zx.lotr, "0.50")

    assert usage_catalog_for(classification="NORMAL", at=local(2026, 5, 12, 20, 0)) == zx.normal


def test_the_required_service_condition(zx):
    at = local(2026, 5, 12, 20, 0)

    with pytest.raises(ApplicationError) as without_ppv:
        rate_usage(product=zx.lotr, at=at, classification="NORMAL", subscription_services=[])
    with_ppv = rate_usage(product=zx.lotr, at=at, classification="NORMAL", subscription_services=[zx.ppv_service])
    preview = rate_usage(product=zx.lotr, at=at, classification="NORMAL")
    vip = rate_usage(product=zx.lotr, at=at, classification="VIP", subscription_services=[])

    assert without_ppv.value.code == "no_catalog"
    assert "with the subscription's services" in without_ppv.value.message
    assert with_ppv.catalog == zx.normal and with_ppv.required_services == [zx.ppv_service]
    assert preview.catalog == zx.normal and preview.required_services == [zx.ppv_service]
    assert vip.catalog == zx.vip and vip.required_services == []


def test_a_catalog_the_subscription_does_not_qualify_for_gives_way_to_the_next(zx):
    sports_fans = catalog_add(zx, "Sports fans", priority=1, required=[Product.objects.create(code="sports", name="Sports", product_type=zx.termed_type)])
    usage_service_add(sports_fans, zx.lotr, "2.00")
    at = local(2026, 5, 12, 20, 0)

    assert rate_usage(product=zx.lotr, at=at, classification="NORMAL", subscription_services=[zx.ppv_service]).catalog == zx.normal
    assert rate_usage(product=zx.lotr, at=at, classification="NORMAL").catalog == sports_fans


# --- Errors (and rating never writes) ---------------------------------------------------

def test_rating_only_reads_and_remembers_the_catalogs_until_they_change(zx):
    with reads_only() as cold:
        rate_usage(product=zx.lotr, at=local(2026, 5, 12, 3, 0), classification="NORMAL")
    with reads_only() as warm:
        quote = rate_usage(product=zx.lotr, at=local(2026, 5, 12, 3, 0), classification="NORMAL")

    assert len(cold.captured_queries) <= 6
    assert len(warm.captured_queries) == 1  # the catalogs' version: everything else is remembered
    assert quote.amount == Decimal("5.0000")


def test_a_changed_catalog_is_seen_by_the_next_rating_however_it_was_written(zx):
    at = local(2026, 5, 12, 3, 0)
    assert rate_usage(product=zx.lotr, at=at, classification="NORMAL").amount == Decimal("5.0000")

    UsageTier.objects.filter(usage_service__catalog=zx.normal, usage_service__product=zx.lotr, rate=Decimal("5")).update(rate=Decimal("4.5"))
    assert rate_usage(product=zx.lotr, at=at, classification="NORMAL").amount == Decimal("4.5000")

    with connection.cursor() as cursor:  # not through the ORM at all
        cursor.execute("UPDATE catalogs_usagetier SET rate = 4.25 WHERE rate = 4.5")
    assert rate_usage(product=zx.lotr, at=at, classification="NORMAL").amount == Decimal("4.2500")


def test_a_rolled_back_catalog_change_is_not_remembered(zx):
    at = local(2026, 5, 12, 3, 0)
    with pytest.raises(RuntimeError), transaction.atomic():
        UsageTier.objects.filter(usage_service__catalog=zx.normal, usage_service__product=zx.lotr).update(rate=Decimal("1"))
        assert rate_usage(product=zx.lotr, at=at, classification="NORMAL").amount == Decimal("1.0000")
        raise RuntimeError("roll back")

    assert rate_usage(product=zx.lotr, at=at, classification="NORMAL").amount == Decimal("5.0000")


def test_no_catalog_is_a_clear_error_and_changes_nothing(zx):
    UsageServiceCatalog.objects.filter(pk=zx.normal.pk).update(state=LifecycleState.NOT_EFFECTIVE)

    with reads_only(), pytest.raises(ApplicationError) as error:
        rate_usage(product=zx.lotr, at=local(2026, 5, 12, 3, 12), classification="NORMAL")

    assert error.value.code == "no_catalog"
    assert error.value.message == (
        "No effective usage service catalog applies to classification NORMAL at 2026-05-12 03:12 Europe/Nicosia."
    )


def test_a_product_missing_from_the_catalog_that_applies_is_not_in_catalog(zx):
    newcomer = Product.objects.create(code="heat", name="Heat", product_type=zx.usage_type)
    elsewhere = catalog_add(zx, "Heat only", priority=900)
    usage_service_add(elsewhere, newcomer, "9.00")

    with reads_only(), pytest.raises(ApplicationError) as error:
        rate_usage(product=newcomer, at=local(2026, 5, 12, 20, 0), classification="VIP")

    assert error.value.code == "not_in_catalog"
    assert "Heat is not in catalog 'VIP subscribers'" in error.value.message


def test_a_product_that_is_not_a_usage_service_cannot_be_rated(zx):
    with reads_only(), pytest.raises(ValidationFailed) as error:
        rate_usage(product=zx.ppv_service, at=local(2026, 5, 12, 20, 0), classification="NORMAL")

    assert error.value.code == "validation_error"
    assert set(error.value.fields) == {"product"}


def test_a_time_without_a_zone_is_refused(zx):
    with reads_only(), pytest.raises(ValidationFailed) as error:
        rate_usage(product=zx.lotr, at=datetime(2026, 5, 12, 3, 0), classification="NORMAL")

    assert set(error.value.fields) == {"at"}


# --- Many products at once (the portal catalog) -----------------------------------------

def test_quotes_for_many_products_agree_with_one_by_one_rating(zx):
    newcomer = Product.objects.create(code="heat", name="Heat", product_type=zx.usage_type)
    products = [*zx.titles, newcomer, zx.ppv_service]
    at = local(2026, 5, 12, 3, 0)

    with reads_only() as captured:
        quotes = usage_quotes_for(products=products, at=at, classification="NORMAL")

    assert set(quotes) == {product.pk for product in zx.titles}
    for product in zx.titles:
        single = rate_usage(product=product, at=at, classification="NORMAL")
        assert (quotes[product.pk].amount, quotes[product.pk].reason) == (single.amount, single.reason)
    assert len(captured.captured_queries) <= 6  # the catalogs' version, then the catalogs (remembered afterwards)
    assert isinstance(quotes[zx.lotr.pk], RateQuote)


def test_quotes_for_an_account_without_a_catalog_are_empty(zx):
    UsageServiceCatalog.objects.filter(pk=zx.normal.pk).update(state=LifecycleState.NOT_EFFECTIVE)

    assert usage_quotes_for(products=zx.titles, at=local(2026, 5, 12, 3, 0), classification="NORMAL") == {}


def test_a_preloaded_catalog_rates_without_queries(zx):
    catalog = usage_catalog_for(classification="NORMAL", at=NIGHT_IN_MAY)
    services = {service.product_id: service for service in catalog.services.prefetch_related("tiers")}

    with CaptureQueriesContext(connection) as captured:
        quotes = [usage_service_quote(catalog=catalog, usage_service=services[zx.lotr.pk], at=at) for at in (NIGHT_IN_MAY, local(2026, 5, 12, 20, 0))]

    assert captured.captured_queries == []
    assert [quote.amount for quote in quotes] == [Decimal("5"), Decimal("10")]
    assert quotes[0].reason == rate_usage(product=zx.lotr, at=NIGHT_IN_MAY, classification="NORMAL").reason
