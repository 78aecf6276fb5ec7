"""Indexes behind the agents' customer search, and the seeded classifications.

The search uses case-insensitive prefix matches (``UPPER(col::text) LIKE UPPER('abc%')``)
and exact prefixes on e-mail and E.164 phones. On PostgreSQL those need expression indexes
with ``text_pattern_ops`` (a plain b-tree cannot serve LIKE under a non-C collation). SQLite
searches its small embedded database without them.
"""

from django.db import migrations

SEARCH_INDEXES = {
    "contact_last_name_search": "UPPER((last_name)::text) text_pattern_ops",
    "contact_first_name_search": "UPPER((first_name)::text) text_pattern_ops",
    "contact_company_search": "UPPER((company_name)::text) text_pattern_ops",
    "contact_email_search": "((email)::text) text_pattern_ops",
    "contact_phone_search": "((phone)::text) text_pattern_ops",
    "contact_mobile_search": "((mobile_phone)::text) text_pattern_ops",
}


def create_search_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, expression in SEARCH_INDEXES.items():
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON accounts_contact ({expression})")


def drop_search_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in SEARCH_INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


def seed_classifications(apps, schema_editor):
    Classification = apps.get_model("accounts", "Classification")
    Classification.objects.get_or_create(code="NORMAL", defaults={"name": "Normal", "is_default": True})
    Classification.objects.get_or_create(code="VIP", defaults={"name": "VIP", "description": "Very important subscribers."})


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]

    operations = [
        migrations.RunPython(create_search_indexes, drop_search_indexes),
        migrations.RunPython(seed_classifications, migrations.RunPython.noop),
    ]
