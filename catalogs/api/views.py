"""Portal catalog endpoints: the multiscreen title catalog with the caller's prices,
packages, and the rate preview. Thin: parse, call ``catalogs.rating``, render.

Catalog objects are shared by every customer (``SharedObjectMixin``) and only read here;
what differs per caller is the screen they browse on and the prices their account's
classification gets.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import django_filters
from django.db.models import Exists, OuterRef
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.generics import ListAPIView, RetrieveAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.permissions import IsPortalUser
from accounts.models import AccountsReceivable
from accounts.selectors import account_primary_for_user
from core.api.scoping import SharedObjectMixin
from core.exceptions import NotFound, ValidationFailed

from .. import rating
from ..models import ContentTitle, Product
from . import serializers

ERRORS = {
    400: OpenApiResponse(description="Invalid input; see error.fields."),
    401: OpenApiResponse(description="Not authenticated."),
    404: OpenApiResponse(description="Not found."),
}
TAGS = ["catalog"]


class TitleFilter(django_filters.FilterSet):
    genre = django_filters.CharFilter(method="filter_genre", help_text="Genre name (any case).")
    q = django_filters.CharFilter(field_name="title", lookup_expr="istartswith", help_text="Title starts with (any case).")
    older = django_filters.BooleanFilter(field_name="is_older_movie", help_text="true: older (back-catalogue) movies only; false: the others.")
    year = django_filters.NumberFilter(field_name="year")

    class Meta:
        model = ContentTitle
        fields: list[str] = []

    def filter_genre(self, queryset, name, value):
        in_genre = ContentTitle.genres.through.objects.filter(contenttitle_id=OuterRef("pk"), genre__name__iexact=value)
        return queryset.filter(Exists(in_genre))


def caller_account(request) -> AccountsReceivable | None:
    """The portal user's account: the one opened at sign-up (the oldest)."""
    if not hasattr(request, "_catalog_account"):
        request._catalog_account = account_primary_for_user(user=request.user)
    return request._catalog_account


def caller_screen(request) -> str:
    query = serializers.ScreenQuerySerializer(data=request.query_params)
    query.is_valid(raise_exception=True)
    return query.validated_data["screen"]


def quotes_for(request, titles) -> dict[int, rating.RateQuote]:
    account = caller_account(request)
    if account is None:
        return {}
    return rating.title_quotes_for(titles=titles, at=timezone.now(), classification=account.classification)


class TitleListView(ListAPIView):
    permission_classes = [IsPortalUser]
    serializer_class = serializers.TitleSerializer
    filterset_class = TitleFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ContentTitle.objects.none()
        return rating.portal_title_list(screen=caller_screen(self.request))

    @extend_schema(
        parameters=[serializers.ScreenQuerySerializer],
        responses={200: serializers.TitleSerializer(many=True), 400: ERRORS[400], 401: ERRORS[401]},
        summary="The title catalog for my screen, with my prices now",
        tags=TAGS,
        operation_id="catalog_titles_list",
    )
    def get(self, request, *args, **kwargs):
        moment = rating.catalog_moment(timezone.now())
        if moment is None:
            return self.page_response(request)
        account = caller_account(request)
        key = (moment, caller_screen(request), account.classification_id if account else None, request.build_absolute_uri())
        body = _title_pages.get(key)
        if body is None:
            response = self.page_response(request)
            _title_pages.put(key, response.data)
            return response
        return Response(body)

    def page_response(self, request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        body = self.get_serializer(page, many=True, context={**self.get_serializer_context(), "quotes": quotes_for(request, page)})
        return self.get_paginated_response(body.data)


class _PageCache:
    """The last pages of the title catalog each process served, by everything a page
    depends on (``rating.catalog_moment``, the screen, the caller's classification and the
    full URL: filters, page, host). A page is the same for every customer of a
    classification browsing on a screen within a minute, until a title or catalog table
    changes; browsing is most of the portal's reads. At most ``SIZE`` pages, least recently
    used out first."""

    SIZE = 512

    def __init__(self):
        self._pages: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            body = self._pages.get(key)
            if body is not None:
                self._pages.move_to_end(key)
            return body

    def put(self, key, body) -> None:
        with self._lock:
            self._pages[key] = body
            while len(self._pages) > self.SIZE:
                self._pages.popitem(last=False)


_title_pages = _PageCache()


class TitleDetailView(SharedObjectMixin, RetrieveAPIView):
    permission_classes = [IsPortalUser]
    serializer_class = serializers.TitleSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ContentTitle.objects.none()
        return rating.portal_title_list(screen=caller_screen(self.request))

    @extend_schema(
        parameters=[serializers.ScreenQuerySerializer],
        responses={200: serializers.TitleSerializer, 400: ERRORS[400], 401: ERRORS[401], 404: ERRORS[404]},
        summary="One title of the catalog for my screen, with my price now",
        tags=TAGS,
        operation_id="catalog_title_retrieve",
    )
    def get(self, request, *args, **kwargs):
        title = self.get_object()
        body = self.get_serializer(title, context={**self.get_serializer_context(), "quotes": quotes_for(request, [title])})
        return Response(body.data)


class PackageListView(ListAPIView):
    permission_classes = [IsPortalUser]
    serializer_class = serializers.PackageSerializer
    filter_backends: list = []

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Product.objects.none()
        account = caller_account(self.request)
        return rating.package_list_for(classification=account.classification if account else None, at=timezone.now())

    @extend_schema(
        responses={200: serializers.PackageSerializer(many=True), 401: ERRORS[401]},
        summary="Packages (termed services) with the rates that apply to me",
        tags=TAGS,
        operation_id="catalog_packages_list",
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class RatePreviewView(APIView):
    permission_classes = [IsPortalUser]

    @extend_schema(
        parameters=[serializers.RatePreviewQuerySerializer],
        responses={
            200: serializers.RateQuoteSerializer,
            400: OpenApiResponse(description="Invalid input, or no catalog prices this for me (codes no_catalog, not_in_catalog)."),
            401: ERRORS[401],
            404: ERRORS[404],
        },
        summary="What a pay-per-view order would cost me",
        tags=TAGS,
        operation_id="catalog_rate_preview",
    )
    def get(self, request):
        query = serializers.RatePreviewQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        account = caller_account(request)
        if account is None:
            raise NotFound("This login has no customer account.")
        if "title" in params:
            product = rating.title_ppv_product(rating.portal_title_get(pk=params["title"], screen=params["screen"]))
            if product is None:
                raise ValidationFailed("This title is not sold per view.", fields={"title": ["This title is not sold per view."]})
        else:
            product = rating.usage_product_get(code=params["product"])
        quote = rating.rate_usage(product=product, at=params.get("at") or timezone.now(), account=account)
        return Response(serializers.RateQuoteSerializer(quote).data)
