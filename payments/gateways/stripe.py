"""The Stripe adapter: customers, SetupIntents (save a card), PaymentIntents (charge a
saved card off-session), refunds.

The API version is pinned (``settings.STRIPE_API_VERSION``) and the base address is a
setting (tests point it at localstripe). Amounts cross this boundary in minor units and
nowhere else. Card numbers never pass through here: the customer types them into
Stripe's element, and we only ever see Stripe's ids and display details.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import stripe
from django.conf import settings

from . import CardDetails, ChargeResult, GatewayError, RefundResult, SetupResult, SetupStatus

ZERO_DECIMAL_CURRENCIES = frozenset({"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND",
                                     "VUV", "XAF", "XOF", "XPF"})


def to_minor_units(amount: Decimal, currency: str) -> int:
    exponent = 0 if currency.upper() in ZERO_DECIMAL_CURRENCIES else 2
    return int((amount * (10 ** exponent)).quantize(Decimal("1"), rounding=ROUND_HALF_UP))


def from_minor_units(amount: int, currency: str) -> Decimal:
    exponent = 0 if currency.upper() in ZERO_DECIMAL_CURRENCIES else 2
    return (Decimal(amount) / (10 ** exponent)).quantize(Decimal("0.01"))


def stripe_client() -> stripe.StripeClient:
    return stripe.StripeClient(
        settings.STRIPE_SECRET_KEY,
        stripe_version=settings.STRIPE_API_VERSION,
        base_addresses={"api": settings.STRIPE_API_BASE},
        max_network_retries=2,  # safe: every create carries an idempotency key
        # The library waits 80 s per attempt by default: with the retries a Stripe that
        # accepts connections and never answers would hold a web worker for four minutes.
        http_client=stripe.new_default_http_client(timeout=settings.STRIPE_TIMEOUT_SECONDS),
    )


class StripeGateway:
    name = "stripe"

    def __init__(self, client: stripe.StripeClient | None = None):
        self.client = client or stripe_client()

    def customer_create(self, *, account_number: str, email: str, idempotency_key: str) -> str:
        try:
            params = {"metadata": {"account": account_number}, **({"email": email} if email else {})}
            customer = self.client.v1.customers.create(params=params, options={"idempotency_key": idempotency_key})
        except stripe.StripeError as error:
            raise GatewayError(f"Stripe refused to create the customer: {error.user_message or error}") from error
        return customer.id

    def setup_intent_create(self, *, customer_id: str, idempotency_key: str) -> SetupResult:
        try:
            intent = self.client.v1.setup_intents.create(
                params={"customer": customer_id, "usage": "off_session", "payment_method_types": ["card"]},
                options={"idempotency_key": idempotency_key})
        except stripe.StripeError as error:
            raise GatewayError(f"Stripe refused the card set-up: {error.user_message or error}") from error
        return SetupResult(setup_intent_id=intent.id, client_secret=intent.client_secret)

    def setup_intent_get(self, *, setup_intent_id: str) -> SetupStatus:
        try:
            intent = self.client.v1.setup_intents.retrieve(setup_intent_id)
            if intent.status != "succeeded" or not intent.payment_method:
                return SetupStatus(status=intent.status, card=None)
            method_id = intent.payment_method if isinstance(intent.payment_method, str) else intent.payment_method.id
            method = self.client.v1.payment_methods.retrieve(method_id)
        except stripe.StripeError as error:
            raise GatewayError(f"Stripe could not be asked about the card: {error.user_message or error}") from error
        card = method.card
        return SetupStatus(status="succeeded", card=CardDetails(
            method_id=method.id, brand=card.brand or "", last4=card.last4 or "", exp_month=card.exp_month, exp_year=card.exp_year))

    def charge(self, *, customer_id: str, method_id: str, amount: Decimal, currency: str, idempotency_key: str,
               metadata: dict[str, str]) -> ChargeResult:
        params = {"amount": to_minor_units(amount, currency), "currency": currency.lower(), "customer": customer_id,
                  "payment_method": method_id, "confirm": True, "off_session": True, "metadata": metadata}
        try:
            intent = self.client.v1.payment_intents.create(params=params, options={"idempotency_key": idempotency_key})
        except stripe.CardError as error:
            details = error.error
            intent_id = getattr(getattr(details, "payment_intent", None), "id", None) if details else None
            return ChargeResult(status="failed", payment_id=intent_id, charge_id=getattr(details, "charge", None),
                                failure_reason=error.user_message or str(error))
        except stripe.StripeError as error:
            raise GatewayError(f"Stripe could not take the payment: {error.user_message or error}") from error
        return _charge_result(intent)

    def refund(self, *, payment_id: str, amount: Decimal, currency: str, idempotency_key: str) -> RefundResult:
        try:
            refund = self.client.v1.refunds.create(
                params={"payment_intent": payment_id, "amount": to_minor_units(amount, currency)},
                options={"idempotency_key": idempotency_key})
        except stripe.StripeError as error:
            raise GatewayError(f"Stripe refused the refund: {error.user_message or error}") from error
        return RefundResult(refund_id=refund.id, status=refund.status or "pending")


def _charge_result(intent) -> ChargeResult:
    data = intent.to_dict()
    charge = data.get("latest_charge")
    charge_id = charge.get("id") if isinstance(charge, dict) else charge
    status = data.get("status")
    if status == "succeeded":
        return ChargeResult(status="succeeded", payment_id=data["id"], charge_id=charge_id)
    if status == "requires_action":
        return ChargeResult(status="requires_action", payment_id=data["id"], client_secret=data.get("client_secret") or "")
    if status == "processing":
        return ChargeResult(status="processing", payment_id=data["id"], charge_id=charge_id)
    error = data.get("last_payment_error") or {}
    return ChargeResult(status="failed", payment_id=data["id"], charge_id=charge_id,
                        failure_reason=error.get("message") or f"Stripe says {status}.")
