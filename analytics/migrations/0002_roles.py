"""Marketing and Finance see the analytics dashboard and its figures (the staff API too);
the Administrator may do anything in analytics. Call-center agents do not."""

from django.db import migrations

from accounts.roles import ADMINISTRATOR, FINANCE, MARKETING, roles_grant, roles_grant_app

VIEW = [f"analytics.view_{model}" for model in ("analyticsdashboard", "accountmonth", "mrrsnapshot", "viewingday", "accountviewingday")]
GRANTS = {MARKETING: VIEW, FINANCE: VIEW}


def grant(apps, schema_editor):
    roles_grant(apps, GRANTS)
    roles_grant_app(apps, ADMINISTRATOR, ["analytics"])


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0001_rollups"),
        ("accounts", "0003_roles"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
