"""Version triggers for the usage catalogs' reference cache (``core.refcache``).

Every statement writing a table that rating reads bumps the ``catalog`` version, so each
process's remembered catalogs are reloaded after any change. PostgreSQL only: elsewhere
nothing is remembered.
"""

from django.db import migrations

from core.refcache import reference_triggers

CATALOG_TABLES = (
    "catalogs_usageservicecatalog",
    "catalogs_usageservicecatalog_classifications",
    "catalogs_usageservicecatalog_required_services",
    "catalogs_usageservice",
    "catalogs_usagetier",
    "catalogs_product",
    "catalogs_producttype",
    "accounts_classification",
    "provisioning_provisioningprovider",
)


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(reference_triggers("catalog", CATALOG_TABLES)[0])


def remove(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(reference_triggers("catalog", CATALOG_TABLES)[1])


class Migration(migrations.Migration):
    dependencies = [
        ("catalogs", "0003_product_max_devices_product_max_streams"),
        ("core", "0003_referenceversion"),
        ("accounts", "0003_roles"),
        ("provisioning", "0005_roles"),
    ]

    operations = [migrations.RunPython(install, remove, elidable=False)]
