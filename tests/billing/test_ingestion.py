"""UDR ingestion from source systems: each record validated on its own, replays ignored
(never charged twice), invalid records kept REJECTED with their reasons, through the
service, the staff API and the management command; a REJECTED record reopened by a
corrected resend."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from rest_framework.test import APIClient

from billing.models import UsageDetailRecord
from billing.services.ingestion import udr_ingest
from billing.services.rating_runs import udr_rating_claim_and_rate
from core.models import AuditEntry
from tests.conftest import portal_client_for
from tests.factories import StaffUserFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/usage-records/batch/"


def record(held_by, external_id="N-1", **changes) -> dict:
    """A Company ZX night order of LOTR by ``held_by``'s account, as a source system sends it."""
    return {"external_id": external_id, "account": held_by.account.number, "product": "LOTR",
            "usage_at": "2026-11-20T02:30:00+02:00", "subscription": held_by.number, "title": "LOTR", **changes}


@pytest.fixture
def ingester(db):
    user = StaffUserFactory(username="nagra-feed")
    user.user_permissions.add(Permission.objects.get(codename="add_usagedetailrecord", content_type__app_label="billing"))
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_valid_records_are_stored_pending(subscriber):
    result = udr_ingest(source="NAGRA", records=[record(subscriber, "N-1"), record(subscriber, "N-2", channel="DEVICE")])

    assert (result.accepted, result.duplicates, result.rejected) == (2, 0, [])
    stored = UsageDetailRecord.objects.filter(source="NAGRA").order_by("external_id")
    assert [(udr.external_id, udr.state, udr.account, udr.subscription, udr.title.code, udr.channel, udr.amount) for udr in stored] == [
        ("N-1", "PENDING", subscriber.account, subscriber, "LOTR", "SYSTEM", None),
        ("N-2", "PENDING", subscriber.account, subscriber, "LOTR", "DEVICE", None),
    ]


def test_each_invalid_record_gets_all_its_reasons_and_the_rest_is_accepted(subscriber):
    batch = [
        record(subscriber, "N-1"),
        record(subscriber, "N-2", usage_at="2026-11-20T02:30:00", title="NOPE", channel="FAX"),
        {"external_id": "", "account": "A-404", "product": "NOPE"},
        record(subscriber, "N-4", product="PPV-SERVICE"),
        "not a record",
    ]

    result = udr_ingest(source="NAGRA", records=batch)

    assert result.accepted == 1
    reasons = dict(result.rejected)
    assert sorted(reasons) == [1, 2, 3, 4]
    assert reasons[1] == ["usage_at: '2026-11-20T02:30:00' has no time zone; give an offset such as +02:00 or Z.",
                          "title: no title 'NOPE'.", "channel: 'FAX' is not one of CALL_CENTER, PORTAL, DEVICE, SYSTEM."]
    assert reasons[2] == ["external_id: required.", "account: no account 'A-404'.", "product: no product 'NOPE'.",
                          "usage_at: required (an ISO 8601 date and time with a time zone)."]
    assert reasons[3] == ["product: PPV-SERVICE is not a usage (pay-per-view) service."]
    assert reasons[4] == ["The record must be an object."]
    # Records naming a known account and product are kept, REJECTED, never priced; the others are only reported.
    kept = {udr.external_id: udr for udr in UsageDetailRecord.objects.filter(source="NAGRA", state="REJECTED")}
    assert sorted(kept) == ["N-2", "N-4"]
    assert kept["N-2"].rejection_reason.startswith("usage_at: '2026-11-20T02:30:00' has no time zone")
    assert kept["N-2"].rejection_reason.endswith("Stored with the time it was received.")
    assert (kept["N-4"].amount, kept["N-4"].rejection_reason) == (None, "product: PPV-SERVICE is not a usage (pay-per-view) service.")
    assert UsageDetailRecord.objects.filter(source="NAGRA").count() == 3


def test_a_subscription_of_another_account_is_refused(subscriber, vip_subscriber):
    result = udr_ingest(source="NAGRA", records=[record(subscriber, subscription=vip_subscriber.number)])

    assert result.rejected == [(0, [f"subscription: {vip_subscriber.number} does not belong to account {subscriber.account.number}."])]


def test_a_replayed_batch_is_ignored_and_never_charged_twice(subscriber):
    batch = [record(subscriber, "N-1"), record(subscriber, "N-2", usage_at="2026-11-20T21:00:00+02:00")]
    first = udr_ingest(source="NAGRA", records=batch)
    udr_rating_claim_and_rate()
    invoiced = list(UsageDetailRecord.objects.filter(source="NAGRA").values_list("state", "amount", "invoice_line__invoice"))

    replay = udr_ingest(source="NAGRA", records=batch + [record(subscriber, "N-1")])
    rated_again = udr_rating_claim_and_rate()

    assert (first.accepted, replay.accepted, replay.duplicates, replay.rejected) == (2, 0, 3, [])
    assert rated_again == 0
    assert list(UsageDetailRecord.objects.filter(source="NAGRA").values_list("state", "amount", "invoice_line__invoice")) == invoiced
    assert [state for state, _amount, invoice in invoiced] == ["BILLED", "BILLED"]
    # The same external id from another source is another record.
    assert udr_ingest(source="PORTAL-LOG", records=[record(subscriber, "N-1")]).accepted == 1


def test_a_record_repeated_inside_one_batch_is_stored_once(subscriber):
    result = udr_ingest(source="NAGRA", records=[record(subscriber, "N-1"), record(subscriber, "N-1")])

    assert (result.accepted, result.duplicates) == (1, 1)
    assert UsageDetailRecord.objects.filter(source="NAGRA").count() == 1


def test_staff_api_ingests_a_batch(ingester, subscriber):
    response = ingester.post(URL, {"source": "NAGRA", "records": [record(subscriber, "N-1"), record(subscriber, "N-2", product="NOPE")]},
                             format="json")

    assert response.status_code == 200, response.json()
    assert response.json() == {"accepted": 1, "reopened": 0, "duplicates": 0, "rejected": [{"index": 1, "reasons": ["product: no product 'NOPE'."]}]}
    assert UsageDetailRecord.objects.filter(source="NAGRA", state="PENDING").count() == 1


def test_api_is_for_staff_with_the_permission_only(subscriber, agent):
    body = {"source": "NAGRA", "records": [record(subscriber)]}
    customer = portal_client_for(subscriber.account)
    staff_without_permission = APIClient()
    staff_without_permission.force_authenticate(agent)

    assert APIClient().post(URL, body, format="json").status_code == 401
    assert customer.post(URL, body, format="json").status_code == 403
    assert staff_without_permission.post(URL, body, format="json").status_code == 403
    assert not UsageDetailRecord.objects.filter(source="NAGRA").exists()


def test_api_refuses_a_malformed_batch(ingester):
    response = ingester.post(URL, {"records": "nope"}, format="json")

    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"source", "records"}


def test_management_command_ingests_a_csv_file(tmp_path, subscriber):
    path = tmp_path / "nagra.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["external_id", "account", "product", "usage_at", "subscription", "title"])
        writer.writeheader()
        writer.writerow(record(subscriber, "N-1"))
        writer.writerow(record(subscriber, "N-2", usage_at="yesterday"))
    out, err = io.StringIO(), io.StringIO()

    call_command("udr_ingest", "--source", "NAGRA", str(path), stdout=out, stderr=err)
    call_command("udr_ingest", "--source", "NAGRA", str(path), stdout=out, stderr=io.StringIO())

    assert out.getvalue().splitlines() == ["2 records: 1 accepted (0 reopened), 0 duplicates, 1 rejected.",
                                             "2 records: 0 accepted (0 reopened), 2 duplicates, 0 rejected."]
    assert err.getvalue() == "record 2: usage_at: 'yesterday' is not an ISO 8601 date and time.\n"
    assert sorted(UsageDetailRecord.objects.filter(source="NAGRA").values_list("external_id", "state")) == [("N-1", "PENDING"), ("N-2", "REJECTED")]


def test_management_command_reads_json_lines(tmp_path, subscriber):
    path = tmp_path / "nagra.jsonl"
    path.write_text("\n".join(json.dumps(record(subscriber, f"N-{n}")) for n in range(3)) + "\n")
    out = io.StringIO()

    call_command("udr_ingest", "--source", "NAGRA", str(path), stdout=out)

    assert out.getvalue() == "3 records: 3 accepted (0 reopened), 0 duplicates, 0 rejected.\n"


# --- reopening a REJECTED record by a corrected resend ------------------------------------

def test_a_corrected_resend_reopens_a_rejected_record_which_is_then_rated_and_audited(billing_scheme, subscriber):
    udr_ingest(source="NAGRA", records=[record(subscriber, "N-1", usage_at="2026-11-20T02:30:00")])  # no time zone
    stored = UsageDetailRecord.objects.get(source="NAGRA", external_id="N-1")
    assert stored.state == "REJECTED"

    resend = udr_ingest(source="NAGRA", records=[record(subscriber, "N-1", usage_at="2026-11-20T02:30:00+02:00")])

    assert (resend.accepted, resend.reopened, resend.duplicates, resend.rejected) == (1, 1, 0, [])
    stored.refresh_from_db()
    assert (stored.pk, stored.state, stored.rejection_reason, stored.usage_at.isoformat()) == (
        stored.pk, "PENDING", "", "2026-11-20T00:30:00+00:00")
    audit = AuditEntry.objects.get(object_pk=str(stored.pk), action="reopened by a corrected resend")
    assert audit.changes["state"] == ["REJECTED", "PENDING"] and "usage_at" in audit.changes
    assert audit.reasons[0].startswith("usage_at: '2026-11-20T02:30:00' has no time zone")

    udr_rating_claim_and_rate()

    stored.refresh_from_db()
    assert (stored.state, stored.amount) == ("BILLED", Decimal("5.0000"))  # the night price, invoiced at once


def test_a_rating_rejection_is_reopened_by_a_resend_with_changed_content(zx_catalog, subscriber, vip_subscriber):
    udr_ingest(source="NAGRA", records=[record(subscriber, "N-1", product="PPV-SERVICE")])  # refused on arrival
    udr_ingest(source="NAGRA", records=[record(subscriber, "N-2", subscription="", account=vip_subscriber.account.number)])
    UsageDetailRecord.objects.filter(external_id="N-2").update(state="REJECTED", rejection_reason="No usage catalog applies.")

    resend = udr_ingest(source="NAGRA", records=[record(subscriber, "N-1"), record(subscriber, "N-2")])

    assert (resend.accepted, resend.reopened, resend.duplicates) == (2, 2, 0)
    n2 = UsageDetailRecord.objects.get(external_id="N-2")
    assert (n2.state, n2.account, n2.subscription) == ("PENDING", subscriber.account, subscriber)


def test_a_resend_of_an_accepted_or_identically_rejected_record_stays_ignored(zx_catalog, subscriber):
    udr_ingest(source="NAGRA", records=[record(subscriber, "N-1"), record(subscriber, "N-2")])
    UsageDetailRecord.objects.filter(external_id="N-2").update(state="REJECTED", rejection_reason="No usage catalog applies.")
    before = list(UsageDetailRecord.objects.filter(source="NAGRA").order_by("pk").values())

    replay = udr_ingest(source="NAGRA", records=[
        record(subscriber, "N-1", usage_at="2026-11-20T21:00:00+02:00"),  # changed, but N-1 was accepted
        record(subscriber, "N-2"),                                        # rejected by rating, sent again unchanged
    ])

    assert (replay.accepted, replay.reopened, replay.duplicates, replay.rejected) == (0, 0, 2, [])
    assert list(UsageDetailRecord.objects.filter(source="NAGRA").order_by("pk").values()) == before
    assert not AuditEntry.objects.filter(action="reopened by a corrected resend").exists()


def test_a_resend_that_is_still_invalid_leaves_the_rejected_record_as_it_was(zx_catalog, subscriber):
    udr_ingest(source="NAGRA", records=[record(subscriber, "N-1", title="NOPE")])
    before = list(UsageDetailRecord.objects.filter(source="NAGRA").values())

    resend = udr_ingest(source="NAGRA", records=[record(subscriber, "N-1", title="STILL-NOPE")])

    assert (resend.accepted, resend.reopened, resend.duplicates) == (0, 0, 1)
    assert list(UsageDetailRecord.objects.filter(source="NAGRA").values()) == before
