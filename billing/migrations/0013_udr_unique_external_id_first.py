"""The usage records' uniqueness key becomes (external_id, source): the same rule, and its
index now also finds a record by its external id alone (the admin's search by transaction
reference), which (source, external_id) could not without scanning the table.

On PostgreSQL the new unique index is built CONCURRENTLY (writes go on while it builds,
on a table of millions of rows), then swapped in for the old constraint in one short
transaction (``ADD CONSTRAINT ... UNIQUE USING INDEX``). Elsewhere (SQLite) the
constraint is simply dropped and re-created."""

from django.db import migrations, models

TABLE, NAME, BUILDING = "billing_usagedetailrecord", "udr_unique_per_source", "udr_unique_per_source_new"
OLD = models.UniqueConstraint(fields=("source", "external_id"), name=NAME)
NEW = models.UniqueConstraint(fields=("external_id", "source"), name=NAME)


def _swap(apps, schema_editor, before, after, columns):
    model = apps.get_model("billing", "UsageDetailRecord")
    if schema_editor.connection.vendor != "postgresql":
        schema_editor.remove_constraint(model, before)
        schema_editor.add_constraint(model, after)
        return
    schema_editor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{BUILDING}"')  # a build that failed halfway
    schema_editor.execute(f'CREATE UNIQUE INDEX CONCURRENTLY "{BUILDING}" ON "{TABLE}" ({columns})')
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("BEGIN")
        cursor.execute(f'ALTER TABLE "{TABLE}" DROP CONSTRAINT "{NAME}"')
        cursor.execute(f'ALTER TABLE "{TABLE}" ADD CONSTRAINT "{NAME}" UNIQUE USING INDEX "{BUILDING}"')
        cursor.execute("COMMIT")


def forwards(apps, schema_editor):
    _swap(apps, schema_editor, OLD, NEW, '"external_id", "source"')


def backwards(apps, schema_editor):
    _swap(apps, schema_editor, NEW, OLD, '"source", "external_id"')


class Migration(migrations.Migration):

    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ('billing', '0012_udr_account_index_covered_by_recent'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(forwards, backwards)],
            state_operations=[
                migrations.RemoveConstraint(model_name='usagedetailrecord', name=NAME),
                migrations.AddConstraint(model_name='usagedetailrecord', constraint=NEW),
            ],
        ),
    ]
