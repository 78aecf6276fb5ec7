"""Billing term schemes: creating and editing them (DRAFT only), their life cycle, the
audit trail, and the finance screens; usage detail records are read-only in the admin."""

from __future__ import annotations

from datetime import datetime, timezone as dt_timezone

import pytest
from django.test import Client

from billing.services import schemes as services
from billing.models import BillingTermScheme, UsageDetailRecord
from catalogs.models import ContentTitle
from core.actions import ActionRejected
from core.admin import audit_entries_for
from core.exceptions import Conflict, ValidationFailed
from subscriptions.models import Subscription
from subscriptions.services.actions import subscription_create
from subscriptions.services.orders import usage_order_place
from tests.factories import customer_create

pytestmark = pytest.mark.django_db
SCHEMES = "/admin/billing/billingtermscheme/"
UDRS = "/admin/billing/usagedetailrecord/"


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def monthly(name: str = "Monthly in advance", **terms) -> BillingTermScheme:
    return services.billing_term_scheme_create(
        **{"name": name, "kind": "NORMAL", "billing_frequency": "MONTHLY", "billing_day": 1, "pre_bill": True, **terms})


def actions_of(scheme: BillingTermScheme) -> list[tuple[str, list[str]]]:
    return [(entry.action, entry.reasons) for entry in reversed(audit_entries_for(scheme))]


# --- creating and editing ------------------------------------------------------------------

def test_a_new_scheme_is_a_draft_with_its_terms_audited(finance_user):
    scheme = services.billing_term_scheme_create(name=" Prepaid quarterly ", kind="PREPAID", billing_frequency="QUARTERLY",
                                                 billing_day=15, pre_bill=False, performed_by=finance_user)

    scheme.refresh_from_db()
    assert (scheme.name, scheme.kind, scheme.billing_frequency, scheme.billing_day, scheme.pre_bill, scheme.state) == (
        "Prepaid quarterly", "PREPAID", "QUARTERLY", 15, False, "DRAFT")
    entry = audit_entries_for(scheme).get()
    assert (entry.action, entry.performed_by, entry.changes["billing_day"]) == ("created", finance_user, [None, 15])


def test_every_problem_with_a_new_scheme_is_reported_and_nothing_is_created():
    with pytest.raises(ValidationFailed) as raised:
        services.billing_term_scheme_create(name="  ", kind="POSTPAID", billing_frequency="WEEKLY", billing_day=29, pre_bill=True)

    assert set(raised.value.fields) == {"name", "kind", "billing_frequency", "billing_day"}
    assert raised.value.fields["billing_day"] == ["Ensure this value is less than or equal to 28."]
    assert not BillingTermScheme.objects.exists()


def test_scheme_names_are_unique():
    monthly("Standard")

    with pytest.raises(ValidationFailed) as raised:
        monthly("Standard", billing_day=5)

    assert raised.value.fields == {"name": ["Billing term scheme with this Name already exists."]}
    assert BillingTermScheme.objects.count() == 1


def test_a_draft_scheme_is_edited_and_the_change_audited(finance_user):
    scheme = monthly()

    services.billing_term_scheme_update(scheme=scheme, data={"billing_day": 10, "pre_bill": False}, performed_by=finance_user)

    scheme.refresh_from_db()
    assert (scheme.billing_day, scheme.pre_bill) == (10, False)
    assert audit_entries_for(scheme).first().changes == {"billing_day": [1, 10], "pre_bill": [True, False]}


def test_an_invalid_edit_changes_nothing():
    scheme = monthly()

    with pytest.raises(ValidationFailed) as raised:
        services.billing_term_scheme_update(scheme=scheme, data={"billing_day": 0, "state": "EFFECTIVE"})
    assert raised.value.fields == {"state": ["Not editable."]}

    with pytest.raises(ValidationFailed) as raised:
        services.billing_term_scheme_update(scheme=scheme, data={"billing_day": 0})
    assert raised.value.fields == {"billing_day": ["Ensure this value is greater than or equal to 1."]}
    scheme.refresh_from_db()
    assert (scheme.billing_day, scheme.state) == (1, "DRAFT")


def test_an_effective_scheme_is_not_edited_and_the_refusal_is_audited():
    scheme = services.billing_term_scheme_set_effective(scheme=monthly())

    with pytest.raises(Conflict) as raised:
        services.billing_term_scheme_update(scheme=scheme, data={"billing_day": 20})

    assert raised.value.message.startswith("The billing term scheme Monthly in advance is EFFECTIVE: its terms can be changed "
                                           "only while it is DRAFT")
    scheme.refresh_from_db()
    assert scheme.billing_day == 1
    assert actions_of(scheme)[-1] == ("rejected: update", [raised.value.message])


# --- life cycle ----------------------------------------------------------------------------

def test_set_effective_then_terminate(finance_user):
    scheme = monthly()

    services.billing_term_scheme_set_effective(scheme=scheme, performed_by=finance_user)
    assert BillingTermScheme.objects.get(pk=scheme.pk).state == "EFFECTIVE"

    services.billing_term_scheme_terminate(scheme=scheme, performed_by=finance_user)
    assert BillingTermScheme.objects.get(pk=scheme.pk).state == "TERMINATED"
    assert actions_of(scheme) == [("created", []), ("set_effective", []), ("terminate", [])]


@pytest.mark.parametrize("state, action, reason", [
    ("EFFECTIVE", "set_effective", "It is EFFECTIVE; set effective is allowed only from DRAFT."),
    ("TERMINATED", "set_effective", "It is TERMINATED; set effective is allowed only from DRAFT."),
    ("DRAFT", "terminate", "It is DRAFT; terminate is allowed only from EFFECTIVE."),
    ("TERMINATED", "terminate", "It is TERMINATED; terminate is allowed only from EFFECTIVE."),
])
def test_each_transition_starts_only_from_its_state(state, action, reason):
    scheme = monthly()
    BillingTermScheme.objects.filter(pk=scheme.pk).update(state=state)
    scheme.refresh_from_db()

    with pytest.raises(ActionRejected) as raised:
        services.billing_term_scheme_act(scheme=scheme, action=action)

    assert raised.value.reasons == [reason]
    assert BillingTermScheme.objects.get(pk=scheme.pk).state == state
    assert actions_of(scheme)[-1] == (f"rejected: {action}", [reason])


def test_a_scheme_in_use_is_not_terminated():
    # given three subscriptions on the scheme, one of them cancelled
    scheme = services.billing_term_scheme_set_effective(scheme=monthly())
    account = customer_create()
    first, second, third = (subscription_create(account=account, billing_term_scheme=scheme) for _ in range(3))
    Subscription.objects.filter(pk=first.pk).update(state="CANCELLED")

    with pytest.raises(ActionRejected) as raised:
        services.billing_term_scheme_terminate(scheme=scheme)

    assert raised.value.reasons == ["2 subscriptions that are not cancelled still use the billing term scheme "
                                    "Monthly in advance; move or terminate them first."]
    assert BillingTermScheme.objects.get(pk=scheme.pk).state == "EFFECTIVE"

    Subscription.objects.filter(pk=second.pk).update(state="CANCELLED")
    with pytest.raises(ActionRejected) as raised:
        services.billing_term_scheme_terminate(scheme=scheme)
    assert raised.value.reasons == ["1 subscription that is not cancelled still uses the billing term scheme "
                                    "Monthly in advance; move or terminate it first."]


def test_an_unknown_action_is_refused():
    with pytest.raises(ValidationFailed):
        services.billing_term_scheme_act(scheme=monthly(), action="delete")


# --- the admin -----------------------------------------------------------------------------

def scheme_form(**overrides) -> dict:
    return {"name": "Monthly", "kind": "NORMAL", "billing_frequency": "MONTHLY", "billing_day": "1", "pre_bill": "on", **overrides}


def test_finance_creates_a_scheme_and_sets_it_effective(finance_user):
    client = logged_in(finance_user)

    response = client.post(f"{SCHEMES}add/", scheme_form(billing_day="5"))

    assert response.status_code == 302, response.content.decode()[:2000]
    scheme = BillingTermScheme.objects.get()
    assert (scheme.name, scheme.billing_day, scheme.state) == ("Monthly", 5, "DRAFT")
    assert audit_entries_for(scheme).get().performed_by == finance_user
    page = client.get(f"{SCHEMES}{scheme.pk}/change/").content.decode()
    assert 'data-action="set_effective"' in page and 'data-action="terminate"' not in page

    response = client.post(f"{SCHEMES}{scheme.pk}/act/set_effective/", follow=True)

    assert "Set effective: done." in [str(message) for message in response.context["messages"]]
    assert BillingTermScheme.objects.get(pk=scheme.pk).state == "EFFECTIVE"


def test_finance_edits_a_draft_in_the_admin_and_an_effective_scheme_is_read_only(finance_user):
    draft = monthly("Draft")
    effective = services.billing_term_scheme_set_effective(scheme=monthly("Live"))
    client = logged_in(finance_user)

    response = client.post(f"{SCHEMES}{draft.pk}/change/", scheme_form(name="Draft", billing_day="7"))

    assert response.status_code == 302
    assert BillingTermScheme.objects.get(pk=draft.pk).billing_day == 7
    assert audit_entries_for(draft).first().changes == {"billing_day": [1, 7]}
    form = client.get(f"{SCHEMES}{effective.pk}/change/").context["adminform"].form
    assert set(form.fields) == set()  # every term is shown read-only
    assert client.post(f"{SCHEMES}{effective.pk}/change/", scheme_form(name="Live", billing_day="9")).status_code == 302
    assert BillingTermScheme.objects.get(pk=effective.pk).billing_day == 1


def test_the_admin_shows_a_refused_scheme_with_its_reasons(finance_user):
    monthly("Monthly")

    response = logged_in(finance_user).post(f"{SCHEMES}add/", scheme_form())

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["name"] == ["Billing term scheme with this Name already exists."]
    assert BillingTermScheme.objects.count() == 1


def test_terminating_a_scheme_in_use_shows_the_reason(finance_user, billing_scheme):
    subscription_create(account=customer_create(), billing_term_scheme=billing_scheme)

    response = logged_in(finance_user).post(f"{SCHEMES}{billing_scheme.pk}/act/terminate/", follow=True)

    messages = [str(message) for message in response.context["messages"]]
    assert "Terminate: rejected. Nothing was changed." in messages
    assert ("1 subscription that is not cancelled still uses the billing term scheme Normal; move or terminate it first."
            in messages)
    assert BillingTermScheme.objects.get(pk=billing_scheme.pk).state == "EFFECTIVE"


def test_agents_see_schemes_but_cannot_change_them(agent):
    scheme = monthly()
    client = logged_in(agent)

    assert client.get(SCHEMES).status_code == 200
    assert client.get(f"{SCHEMES}{scheme.pk}/change/").status_code == 200
    assert client.get(f"{SCHEMES}add/").status_code == 403
    assert client.post(f"{SCHEMES}add/", scheme_form(name="Agent's")).status_code == 403
    assert client.post(f"{SCHEMES}{scheme.pk}/act/set_effective/").status_code == 403
    assert BillingTermScheme.objects.get().state == "DRAFT"


def test_usage_records_are_found_by_external_id_and_read_only(agent, subscriber):
    usage_order_place(subscription=subscriber, title=ContentTitle.objects.get(code="LOTR"), usage_at=datetime(2026, 11, 20, 18, 0, tzinfo=dt_timezone.utc), transaction_reference="order-77")
    udr = UsageDetailRecord.objects.get()
    client = logged_in(agent)

    response = client.get(UDRS, {"q": "order-77"})

    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [udr]
    assert client.get(UDRS, {"q": "order-7"}).context["cl"].result_count == 0  # exact match only: the index is used
    assert client.get(f"{UDRS}{udr.pk}/change/").status_code == 200
    assert client.get(f"{UDRS}add/").status_code == 403
    assert client.post(f"{UDRS}{udr.pk}/delete/").status_code == 403
