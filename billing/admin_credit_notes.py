"""The credit note page with its documents (HTML and PDF), like the invoice's. Imported by
``billing/admin.py``; it extends that module's ``CreditNoteAdmin`` rather than editing it."""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html

from . import documents
from .admin import CreditNoteAdmin
from .models import CreditNote


class CreditNoteWithDocumentsAdmin(CreditNoteAdmin):
    fields = (*CreditNoteAdmin.fields, "documents_links")
    readonly_fields = fields

    @admin.display(description="documents")
    def documents_links(self, note: CreditNote) -> str:
        return format_html('<a href="{}">HTML</a> · <a href="{}">PDF</a>',
                           reverse("admin:billing_creditnote_document", args=[note.pk, "html"]),
                           reverse("admin:billing_creditnote_document", args=[note.pk, "pdf"]))

    def get_urls(self):
        return [path("<int:pk>/document/<str:document_format>/", self.admin_site.admin_view(self.document_view),
                     name="billing_creditnote_document")] + super().get_urls()

    def document_view(self, request, pk: int, document_format: str):
        note = get_object_or_404(CreditNote.objects.select_related("account__contact", "invoice"), pk=pk)
        if not self.has_view_permission(request, note):
            raise PermissionDenied
        if document_format == "html":
            return HttpResponse(documents.credit_note_html(note), content_type="text/html; charset=utf-8")
        if document_format == "pdf":
            response = HttpResponse(documents.credit_note_pdf(note), content_type="application/pdf")
            response["Content-Disposition"] = f'inline; filename="{documents.credit_note_filename(note, "pdf")}"'
            return response
        raise Http404


admin.site.unregister(CreditNote)
admin.site.register(CreditNote, CreditNoteWithDocumentsAdmin)
