"""Reads of customer data. Portal reads are always scoped to the caller's own contact."""

from __future__ import annotations

import hmac
import re

from django.db.models import Q, QuerySet

from core.exceptions import NotFound

from .models import AccountEvent, AccountsReceivable, Address, Contact, DeviceCredential
from .validators import phone_search_prefix

ACCOUNT_NUMBER = re.compile(r"AR\d{4,}", re.IGNORECASE)


def customer_search(*, query: str, queryset: QuerySet[AccountsReceivable] | None = None) -> QuerySet[AccountsReceivable]:
    """Find customer accounts the way an agent types: account number, name, e-mail or phone.

    Every branch is an index lookup (PostgreSQL indexes in migration 0002): an account
    number exactly; names and e-mail by case-insensitive prefix; phones by E.164 prefix.
    Contacts are matched first and accounts joined by ``contact_id``, so the planner can
    combine the contact indexes; there are no ``%term%`` scans.
    """
    queryset = AccountsReceivable.objects.all() if queryset is None else queryset
    terms = " ".join((query or "").split())
    if not terms:
        return queryset
    if ACCOUNT_NUMBER.fullmatch(terms):
        return queryset.filter(number=terms.upper())
    if "@" in terms:
        condition = Q(email__startswith=terms.lower())
    else:
        words = terms.split(" ")
        condition = Q(last_name__istartswith=terms) | Q(first_name__istartswith=terms) | Q(company_name__istartswith=terms)
        if len(words) >= 2:  # "maria georgiou" or "georgiou maria"
            first, rest = words[0], " ".join(words[1:])
            condition |= Q(first_name__istartswith=first, last_name__istartswith=rest)
            condition |= Q(last_name__istartswith=first, first_name__istartswith=rest)
        phone_prefix = phone_search_prefix(terms)
        if phone_prefix:
            condition |= Q(phone__startswith=phone_prefix) | Q(mobile_phone__startswith=phone_prefix)
    return queryset.filter(contact__in=Contact.objects.filter(condition).values("pk"))


def account_list_for_user(*, user) -> QuerySet[AccountsReceivable]:
    return AccountsReceivable.objects.filter(contact__portal_user__user=user).select_related("classification", "contact")


def account_primary_for_user(*, user) -> AccountsReceivable | None:
    """The account a portal user acts on by default: the one opened at sign-up (the oldest)."""
    return account_list_for_user(user=user).order_by("created_at", "pk").first()


def account_get_for_user(*, user, number: str) -> AccountsReceivable:
    account = account_list_for_user(user=user).filter(number=number).first()
    if account is None:
        raise NotFound("No such account.")
    return account


def contact_get_for_user(*, user) -> Contact:
    contact = Contact.objects.filter(portal_user__user=user).prefetch_related("addresses").first()
    if contact is None:
        raise NotFound("This login has no customer profile.")
    return contact


def address_list_for_user(*, user) -> QuerySet[Address]:
    return Address.objects.filter(contact__portal_user__user=user)


def account_events(*, account: AccountsReceivable, limit: int | None = 50) -> QuerySet[AccountEvent]:
    events = account.events.select_related("performed_by")
    return events if limit is None else events[:limit]


def device_credential_get_by_key(*, raw_key: str) -> DeviceCredential | None:
    """The active credential for a raw device key, or None. Constant-time hash comparison."""
    credential = (
        DeviceCredential.objects.select_related("account", "device")  # the device's screen: entitlement checks need it
        .filter(key_prefix=raw_key[: DeviceCredential.PREFIX_LENGTH], revoked_at__isnull=True)
        .first()
    )
    if credential is None or not hmac.compare_digest(credential.key_hash, DeviceCredential.hash_key(raw_key)):
        return None
    return credential
