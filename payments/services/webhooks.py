"""Stripe webhook events: verified, stored once by id, handled in any order.

``webhook_receive`` checks the signature and timestamp with ``stripe.Webhook.construct_event``
(a bad one raises ``WebhookRejected``: the view answers 400 and nothing is written). A
known event id is a redelivery: nothing happens. Otherwise the handler for its type runs —
each handler calls an idempotent, order-independent service — and the event is stored
with what came of it. An unexpected error stores nothing, so Stripe delivers it again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import stripe
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q

from core.exceptions import ApplicationError

from ..gateways import GatewayError
from ..gateways.stripe import from_minor_units
from ..models import Chargeback, Payment, PaymentMethod, Refund, WebhookEvent
from .adjustments import chargeback_close, chargeback_open, refund_gateway_result_apply
from .collection import payment_gateway_result_apply
from .methods import card_setup_complete

logger = logging.getLogger(__name__)


class WebhookRejected(ApplicationError):
    code = "webhook_rejected"
    http_status = 400


def webhook_receive(*, payload: bytes, signature: str | None) -> WebhookEvent:
    try:
        stripe.Webhook.construct_event(payload, signature, settings.STRIPE_WEBHOOK_SECRET,
                                       tolerance=settings.STRIPE_WEBHOOK_TOLERANCE_SECONDS)
    except (stripe.SignatureVerificationError, ValueError) as error:
        raise WebhookRejected(f"The webhook is not from Stripe or is too old: {error}") from None
    event = json.loads(payload)
    existing = WebhookEvent.objects.filter(event_id=event["id"]).first()
    if existing is not None:
        return existing
    handler = HANDLERS.get(event.get("type", ""))
    status, detail = WebhookEvent.Status.IGNORED, "No handler for this event type."
    if handler is not None:
        try:
            detail = handler(event["data"]["object"])
            status = WebhookEvent.Status.PROCESSED if detail else WebhookEvent.Status.IGNORED
            detail = detail or "Nothing of ours concerns it."
        except GatewayError:
            raise  # Stripe unreachable: store nothing, answer 500, Stripe delivers the event again
        except ApplicationError as error:  # a domain refusal is final; retrying would not help
            status, detail = WebhookEvent.Status.FAILED, str(error)
    try:
        with transaction.atomic():
            return WebhookEvent.objects.create(event_id=event["id"], type=event.get("type", ""), payload=event, status=status,
                                               detail=detail[:500])
    except IntegrityError:  # delivered twice at once; the handlers are idempotent
        return WebhookEvent.objects.get(event_id=event["id"])


def _payment_for(obj: dict) -> Payment | None:
    """Our payment for a PaymentIntent/charge/dispute: by Stripe id, else by the payment
    id we put in the intent's metadata (a declined charge returns no intent id)."""
    ids = Q()
    intent_id = obj.get("payment_intent") if obj.get("object") != "payment_intent" else obj.get("id")
    if intent_id:
        ids |= Q(gateway_payment_id=intent_id)
    charge_id = obj.get("charge") if obj.get("object") != "charge" else obj.get("id")
    if charge_id:
        ids |= Q(gateway_charge_id=charge_id)
    payment = Payment.objects.filter(ids).first() if ids else None
    reference = (obj.get("metadata") or {}).get("payment")
    if payment is None and reference and str(reference).isdigit():
        payment = Payment.objects.filter(pk=int(reference), kind="CARD").first()
    return payment


def _intent_succeeded(intent: dict) -> str:
    payment = _payment_for(intent)
    if payment is None:
        return ""
    charge = intent.get("latest_charge")
    payment = payment_gateway_result_apply(payment=payment, status="succeeded", gateway_payment_id=intent["id"],
                                           charge_id=charge.get("id") if isinstance(charge, dict) else charge)
    return f"Payment {payment.pk} {payment.state}."


def _intent_failed(intent: dict) -> str:
    payment = _payment_for(intent)
    if payment is None:
        return ""
    error = intent.get("last_payment_error") or {}
    payment = payment_gateway_result_apply(payment=payment, status="failed", gateway_payment_id=intent["id"],
                                           failure_reason=error.get("message") or "Declined.")
    return f"Payment {payment.pk} {payment.state}."


def _refund_update(refund: dict) -> str:
    local = Refund.objects.filter(gateway_refund_id=refund["id"]).first()
    if local is None:
        payment = _payment_for(refund)
        if payment is None:
            return ""
        # A refund made in Stripe's dashboard: record it so the ledger knows.
        local = (Refund.objects.filter(payment=payment, state=Refund.State.PENDING, gateway_refund_id__isnull=True,
                                       amount=from_minor_units(refund["amount"], refund["currency"])).first()
                 or Refund.objects.create(payment=payment, amount=from_minor_units(refund["amount"], refund["currency"]),
                                          reason="Refunded in Stripe"))
    local = refund_gateway_result_apply(refund=local, status=refund.get("status") or "pending", gateway_refund_id=refund["id"])
    return f"Refund {local.pk} {local.state}."


def _charge_refunded(charge: dict) -> str:
    refunds = (charge.get("refunds") or {}).get("data") or []
    return " ".join(filter(None, (_refund_update({**refund, "charge": charge["id"],
                                                  "payment_intent": refund.get("payment_intent") or charge.get("payment_intent")})
                                  for refund in refunds)))


def _dispute_created(dispute: dict) -> str:
    payment = _payment_for(dispute)
    if payment is None:
        return ""
    chargeback = chargeback_open(payment=payment, dispute_id=dispute["id"], reason=dispute.get("reason") or "",
                                 amount=from_minor_units(dispute["amount"], dispute["currency"]))
    return f"Chargeback {chargeback.pk} {chargeback.state}."


def _dispute_closed(dispute: dict) -> str:
    chargeback = Chargeback.objects.filter(gateway_dispute_id=dispute["id"]).first()
    if chargeback is None:  # closed arrived before created: open it first
        if not _dispute_created(dispute):
            return ""
        chargeback = Chargeback.objects.get(gateway_dispute_id=dispute["id"])
    if dispute.get("status") not in ("won", "lost"):
        return f"Chargeback {chargeback.pk} still {chargeback.state} (Stripe: {dispute.get('status')})."
    chargeback = chargeback_close(chargeback=chargeback, won=dispute["status"] == "won")
    return f"Chargeback {chargeback.pk} {chargeback.state}."


def _setup_succeeded(intent: dict) -> str:
    if not PaymentMethod.objects.filter(setup_intent_id=intent["id"]).exists():
        return ""
    method = card_setup_complete(setup_intent_id=intent["id"])
    return f"Card {method.pk} {method.state}."


HANDLERS: dict[str, Callable[[dict], str]] = {
    "payment_intent.succeeded": _intent_succeeded,
    "payment_intent.payment_failed": _intent_failed,
    "charge.refunded": _charge_refunded,
    "charge.refund.updated": _refund_update,
    "refund.created": _refund_update,
    "refund.updated": _refund_update,
    "refund.failed": _refund_update,
    "charge.dispute.created": _dispute_created,
    "charge.dispute.closed": _dispute_closed,
    "setup_intent.succeeded": _setup_succeeded,
}

