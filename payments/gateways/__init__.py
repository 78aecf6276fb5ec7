"""The payment gateway interface. Services talk to ``gateway_get()``, never to Stripe
directly, so a second gateway is one more adapter implementing ``Gateway``.

Every call that creates something at the gateway takes an ``idempotency_key`` built from
our own row, written (and committed) before the call: a retry after a timeout sends the
same key and the gateway returns the first result instead of charging twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from core.exceptions import ApplicationError


class GatewayError(ApplicationError):
    """The gateway could not be reached or refused the request for a reason other than a
    declined card (which is a result, not an error). The API answers 502."""

    code = "gateway_error"
    http_status = 502


@dataclass(frozen=True)
class SetupResult:
    setup_intent_id: str
    client_secret: str


@dataclass(frozen=True)
class CardDetails:
    """What we may keep about a card: the gateway's id and what is shown to people."""

    method_id: str
    brand: str
    last4: str
    exp_month: int | None
    exp_year: int | None


@dataclass(frozen=True)
class SetupStatus:
    status: str  # "succeeded", "requires_action", "requires_payment_method", "canceled", ...
    card: CardDetails | None


@dataclass(frozen=True)
class ChargeResult:
    status: str  # "succeeded", "requires_action", "processing", "failed"
    payment_id: str | None
    charge_id: str | None = None
    client_secret: str = ""
    failure_reason: str = ""


@dataclass(frozen=True)
class RefundResult:
    refund_id: str
    status: str  # "succeeded", "pending", "failed"


class Gateway(Protocol):
    name: str

    def customer_create(self, *, account_number: str, email: str, idempotency_key: str) -> str: ...

    def setup_intent_create(self, *, customer_id: str, idempotency_key: str) -> SetupResult: ...

    def setup_intent_get(self, *, setup_intent_id: str) -> SetupStatus: ...

    def charge(self, *, customer_id: str, method_id: str, amount: Decimal, currency: str, idempotency_key: str,
               metadata: dict[str, str]) -> ChargeResult: ...

    def refund(self, *, payment_id: str, amount: Decimal, currency: str, idempotency_key: str) -> RefundResult: ...


def gateway_get() -> Gateway:
    from .stripe import StripeGateway

    return StripeGateway()
