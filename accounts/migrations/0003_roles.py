"""The staff roles and what they may do with customers.

Later apps grant their own permissions to these groups in their own migrations, through
``accounts.roles.roles_grant``.
"""

from django.db import migrations

from accounts.roles import ADMINISTRATOR, CALL_CENTER_AGENT, FINANCE, MARKETING, roles_grant, roles_grant_app

GRANTS = {
    CALL_CENTER_AGENT: [
        "accounts.view_accountsreceivable",
        "accounts.add_accountsreceivable",
        "accounts.change_accountsreceivable",
        "accounts.suspend_accountsreceivable",
        "accounts.terminate_accountsreceivable",
        "accounts.view_contact",
        "accounts.change_contact",
        "accounts.view_address",
        "accounts.add_address",
        "accounts.change_address",
        "accounts.delete_address",
        "accounts.view_classification",
        "accounts.view_accountevent",
        "accounts.view_devicecredential",
        "accounts.add_devicecredential",
    ],
    MARKETING: [
        "accounts.view_classification",
    ],
    FINANCE: [
        "accounts.view_accountsreceivable",
        "accounts.change_accountsreceivable",
        "accounts.view_contact",
        "accounts.view_address",
        "accounts.view_classification",
        "accounts.view_accountevent",
    ],
}


def create_roles(apps, schema_editor):
    roles_grant(apps, GRANTS)
    roles_grant_app(apps, ADMINISTRATOR, ["accounts", "auth", "authtoken", "core"])


def drop_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=[CALL_CENTER_AGENT, MARKETING, FINANCE, ADMINISTRATOR]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_search_indexes_and_classifications"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("authtoken", "0004_alter_tokenproxy_options"),
        ("core", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_roles, drop_roles)]
