from django.contrib import admin

from catalogs.models import BundleComponent


class BundleComponentInline(admin.TabularInline):
    """The services inside a bundle product, with their standalone prices (for allocation)."""

    model = BundleComponent
    fk_name = "bundle"
    extra = 0
    autocomplete_fields = ["component"]
