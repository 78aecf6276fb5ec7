"""Finance runs billing and manages one-time charges and promotion grants; call-center
agents add one-time charges and grant promotions to the customers they serve."""

from django.db import migrations

from accounts.roles import ADMINISTRATOR, CALL_CENTER_AGENT, FINANCE, roles_grant, roles_grant_app

RUN_MODELS = ["billingrun", "billingrunchunk", "billedperiod"]
CUSTOMER_MODELS = ["onetimecharge", "promotiongrant"]

GRANTS = {
    FINANCE: ["billing.run_billing"] + [f"billing.view_{model}" for model in RUN_MODELS]
    + [f"billing.{verb}_{model}" for model in CUSTOMER_MODELS for verb in ("add", "change", "view")],
    CALL_CENTER_AGENT: [f"billing.{verb}_{model}" for model in CUSTOMER_MODELS for verb in ("add", "view")],
}


def grant(apps, schema_editor):
    roles_grant(apps, GRANTS)
    roles_grant_app(apps, ADMINISTRATOR, ["billing"])


class Migration(migrations.Migration):
    dependencies = [("billing", "0007_billing_runs")]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
