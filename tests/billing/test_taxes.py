"""Taxes: rates by country, product class and date (never overlapping), and the per-line
arithmetic — rounded half-up to the cent per line, net + tax = gross on every line, an
invoice's totals the sums of its lines, for tax-inclusive and tax-exclusive prices."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from hypothesis import strategies as st

from accounts import services as account_services
from billing.models import Invoice, TaxRate
from billing.selectors import ar_balance, billing_country_for, tax_rate_for
from billing.services.invoicing import invoice_create_draft, invoice_line_add, invoice_post
from billing.services.taxes import line_amounts, tax_rate_create, tax_rate_update
from catalogs.models import Product, ProductType
from core.admin import audit_entries_for
from core.exceptions import ValidationFailed
from tests.factories import customer_create

pytestmark = pytest.mark.django_db
D = Decimal


def product_of(classification: str, code: str = "thing") -> Product:
    kinds = {"SERVICE": {"service_type": "ONE_TIME"}, "PHYSICAL_GOOD": {}, "EXPENSE": {}}
    product_type, _ = ProductType.objects.get_or_create(name=f"Type {classification}",
                                                        defaults={"classification": classification, **kinds[classification]})
    return Product.objects.create(code=f"{code}-{classification.lower()}", name=code, product_type=product_type)


# --- the arithmetic ------------------------------------------------------------------------

@pytest.mark.parametrize("price, quantity, rate, inclusive, expected", [
    ("5.00", "1", "19", True, ("4.20", "0.80", "5.00")),       # the worked example in docs/billing.md
    ("10.00", "1", "19", True, ("8.40", "1.60", "10.00")),
    ("4.20", "1", "19", False, ("4.20", "0.80", "5.00")),
    ("3.00", "1", "19", True, ("2.52", "0.48", "3.00")),
    ("0.00", "1", "19", True, ("0.00", "0.00", "0.00")),
    ("2.5050", "2", "0", False, ("5.01", "0.00", "5.01")),     # unit price × quantity rounds half-up first
    ("0.0250", "1", "20", False, ("0.03", "0.01", "0.04")),    # 0.025 → 0.03; tax 0.006 → 0.01
    ("1.05", "1", "5", True, ("1.00", "0.05", "1.05")),
])
def test_each_line_is_rounded_half_up_to_the_cent(price, quantity, rate, inclusive, expected):
    amounts = line_amounts(unit_price=D(price), quantity=D(quantity), rate=D(rate), prices_include_tax=inclusive)
    assert (amounts.net, amounts.tax, amounts.gross) == tuple(D(value) for value in expected)


prices = st.decimals(min_value=D("0"), max_value=D("9999.9999"), places=4)
quantities = st.decimals(min_value=D("0.0001"), max_value=D("100"), places=4)
rates = st.decimals(min_value=D("0"), max_value=D("30"), places=2)


@given(price=prices, quantity=quantities, rate=rates, inclusive=st.booleans())
def test_net_plus_tax_is_gross_on_every_line(price, quantity, rate, inclusive):
    amounts = line_amounts(unit_price=price, quantity=quantity, rate=rate, prices_include_tax=inclusive)
    assert amounts.net + amounts.tax == amounts.gross
    assert all(value == value.quantize(D("0.01")) and value >= 0 for value in (amounts.net, amounts.tax, amounts.gross))
    exact_tax = amounts.gross * rate / (100 + rate) if inclusive else amounts.net * rate / 100
    assert abs(amounts.tax - exact_tax) <= D("0.005")


@examples(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.tuples(prices, st.integers(1, 5), st.booleans()), min_size=1, max_size=6))
def test_an_invoice_totals_its_lines_and_posts_them(lines, cy_vat):
    account = customer_create(portal=False)
    product = product_of("SERVICE", code=f"svc{account.pk}")
    invoice = invoice_create_draft(account=account)
    for price, quantity, inclusive in lines:
        invoice_line_add(invoice=invoice, description="Charge", unit_price=price, quantity=D(quantity), product=product,
                         prices_include_tax=inclusive)
    invoice.refresh_from_db()
    saved = list(invoice.lines.all())
    assert all(line.net + line.tax == line.gross for line in saved)
    assert (invoice.net_total, invoice.tax_total, invoice.gross_total) == (
        sum(line.net for line in saved), sum(line.tax for line in saved), sum(line.gross for line in saved))
    invoice_post(invoice=invoice)
    assert ar_balance(account=account) == invoice.gross_total


# --- rates ------------------------------------------------------------------------------------

@pytest.fixture
def cy_vat(db):
    return tax_rate_create(country="CY", tax_class="SERVICE", rate=D("19.00"), valid_from=date(2020, 1, 1))


def test_the_rate_is_chosen_by_country_class_and_date(cy_vat):
    old = tax_rate_update(tax_rate=cy_vat, data={"valid_until": date(2025, 12, 31)})
    new = tax_rate_create(country="CY", tax_class="SERVICE", rate=D("20.00"), valid_from=date(2026, 1, 1))
    goods = tax_rate_create(country="CY", tax_class="PHYSICAL_GOOD", rate=D("5.00"), valid_from=date(2020, 1, 1))
    greek = tax_rate_create(country="gr", tax_class="SERVICE", rate=D("24.00"), valid_from=date(2020, 1, 1))
    service, decoder = product_of("SERVICE"), product_of("PHYSICAL_GOOD")

    assert tax_rate_for(country="CY", product=service, on=date(2025, 12, 31)) == old
    assert tax_rate_for(country="CY", product=service, on=date(2026, 1, 1)) == new
    assert tax_rate_for(country="CY", product=decoder, on=date(2026, 6, 1)) == goods
    assert tax_rate_for(country="GR", product=service, on=date(2026, 6, 1)) == greek
    assert tax_rate_for(country="CY", product=service, on=date(2019, 12, 31)) is None
    assert tax_rate_for(country="CY", product=product_of("EXPENSE"), on=date(2026, 6, 1)) is None


@pytest.mark.parametrize("valid_from, valid_until", [
    (date(2019, 1, 1), None), (date(2019, 1, 1), date(2020, 1, 1)), (date(2030, 1, 1), None), (date(2021, 5, 1), date(2021, 5, 1)),
])
def test_an_overlapping_rate_is_refused_and_nothing_is_created(cy_vat, valid_from, valid_until):
    with pytest.raises(ValidationFailed) as raised:
        tax_rate_create(country="CY", tax_class="SERVICE", rate=D("20.00"), valid_from=valid_from, valid_until=valid_until)
    assert raised.value.fields["valid_from"] == [f"It overlaps {cy_vat}; end that rate first."]
    assert TaxRate.objects.count() == 1


def test_rates_that_touch_but_do_not_overlap_are_accepted(cy_vat):
    tax_rate_update(tax_rate=cy_vat, data={"valid_until": date(2025, 12, 31)})
    tax_rate_create(country="CY", tax_class="SERVICE", rate=D("20.00"), valid_from=date(2026, 1, 1))
    tax_rate_create(country="CY", tax_class="SERVICE", rate=D("18.00"), valid_from=date(2015, 1, 1), valid_until=date(2019, 12, 31))
    assert TaxRate.objects.count() == 3


def test_every_problem_with_a_rate_is_reported_at_once():
    with pytest.raises(ValidationFailed) as raised:
        tax_rate_create(country="Cyprus", tax_class="FOOD", rate=D("120"), valid_from=date(2026, 1, 2), valid_until=date(2026, 1, 1))
    assert {"country", "tax_class", "rate", "valid_until"} <= set(raised.value.fields)
    assert not TaxRate.objects.exists()


def test_changing_a_rate_is_audited_and_an_overlap_changes_nothing(cy_vat, finance_user):
    later = tax_rate_create(country="CY", tax_class="SERVICE", rate=D("5"), valid_from=date(2018, 1, 1), valid_until=date(2019, 12, 31))
    tax_rate_update(tax_rate=cy_vat, data={"rate": D("19.50")}, performed_by=finance_user)
    assert audit_entries_for(cy_vat).first().changes == {"rate": ["19.00", "19.50"]}
    with pytest.raises(ValidationFailed):
        tax_rate_update(tax_rate=later, data={"valid_until": date(2020, 6, 30)})
    assert TaxRate.objects.get(pk=later.pk).valid_until == date(2019, 12, 31)


def test_the_customer_is_taxed_where_their_billing_address_is(settings):
    account = customer_create(portal=False)
    assert billing_country_for(account=account) == "CY"
    account_services.address_save(contact=account.contact, address=account.contact.addresses.get(kind="BILLING"),
                                  data={"country": "GR"})
    assert billing_country_for(account=account) == "GR"
    account.contact.addresses.all().delete()
    settings.DEFAULT_COUNTRY = "MT"
    assert billing_country_for(account=account) == "MT"


def test_an_invoice_line_without_a_tax_rate_is_refused(cy_vat):
    account = customer_create(portal=False)
    invoice = invoice_create_draft(account=account)
    with pytest.raises(ValidationFailed) as raised:
        invoice_line_add(invoice=invoice, description="Decoder", unit_price=D("80.00"), product=product_of("PHYSICAL_GOOD"))
    assert raised.value.fields["tax"][0].startswith("No tax rate for Physical good in CY on ")
    assert not invoice.lines.exists()
    assert Invoice.objects.get(pk=invoice.pk).gross_total == 0


def test_many_customers_are_taxed_where_each_one_alone_would_be(settings):
    from billing.selectors import billing_countries_for

    greek, cypriot, without = (customer_create(portal=False) for _ in range(3))
    account_services.address_save(contact=greek.contact, address=greek.contact.addresses.get(kind="BILLING"), data={"country": "GR"})
    without.contact.addresses.all().delete()
    settings.DEFAULT_COUNTRY = "MT"

    accounts = (greek, cypriot, without)
    assert billing_countries_for(contact_ids=[account.contact_id for account in accounts]) == {
        greek.contact_id: "GR", cypriot.contact_id: "CY", without.contact_id: "MT"}
    assert [billing_country_for(account=account) for account in accounts] == ["GR", "CY", "MT"]
