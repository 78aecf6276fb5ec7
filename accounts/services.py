"""Every write to customers goes through these services.

The admin, the portal API, management commands and tests call the same functions. Each
owns its transaction, locks what it changes, checks the rules, writes an ``AccountEvent``
audit row next to the change, and raises an ``ApplicationError`` (changing nothing) when
the request is refused.
"""

from __future__ import annotations

import secrets
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate, get_user_model, password_validation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.authtoken.models import Token

from core.choices import Channel
from core.exceptions import ApplicationError, PermissionDenied, ValidationFailed
from core.validation import model_errors
from core.services import sequence_next
from provisioning.services.outbox import account_change_provision

from .models import AccountEvent, AccountsReceivable, Address, Classification, Contact, DeviceCredential, PortalUser

User = get_user_model()

CONTACT_FIELDS = ("kind", "title", "first_name", "last_name", "company_name", "email", "phone", "mobile_phone", "language")
ADDRESS_FIELDS = ("kind", "line1", "line2", "city", "postal_code", "region", "country")
ACCOUNT_NUMBER_SEQUENCE = {"name": "accounts_receivable", "prefix": "AR", "padding": 7}


def _event(account: AccountsReceivable, kind: str, *, performed_by, channel: str, **fields: Any) -> AccountEvent:
    user = performed_by if performed_by is not None and performed_by.is_authenticated else None
    return AccountEvent.objects.create(account=account, kind=kind, performed_by=user, channel=channel, **fields)


def _classification_resolve(classification: Classification | str | None) -> Classification | None:
    if isinstance(classification, Classification):
        return classification
    if classification:
        return Classification.objects.filter(code=classification).first()
    return Classification.objects.filter(is_default=True).first()


def customer_sign_up(
    *,
    contact: dict[str, Any],
    address: dict[str, Any] | None = None,
    currency: str | None = None,
    classification: Classification | str | None = None,
    credit_limit: Decimal = Decimal("0.00"),
    password: str | None = None,
    performed_by=None,
    channel: str = Channel.CALL_CENTER,
) -> AccountsReceivable:
    """Create the contact, its accounts receivable and (with a password) its portal login.

    All of it or nothing: every problem with the input is reported at once, per field
    (``contact.email``, ``address.city``, ``password``, ...).
    """
    errors: dict[str, list[str]] = {}
    unknown = set(contact) - set(CONTACT_FIELDS)
    if unknown:
        raise ValidationFailed("Unknown contact fields.", fields={name: ["Unknown field."] for name in sorted(unknown)})
    new_contact = Contact(**contact)
    model_errors(new_contact, errors)

    new_address = None
    if address:
        new_address = Address(**{name: value for name, value in address.items() if name in ADDRESS_FIELDS})
        model_errors(new_address, errors, prefix="address.", exclude=["contact"])

    chosen_classification = _classification_resolve(classification)
    if chosen_classification is None:
        errors.setdefault("classification", []).append(f"No classification {classification!r}.")
    account = AccountsReceivable(
        contact=new_contact,
        currency=currency or settings.CURRENCIES[0],
        classification=chosen_classification,
        credit_limit=credit_limit,
    )
    model_errors(account, errors, exclude=["contact", "number", "classification"])

    username = None
    if password is not None:
        username = new_contact.email
        if not username:
            errors.setdefault("email", []).append("Portal access needs an e-mail address to log in with.")
        elif User.objects.filter(username__iexact=username).exists():
            errors.setdefault("email", []).append("A portal login with this e-mail already exists.")
        try:
            password_validation.validate_password(password, User(username=username or "", email=username or ""))
        except DjangoValidationError as error:
            errors.setdefault("password", []).extend(error.messages)

    if errors:
        raise ValidationFailed("The customer could not be signed up.", fields=errors)

    try:
        with transaction.atomic():
            new_contact.save()
            if new_address is not None:
                new_address.contact = new_contact
                new_address.save()
            account.contact = new_contact
            account.number = sequence_next(**ACCOUNT_NUMBER_SEQUENCE)
            account.state_changed_at = timezone.now()
            account.save()
            _event(account, AccountEvent.Kind.SIGNED_UP, performed_by=performed_by, channel=channel, to_state=account.state)
            if password is not None:
                user = User.objects.create_user(username=username, email=username, password=password,
                                                first_name=new_contact.first_name, last_name=new_contact.last_name)
                PortalUser.objects.create(user=user, contact=new_contact)
                _event(account, AccountEvent.Kind.PORTAL_ACCESS_GRANTED, performed_by=performed_by, channel=channel)
    except IntegrityError as error:  # a concurrent sign-up took the same login
        raise ValidationFailed(
            "The customer could not be signed up.", fields={"email": ["A portal login with this e-mail already exists."]}
        ) from error
    return account


def contact_update(*, contact: Contact, data: dict[str, Any], performed_by=None, channel: str = Channel.CALL_CENTER) -> Contact:
    """Change contact details; validated as a whole, audited on each of the contact's accounts."""
    unknown = set(data) - set(CONTACT_FIELDS)
    if unknown:
        raise ValidationFailed("Unknown contact fields.", fields={name: ["Unknown field."] for name in sorted(unknown)})
    with transaction.atomic():
        locked = Contact.objects.select_for_update().get(pk=contact.pk)
        before = {name: getattr(locked, name) for name in CONTACT_FIELDS}
        for name, value in data.items():
            setattr(locked, name, value)
        errors: dict[str, list[str]] = {}
        model_errors(locked, errors)
        portal_user = PortalUser.objects.select_related("user").filter(contact=locked).first()
        if portal_user and locked.email != portal_user.user.username:
            if not locked.email:
                errors.setdefault("email", []).append("A customer with portal access needs an e-mail address.")
            elif User.objects.filter(username__iexact=locked.email).exclude(pk=portal_user.user_id).exists():
                errors.setdefault("email", []).append("A portal login with this e-mail already exists.")
        if errors:
            raise ValidationFailed("The contact could not be updated.", fields=errors)
        changes = {name: [before[name], getattr(locked, name)] for name in CONTACT_FIELDS if before[name] != getattr(locked, name)}
        if not changes:
            return locked
        locked.save()
        if portal_user and "email" in changes:
            portal_user.user.username = portal_user.user.email = locked.email
            portal_user.user.save(update_fields=["username", "email"])
        for account in locked.accounts.all():
            _event(account, AccountEvent.Kind.CONTACT_UPDATED, performed_by=performed_by, channel=channel, changes=changes)
    return locked


def address_save(
    *, contact: Contact, data: dict[str, Any], address: Address | None = None, performed_by=None, channel: str = Channel.CALL_CENTER
) -> Address:
    """Add an address to a contact, or change one of its addresses (one per kind)."""
    with transaction.atomic():
        target = address or Address(contact=contact)
        if target.contact_id != contact.pk:
            raise PermissionDenied("The address belongs to another contact.")
        before = {name: getattr(target, name) for name in ADDRESS_FIELDS}
        for name, value in data.items():
            if name in ADDRESS_FIELDS:
                setattr(target, name, value)
        errors: dict[str, list[str]] = {}
        model_errors(target, errors, exclude=["contact"])
        duplicate = Address.objects.filter(contact=contact, kind=target.kind).exclude(pk=target.pk).exists()
        if duplicate:
            errors.setdefault("kind", []).append(f"The contact already has a {target.get_kind_display().lower()} address.")
        if errors:
            raise ValidationFailed("The address is not valid.", fields=errors)
        target.save()
        changes = {f"address.{n}": [before[n], getattr(target, n)] for n in ADDRESS_FIELDS if before[n] != getattr(target, n)}
        for account in contact.accounts.all():
            _event(account, AccountEvent.Kind.CONTACT_UPDATED, performed_by=performed_by, channel=channel, changes=changes)
    return target


def address_delete(*, address: Address, performed_by=None, channel: str = Channel.CALL_CENTER) -> None:
    with transaction.atomic():
        contact = address.contact
        changes = {f"address.{address.kind}": [str(address), None]}
        address.delete()
        for account in contact.accounts.all():
            _event(account, AccountEvent.Kind.CONTACT_UPDATED, performed_by=performed_by, channel=channel, changes=changes)


ACCOUNT_EDITABLE_FIELDS = ("classification", "credit_limit")


def account_update(
    *, account: AccountsReceivable, data: dict[str, Any], performed_by=None, channel: str = Channel.CALL_CENTER
) -> AccountsReceivable:
    """Change an account's classification or credit limit. The currency is fixed at sign-up."""
    if "currency" in data:
        raise ValidationFailed("The currency of an account cannot change.", fields={"currency": ["Fixed at sign-up."]})
    unknown = set(data) - set(ACCOUNT_EDITABLE_FIELDS)
    if unknown:
        raise ValidationFailed("These fields cannot be changed here.", fields={name: ["Not editable."] for name in sorted(unknown)})
    with transaction.atomic():
        locked = AccountsReceivable.objects.select_for_update().get(pk=account.pk)
        if locked.state == AccountsReceivable.State.TERMINATED:
            raise ApplicationError("A terminated account cannot be changed.", code="account_terminated")
        before = {name: getattr(locked, name) for name in ACCOUNT_EDITABLE_FIELDS}
        for name, value in data.items():
            if name == "classification":
                value = _classification_resolve(value) if value else None
                if value is None:
                    raise ValidationFailed("Unknown classification.", fields={"classification": ["No such classification."]})
            setattr(locked, name, value)
        errors: dict[str, list[str]] = {}
        model_errors(locked, errors, exclude=["contact", "number"])
        if errors:
            raise ValidationFailed("The account could not be updated.", fields=errors)
        changes = {
            name: [str(before[name]), str(getattr(locked, name))]
            for name in ACCOUNT_EDITABLE_FIELDS
            if before[name] != getattr(locked, name)
        }
        if changes:
            locked.save()
            _event(locked, AccountEvent.Kind.UPDATED, performed_by=performed_by, channel=channel, changes=changes)
            if "classification" in changes:
                account_change_provision(account=locked, cause="ACCOUNT_UPDATE")
    return locked


def _account_transition(
    *, account: AccountsReceivable, action: str, event_kind: str, reason: str, performed_by, channel: str
) -> AccountsReceivable:
    with transaction.atomic():
        locked = AccountsReceivable.objects.select_for_update().get(pk=account.pk)
        previous = locked.state
        locked.state = AccountsReceivable.LIFECYCLE.target(action, previous)
        locked.state_changed_at = timezone.now()
        locked.save(update_fields=["state", "state_changed_at", "updated_at"])
        _event(locked, event_kind, performed_by=performed_by, channel=channel,
               from_state=previous, to_state=locked.state, reason=reason)
        account_change_provision(account=locked, cause=f"ACCOUNT_{action.upper()}")  # tell the platform (the outbox)
    return locked


def account_suspend(*, account: AccountsReceivable, reason: str = "", performed_by=None, channel: str = Channel.CALL_CENTER) -> AccountsReceivable:
    """ACTIVE → SUSPENDED: the customer keeps their data but may not order."""
    return _account_transition(account=account, action="suspend", event_kind=AccountEvent.Kind.SUSPENDED,
                               reason=reason, performed_by=performed_by, channel=channel)


def account_reactivate(*, account: AccountsReceivable, reason: str = "", performed_by=None, channel: str = Channel.CALL_CENTER) -> AccountsReceivable:
    """SUSPENDED → ACTIVE."""
    return _account_transition(account=account, action="reactivate", event_kind=AccountEvent.Kind.REACTIVATED,
                               reason=reason, performed_by=performed_by, channel=channel)


def account_terminate(*, account: AccountsReceivable, reason: str, performed_by=None, channel: str = Channel.CALL_CENTER) -> AccountsReceivable:
    """ACTIVE or SUSPENDED → TERMINATED (the customer cancels). Final.

    Device credentials are revoked; the portal login stays so the customer can still see
    their invoices and pay what they owe.
    """
    if not (reason or "").strip():
        raise ValidationFailed("Say why the account is terminated.", fields={"reason": ["This field is required."]})
    with transaction.atomic():
        terminated = _account_transition(account=account, action="terminate", event_kind=AccountEvent.Kind.TERMINATED,
                                         reason=reason.strip(), performed_by=performed_by, channel=channel)
        DeviceCredential.objects.filter(account=terminated, revoked_at__isnull=True).update(revoked_at=timezone.now())
    return terminated


# --- Portal sessions -------------------------------------------------------------------

def portal_login(*, username: str, password: str, request=None) -> Token:
    """Check a customer's credentials and return their API token (one per user)."""
    user = authenticate(request, username=(username or "").strip().lower(), password=password or "")
    if user is None or not hasattr(user, "portal_user"):
        # Same answer for unknown e-mail, wrong password and staff logins: reveal nothing.
        raise ApplicationError("The e-mail or password is not correct.", code="invalid_credentials")
    token, _created = Token.objects.get_or_create(user=user)
    return token


def portal_logout(*, user) -> None:
    Token.objects.filter(user=user).delete()


# --- Device credentials ----------------------------------------------------------------

def device_credential_issue(
    *, account: AccountsReceivable, label: str, performed_by=None, channel: str = Channel.CALL_CENTER
) -> tuple[DeviceCredential, str]:
    """Create a credential; the raw key is returned once and never stored."""
    if not (label or "").strip():
        raise ValidationFailed("Name the device.", fields={"label": ["This field is required."]})
    raw_key = secrets.token_urlsafe(32)
    with transaction.atomic():
        account = AccountsReceivable.objects.select_for_update().get(pk=account.pk)
        if account.state == AccountsReceivable.State.TERMINATED:
            raise ApplicationError("A terminated account cannot register devices.", code="account_terminated")
        credential = DeviceCredential.objects.create(
            account=account, label=label.strip()[:100], key_prefix=raw_key[: DeviceCredential.PREFIX_LENGTH], key_hash=DeviceCredential.hash_key(raw_key)
        )
        _event(account, AccountEvent.Kind.DEVICE_CREDENTIAL_ISSUED, performed_by=performed_by, channel=channel,
               changes={"device": [None, str(credential)]})
    return credential, raw_key


def device_credential_revoke(*, credential: DeviceCredential, performed_by=None, channel: str = Channel.CALL_CENTER) -> DeviceCredential:
    with transaction.atomic():
        updated = DeviceCredential.objects.filter(pk=credential.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        credential.refresh_from_db()
        if updated:
            _event(credential.account, AccountEvent.Kind.DEVICE_CREDENTIAL_REVOKED, performed_by=performed_by,
                   channel=channel, changes={"device": [str(credential), None]})
    return credential


def device_credential_touch(*, credential: DeviceCredential) -> None:
    """Record use, at most once a minute, so authentication does not write on every request."""
    now = timezone.now()
    if credential.last_used_at is None or (now - credential.last_used_at).total_seconds() > 60:
        DeviceCredential.objects.filter(pk=credential.pk).update(last_used_at=now)
        credential.last_used_at = now
