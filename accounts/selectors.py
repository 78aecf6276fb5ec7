"""Reads of customer data. Portal reads are always scoped to the caller's own contact."""

from __future__ import annotations

import functools
import hmac
import re

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from rest_framework.authtoken.models import Token

from core.exceptions import NotFound
from core.refcache import fetch_one_reading_versions
from core.sql import fetch_all, fetch_one, instance_from_row, select_columns, split_row

from .models import AccountEvent, AccountsReceivable, Address, Classification, Contact, DeviceCredential, PortalUser
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
    """The account a portal user acts on by default: the one opened at sign-up (the oldest).
    A read-only request has it from authentication (``user_get_by_token``)."""
    if hasattr(user, "_primary_account"):
        return user._primary_account
    # Every order a customer places asks this: one prepared query (``core.sql``).
    row = fetch_one(_primary_account_sql(), [user.pk])
    if row is None:
        return None
    account, classification, contact = split_row(row, [AccountsReceivable, Classification, Contact])
    AccountsReceivable._meta.get_field("classification").set_cached_value(account, classification)
    AccountsReceivable._meta.get_field("contact").set_cached_value(account, contact)
    return account


@functools.cache
def _primary_account_sql() -> str:
    """``account_list_for_user(user).order_by("created_at", "pk").first()``, hand-written."""
    return (f"SELECT {select_columns(AccountsReceivable, 'a')}, {select_columns(Classification, 'cl')}, "
            f"{select_columns(Contact, 'ct')} FROM {AccountsReceivable._meta.db_table} a "
            f"JOIN {PortalUser._meta.db_table} p ON p.contact_id = a.contact_id "
            f"JOIN {Contact._meta.db_table} ct ON ct.id = a.contact_id "
            f"LEFT JOIN {Classification._meta.db_table} cl ON cl.id = a.classification_id "
            "WHERE p.user_id = %s ORDER BY a.created_at, a.id LIMIT 1")


def account_get_for_user(*, user, number: str) -> AccountsReceivable:
    account = account_list_for_user(user=user).filter(number=number).first()
    if account is None:
        raise NotFound("No such account.")
    return account


def contact_get_for_user(*, user) -> Contact:
    """The portal user's contact with its addresses and its accounts (each with its
    classification) loaded, as ``prefetch_related`` would: what ``/me/`` shows. Three
    hand-written, prepared statements (``core.sql``); the ORM's three cost ~2 ms of
    Python to build on every visit."""
    row = fetch_one(_contact_sql(), [user.pk])
    if row is None:
        raise NotFound("This login has no customer profile.")
    contact = instance_from_row(Contact, row)
    addresses = [instance_from_row(Address, values) for values in fetch_all(_addresses_sql(), [contact.pk])]
    accounts = []
    for values in fetch_all(_accounts_sql(), [contact.pk]):
        account, classification = split_row(values, [AccountsReceivable, Classification])
        AccountsReceivable._meta.get_field("classification").set_cached_value(account, classification)
        AccountsReceivable._meta.get_field("contact").set_cached_value(account, contact)
        accounts.append(account)
    for address in addresses:
        Address._meta.get_field("contact").set_cached_value(address, contact)
    _prefetched(contact, "addresses", addresses)
    _prefetched(contact, "accounts", accounts)
    return contact


def _prefetched(instance, related_name: str, objects: list) -> None:
    """Store ``objects`` as ``instance.<related_name>.all()``, the way ``prefetch_related``
    does, so reading them makes no query."""
    queryset = getattr(instance, related_name).all()
    queryset._result_cache, queryset._prefetch_done = objects, True
    instance._prefetched_objects_cache = {**getattr(instance, "_prefetched_objects_cache", {}), related_name: queryset}


@functools.cache
def _contact_sql() -> str:
    return (f"SELECT {select_columns(Contact, 'c')} FROM {Contact._meta.db_table} c "
            f"JOIN {PortalUser._meta.db_table} p ON p.contact_id = c.id WHERE p.user_id = %s")


@functools.cache
def _addresses_sql() -> str:
    return f"SELECT {select_columns(Address, 'ad')} FROM {Address._meta.db_table} ad WHERE ad.contact_id = %s ORDER BY ad.id"


@functools.cache
def _accounts_sql() -> str:
    # The accounts' own ordering (newest first), made total by the id.
    return (f"SELECT {select_columns(AccountsReceivable, 'a')}, {select_columns(Classification, 'cl')} "
            f"FROM {AccountsReceivable._meta.db_table} a LEFT JOIN {Classification._meta.db_table} cl ON cl.id = a.classification_id "
            "WHERE a.contact_id = %s ORDER BY a.created_at DESC, a.id DESC")


def address_list_for_user(*, user) -> QuerySet[Address]:
    return Address.objects.filter(contact__portal_user__user=user)


def account_events(*, account: AccountsReceivable, limit: int | None = 50) -> QuerySet[AccountEvent]:
    events = account.events.select_related("performed_by")
    return events if limit is None else events[:limit]


def device_credential_get_by_key(*, raw_key: str) -> DeviceCredential | None:
    """The active credential for a raw device key, or None. Constant-time hash comparison.

    Its account and its device (the screen: entitlement checks need it) come in the same
    query. Every device request authenticates, so the query is hand-written
    (``core.sql``): the ORM's ``select_related`` cost ~1 ms of Python per request to build.
    Device requests look titles up next (a check, a stream start), so in a read-only
    request the reference versions come in the same round trip.
    """
    row = fetch_one_reading_versions(_credential_by_prefix_sql(), [raw_key[: DeviceCredential.PREFIX_LENGTH]])
    if row is None:
        return None
    device_model = _device_model()
    credential, account, device = split_row(row, [DeviceCredential, AccountsReceivable, device_model])
    if not hmac.compare_digest(credential.key_hash, DeviceCredential.hash_key(raw_key)):
        return None
    credential.account = account
    # Both directions cached, so neither ``credential.device`` nor ``device.credential`` queries again.
    DeviceCredential.device.related.set_cached_value(credential, device)
    if device is not None:
        device_model._meta.get_field("credential").set_cached_value(device, credential)
    return credential


def user_get_by_token(*, key: str, with_account: bool = False):
    """The user holding the API token ``key`` (its ``auth_token`` and ``portal_user`` loaded:
    the portal identity, or None for staff), or None for an unknown key. One query.

    ``with_account`` loads the portal user's primary account (with its classification and
    contact) in the same query, and ``account_primary_for_user`` answers from it: for a
    read-only request, whose account cannot change under it.
    """
    row = fetch_one(_user_by_token_sql(with_account), [key])
    if row is None:
        return None
    parts = iter(split_row(row, [Token, get_user_model(), PortalUser] + ([AccountsReceivable, Classification, Contact] if with_account else [])))
    token, user, portal_user = next(parts), next(parts), next(parts)
    token_user = Token._meta.get_field("user")
    token_user.set_cached_value(token, user)
    token_user.remote_field.set_cached_value(user, token)
    PortalUser._meta.get_field("user").remote_field.set_cached_value(user, portal_user)
    if portal_user is not None:
        PortalUser._meta.get_field("user").set_cached_value(portal_user, user)
    if with_account:
        account, classification, contact = next(parts), next(parts), next(parts)
        if account is not None:
            AccountsReceivable._meta.get_field("classification").set_cached_value(account, classification)
            AccountsReceivable._meta.get_field("contact").set_cached_value(account, contact)
        user._primary_account = account
    return user


@functools.cache
def _user_by_token_sql(with_account: bool) -> str:
    user_model = get_user_model()
    columns = [select_columns(Token, "t"), select_columns(user_model, "u"), select_columns(PortalUser, "p")]
    joins = [f"JOIN {user_model._meta.db_table} u ON u.id = t.user_id",
             f"LEFT JOIN {PortalUser._meta.db_table} p ON p.user_id = u.id"]
    if with_account:
        accounts = AccountsReceivable._meta.db_table
        columns += [select_columns(AccountsReceivable, "a"), select_columns(Classification, "cl"), select_columns(Contact, "ct")]
        joins += [
            # account_primary_for_user's rule: the contact's oldest account
            f"LEFT JOIN {accounts} a ON a.id = (SELECT oldest.id FROM {accounts} oldest "
            "WHERE oldest.contact_id = p.contact_id ORDER BY oldest.created_at, oldest.id LIMIT 1)",
            f"LEFT JOIN {Classification._meta.db_table} cl ON cl.id = a.classification_id",
            f"LEFT JOIN {Contact._meta.db_table} ct ON ct.id = a.contact_id",
        ]
    return f"SELECT {', '.join(columns)} FROM {Token._meta.db_table} t {' '.join(joins)} WHERE t.key = %s"


def _device_model():
    return DeviceCredential.device.related.related_model


@functools.cache
def _credential_by_prefix_sql() -> str:
    device_model = _device_model()
    device_credential = device_model._meta.get_field("credential").column
    return (
        f"SELECT {select_columns(DeviceCredential, 'c')}, {select_columns(AccountsReceivable, 'a')}, "
        f"{select_columns(device_model, 'd')} "
        f"FROM {DeviceCredential._meta.db_table} c "
        f"JOIN {AccountsReceivable._meta.db_table} a ON a.id = c.account_id "
        f"LEFT JOIN {device_model._meta.db_table} d ON d.{device_credential} = c.id "
        "WHERE c.key_prefix = %s AND c.revoked_at IS NULL"
    )
