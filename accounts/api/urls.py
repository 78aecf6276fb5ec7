from django.urls import path

from . import views

urlpatterns = [
    path("auth/signup/", views.SignUpView.as_view(), name="api-signup"),
    path("auth/login/", views.LoginView.as_view(), name="api-login"),
    path("auth/logout/", views.LogoutView.as_view(), name="api-logout"),
    path("me/", views.MeView.as_view(), name="api-me"),
    path("me/addresses/", views.AddressListView.as_view(), name="api-address-list"),
    path("me/addresses/<int:pk>/", views.AddressDetailView.as_view(), name="api-address-detail"),
    path("accounts/", views.AccountListView.as_view(), name="api-account-list"),
    path("accounts/<str:number>/", views.AccountDetailView.as_view(), name="api-account-detail"),
    path("accounts/<str:number>/history/", views.AccountHistoryView.as_view(), name="api-account-history"),
    path("device/me/", views.DeviceIdentityView.as_view(), name="api-device-me"),
]
