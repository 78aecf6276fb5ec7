"""The call center in the admin: the customer page shows subscriptions, devices, orders and
actions; Add Service Usage previews the price then orders; actions report every reason."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.test import Client

from billing.models import UsageDetailRecord
from core.models import AuditEntry
from subscriptions.models import Device, SubscriptionAction

pytestmark = pytest.mark.django_db
NICOSIA = ZoneInfo("Europe/Nicosia")


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def usage_url(subscription) -> str:
    return f"/admin/subscriptions/subscription/{subscription.pk}/add-service-usage/"


def test_add_service_usage_previews_the_price_then_orders(agent, subscriber, movie):
    client = logged_in(agent)
    title = movie("LOTR")
    with time_machine.travel(datetime(2026, 11, 20, 4, 0, tzinfo=NICOSIA)):
        form = client.get(usage_url(subscriber))
        reference = form.context["form"].initial["transaction_reference"]
        preview = client.post(usage_url(subscriber), {"title": title.pk, "transaction_reference": reference})
        assert preview.status_code == 200
        assert "5.00 EUR" in preview.content.decode() and "tier 00:01–06:59" in preview.content.decode()
        assert not UsageDetailRecord.objects.exists()  # a preview charges nothing
        confirm = {"title": title.pk, "transaction_reference": reference, "confirmed": "True", "previewed": f"{title.pk}:"}
        done = client.post(usage_url(subscriber), confirm)
        again = client.post(usage_url(subscriber), confirm)  # a double click
    assert done.status_code == again.status_code == 302
    udr = UsageDetailRecord.objects.get()
    assert (str(udr.amount), udr.channel) == ("5.0000", "CALL_CENTER")
    page = client.get(f"/admin/accounts/accountsreceivable/{subscriber.account_id}/change/").content.decode()
    assert "Lord of the Rings" in page and "5.00 EUR" in page and subscriber.number in page


def test_a_changed_choice_after_the_preview_is_previewed_again(agent, subscriber, movie):
    client = logged_in(agent)
    response = client.post(usage_url(subscriber), {"title": movie("LIMITLESS").pk, "transaction_reference": "r", "confirmed": "True",
                                                   "previewed": f"{movie('LOTR').pk}:"})
    assert response.status_code == 200 and response.context["quote"] is not None
    assert not UsageDetailRecord.objects.exists()


def test_a_refused_order_shows_every_reason(agent, subscriber, movie):
    subscriber.services.update(state="NOT_EFFECTIVE")
    tv = Device.objects.create(account=subscriber.account, name="TV", screen="SMART_TV")
    title = movie("SERENDIPITY")
    title.availabilities.filter(screen="SMART_TV").delete()
    response = logged_in(agent).post(usage_url(subscriber), {"title": title.pk, "device": tv.pk, "transaction_reference": "x",
                                                             "confirmed": "True", "previewed": f"{title.pk}:{tv.pk}"})
    errors = list(response.context["form"].non_field_errors())
    assert "The subscription needs an EFFECTIVE PPV Service to order Serendipity." in errors
    assert "Serendipity (2001) is not available on Smart TV now." in errors
    assert not UsageDetailRecord.objects.exists()


def test_roles_for_orders_and_actions(finance_user, marketing_user, subscriber, movie):
    assert logged_in(finance_user).get(usage_url(subscriber)).status_code == 403
    assert logged_in(finance_user).get(f"/admin/subscriptions/subscription/{subscriber.pk}/change/").status_code == 200
    assert logged_in(marketing_user).get(f"/admin/subscriptions/subscription/{subscriber.pk}/change/").status_code == 403


def test_the_subscription_page_offers_what_its_state_allows(agent, subscriber):
    page = logged_in(agent).get(f"/admin/subscriptions/subscription/{subscriber.pk}/change/").content.decode()
    assert "Add Service Usage" in page
    assert 'data-behavior="ACTIVATE"' not in page  # already effective


def test_a_new_subscription_from_the_customer_page(agent, billing_scheme, zx_catalog):
    from tests.factories import customer_create

    account = customer_create()
    client = logged_in(agent)
    form = client.get(f"/admin/subscriptions/subscription/add/?account={account.pk}")
    assert form.context["form"].initial["account"] == str(account.pk)
    response = client.post("/admin/subscriptions/subscription/add/", {"account": account.pk, "billing_term_scheme": billing_scheme.pk})
    assert response.status_code == 302
    subscription = account.subscriptions.get()
    assert subscription.state == "DRAFT"
    audit = AuditEntry.objects.get(content_type__model="subscription", object_pk=str(subscription.pk), action="created")
    assert (audit.performed_by, audit.channel) == (agent, "CALL_CENTER")
    assert audit.changes == {"account": [None, account.number], "billing_term_scheme": [None, billing_scheme.name],
                             "state": [None, "DRAFT"]}


def action_url(subscription, behavior: str) -> str:
    return f"/admin/subscriptions/subscription/{subscription.pk}/action/{behavior}/"


def test_rest_and_end_resting_from_the_subscription_page(agent, subscriber):
    client = logged_in(agent)
    form = client.get(action_url(subscriber, "REST"))
    reference = form.context["form"].initial["transaction_reference"]
    response = client.post(action_url(subscriber, "REST"), {"transaction_reference": reference})
    client.post(action_url(subscriber, "REST"), {"transaction_reference": reference})  # a double click
    assert response.status_code == 302
    subscriber.refresh_from_db()
    assert subscriber.state == "IN_RESTING"
    assert SubscriptionAction.objects.filter(behavior="REST").count() == 1
    page = client.get(f"/admin/subscriptions/subscription/{subscriber.pk}/change/").content.decode()
    assert 'data-behavior="END_RESTING"' in page and 'data-behavior="REST"' not in page


def test_a_rejected_action_in_the_admin_lists_every_reason(agent, subscriber, zx_catalog):
    from catalogs.models import Product

    response = logged_in(agent).post(action_url(subscriber, "ADD_SERVICE"), {
        "transaction_reference": "add-ppv-again", "product": Product.objects.get(code="PPV-SERVICE").pk})
    assert response.status_code == 200
    errors = list(response.context["form"].non_field_errors())
    assert errors and all(isinstance(error, str) for error in errors)
    assert any("PPV Service" in error for error in errors)
    assert SubscriptionAction.objects.get(transaction_reference="add-ppv-again").state == "REJECTED"
    assert subscriber.services.count() == 1


def test_terminate_needs_a_reason_in_the_form(agent, subscriber):
    response = logged_in(agent).post(action_url(subscriber, "TERMINATE"), {"transaction_reference": "t1", "reason": ""})
    assert "reason" in response.context["form"].errors
    subscriber.refresh_from_db()
    assert subscriber.state == "EFFECTIVE"


def test_an_agent_removes_a_device_from_the_customer_page(agent, finance_user, subscriber):
    from subscriptions.services.devices import device_register

    device, _key = device_register(account=subscriber.account, name="Old phone", screen="MOBILE")
    page = logged_in(agent).get(f"/admin/accounts/accountsreceivable/{subscriber.account_id}/change/").content.decode()
    url = f"/admin/subscriptions/subscription/device/{device.pk}/remove/"
    assert url in page
    assert logged_in(finance_user).post(url).status_code == 403
    assert logged_in(agent).get(url).status_code == 200  # the confirmation
    device.refresh_from_db()
    assert device.state == "ACTIVE"
    assert logged_in(agent).post(url).status_code == 302
    device.refresh_from_db()
    assert device.state == "REMOVED" and device.credential.revoked_at is not None
