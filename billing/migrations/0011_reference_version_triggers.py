"""Version triggers for the billing reference data each process remembers
(``core.refcache``, group ``billing``): tax rates and ledger accounts. PostgreSQL only."""

from django.db import migrations

from core.refcache import reference_triggers

BILLING_TABLES = ("billing_taxrate", "billing_ledgeraccount")


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(reference_triggers("billing", BILLING_TABLES)[0])


def remove(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(reference_triggers("billing", BILLING_TABLES)[1])


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0010_amounts_add_up_on_sqlite"),
        ("core", "0003_referenceversion"),
    ]

    operations = [migrations.RunPython(install, remove, elidable=False)]
