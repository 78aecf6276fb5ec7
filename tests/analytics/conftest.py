import pytest

from billing.demo import demo_billing_load


@pytest.fixture
def billing_scheme(zx_catalog):
    """Company ZX billing: CY VAT 19% on services and the "Normal" monthly scheme (billing
    day 1, in advance)."""
    return demo_billing_load()["scheme"]
