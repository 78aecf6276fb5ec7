"""Portal and device endpoints for customers. Thin: parse, call a service or selector, render."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.idempotency import idempotent
from core.api.scoping import OwnedObjectMixin
from core.choices import Channel

from .. import selectors, services
from ..models import AccountsReceivable, Address
from . import serializers
from .authentication import DeviceKeyAuthentication
from .permissions import IsDevice, IsPortalUser
from .throttling import LoginIpThrottle, LoginUsernameThrottle, SignUpThrottle

ERRORS = {
    400: OpenApiResponse(description="Invalid input; see error.fields."),
    401: OpenApiResponse(description="Not authenticated."),
    404: OpenApiResponse(description="Not found (or not yours)."),
}


class SignUpView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_classes = [SignUpThrottle]

    @extend_schema(
        request=serializers.SignUpSerializer,
        responses={201: serializers.SignUpResultSerializer, 400: ERRORS[400], 409: OpenApiResponse(description="Idempotency-Key conflict."),
                   429: OpenApiResponse(description="Too many sign-ups from this address.")},
        summary="Sign up as a new customer",
        tags=["auth"],
    )
    @idempotent
    def post(self, request):
        payload = serializers.SignUpSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = dict(payload.validated_data)
        password = data.pop("password")
        address = data.pop("address", None)
        currency = data.pop("currency", None)
        account = services.customer_sign_up(
            contact=data, address=address, currency=currency, password=password, channel=Channel.PORTAL
        )
        token = services.portal_login(username=account.contact.email, password=password, request=request)
        body = serializers.SignUpResultSerializer({"token": token.key, "account": account}).data
        return Response(body, status=status.HTTP_201_CREATED)


class LoginView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_classes = [LoginIpThrottle, LoginUsernameThrottle]

    @extend_schema(
        request=serializers.LoginSerializer,
        responses={200: serializers.TokenSerializer, 400: ERRORS[400], 429: OpenApiResponse(description="Too many attempts.")},
        summary="Log in and get an API token",
        tags=["auth"],
    )
    def post(self, request):
        payload = serializers.LoginSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        token = services.portal_login(
            username=payload.validated_data["email"], password=payload.validated_data["password"], request=request
        )
        return Response({"token": token.key})


class LogoutView(APIView):
    permission_classes = [IsPortalUser]

    @extend_schema(request=None, responses={204: None, 401: ERRORS[401]}, summary="Log out (revoke the token)", tags=["auth"])
    def post(self, request):
        services.portal_logout(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(APIView):
    permission_classes = [IsPortalUser]

    @extend_schema(responses={200: serializers.ContactSerializer, 401: ERRORS[401]}, summary="My profile", tags=["me"])
    def get(self, request):
        contact = selectors.contact_get_for_user(user=request.user)
        return Response(serializers.ContactSerializer(contact).data)

    @extend_schema(
        request=serializers.ContactUpdateSerializer,
        responses={200: serializers.ContactSerializer, 400: ERRORS[400], 401: ERRORS[401]},
        summary="Update my contact details",
        tags=["me"],
    )
    def patch(self, request):
        payload = serializers.ContactUpdateSerializer(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        contact = selectors.contact_get_for_user(user=request.user)
        services.contact_update(contact=contact, data=payload.validated_data, performed_by=request.user, channel=Channel.PORTAL)
        return Response(serializers.ContactSerializer(selectors.contact_get_for_user(user=request.user)).data)


class AddressListView(GenericAPIView):
    permission_classes = [IsPortalUser]
    serializer_class = serializers.AddressSerializer
    pagination_class = None

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Address.objects.none()
        return selectors.address_list_for_user(user=self.request.user)

    @extend_schema(responses={200: serializers.AddressSerializer(many=True)}, summary="My addresses", tags=["me"])
    def get(self, request):
        return Response(self.get_serializer(self.get_queryset(), many=True).data)

    @extend_schema(responses={201: serializers.AddressSerializer, 400: ERRORS[400]}, summary="Add an address", tags=["me"])
    @idempotent
    def post(self, request):
        payload = self.get_serializer(data=request.data)
        payload.is_valid(raise_exception=True)
        contact = selectors.contact_get_for_user(user=request.user)
        address = services.address_save(contact=contact, data=payload.validated_data, performed_by=request.user, channel=Channel.PORTAL)
        return Response(self.get_serializer(address).data, status=status.HTTP_201_CREATED)


class AddressDetailView(OwnedObjectMixin, GenericAPIView):
    permission_classes = [IsPortalUser]
    serializer_class = serializers.AddressSerializer
    owned_model = Address
    owner_user_lookup = "contact__portal_user__user"

    @extend_schema(responses={200: serializers.AddressSerializer, 404: ERRORS[404]}, summary="One of my addresses", tags=["me"])
    def get(self, request, pk: int):
        return Response(self.get_serializer(self.get_object()).data)

    @extend_schema(responses={200: serializers.AddressSerializer, 400: ERRORS[400], 404: ERRORS[404]}, summary="Change an address", tags=["me"])
    def patch(self, request, pk: int):
        address = self.get_object()
        payload = self.get_serializer(address, data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        address = services.address_save(contact=address.contact, address=address, data=payload.validated_data,
                                         performed_by=request.user, channel=Channel.PORTAL)
        return Response(self.get_serializer(address).data)

    @extend_schema(responses={204: None, 404: ERRORS[404]}, summary="Remove an address", tags=["me"])
    def delete(self, request, pk: int):
        services.address_delete(address=self.get_object(), performed_by=request.user, channel=Channel.PORTAL)
        return Response(status=status.HTTP_204_NO_CONTENT)


class AccountListView(GenericAPIView):
    permission_classes = [IsPortalUser]
    serializer_class = serializers.AccountSummarySerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return AccountsReceivable.objects.none()
        return selectors.account_list_for_user(user=self.request.user).order_by("number")

    @extend_schema(responses={200: serializers.AccountSummarySerializer(many=True)}, summary="My accounts", tags=["accounts"], operation_id="accounts_list")
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


class AccountDetailView(OwnedObjectMixin, GenericAPIView):
    permission_classes = [IsPortalUser]
    serializer_class = serializers.AccountSummarySerializer
    owned_model = AccountsReceivable
    owner_user_lookup = "contact__portal_user__user"
    lookup_field = lookup_url_kwarg = "number"

    @extend_schema(responses={200: serializers.AccountSummarySerializer, 404: ERRORS[404]}, summary="One of my accounts", tags=["accounts"])
    def get(self, request, number: str):
        return Response(self.get_serializer(self.get_object()).data)


class AccountHistoryView(OwnedObjectMixin, GenericAPIView):
    permission_classes = [IsPortalUser]
    serializer_class = serializers.AccountEventSerializer
    owned_model = AccountsReceivable
    owner_user_lookup = "contact__portal_user__user"
    lookup_field = lookup_url_kwarg = "number"

    @extend_schema(responses={200: serializers.AccountEventSerializer(many=True), 404: ERRORS[404]}, summary="History of one of my accounts", tags=["accounts"])
    def get(self, request, number: str):
        account = self.get_object()
        page = self.paginate_queryset(selectors.account_events(account=account, limit=None))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


class DeviceIdentityView(APIView):
    authentication_classes = [DeviceKeyAuthentication]
    permission_classes = [IsDevice]

    @extend_schema(responses={200: serializers.DeviceIdentitySerializer, 401: ERRORS[401]}, summary="Which account this device key belongs to", tags=["device"])
    def get(self, request):
        return Response(serializers.DeviceIdentitySerializer(request.user.credential).data)
