"""The Company ZX acceptance: a PPV order from each channel ends with the movie entitled on
the platform under its provisioning ID."""

from __future__ import annotations

import pytest
import time_machine

from core.choices import Channel
from provisioning.models import ProvisioningRequest
from provisioning.services.sending import provisioning_requests_dispatch
from tests.billing.test_instant_billing import NIGHT, order_from

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("channel", [Channel.CALL_CENTER, Channel.PORTAL, Channel.DEVICE])
@pytest.mark.parametrize("code, provisioning_id", [("LOTR", "1AQ8"), ("SERENDIPITY", "1BQ4")])
def test_a_ppv_order_from_each_channel_entitles_the_movie_on_nagra(channel, code, provisioning_id, zx_subscriber, nagra, movie,
                                                                   agent):
    with time_machine.travel(NIGHT, tick=False):
        order_from(channel, zx_subscriber, movie(code), agent)
    provisioning_requests_dispatch()

    purchase = ProvisioningRequest.objects.get(kind="PURCHASE_PPV")
    assert (purchase.state, purchase.parameters["provisioning_id"]) == ("COMPLETED", provisioning_id)
    assert nagra.entitlements(zx_subscriber.account.number)[provisioning_id] == "PPV"
    applied = next(entry for entry in nagra.applied() if entry["requestId"] == str(purchase.request_id))
    assert applied["operation"] == "PurchasePpvEvent" and applied["args"]["eventId"] == code
