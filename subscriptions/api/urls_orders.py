from django.urls import path

from . import orders

urlpatterns = [
    path("orders/", orders.OrderListView.as_view(), name="api-order-list"),
    path("orders/<int:pk>/", orders.OrderDetailView.as_view(), name="api-order-detail"),
    path("subscriptions/", orders.SubscriptionListView.as_view(), name="api-subscription-list"),
    path("subscriptions/<str:number>/", orders.SubscriptionDetailView.as_view(), name="api-subscription-detail"),
    path("device/orders/", orders.DeviceOrderView.as_view(), name="api-device-order"),
]
