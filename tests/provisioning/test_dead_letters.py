"""Dead letters in the admin: staff see a rejected request with the platform's reason;
Finance and Administrators retry or cancel it; agents only look."""

from __future__ import annotations

import pytest

from core.models import AuditEntry
from provisioning.models import ProvisioningRequest
from provisioning.services.sending import provisioning_requests_dispatch

pytestmark = pytest.mark.django_db
DEAD_LETTERS = "/admin/provisioning/provisioningdeadletter/"


@pytest.fixture
def rejected(zx_subscriber, nagra):
    nagra.control(faults={"AddEntitlement": {"code": "Client", "error_code": "INVALID_PRODUCT",
                                             "message": "Product PPV-SERVICE is unknown.", "times": 1}})
    provisioning_requests_dispatch()
    return ProvisioningRequest.objects.get(state="REJECTED")


def test_a_rejected_request_is_listed_with_its_reason(rejected, client, agent):
    client.force_login(agent)  # agents may look (to answer "my channel does not work")

    page = client.get(DEAD_LETTERS).content.decode()
    detail = client.get(f"/admin/provisioning/provisioningrequest/{rejected.pk}/change/").content.decode()

    assert "INVALID_PRODUCT" in page and "Product PPV-SERVICE is unknown." in page
    assert "INVALID_PRODUCT" in detail and str(rejected.request_id) in detail


def test_finance_retries_a_dead_letter_and_it_is_delivered(rejected, client, finance_user, nagra):
    client.force_login(finance_user)

    response = client.post(DEAD_LETTERS, {"action": "retry_selected", "_selected_action": [rejected.pk]})
    provisioning_requests_dispatch()

    rejected.refresh_from_db()
    assert response.status_code == 302 and (rejected.state, rejected.attempts) == ("COMPLETED", 1)
    assert nagra.entitlements(rejected.account.number) == {"PPV-SERVICE": "SUBSCRIPTION"}
    assert AuditEntry.objects.filter(action="retry", object_pk=str(rejected.pk), performed_by=finance_user).exists()


def test_cancelling_asks_for_a_reason_then_drops_the_command(rejected, client, administrator):
    client.force_login(administrator)
    form = {"action": "cancel_selected", "_selected_action": [rejected.pk]}

    confirmation = client.post(DEAD_LETTERS, form)
    assert confirmation.status_code == 200 and "Yes, cancel them" in confirmation.content.decode()
    rejected.refresh_from_db()
    assert rejected.state == "REJECTED"

    client.post(DEAD_LETTERS, {**form, "confirm": "yes", "reason": "Product withdrawn."})

    rejected.refresh_from_db()
    assert rejected.state == "CANCELLED"
    assert AuditEntry.objects.get(action="cancel", object_pk=str(rejected.pk)).reasons == ["Product withdrawn."]


def test_an_agent_cannot_retry(rejected, client, agent):
    client.force_login(agent)

    client.post(DEAD_LETTERS, {"action": "retry_selected", "_selected_action": [rejected.pk]})

    rejected.refresh_from_db()
    assert rejected.state == "REJECTED"


def test_only_a_rejected_request_can_be_retried(zx_subscriber, finance_user):
    from core.exceptions import ApplicationError
    from provisioning.services.sending import provisioning_request_retry

    pending = ProvisioningRequest.objects.first()
    with pytest.raises(ApplicationError, match="Only rejected requests can be retried"):
        provisioning_request_retry(request=pending, performed_by=finance_user)
    pending.refresh_from_db()
    assert (pending.state, pending.attempts) == ("PENDING", 0)
