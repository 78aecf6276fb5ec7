"""Usage billing rules: with Company ZX's "maximum unbilled UDRs = 1" every PPV order is
invoiced at once, from every channel, at the right price, in the order's transaction;
other rules wait for their threshold; no rule leaves usage for the billing run."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from rest_framework.test import APIClient

from accounts import services as account_services
from billing.models import Invoice, JournalEntry, Posting, UsageDetailRecord
from billing.selectors import ar_balance
from billing.services.schemes import billing_term_scheme_create, billing_term_scheme_set_effective
from core.choices import Channel
from core.exceptions import ValidationFailed
from subscriptions.models import Rental, SubscriptionAction
from subscriptions.services.orders import usage_order_place
from tests.billing.test_invoicing import legs
from tests.conftest import portal_client_for
from tests.factories import customer_create
from tests.world import effective_subscription

pytestmark = pytest.mark.django_db
D = Decimal
NICOSIA = ZoneInfo("Europe/Nicosia")
NIGHT = datetime(2026, 11, 20, 2, 30, tzinfo=NICOSIA)
EVENING = datetime(2026, 11, 20, 21, 0, tzinfo=NICOSIA)


def scheme_with(name: str, **rules):
    return billing_term_scheme_set_effective(scheme=billing_term_scheme_create(name=name, **rules))


def order_from(channel: str, subscription, title, agent=None) -> UsageDetailRecord:
    """Order ``title`` through the given channel, as a person would."""
    if channel == Channel.CALL_CENTER:
        action = usage_order_place(subscription=subscription, title=title, performed_by=agent, channel=Channel.CALL_CENTER)
        return UsageDetailRecord.objects.get(pk=action.result["udr"])
    if channel == Channel.PORTAL:
        response = portal_client_for(subscription.account).post("/api/v1/orders/", {"title": title.pk}, format="json")
    else:
        _credential, key = account_services.device_credential_issue(account=subscription.account, label="Thomson decoder")
        decoder = APIClient()
        decoder.credentials(HTTP_AUTHORIZATION=f"Device {key}")
        response = decoder.post("/api/v1/device/orders/", {"title": title.pk}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["state"] == "BILLED"
    return UsageDetailRecord.objects.get(pk=response.json()["id"])


@pytest.mark.parametrize("channel", [Channel.CALL_CENTER, Channel.PORTAL, Channel.DEVICE])
def test_a_company_zx_night_order_is_invoiced_at_once_from_every_channel(channel, subscriber, movie, agent):
    with time_machine.travel(NIGHT):
        udr = order_from(channel, subscriber, movie("LOTR"), agent)

    invoice = Invoice.objects.get()
    line = invoice.lines.get()
    assert (udr.state, udr.channel, line.udr, invoice.subscription, invoice.state) == ("BILLED", channel, udr, subscriber, "POSTED")
    assert line.description.startswith("Lord of the Rings (2026-11-20 02:30) — tier 00:01–06:59")
    assert (line.unit_price, line.net, line.tax_rate, line.tax, line.gross) == (D("5.0000"), D("4.20"), D("19.00"), D("0.80"), D("5.00"))
    assert (invoice.net_total, invoice.tax_total, invoice.gross_total) == (D("4.20"), D("0.80"), D("5.00"))
    assert invoice.number == "INV-2026-000001"
    assert legs(invoice.journal_entry) == sorted([("AR", subscriber.account.number, D("5.00")), ("REVENUE_PPV", None, D("-4.20")),
                                                  ("TAX_PAYABLE", None, D("-0.80"))])
    assert ar_balance(account=subscriber.account) == D("5.00")
    action = SubscriptionAction.objects.get(behavior="ADD_SERVICE_USAGE")
    assert action.result["invoice"] == invoice.number


def test_an_evening_order_from_the_decoder_is_invoiced_at_ten_euros(subscriber, movie):
    with time_machine.travel(EVENING):
        order_from(Channel.DEVICE, subscriber, movie("LIMITLESS"))
    invoice = Invoice.objects.get()
    assert (invoice.net_total, invoice.tax_total, invoice.gross_total) == (D("8.40"), D("1.60"), D("10.00"))
    assert ar_balance(account=subscriber.account) == D("10.00")


def test_a_repeated_order_creates_no_second_invoice(subscriber, movie):
    client = portal_client_for(subscriber.account)
    with time_machine.travel(NIGHT):
        first = client.post("/api/v1/orders/", {"title": movie("LOTR").pk, "transaction_reference": "shop-1"}, format="json")
        again = client.post("/api/v1/orders/", {"title": movie("LOTR").pk, "transaction_reference": "shop-1"}, format="json")
    assert first.status_code == again.status_code == 201
    assert (Invoice.objects.count(), JournalEntry.objects.count()) == (1, 1)
    assert ar_balance(account=subscriber.account) == D("5.00")


def test_each_order_gets_its_own_invoice_with_the_next_number(subscriber, movie):
    with time_machine.travel(NIGHT):
        usage_order_place(subscription=subscriber, title=movie("LOTR"))
        usage_order_place(subscription=subscriber, title=movie("SERENDIPITY"))
    assert [(i.number, i.gross_total) for i in Invoice.objects.order_by("number")] == [
        ("INV-2026-000001", D("5.00")), ("INV-2026-000002", D("3.00"))]
    assert ar_balance(account=subscriber.account) == D("8.00")


def test_without_a_usage_billing_rule_the_order_waits_for_the_billing_run(zx_catalog, billing_scheme, movie):
    subscription = effective_subscription(customer_create(), scheme_with("Monthly in arrears"))
    action = usage_order_place(subscription=subscription, title=movie("LOTR"))
    assert action.result["invoice"] is None
    assert UsageDetailRecord.objects.get().state == "RATED"
    assert not Invoice.objects.exists() and not Posting.objects.exists()


def test_a_vip_free_order_is_billed_without_an_invoice(vip_subscriber, movie):
    action = usage_order_place(subscription=vip_subscriber, title=movie("LOTR"))
    assert action.result["invoice"] is None and action.result["amount"] == "0.0000"
    assert UsageDetailRecord.objects.get().state == "BILLED"
    assert not Invoice.objects.exists() and not Posting.objects.exists()


def test_with_a_maximum_of_two_records_the_second_order_invoices_both(zx_catalog, billing_scheme, movie):
    subscription = effective_subscription(customer_create(), scheme_with("Every second order", max_unbilled_udrs=2))
    with time_machine.travel(NIGHT):
        first = usage_order_place(subscription=subscription, title=movie("LOTR"))
        assert first.result["invoice"] is None and not Invoice.objects.exists()
        second = usage_order_place(subscription=subscription, title=movie("SERENDIPITY"))
    invoice = Invoice.objects.get()
    assert second.result["invoice"] == invoice.number
    assert [(line.position, line.gross) for line in invoice.lines.all()] == [(1, D("5.00")), (2, D("3.00"))]
    assert set(UsageDetailRecord.objects.values_list("state", flat=True)) == {"BILLED"}


def test_a_maximum_unbilled_amount_invoices_once_it_is_reached(zx_catalog, billing_scheme, movie):
    subscription = effective_subscription(customer_create(), scheme_with("Up to twelve euros", max_unbilled_amount=D("12.00")))
    with time_machine.travel(NIGHT):
        usage_order_place(subscription=subscription, title=movie("LOTR"))          # 5.00 unbilled
    with time_machine.travel(EVENING):
        usage_order_place(subscription=subscription, title=movie("SERENDIPITY"))   # 8.00 unbilled
        assert not Invoice.objects.exists()
        usage_order_place(subscription=subscription, title=movie("LIMITLESS"))     # 18.00 ≥ 12.00
    assert Invoice.objects.get().gross_total == D("18.00")


def test_an_order_that_cannot_be_taxed_is_refused_and_leaves_nothing_behind(subscriber, movie):
    billing = subscriber.account.contact.addresses.get(kind="BILLING")
    account_services.address_save(contact=subscriber.account.contact, address=billing, data={"country": "GR"})

    with pytest.raises(ValidationFailed) as raised:
        usage_order_place(subscription=subscriber, title=movie("LOTR"))

    assert raised.value.fields["tax"][0].startswith("No tax rate for Service in GR on ")
    assert not UsageDetailRecord.objects.exists() and not Rental.objects.exists()
    assert not Invoice.objects.exists() and not Posting.objects.exists()
