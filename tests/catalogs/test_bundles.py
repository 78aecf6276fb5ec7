"""Bundles: one price for several services, allocated across them in proportion to their
standalone selling prices (IFRS 15), to the cent, always adding up to the bundle price."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from accounts.models import Classification
from catalogs.models import BundleComponent, PricePlanRate, Product, ProductType
from catalogs.pricing import bundle_allocate, bundle_allocation_for, price_plan_rate_for
from catalogs.services import pricing as services
from core.exceptions import ApplicationError

NICOSIA = ZoneInfo("Europe/Nicosia")


def product_make(code: str, *, composition: str = "FLAT") -> Product:
    product_type, _ = ProductType.objects.get_or_create(
        name=f"Termed {composition}", defaults={"classification": "SERVICE", "service_type": "TERMED", "composition": composition})
    return Product.objects.create(code=code, name=code.replace("-", " ").title(), product_type=product_type)


def bundle_make(code: str, components: dict[str, str]) -> Product:
    bundle = product_make(code, composition="BUNDLE")
    for component_code, standalone_price in components.items():
        BundleComponent.objects.create(bundle=bundle, component=product_make(component_code), standalone_price=Decimal(standalone_price))
    return bundle


def by_code(allocation: dict[int, Decimal]) -> dict[str, Decimal]:
    codes = dict(Product.objects.filter(pk__in=allocation).values_list("pk", "code"))
    return {codes[pk]: amount for pk, amount in allocation.items()}


# --- The arithmetic --------------------------------------------------------------------------

def test_the_worked_example_of_the_docs():
    """Family bundle at 20.00: Sports 12.99, Movies 9.99, Kids 4.99 standalone (27.97).
    Exact shares 9.2885…, 7.1433…, 3.5681…; floors 9.28 + 7.14 + 3.56 = 19.98; the two
    leftover cents go to the largest remainders (Sports .85, Kids .81)."""
    allocation = bundle_allocate(bundle_price=Decimal("20.00"), components={1: Decimal("12.99"), 2: Decimal("9.99"), 3: Decimal("4.99")})

    assert allocation == {1: Decimal("9.29"), 2: Decimal("7.14"), 3: Decimal("3.57")}


def test_components_with_no_standalone_price_share_evenly_the_lowest_pks_taking_the_odd_cents():
    allocation = bundle_allocate(bundle_price=Decimal("10.00"), components={7: Decimal("0"), 3: Decimal("0"), 5: Decimal("0")})

    assert allocation == {3: Decimal("3.34"), 5: Decimal("3.33"), 7: Decimal("3.33")}


def test_a_free_component_gets_nothing_when_others_have_a_price():
    allocation = bundle_allocate(bundle_price=Decimal("15.00"), components={1: Decimal("10"), 2: Decimal("0"), 3: Decimal("5")})

    assert allocation == {1: Decimal("10.00"), 2: Decimal("0.00"), 3: Decimal("5.00")}


def test_a_bundle_price_with_four_decimals_is_rounded_half_up_to_the_cent_first():
    allocation = bundle_allocate(bundle_price=Decimal("9.9950"), components={1: Decimal("1"), 2: Decimal("1")})

    assert sum(allocation.values()) == Decimal("10.00")
    assert allocation == {1: Decimal("5.00"), 2: Decimal("5.00")}


def test_equal_remainders_go_to_the_dearer_component_then_the_lower_pk():
    # 0.02 over 1:3 → exact 0.5 and 1.5 cents: equal remainders, the dearer one takes the cent
    assert bundle_allocate(bundle_price=Decimal("0.02"), components={1: Decimal("1"), 2: Decimal("3")}) == {
        1: Decimal("0.00"), 2: Decimal("0.02")}
    # 0.01 over 1:1 → the lower pk takes it
    assert bundle_allocate(bundle_price=Decimal("0.01"), components={8: Decimal("1"), 5: Decimal("1")}) == {
        5: Decimal("0.01"), 8: Decimal("0.00")}


@pytest.mark.parametrize(("bundle_price", "components", "message"), [
    (Decimal("10"), {}, "at least one component"),
    (Decimal("-1"), {1: Decimal("1")}, "cannot be negative"),
    (Decimal("10"), {1: Decimal("-1"), 2: Decimal("3")}, "cannot be negative"),
])
def test_impossible_allocations_are_programming_errors(bundle_price, components, message):
    with pytest.raises(ValueError, match=message):
        bundle_allocate(bundle_price=bundle_price, components=components)


prices = st.decimals(min_value=Decimal("0"), max_value=Decimal("10000"), places=4)
bundles = st.decimals(min_value=Decimal("0"), max_value=Decimal("100000"), places=2)
components = st.dictionaries(st.integers(1, 10_000), prices, min_size=1, max_size=12)


@given(bundle_price=bundles, components=components)
def test_the_parts_always_add_up_exactly_to_the_bundle_price(bundle_price, components):
    allocation = bundle_allocate(bundle_price=bundle_price, components=components)

    assert sum(allocation.values()) == bundle_price
    assert set(allocation) == set(components)
    assert all(part == part.quantize(Decimal("0.01")) for part in allocation.values())


@given(bundle_price=bundles, components=components)
def test_no_part_is_negative_and_parts_are_ordered_like_standalone_prices(bundle_price, components):
    allocation = bundle_allocate(bundle_price=bundle_price, components=components)

    assert all(part >= 0 for part in allocation.values())
    for a in components:
        for b in components:
            if components[a] > components[b]:
                assert allocation[a] >= allocation[b]
            if components[a] == components[b]:
                assert abs(allocation[a] - allocation[b]) <= Decimal("0.01")


@given(bundle_price=bundles, components=components)
def test_each_part_is_within_a_cent_of_its_exact_share(bundle_price, components):
    allocation = bundle_allocate(bundle_price=bundle_price, components=components)
    total = sum(components.values())

    for pk, part in allocation.items():
        exact = bundle_price * components[pk] / total if total else bundle_price / len(components)
        assert abs(part - exact) < Decimal("0.01")


# --- Through the catalog ----------------------------------------------------------------------

@pytest.mark.django_db
def test_a_bundle_is_allocated_from_its_component_rows():
    bundle = bundle_make("family-bundle", {"sports-pack": "12.99", "movies-pack": "9.99", "kids-pack": "4.99"})

    allocation = bundle_allocation_for(bundle=bundle, bundle_price=Decimal("20.00"))

    assert by_code(allocation) == {"sports-pack": Decimal("9.29"), "movies-pack": Decimal("7.14"), "kids-pack": Decimal("3.57")}


@pytest.mark.django_db
def test_a_bundle_priced_in_a_plan_is_allocated_from_the_rate_that_applies():
    bundle = bundle_make("family-bundle", {"sports-pack": "12.99", "movies-pack": "9.99", "kids-pack": "4.99"})
    plan = services.price_plan_create(code="bundles", name="Bundles")
    services.price_plan_rate_set(price_plan=plan, product=bundle, charge_type=PricePlanRate.ChargeType.RECURRING,
                                 amount="20.00", billing_period="MONTH")
    services.price_plan_set_effective(price_plan=plan)

    rate = price_plan_rate_for(product=bundle, classification=Classification.objects.get(code="NORMAL"),
                               at=datetime(2030, 1, 1, tzinfo=NICOSIA))
    allocation = bundle_allocation_for(bundle=bundle, bundle_price=rate.amount)

    assert sum(allocation.values()) == Decimal("20.00")
    assert by_code(allocation)["sports-pack"] == Decimal("9.29")


@pytest.mark.django_db
def test_only_bundles_with_components_are_allocated():
    flat = product_make("sports-pack")
    empty = product_make("empty-bundle", composition="BUNDLE")

    with pytest.raises(ApplicationError) as not_a_bundle:
        bundle_allocation_for(bundle=flat, bundle_price=Decimal("10"))
    with pytest.raises(ApplicationError) as without_components:
        bundle_allocation_for(bundle=empty, bundle_price=Decimal("10"))

    assert (not_a_bundle.value.code, without_components.value.code) == ("not_a_bundle", "bundle_without_components")
