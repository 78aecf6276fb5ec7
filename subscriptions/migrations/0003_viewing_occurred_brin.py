"""A BRIN index on ``ViewingEvent.occurred_at`` (PostgreSQL only).

Viewing events are appended in time order, so a BRIN index — a few pages for millions of
rows, nearly free to maintain on insert — lets the hourly viewing rollup read one day's
events without scanning the table. Not declared in the model's Meta because SQLite has no
BRIN; there the rollup simply scans.
"""

from django.db import migrations

CREATE = "CREATE INDEX IF NOT EXISTS viewing_occurred_brin ON subscriptions_viewingevent USING brin (occurred_at)"
DROP = "DROP INDEX IF EXISTS viewing_occurred_brin"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("subscriptions", "0002_roles")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
