"""The admin per role: who sees which screens and who may do what."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client

from accounts import services
from accounts.models import AccountsReceivable, Contact
from tests.factories import customer_create

pytestmark = pytest.mark.django_db

CUSTOMERS = "/admin/accounts/accountsreceivable/"


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def visible_models(client: Client) -> set[str]:
    response = client.get("/admin/")
    assert response.status_code == 200
    return {f"{app['app_label']}.{model['object_name']}" for app in response.context["app_list"] for model in app["models"]}


CUSTOMER_SCREENS = {"accounts.AccountsReceivable", "accounts.Contact", "accounts.AccountEvent"}
STAFF_SCREENS = {"auth.User", "auth.Group"}
CATALOG_SCREENS = {"catalogs.Product", "catalogs.ContentTitle", "catalogs.PricePlan", "catalogs.UsageServiceCatalog",
                   "catalogs.Promotion", "catalogs.UsageServiceCatalogDefinition"}


def test_each_role_sees_only_its_screens(agent, marketing_user, finance_user, administrator):
    agent_sees = visible_models(logged_in(agent))
    assert CUSTOMER_SCREENS <= agent_sees and not agent_sees & STAFF_SCREENS
    assert CATALOG_SCREENS <= agent_sees  # to look things up for callers; changing them is refused
    marketing_sees = visible_models(logged_in(marketing_user))
    assert "accounts.Classification" in marketing_sees and not marketing_sees & (CUSTOMER_SCREENS | STAFF_SCREENS)
    assert CATALOG_SCREENS <= marketing_sees
    finance_sees = visible_models(logged_in(finance_user))
    assert CUSTOMER_SCREENS <= finance_sees and not finance_sees & STAFF_SCREENS
    assert STAFF_SCREENS | CUSTOMER_SCREENS <= visible_models(logged_in(administrator))


def test_portal_customers_cannot_enter_the_admin(customer):
    client = Client()
    assert client.login(username="maria@example.com", password="correct-horse-battery")
    response = client.get("/admin/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_administrator_role_holds_every_permission(administrator):
    from django.contrib.auth.models import Permission

    wanted = set(Permission.objects.exclude(content_type__app_label__in=["admin", "contenttypes", "sessions"])
                 .values_list("content_type__app_label", "codename"))
    held = {tuple(name.split(".", 1)) for name in administrator.get_all_permissions()}
    assert wanted - held == set()


def test_agent_signs_a_customer_up_in_the_admin(agent):
    client = logged_in(agent)
    form = client.get(f"{CUSTOMERS}add/")
    assert form.status_code == 200
    response = client.post(f"{CUSTOMERS}add/", {
        "kind": "PERSON", "first_name": "Eleni", "last_name": "Christou", "email": "eleni@example.com", "mobile_phone": "99 555 666",
        "language": "el", "line1": "5 Stasinou", "city": "Nicosia", "country": "CY", "currency": "EUR", "credit_limit": "25.00",
    })
    account = AccountsReceivable.objects.get()
    assert response.status_code == 302 and response["Location"].endswith(f"/{account.pk}/change/")
    assert account.contact.mobile_phone == "+35799555666"
    assert account.credit_limit == Decimal("25.00")
    assert account.events.get().performed_by == agent


def test_sign_up_errors_show_on_the_form_and_change_nothing(agent):
    response = logged_in(agent).post(f"{CUSTOMERS}add/", {
        "kind": "PERSON", "first_name": "", "last_name": "Christou", "mobile_phone": "12", "language": "en",
        "line1": "x", "city": "y", "country": "Cyprus", "currency": "EUR", "credit_limit": "0",
    })
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert {"first_name", "mobile_phone"} <= set(errors)
    assert Contact.objects.count() == 0


def test_the_customer_page_shows_contact_account_state_and_history(agent, customer):
    services.account_suspend(account=customer, reason="Holiday", performed_by=agent)
    page = logged_in(agent).get(f"{CUSTOMERS}{customer.pk}/change/").content.decode()
    for expected in ("Maria Georgiou", "maria@example.com", "+35799123456", customer.number, "Suspended", "Holiday", "Signed up", "Reactivate", "Terminate"):
        assert expected in page, expected


def test_search_in_the_admin(agent, customer, other_customer):
    client = logged_in(agent)
    for query in ("georgiou", "maria@", "99123456", customer.number):
        listing = client.get(CUSTOMERS, {"q": query})
        assert list(listing.context["cl"].result_list) == [customer], query


def test_agent_suspends_from_the_page_with_confirmation(agent, customer):
    client = logged_in(agent)
    url = f"{CUSTOMERS}{customer.pk}/lifecycle/suspend/"
    assert client.get(url).status_code == 200
    assert AccountsReceivable.objects.get(pk=customer.pk).state == "ACTIVE"  # asking changes nothing
    client.post(url, {"reason": "Customer on holiday"})
    assert AccountsReceivable.objects.get(pk=customer.pk).state == "SUSPENDED"


def test_terminate_needs_a_reason(agent, customer):
    client = logged_in(agent)
    url = f"{CUSTOMERS}{customer.pk}/lifecycle/terminate/"
    response = client.post(url, {"reason": ""})
    assert response.status_code == 200 and response.context["form"].errors["reason"]
    assert AccountsReceivable.objects.get(pk=customer.pk).state == "ACTIVE"
    client.post(url, {"reason": "Moving abroad"})
    assert AccountsReceivable.objects.get(pk=customer.pk).state == "TERMINATED"


def test_bulk_suspend_reports_per_row(agent, customer, other_customer):
    services.account_terminate(account=other_customer, reason="Gone")
    response = logged_in(agent).post(CUSTOMERS, {"action": "suspend_selected", "_selected_action": [customer.pk, other_customer.pk]}, follow=True)
    messages = [str(message) for message in response.context["messages"]]
    assert f"{customer.number}: suspended." in messages
    assert any(message.startswith(f"{other_customer.number}: not suspended") for message in messages)
    assert AccountsReceivable.objects.get(pk=customer.pk).state == "SUSPENDED"


def test_finance_may_view_and_change_credit_limits_but_not_suspend_or_sign_up(finance_user, customer):
    client = logged_in(finance_user)
    assert client.get(f"{CUSTOMERS}{customer.pk}/change/").status_code == 200
    assert client.get(f"{CUSTOMERS}add/").status_code == 403
    assert client.post(f"{CUSTOMERS}{customer.pk}/lifecycle/suspend/", {"reason": "x"}).status_code == 403
    client.post(f"{CUSTOMERS}{customer.pk}/change/", {"classification": customer.classification_id, "credit_limit": "100.00",
                                                       "device_credentials-TOTAL_FORMS": "0", "device_credentials-INITIAL_FORMS": "0"})
    customer.refresh_from_db()
    assert customer.state == "ACTIVE"
    assert customer.credit_limit == Decimal("100.00")
    assert customer.events.get(kind="UPDATED").changes == {"credit_limit": ["0.00", "100.00"]}


def test_marketing_cannot_see_customers(marketing_user, customer):
    client = logged_in(marketing_user)
    assert client.get(CUSTOMERS).status_code == 403
    assert client.get(f"{CUSTOMERS}{customer.pk}/change/").status_code == 403
    assert client.post(f"{CUSTOMERS}{customer.pk}/lifecycle/terminate/", {"reason": "x"}).status_code == 403
    assert AccountsReceivable.objects.get(pk=customer.pk).state == "ACTIVE"


def test_contact_edit_validates_and_audits(agent, customer):
    client = logged_in(agent)
    url = f"/admin/accounts/contact/{customer.contact.pk}/change/"
    address = customer.contact.addresses.get()
    base = {
        "kind": "PERSON", "first_name": "Maria", "last_name": "Georgiou", "email": "maria@example.com", "language": "en",
        "addresses-TOTAL_FORMS": "1", "addresses-INITIAL_FORMS": "1", "addresses-0-id": address.pk, "addresses-0-contact": customer.contact.pk,
        "addresses-0-kind": "BILLING", "addresses-0-line1": address.line1, "addresses-0-city": "Nicosia", "addresses-0-country": "CY",
    }
    bad = client.post(url, {**base, "mobile_phone": "12"})
    assert bad.status_code == 200 and "mobile_phone" in bad.context["adminform"].form.errors
    good = client.post(url, {**base, "mobile_phone": "96 111 222", "addresses-0-city": "Larnaca"})
    assert good.status_code == 302
    customer.contact.refresh_from_db()
    assert customer.contact.mobile_phone == "+35796111222"
    assert customer.contact.addresses.get().city == "Larnaca"
    assert customer.events.filter(kind="CONTACT_UPDATED", performed_by=agent).count() == 2


def test_agent_issues_a_device_key_shown_once(agent, customer):
    response = logged_in(agent).post(f"{CUSTOMERS}{customer.pk}/device-key/", {"label": "Decoder"})
    raw_key = response.context["raw_key"]
    assert raw_key and raw_key in response.content.decode()
    credential = customer.device_credentials.get()
    assert credential.key_hash != raw_key


def test_accounts_cannot_be_deleted(administrator, customer):
    assert logged_in(administrator).get(f"{CUSTOMERS}{customer.pk}/delete/").status_code == 403
    assert customer_create(portal=False)  # still possible to add more
