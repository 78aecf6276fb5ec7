"""Call-center agents see a customer's lifetime revenue and predicted value on the customer
page (the figures an agent needs to treat a valuable customer accordingly); the dashboard
and the staff API stay with Marketing, Finance and the Administrator (who also gets the
recommendation tables added in 0003)."""

from django.db import migrations

from accounts.roles import ADMINISTRATOR, CALL_CENTER_AGENT, roles_grant, roles_grant_app


def grant(apps, schema_editor):
    roles_grant(apps, {CALL_CENTER_AGENT: ["analytics.view_accountmonth"]})
    roles_grant_app(apps, ADMINISTRATOR, ["analytics"])  # the recommendation tables too


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0003_recommendations"),
        ("accounts", "0003_roles"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
