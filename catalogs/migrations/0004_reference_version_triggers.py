"""Version triggers for the usage catalogs' and titles' reference cache (``core.refcache``).

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
# What an order reads of its title: the title, its screen windows and the products selling it.
TITLE_TABLES = (
    "catalogs_contenttitle",
    "catalogs_titleavailability",
    "catalogs_product_titles",
    "catalogs_product",
    "catalogs_producttype",
)


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(reference_triggers("catalog", CATALOG_TABLES)[0])
        schema_editor.execute(reference_triggers("titles", TITLE_TABLES)[0])


def remove(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(reference_triggers("catalog", CATALOG_TABLES)[1])
        schema_editor.execute(reference_triggers("titles", TITLE_TABLES)[1])


class Migration(migrations.Migration):
    dependencies = [
        ("catalogs", "0003_product_max_devices_product_max_streams"),
        ("core", "0003_referenceversion"),
        ("accounts", "0003_roles"),
        ("provisioning", "0005_roles"),
    ]

    operations = [migrations.RunPython(install, remove, elidable=False)]
