"""The usage record's account gets no index of its own: udr_account_recent_idx
(account_id, usage_at DESC) already serves every lookup by account, and each index on the
busiest table costs every insert and every rating.

Only the index is dropped (Django's AlterField would also drop and re-create the foreign
key, validating every row of a large table under lock)."""

import django.db.models.deletion
from django.db import migrations, models

INDEX = "billing_usagedetailrecord_account_id_b0a36fc7"


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0003_roles'),
        ('billing', '0011_reference_version_triggers'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(f'DROP INDEX IF EXISTS "{INDEX}"',
                                  reverse_sql=f'CREATE INDEX "{INDEX}" ON "billing_usagedetailrecord" ("account_id")'),
            ],
            state_operations=[
                migrations.AlterField(
                    model_name='usagedetailrecord',
                    name='account',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='udrs',
                                            to='accounts.accountsreceivable'),
                ),
            ],
        ),
    ]
