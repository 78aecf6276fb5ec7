"""Reads behind orders: which subscription an order goes to, and a customer's orders."""

from __future__ import annotations

import functools

from accounts.models import AccountsReceivable
from billing.models import UsageDetailRecord
from catalogs.models import ContentTitle, Product
from core.exceptions import ApplicationError
from core.sql import RowPages, fetch_one, instance_from_row, select_columns, split_row

from .models import Rental, Subscription


def subscription_for_orders(*, account: AccountsReceivable, number: str | None = None) -> Subscription:
    """The subscription an order is placed on: the one named, else the account's oldest
    EFFECTIVE subscription (else its oldest open one, so the order is refused with the
    subscription's state as the reason)."""
    if number:
        subscription = Subscription.objects.filter(account=account, number=number).first()
        if subscription is None:
            raise ApplicationError(f"No subscription {number} on this account.", code="not_found")
    else:
        # Every order without a subscription number asks this: one prepared query.
        row = fetch_one(_order_subscription_sql(), [account.pk, Subscription.State.CANCELLED, Subscription.State.EFFECTIVE])
        if row is None:
            raise ApplicationError("This account has no subscription to order on.", code="no_subscription")
        subscription = instance_from_row(Subscription, row)
    Subscription._meta.get_field("account").set_cached_value(subscription, account)
    return subscription


@functools.cache
def _order_subscription_sql() -> str:
    """The oldest EFFECTIVE subscription of the account, else its oldest one not CANCELLED."""
    return (f"SELECT {select_columns(Subscription, 's')} FROM {Subscription._meta.db_table} s "
            "WHERE s.account_id = %s AND s.state <> %s ORDER BY s.state = %s DESC, s.created_at, s.id LIMIT 1")


def order_list_for_account(*, account: AccountsReceivable) -> RowPages:
    """The account's orders, newest first, each with its product, title, subscription and
    rental loaded: a page of them for the portal's list (``RowPages``).

    The portal lists orders on every visit, so the two statements (count, page) are
    hand-written and prepared (``core.sql``): the ORM spent ~2 ms of Python building them."""
    return RowPages(count_sql=_order_count_sql(), page_sql=_order_page_sql(), params=[account.pk, ORDER_SOURCE],
                    build=_order_from_row)


ORDER_SOURCE = "ORDER"
_ORDER_MODELS = (UsageDetailRecord, Product, ContentTitle, Subscription, Rental)


@functools.cache
def _order_count_sql() -> str:
    return f"SELECT count(*) FROM {UsageDetailRecord._meta.db_table} u WHERE u.account_id = %s AND u.source = %s"


def order_get(*, pk: int) -> UsageDetailRecord:
    """One order's usage record with what showing it needs (product, title, subscription,
    rental), in one prepared query: every order placed is answered with it."""
    return _order_from_row(fetch_one(_order_one_sql(), [pk]))


@functools.cache
def _order_select() -> str:
    columns = ", ".join(select_columns(model, alias) for model, alias in zip(_ORDER_MODELS, ("u", "p", "t", "s", "r")))
    return (
        f"SELECT {columns} FROM {UsageDetailRecord._meta.db_table} u "
        f"JOIN {Product._meta.db_table} p ON p.id = u.product_id "
        f"LEFT JOIN {ContentTitle._meta.db_table} t ON t.id = u.title_id "
        f"LEFT JOIN {Subscription._meta.db_table} s ON s.id = u.subscription_id "
        f"LEFT JOIN {Rental._meta.db_table} r ON r.udr_id = u.id "
    )


@functools.cache
def _order_page_sql() -> str:
    return _order_select() + "WHERE u.account_id = %s AND u.source = %s ORDER BY u.usage_at DESC, u.id DESC LIMIT %s OFFSET %s"


@functools.cache
def _order_one_sql() -> str:
    return _order_select() + "WHERE u.id = %s"


def _order_from_row(row) -> UsageDetailRecord:
    udr, product, title, subscription, rental = split_row(row, _ORDER_MODELS)
    meta = UsageDetailRecord._meta
    meta.get_field("product").set_cached_value(udr, product)
    meta.get_field("title").set_cached_value(udr, title)
    meta.get_field("subscription").set_cached_value(udr, subscription)
    Rental._meta.get_field("udr").remote_field.set_cached_value(udr, rental)  # None: no rental (no query for it)
    if rental is not None:
        Rental._meta.get_field("udr").set_cached_value(rental, udr)
    return udr
