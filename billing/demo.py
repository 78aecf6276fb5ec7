"""Company ZX billing: Cyprus VAT on services and physical goods (19%) and the "Normal" billing term scheme
with the usage billing rule "maximum unbilled UDRs = 1", so every PPV order is invoiced at
once (DESIGN.md §4). Loaded through the services finance uses; safe to run again.

A "Normal" scheme made by an older demo (EFFECTIVE, without the rule) is left as it is:
an effective scheme's terms are not edited in place. Start from a fresh database to get
instant billing there.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from core.choices import Channel

from .models import BillingTermScheme, TaxRate
from .services.schemes import billing_term_scheme_create, billing_term_scheme_set_effective
from .services.taxes import tax_rate_create

SYSTEM = {"channel": Channel.SYSTEM}
CYPRUS_VAT = {"country": "CY", "tax_class": "SERVICE", "name": "VAT", "rate": Decimal("19.00"), "valid_from": date(2014, 1, 13)}
CYPRUS_VAT_GOODS = {**CYPRUS_VAT, "tax_class": "PHYSICAL_GOOD"}


def demo_billing_load() -> dict:
    rate = TaxRate.objects.filter(country="CY", tax_class="SERVICE").order_by("-valid_from").first()
    if rate is None:
        rate = tax_rate_create(**CYPRUS_VAT, **SYSTEM)
    if not TaxRate.objects.filter(country="CY", tax_class="PHYSICAL_GOOD").exists():
        tax_rate_create(**CYPRUS_VAT_GOODS, **SYSTEM)
    scheme = BillingTermScheme.objects.filter(name="Normal").first()
    if scheme is None:
        scheme = billing_term_scheme_create(name="Normal", max_unbilled_udrs=1, **SYSTEM)
    if scheme.state == BillingTermScheme.State.DRAFT:
        scheme = billing_term_scheme_set_effective(scheme=scheme, **SYSTEM)
    return {"tax_rate": rate, "scheme": scheme}
