"""PPV orders from the portal and from devices, and the customer's subscriptions.

Both channels call ``usage_order_place``, like the call center. A repeated request with the
same ``Idempotency-Key`` (or ``transaction_reference``) returns the first order: the key
becomes the order's transaction reference, so even two identical requests racing on
different web servers create one UDR.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from accounts.api.authentication import DeviceKeyAuthentication
from accounts.api.permissions import IsDevice, IsPortalUser
from accounts.selectors import account_primary_for_user
from billing.models import UsageDetailRecord
from catalogs.models import ContentTitle, Product
from catalogs.selectors import title_for_order
from core.api.idempotency import idempotent_atomic
from core.api.scoping import OwnedObjectMixin
from core.api.serializers import ModelSerializer
from core.choices import Channel, Screen
from core.exceptions import NotFound
from core.refcache import versions_read_once

from ..models import Subscription, SubscriptionService
from ..selectors_orders import order_list_for_account, subscription_for_orders
from ..services.orders import order_udr, usage_order_place

ERRORS = {
    400: OpenApiResponse(description="Invalid input; see error.fields."),
    401: OpenApiResponse(description="Not authenticated."),
    404: OpenApiResponse(description="Not found (or not yours)."),
    409: OpenApiResponse(description="Refused: error.fields.reasons lists every reason (code action_rejected)."),
}


class TitleField(serializers.PrimaryKeyRelatedField):
    """A title by id, with the products that sell it, from the titles every process
    remembers (``catalogs.selectors.title_for_order``): no query while nothing changed."""

    def __init__(self, **kwargs):
        super().__init__(queryset=ContentTitle.objects.all(), **kwargs)

    def to_internal_value(self, data):
        try:
            title = title_for_order(pk=int(data))
        except (TypeError, ValueError):
            self.fail("incorrect_type", data_type=type(data).__name__)
        if title is None:
            self.fail("does_not_exist", pk_value=data)
        return title


class OrderRequestSerializer(serializers.Serializer):
    title = TitleField(required=False)
    product = serializers.SlugRelatedField(slug_field="code", queryset=Product.objects.all(), required=False)
    subscription = serializers.CharField(required=False, help_text="Subscription number; default: your effective one.")
    screen = serializers.ChoiceField(choices=Screen.choices, default=Screen.WEB)
    transaction_reference = serializers.CharField(required=False, max_length=100,
                                                  help_text="Your reference; a repeat returns the first order.")

    def validate(self, data):
        if not data.get("title") and not data.get("product"):
            raise serializers.ValidationError({"title": ["Give a title or a product."]})
        return data


class DeviceOrderRequestSerializer(serializers.Serializer):
    title = TitleField()
    transaction_reference = serializers.CharField(required=False, max_length=100)


class OrderSerializer(ModelSerializer):
    title = serializers.CharField(source="title.title", default=None)
    title_id = serializers.IntegerField(source="title.pk", default=None)
    product = serializers.CharField(source="product.code")
    subscription = serializers.CharField(source="subscription.number", default=None)
    rental_until = serializers.DateTimeField(source="rental.ends_at", default=None)
    transaction_reference = serializers.CharField(source="external_id")

    class Meta:
        model = UsageDetailRecord
        fields = ["id", "title", "title_id", "product", "subscription", "usage_at", "amount", "currency", "rate_reason",
                  "state", "channel", "rental_until", "transaction_reference"]


class SubscriptionServiceSerializer(ModelSerializer):
    product = serializers.CharField(source="product.code")
    name = serializers.CharField(source="product.name")

    class Meta:
        model = SubscriptionService
        fields = ["product", "name", "state", "start_date", "end_date"]


class SubscriptionSerializer(ModelSerializer):
    services = SubscriptionServiceSerializer(many=True)
    account = serializers.CharField(source="account.number")
    billing_term_scheme = serializers.CharField(source="billing_term_scheme.name")

    class Meta:
        model = Subscription
        fields = ["number", "account", "state", "billing_term_scheme", "services", "created_at"]


def _my_account(user):
    account = account_primary_for_user(user=user)
    if account is None:
        raise NotFound("This login has no account.")
    return account


def _reference(request, given: str | None, scope: str) -> str | None:
    if given:
        return given
    key = request.headers.get("Idempotency-Key")
    return f"{scope}:{key}"[:100] if key else None


class OrderListView(GenericAPIView):
    permission_classes = [IsPortalUser]
    serializer_class = OrderSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return UsageDetailRecord.objects.none()
        return order_list_for_account(account=_my_account(self.request.user))

    @extend_schema(responses={200: OrderSerializer(many=True)}, summary="My PPV orders", tags=["orders"], operation_id="orders_list")
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(request=OrderRequestSerializer, responses={201: OrderSerializer, **ERRORS}, summary="Order a PPV movie",
                   tags=["orders"])
    @idempotent_atomic
    def post(self, request):
        with versions_read_once():  # an order changes no reference data: the titles are looked up once (core.refcache)
            return self._place(request)

    def _place(self, request):
        payload = OrderRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        account = _my_account(request.user)
        subscription = subscription_for_orders(account=account, number=data.get("subscription"))
        action = usage_order_place(
            subscription=subscription, title=data.get("title"), product=data.get("product"), screen=data["screen"],
            transaction_reference=_reference(request, data.get("transaction_reference"), f"portal:{request.user.pk}"),
            performed_by=request.user, channel=Channel.PORTAL,
        )
        return Response(OrderSerializer(order_udr(action)).data, status=status.HTTP_201_CREATED)


class OrderDetailView(OwnedObjectMixin, GenericAPIView):
    permission_classes = [IsPortalUser]
    serializer_class = OrderSerializer
    owned_model = UsageDetailRecord
    owner_user_lookup = "account__contact__portal_user__user"

    @extend_schema(responses={200: OrderSerializer, 404: ERRORS[404]}, summary="One of my orders", tags=["orders"])
    def get(self, request, pk: int):
        return Response(self.get_serializer(self.get_object()).data)


class SubscriptionListView(GenericAPIView):
    permission_classes = [IsPortalUser]
    serializer_class = SubscriptionSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Subscription.objects.none()
        return (Subscription.objects.filter(account__contact__portal_user__user=self.request.user)
                .select_related("account", "billing_term_scheme").prefetch_related("services__product"))

    @extend_schema(responses={200: SubscriptionSerializer(many=True)}, summary="My subscriptions and their services", tags=["subscriptions"], operation_id="subscriptions_list")
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


class SubscriptionDetailView(OwnedObjectMixin, GenericAPIView):
    permission_classes = [IsPortalUser]
    serializer_class = SubscriptionSerializer
    owned_model = Subscription
    owner_user_lookup = "account__contact__portal_user__user"
    lookup_field = lookup_url_kwarg = "number"

    @extend_schema(responses={200: SubscriptionSerializer, 404: ERRORS[404]}, summary="One of my subscriptions", tags=["subscriptions"])
    def get(self, request, number: str):
        return Response(self.get_serializer(self.get_object()).data)


class DeviceOrderView(GenericAPIView):
    authentication_classes = [DeviceKeyAuthentication]
    permission_classes = [IsDevice]
    serializer_class = OrderSerializer

    @extend_schema(request=DeviceOrderRequestSerializer, responses={201: OrderSerializer, **ERRORS},
                   summary="Order a PPV movie from the device (the remote's BUY button)", tags=["device"])
    @idempotent_atomic
    def post(self, request):
        with versions_read_once():  # as for a portal order
            return self._place(request)

    def _place(self, request):
        payload = DeviceOrderRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        credential = request.user.credential
        device = getattr(credential, "device", None)
        subscription = subscription_for_orders(account=request.user.account)
        action = usage_order_place(
            subscription=subscription, title=payload.validated_data["title"], device=device,
            screen=None if device else Screen.SET_TOP_BOX,
            transaction_reference=_reference(request, payload.validated_data.get("transaction_reference"), f"device:{credential.pk}"),
            channel=Channel.DEVICE,
        )
        return Response(OrderSerializer(order_udr(action)).data, status=status.HTTP_201_CREATED)
