"""The Company ZX provider (DESIGN.md §4): "Nagra Media Platform", protocol Nagra Media
Live, UTF-8, distributor "Nagra Media Live Main", physical goods Thomson decoders.
Idempotent. Commands go to ``NAGRA_ENDPOINT`` (the local simulator by default), not to the
endpoint shown on the provider."""

from __future__ import annotations

from .models import ProvisioningDistributor, ProvisioningProvider

DISTRIBUTOR = "Nagra Media Live Main"


def demo_provider_complete(*, provider: ProvisioningProvider, physical_goods) -> ProvisioningProvider:
    ProvisioningDistributor.objects.get_or_create(provider=provider, name=DISTRIBUTOR, defaults={"code": "NML-MAIN"})
    provider.physical_goods.add(*physical_goods)
    return provider
