"""Portal billing endpoints (at /api/v1/)."""

from django.urls import path

from . import views
from .ingestion import UsageRecordBatchView

urlpatterns = [
    path("invoices/", views.InvoiceListView.as_view(), name="api-invoice-list"),
    path("invoices/<int:pk>/", views.InvoiceDetailView.as_view(), name="api-invoice-detail"),
    path("invoices/<int:pk>/document/", views.InvoiceDocumentView.as_view(), name="api-invoice-document"),
    path("credit-notes/", views.CreditNoteListView.as_view(), name="api-credit-note-list"),
    path("credit-notes/<int:pk>/document/", views.CreditNoteDocumentView.as_view(), name="api-credit-note-document"),
    path("accounts/<str:number>/statement/", views.StatementView.as_view(), name="api-account-statement"),
    path("usage-records/batch/", UsageRecordBatchView.as_view(), name="api-usage-records-batch"),
]
