"""The customer's invoices and credit notes, their documents and the account statement (portal API).

Thin: scope to the caller (``OwnedObjectMixin`` for paths naming an object), call a
selector or the document renderer, respond.
"""

from __future__ import annotations

import django_filters
from django_filters.utils import translate_validation
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.generics import GenericAPIView
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from accounts.api.permissions import IsPortalUser
from accounts.models import AccountsReceivable
from core.api.scoping import OwnedObjectMixin
from core.exceptions import ValidationFailed

from .. import selectors
from ..documents import credit_note_filename, credit_note_html, credit_note_pdf, invoice_filename, invoice_html, invoice_pdf
from ..models import CreditNote, Invoice
from . import serializers

ERRORS = {
    400: OpenApiResponse(description="Invalid input; see error.fields."),
    401: OpenApiResponse(description="Not authenticated."),
    404: OpenApiResponse(description="Not found (or not yours)."),
}
OWNER = "account__contact__portal_user__user"


class InvoiceFilter(django_filters.FilterSet):
    state = django_filters.ChoiceFilter(choices=[(s, s) for s in selectors.ISSUED], help_text="POSTED or CANCELLED.")
    issued_after = django_filters.DateFilter(field_name="issued_at", lookup_expr="date__gte", help_text="Issued on or after (YYYY-MM-DD).")
    issued_before = django_filters.DateFilter(field_name="issued_at", lookup_expr="date__lte", help_text="Issued on or before (YYYY-MM-DD).")

    class Meta:
        model = Invoice
        fields = ["state"]


class InvoiceListView(GenericAPIView):
    permission_classes = [IsPortalUser]
    serializer_class = serializers.InvoiceSerializer
    filterset_class = InvoiceFilter

    def get_queryset(self):
        # What the schema's filter parameters are made from (``filterset_class``); get()
        # reads the invoices with the selector's SQL.
        return Invoice.objects.none()

    @extend_schema(responses={200: serializers.InvoiceSerializer(many=True)}, summary="My invoices, newest first", tags=["invoices"], operation_id="invoices_list")
    def get(self, request):
        # The filter set checks the query (a bad value is a 400, as DjangoFilterBackend
        # answers); the selector reads with hand-written SQL.
        filters = InvoiceFilter(request.query_params, queryset=self.get_queryset(), request=request)
        if not filters.is_valid():
            raise translate_validation(filters.errors)
        wanted = filters.form.cleaned_data
        invoices = selectors.invoice_list_for_user(user=request.user, state=wanted.get("state") or None,
                                                   issued_after=wanted.get("issued_after"), issued_before=wanted.get("issued_before"))
        page = self.paginate_queryset(invoices)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


class _MyInvoice(OwnedObjectMixin, GenericAPIView):
    permission_classes = [IsPortalUser]
    owned_model = Invoice
    owner_user_lookup = OWNER

    def get_queryset(self):
        """Mine, and issued: drafts are the operator's work in progress."""
        return selectors.invoice_with_lines(super().get_queryset().filter(state__in=selectors.ISSUED))


class InvoiceDetailView(_MyInvoice):
    serializer_class = serializers.InvoiceDetailSerializer

    @extend_schema(responses={200: serializers.InvoiceDetailSerializer, 404: ERRORS[404]}, summary="One of my invoices, with its lines",
                   tags=["invoices"])
    def get(self, request, pk: int):
        return Response(self.get_serializer(self.get_object()).data)


class InvoiceDocumentView(_MyInvoice):
    # The document is chosen with ?format=pdf|html, which DRF would otherwise read as a
    # renderer choice; errors are still answered in the JSON error format.
    renderer_classes = [JSONRenderer]

    def perform_content_negotiation(self, request, force=False):
        return JSONRenderer(), JSONRenderer.media_type

    @extend_schema(
        parameters=[OpenApiParameter("format", str, enum=["pdf", "html"], default="pdf", description="The document's format.")],
        responses={(200, "application/pdf"): OpenApiTypes.BINARY, (200, "text/html"): OpenApiTypes.STR, 400: ERRORS[400],
                   404: ERRORS[404]},
        summary="Download one of my invoices (PDF or HTML)", tags=["invoices"],
    )
    def get(self, request, pk: int):
        document_format = request.query_params.get("format", "pdf")
        if document_format not in {"pdf", "html"}:
            raise ValidationFailed("Choose the document's format.", fields={"format": ["pdf or html."]})
        invoice = self.get_object()
        if document_format == "html":
            return HttpResponse(invoice_html(invoice), content_type="text/html; charset=utf-8")
        response = HttpResponse(invoice_pdf(invoice), content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="{invoice_filename(invoice, "pdf")}"'
        return response


class CreditNoteListView(OwnedObjectMixin, GenericAPIView):
    """The caller's credit notes (scoped like every portal read), newest first."""

    permission_classes = [IsPortalUser]
    serializer_class = serializers.CreditNoteSerializer
    owned_model = CreditNote
    owner_user_lookup = OWNER

    def get_queryset(self):
        return super().get_queryset().select_related("invoice").order_by("-issued_at", "-pk")

    @extend_schema(responses={200: serializers.CreditNoteSerializer(many=True)}, summary="My credit notes, newest first", tags=["invoices"], operation_id="credit_notes_list")
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


class CreditNoteDocumentView(OwnedObjectMixin, GenericAPIView):
    permission_classes = [IsPortalUser]
    owned_model = CreditNote
    owner_user_lookup = OWNER
    # ?format=pdf|html chooses the document, not a renderer (as for invoices).
    renderer_classes = [JSONRenderer]

    def perform_content_negotiation(self, request, force=False):
        return JSONRenderer(), JSONRenderer.media_type

    def get_queryset(self):
        return super().get_queryset().select_related("account__contact", "invoice")

    @extend_schema(
        parameters=[OpenApiParameter("format", str, enum=["pdf", "html"], default="pdf", description="The document's format.")],
        responses={(200, "application/pdf"): OpenApiTypes.BINARY, (200, "text/html"): OpenApiTypes.STR, 400: ERRORS[400],
                   404: ERRORS[404]},
        summary="Download one of my credit notes (PDF or HTML)", tags=["invoices"],
    )
    def get(self, request, pk: int):
        document_format = request.query_params.get("format", "pdf")
        if document_format not in {"pdf", "html"}:
            raise ValidationFailed("Choose the document's format.", fields={"format": ["pdf or html."]})
        note = self.get_object()
        if document_format == "html":
            return HttpResponse(credit_note_html(note), content_type="text/html; charset=utf-8")
        response = HttpResponse(credit_note_pdf(note), content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="{credit_note_filename(note, "pdf")}"'
        return response


class StatementView(OwnedObjectMixin, GenericAPIView):
    permission_classes = [IsPortalUser]
    serializer_class = serializers.StatementSerializer
    owned_model = AccountsReceivable
    owner_user_lookup = "contact__portal_user__user"
    lookup_field = lookup_url_kwarg = "number"

    @extend_schema(
        parameters=[OpenApiParameter("limit", int, default=100, description="How many of the most recent lines (1–1000).")],
        responses={200: serializers.StatementSerializer, 400: ERRORS[400], 404: ERRORS[404]},
        summary="My account statement: invoices, credit notes and payments with the running balance", tags=["invoices"],
    )
    def get(self, request, number: str):
        account = self.get_object()
        try:
            limit = int(request.query_params.get("limit", 100))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 1000:
            raise ValidationFailed("The limit is 1 to 1000 lines.", fields={"limit": ["Give a number from 1 to 1000."]})
        body = {"account": account.number, "currency": account.currency, "balance": selectors.ar_balance(account=account),
                "lines": selectors.account_statement(account=account, limit=limit)}
        return Response(self.get_serializer(body).data)
