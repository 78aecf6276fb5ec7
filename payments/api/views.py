"""The portal's payments: add a card, list my methods, pay an invoice, top up the
wallet, list my payments. Thin: scope to the caller, call a service or selector."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.permissions import IsPortalUser
from accounts.selectors import account_primary_for_user
from billing.models import Invoice
from core.api.idempotency import idempotent
from core.api.scoping import OwnedObjectMixin
from core.choices import Channel
from core.exceptions import ApplicationError, NotFound

from .. import selectors
from ..models import MethodKind, Payment, PaymentMethod
from ..services.collection import payment_card_charge, wallet_pay
from ..services.methods import card_setup_complete, card_setup_start
from ..gateways import GatewayError
from ..services.webhooks import WebhookRejected, webhook_receive
from . import serializers

ERRORS = {
    400: OpenApiResponse(description="Invalid input; see error.fields."),
    401: OpenApiResponse(description="Not authenticated."),
    404: OpenApiResponse(description="Not found (or not yours)."),
    409: OpenApiResponse(description="Not possible in the current state."),
}


def _my_account(user):
    account = account_primary_for_user(user=user)
    if account is None:
        raise NotFound("This login has no account.")
    return account


def _my_method(user, pk) -> PaymentMethod | None:
    if pk is None:
        return None
    method = selectors.payment_method_list_for_user(user=user).filter(pk=pk).first()
    if method is None:
        raise NotFound("No such payment method of yours.")
    return method


class PaymentMethodListView(GenericAPIView):
    permission_classes = [IsPortalUser]
    serializer_class = serializers.PaymentMethodSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return PaymentMethod.objects.none()
        return selectors.payment_method_list_for_user(user=self.request.user)

    @extend_schema(responses={200: serializers.PaymentMethodSerializer(many=True)}, summary="My payment methods, the default first", tags=["payments"], operation_id="payment_methods_list")
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


class CardSetupView(GenericAPIView):
    permission_classes = [IsPortalUser]
    serializer_class = serializers.CardSetupSerializer

    @extend_schema(summary="Start adding a card", description="Returns a Stripe SetupIntent client secret: the card is typed "
                   "into Stripe's own element (Stripe.js `confirmCardSetup`), never sent to us. Then call the confirm endpoint.",
                   tags=["payments"], operation_id="payment_methods_card_setup", request=None,
                   responses={201: serializers.CardSetupSerializer, **ERRORS})
    @idempotent
    def post(self, request):
        setup = card_setup_start(account=_my_account(request.user), performed_by=request.user, channel=Channel.PORTAL)
        body = {"payment_method": setup.method.pk, "setup_intent": setup.method.setup_intent_id, "client_secret": setup.client_secret,
                "publishable_key": settings.STRIPE_PUBLISHABLE_KEY}
        return Response(serializers.CardSetupSerializer(body).data, status=201)


class CardConfirmView(GenericAPIView):
    permission_classes = [IsPortalUser]
    serializer_class = serializers.CardConfirmInSerializer

    @extend_schema(summary="Finish adding a card", description="After Stripe.js confirmed the SetupIntent: we ask Stripe and keep "
                   "the card's brand, last four digits and expiry. The first card becomes the default.",
                   tags=["payments"], operation_id="payment_methods_card_confirm",
                   request=serializers.CardConfirmInSerializer, responses={200: serializers.PaymentMethodSerializer, **ERRORS})
    @idempotent
    def post(self, request):
        data = self.get_serializer(data=request.data)
        data.is_valid(raise_exception=True)
        method = card_setup_complete(setup_intent_id=data.validated_data["setup_intent"], account=_my_account(request.user),
                                     performed_by=request.user, channel=Channel.PORTAL)
        return Response(serializers.PaymentMethodSerializer(method).data)


class InvoicePayView(OwnedObjectMixin, GenericAPIView):
    permission_classes = [IsPortalUser]
    serializer_class = serializers.InvoicePayInSerializer
    owned_model = Invoice
    owner_user_lookup = "account__contact__portal_user__user"

    @extend_schema(summary="Pay one of my invoices", description="Spends my wallet credit first, then charges the chosen card "
                   "(default: my default card). A card needing 3-D Secure answers with the payment REQUIRES_ACTION and its "
                   "client secret.", tags=["payments"], operation_id="invoices_pay",
                   request=serializers.InvoicePayInSerializer, responses={200: serializers.InvoicePayOutSerializer, **ERRORS})
    @idempotent
    def post(self, request, pk: int):
        invoice = self.get_object()
        data = self.get_serializer(data=request.data)
        data.is_valid(raise_exception=True)
        method = _my_method(request.user, data.validated_data.get("payment_method"))
        account = invoice.account
        applied = Decimal("0.00")
        if selectors.account_credit(account=account) > 0 and selectors.invoice_open_amount(invoice=invoice) > 0:
            applied = wallet_pay(account=account, invoice=invoice, performed_by=request.user, channel=Channel.PORTAL)
        payment = None
        remaining = selectors.invoice_open_amount(invoice=invoice)
        if remaining > 0 and (method is None or method.kind == MethodKind.CARD):
            payment = payment_card_charge(account=account, amount=remaining, method=method, invoice=invoice,
                                          performed_by=request.user, channel=Channel.PORTAL)
        elif remaining > 0 and applied == 0:
            raise ApplicationError("This method cannot pay online; use a card or top up the wallet.", code="method_not_online")
        open_amount = selectors.invoice_open_amount(invoice=invoice)
        body = {"invoice": invoice.number, "open_amount": open_amount, "paid": open_amount == 0, "wallet_applied": applied,
                "payment": payment}
        return Response(serializers.InvoicePayOutSerializer(body).data)


class WalletView(GenericAPIView):
    permission_classes = [IsPortalUser]
    serializer_class = serializers.WalletSerializer

    @extend_schema(summary="My wallet (prepaid credit)", tags=["payments"], operation_id="wallet_get")
    def get(self, request):
        account = _my_account(request.user)
        return Response(serializers.WalletSerializer({"credit": selectors.account_credit(account=account),
                                                      "currency": account.currency}).data)


class WalletTopUpView(GenericAPIView):
    permission_classes = [IsPortalUser]
    serializer_class = serializers.TopUpInSerializer

    @extend_schema(summary="Top up my wallet with a card", tags=["payments"], operation_id="wallet_top_up",
                   request=serializers.TopUpInSerializer, responses={201: serializers.PaymentSerializer, **ERRORS})
    @idempotent
    def post(self, request):
        data = self.get_serializer(data=request.data)
        data.is_valid(raise_exception=True)
        account = _my_account(request.user)
        payment = payment_card_charge(account=account, amount=data.validated_data["amount"],
                                      method=_my_method(request.user, data.validated_data.get("payment_method")),
                                      purpose="TOP_UP", performed_by=request.user, channel=Channel.PORTAL)
        return Response(serializers.PaymentSerializer(payment).data, status=201)


class PaymentListView(GenericAPIView):
    permission_classes = [IsPortalUser]
    serializer_class = serializers.PaymentSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Payment.objects.none()
        return selectors.payment_list_for_user(user=self.request.user)

    @extend_schema(responses={200: serializers.PaymentSerializer(many=True)}, summary="My payments, newest first", tags=["payments"], operation_id="payments_list")
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


class StripeWebhookView(APIView):
    """Stripe's events: no login, the signature is the authentication. 200 when stored or
    already known, 400 for a bad signature or stale timestamp (nothing stored), 503 when
    Stripe could not be asked back (nothing stored: Stripe delivers it again)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(summary="Stripe webhook (for Stripe only)", tags=["webhooks"], operation_id="webhooks_stripe",
                   request={"application/json": OpenApiTypes.OBJECT},
                   responses={200: OpenApiResponse(description="Stored (or already known)."),
                              400: OpenApiResponse(description="Bad signature or stale timestamp; nothing stored."),
                              503: OpenApiResponse(description="Stripe unreachable; nothing stored, deliver again.")})
    def post(self, request):
        try:
            webhook_receive(payload=request.body, signature=request.headers.get("Stripe-Signature"))
        except WebhookRejected as error:
            return HttpResponse(error.message, status=400, content_type="text/plain")
        except GatewayError as error:
            return HttpResponse(error.message, status=503, content_type="text/plain")
        return HttpResponse("ok", content_type="text/plain")
