"""Finance and Administrators retry or cancel dead letters and run reconciliations;
call-center agents may look at a customer's provisioning requests (to answer "my movie
does not play")."""

from django.db import migrations

from accounts.roles import ADMINISTRATOR, CALL_CENTER_AGENT, FINANCE, roles_grant, roles_grant_app

VIEW = ["provisioning.view_provisioningrequest", "provisioning.view_provisioningdeadletter",
        "provisioning.view_reconciliationrun", "provisioning.view_reconciliationdifference",
        "provisioning.view_provisioningprovider", "provisioning.view_provisioningdistributor"]

GRANTS = {
    FINANCE: VIEW + ["provisioning.manage_provisioningrequest"],
    CALL_CENTER_AGENT: ["provisioning.view_provisioningrequest", "provisioning.view_provisioningdeadletter"],
}


def grant(apps, schema_editor):
    roles_grant(apps, GRANTS)
    roles_grant_app(apps, ADMINISTRATOR, ["provisioning"])


class Migration(migrations.Migration):
    dependencies = [
        ("provisioning", "0004_outbox_delivery_reconciliation"),
        ("accounts", "0003_roles"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
