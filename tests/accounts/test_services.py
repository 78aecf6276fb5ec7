"""Customer life cycle through the services: sign-up, updates, state transitions, audit."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model

from accounts import services
from accounts.models import AccountEvent, AccountsReceivable, Address, Contact, DeviceCredential, PortalUser
from core.exceptions import ApplicationError, TransitionNotAllowed, ValidationFailed
from tests.factories import customer_create

pytestmark = pytest.mark.django_db
User = get_user_model()


def counts() -> tuple[int, ...]:
    return (Contact.objects.count(), AccountsReceivable.objects.count(), Address.objects.count(),
            PortalUser.objects.count(), User.objects.count(), AccountEvent.objects.count())


def test_sign_up_creates_contact_account_address_and_login_in_one_go():
    account = services.customer_sign_up(
        contact={"first_name": " Maria ", "last_name": "Georgiou", "email": "Maria@Example.COM", "mobile_phone": "99 12-34 56"},
        address={"kind": "BILLING", "line1": "1 Main St", "city": "Nicosia", "country": "cy"},
        password="a-long-enough-secret",
    )

    assert account.number.startswith("AR") and len(account.number) == 9
    assert account.state == AccountsReceivable.State.ACTIVE
    assert account.currency == "EUR"
    assert account.classification.code == "NORMAL"
    assert account.credit_limit == Decimal("0.00")
    contact = account.contact
    assert (contact.first_name, contact.email, contact.mobile_phone) == ("Maria", "maria@example.com", "+35799123456")
    assert contact.addresses.get().country == "CY"
    assert contact.portal_user.user.username == "maria@example.com"
    assert contact.portal_user.user.check_password("a-long-enough-secret")
    assert not contact.portal_user.user.is_staff
    assert [event.kind for event in account.events.order_by("pk")] == ["SIGNED_UP", "PORTAL_ACCESS_GRANTED"]


def test_account_numbers_are_sequential():
    first = customer_create(portal=False)
    second = customer_create(portal=False)
    assert int(second.number[2:]) == int(first.number[2:]) + 1


def test_sign_up_reports_every_problem_at_once_and_changes_nothing():
    before = counts()
    with pytest.raises(ValidationFailed) as raised:
        services.customer_sign_up(
            contact={"first_name": "", "last_name": "X", "email": "not-an-email", "mobile_phone": "12"},
            address={"kind": "BILLING", "line1": "", "city": "Nicosia", "country": "Cyprus"},
            currency="USD",
            credit_limit=Decimal("-1"),
            password="short",
        )

    fields = raised.value.fields
    assert {"first_name", "email", "mobile_phone", "address.line1", "address.country", "currency", "credit_limit", "password"} <= set(fields)
    assert counts() == before


def test_sign_up_refuses_a_login_e_mail_already_taken_in_any_case():
    customer_create(email="taken@example.com")
    before = counts()
    with pytest.raises(ValidationFailed) as raised:
        customer_create(email="TAKEN@example.com")
    assert raised.value.fields["email"] == ["A portal login with this e-mail already exists."]
    assert counts() == before


def test_sign_up_of_a_company_needs_its_name_not_a_person_name():
    account = services.customer_sign_up(contact={"kind": "COMPANY", "company_name": "Sports Bar Ltd", "phone": "22123456"})
    assert account.contact.display_name == "Sports Bar Ltd"
    with pytest.raises(ValidationFailed) as raised:
        services.customer_sign_up(contact={"kind": "COMPANY", "first_name": "A", "phone": "22123456"})
    assert "company_name" in raised.value.fields


def test_sign_up_needs_a_way_to_reach_the_customer():
    with pytest.raises(ValidationFailed) as raised:
        services.customer_sign_up(contact={"first_name": "A", "last_name": "B"})
    assert "email" in raised.value.fields


def test_sign_up_rejects_unknown_classification_and_fields():
    with pytest.raises(ValidationFailed) as raised:
        services.customer_sign_up(contact={"first_name": "A", "last_name": "B", "email": "a@b.example"}, classification="GOLD")
    assert "classification" in raised.value.fields
    with pytest.raises(ValidationFailed):
        services.customer_sign_up(contact={"first_name": "A", "last_name": "B", "email": "a@b.example", "is_staff": True})
    assert Contact.objects.count() == 0


def test_contact_update_normalises_validates_and_audits(customer, agent):
    contact = services.contact_update(
        contact=customer.contact, data={"mobile_phone": "+357 96 000 111", "email": "NEW@example.com"}, performed_by=agent
    )

    assert contact.mobile_phone == "+35796000111"
    assert contact.portal_user.user.username == "new@example.com"  # the login follows the e-mail
    event = customer.events.filter(kind=AccountEvent.Kind.CONTACT_UPDATED).get()
    assert event.changes["email"] == ["maria@example.com", "new@example.com"]
    assert event.performed_by == agent


def test_contact_update_with_bad_data_changes_nothing(customer):
    with pytest.raises(ValidationFailed) as raised:
        services.contact_update(contact=customer.contact, data={"first_name": "", "mobile_phone": "abc"})
    assert set(raised.value.fields) == {"first_name", "mobile_phone"}
    customer.contact.refresh_from_db()
    assert (customer.contact.first_name, customer.contact.mobile_phone) == ("Maria", "+35799123456")
    assert not customer.events.filter(kind=AccountEvent.Kind.CONTACT_UPDATED).exists()


def test_contact_update_cannot_take_another_customers_login(customer, other_customer):
    with pytest.raises(ValidationFailed) as raised:
        services.contact_update(contact=customer.contact, data={"email": "nikos@example.com"})
    assert raised.value.fields["email"] == ["A portal login with this e-mail already exists."]


def test_contact_update_without_changes_writes_no_audit_row(customer):
    services.contact_update(contact=customer.contact, data={"first_name": "Maria"})
    assert not customer.events.filter(kind=AccountEvent.Kind.CONTACT_UPDATED).exists()


def test_account_update_changes_classification_and_credit_limit_with_audit(customer, agent):
    account = services.account_update(account=customer, data={"classification": "VIP", "credit_limit": Decimal("50.00")}, performed_by=agent)
    assert account.classification.code == "VIP"
    assert account.credit_limit == Decimal("50.00")
    event = account.events.get(kind=AccountEvent.Kind.UPDATED)
    assert event.changes == {"classification": ["Normal", "VIP"], "credit_limit": ["0.00", "50.00"]}


@pytest.mark.parametrize(
    "data, field",
    [({"currency": "USD"}, "currency"), ({"credit_limit": Decimal("-5")}, "credit_limit"),
     ({"credit_limit": Decimal("1.234")}, "credit_limit"), ({"classification": "GOLD"}, "classification"),
     ({"state": "TERMINATED"}, "state")],
)
def test_account_update_refuses_bad_changes(customer, data, field):
    with pytest.raises(ValidationFailed) as raised:
        services.account_update(account=customer, data=data)
    assert field in raised.value.fields
    customer.refresh_from_db()
    assert (customer.currency, customer.credit_limit, customer.classification.code, customer.state) == ("EUR", Decimal("0.00"), "NORMAL", "ACTIVE")


def test_suspend_and_reactivate_follow_the_state_machine_and_audit(customer, agent):
    suspended = services.account_suspend(account=customer, reason="Asked to pause", performed_by=agent)
    assert suspended.state == "SUSPENDED"
    reactivated = services.account_reactivate(account=customer, performed_by=agent)
    assert reactivated.state == "ACTIVE"
    transitions = list(customer.events.filter(kind__in=["SUSPENDED", "REACTIVATED"]).order_by("pk").values_list("from_state", "to_state", "reason"))
    assert transitions == [("ACTIVE", "SUSPENDED", "Asked to pause"), ("SUSPENDED", "ACTIVE", "")]


def test_transitions_not_allowed_from_the_current_state_are_refused_and_change_nothing(customer):
    with pytest.raises(TransitionNotAllowed) as raised:
        services.account_reactivate(account=customer)
    assert "allowed from: SUSPENDED" in raised.value.message
    services.account_terminate(account=customer, reason="Moved abroad")
    events_before = customer.events.count()
    for service in (services.account_suspend, services.account_reactivate):
        with pytest.raises(TransitionNotAllowed):
            service(account=customer)
    with pytest.raises(TransitionNotAllowed):
        services.account_terminate(account=customer, reason="again")
    customer.refresh_from_db()
    assert customer.state == "TERMINATED"
    assert customer.events.count() == events_before


def test_terminate_needs_a_reason_and_revokes_device_keys(customer):
    credential, _key = services.device_credential_issue(account=customer, label="Decoder")
    with pytest.raises(ValidationFailed):
        services.account_terminate(account=customer, reason="  ")
    assert AccountsReceivable.objects.get(pk=customer.pk).state == "ACTIVE"

    services.account_terminate(account=customer, reason="Cancelled by phone")

    credential.refresh_from_db()
    assert credential.revoked_at is not None
    with pytest.raises(ApplicationError):
        services.account_update(account=customer, data={"credit_limit": Decimal("1")})
    with pytest.raises(ApplicationError):
        services.device_credential_issue(account=customer, label="Another")


def test_portal_login_accepts_customers_only(customer, agent):
    token = services.portal_login(username="MARIA@example.com", password="correct-horse-battery")
    assert token.user == customer.contact.portal_user.user
    with pytest.raises(ApplicationError) as wrong:
        services.portal_login(username="maria@example.com", password="wrong")
    with pytest.raises(ApplicationError) as staff:
        services.portal_login(username="agent", password="staff-password-1")
    assert wrong.value.code == staff.value.code == "invalid_credentials"


def test_device_keys_are_stored_hashed_and_revocable(customer):
    from accounts.selectors import device_credential_get_by_key

    credential, raw_key = services.device_credential_issue(account=customer, label="Living-room decoder")
    assert raw_key not in (credential.key_hash, credential.key_prefix)
    assert DeviceCredential.objects.filter(key_hash__contains=raw_key).count() == 0
    assert device_credential_get_by_key(raw_key=raw_key) == credential
    assert device_credential_get_by_key(raw_key=raw_key[:-1] + ("A" if raw_key[-1] != "A" else "B")) is None
    services.device_credential_revoke(credential=credential)
    assert device_credential_get_by_key(raw_key=raw_key) is None
    assert customer.events.filter(kind__in=["DEVICE_CREDENTIAL_ISSUED", "DEVICE_CREDENTIAL_REVOKED"]).count() == 2


def test_address_one_per_kind(customer):
    with pytest.raises(ValidationFailed) as raised:
        services.address_save(contact=customer.contact, data={"kind": "BILLING", "line1": "x", "city": "y", "country": "CY"})
    assert "kind" in raised.value.fields
    installation = services.address_save(contact=customer.contact, data={"kind": "INSTALLATION", "line1": "x", "city": "y", "country": "gr"})
    assert installation.country == "GR"
    assert customer.contact.addresses.count() == 2
