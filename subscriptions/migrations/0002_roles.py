"""Agents run subscriptions, orders and devices for callers; finance looks at them and
owns billing term schemes; administrators may do anything."""

from django.db import migrations

from accounts.roles import ADMINISTRATOR, CALL_CENTER_AGENT, FINANCE, roles_grant, roles_grant_app

SUBSCRIPTION_MODELS = ["subscription", "subscriptionservice", "installeditem", "subscriptionaction", "rental", "device",
                       "pairingcode", "streamsession", "viewingevent"]
VIEW = [f"subscriptions.view_{model}" for model in SUBSCRIPTION_MODELS] + [
    "billing.view_usagedetailrecord", "billing.view_billingtermscheme", "provisioning.view_provisioningrequest",
]

GRANTS = {
    CALL_CENTER_AGENT: VIEW + [
        "subscriptions.add_subscription", "subscriptions.act_subscription", "subscriptions.order_usage",
        "subscriptions.change_device",
    ],
    FINANCE: VIEW + ["billing.add_billingtermscheme", "billing.change_billingtermscheme"],
}


def grant(apps, schema_editor):
    roles_grant(apps, GRANTS)
    roles_grant_app(apps, ADMINISTRATOR, ["subscriptions", "billing", "provisioning"])


class Migration(migrations.Migration):
    dependencies = [
        ("subscriptions", "0001_initial"),
        ("billing", "0002_initial"),
        ("provisioning", "0003_provisioningrequest_action_and_more"),
        ("catalogs", "0003_product_max_devices_product_max_streams"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
