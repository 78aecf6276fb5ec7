"""The segment months as the other rollups: Marketing and Finance see them, the
Administrator holds every permission of analytics."""

from django.db import migrations

from accounts.roles import ADMINISTRATOR, FINANCE, MARKETING, roles_grant, roles_grant_app


def grant(apps, schema_editor):
    roles_grant(apps, {MARKETING: ["analytics.view_segmentmonth"], FINANCE: ["analytics.view_segmentmonth"]})
    roles_grant_app(apps, ADMINISTRATOR, ["analytics"])


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0007_cohort_paying_index"),
        ("accounts", "0003_roles"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
