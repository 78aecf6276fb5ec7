from django.contrib import admin

from .models import ProvisioningProvider


@admin.register(ProvisioningProvider)
class ProvisioningProviderAdmin(admin.ModelAdmin):
    """Providers are set up by administrators; the provisioning work adds credentials,
    distributors and the request outbox."""

    list_display = ("name", "protocol", "endpoint", "state")
    search_fields = ("name",)
