import pytest

from billing.demo import demo_billing_load


@pytest.fixture
def billing_scheme(zx_catalog):
    """Company ZX billing: CY VAT 19% on services and the "Normal" scheme billing every
    order at once (replaces the shared world's scheme without usage rules)."""
    return demo_billing_load()["scheme"]
