"""Portal payments endpoints and Stripe's webhook (at /api/v1/)."""

from django.urls import path

from . import views

urlpatterns = [
    path("payment-methods/", views.PaymentMethodListView.as_view(), name="api-payment-method-list"),
    path("payment-methods/cards/", views.CardSetupView.as_view(), name="api-payment-method-card-setup"),
    path("payment-methods/cards/confirm/", views.CardConfirmView.as_view(), name="api-payment-method-card-confirm"),
    path("invoices/<int:pk>/pay/", views.InvoicePayView.as_view(), name="api-invoice-pay"),
    path("wallet/", views.WalletView.as_view(), name="api-wallet"),
    path("wallet/top-up/", views.WalletTopUpView.as_view(), name="api-wallet-top-up"),
    path("payments/", views.PaymentListView.as_view(), name="api-payment-list"),
    path("webhooks/stripe/", views.StripeWebhookView.as_view(), name="api-webhook-stripe"),
]
