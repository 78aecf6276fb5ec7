"""Finance issues and manages invoices, credit notes and tax rates and reads the ledger;
call-center agents look at them (to answer a caller's question about a bill); the
Administrator may do anything in billing."""

from django.db import migrations

from accounts.roles import ADMINISTRATOR, CALL_CENTER_AGENT, FINANCE, roles_grant, roles_grant_app

NEW_MODELS = ["taxrate", "invoice", "invoiceline", "creditnote", "creditnoteline"]
LEDGER_MODELS = ["ledgeraccount", "journalentry", "posting"]

GRANTS = {
    FINANCE: [f"billing.{verb}_{model}" for model in NEW_MODELS for verb in ("add", "change", "view")]
    + [f"billing.view_{model}" for model in LEDGER_MODELS],
    CALL_CENTER_AGENT: [f"billing.view_{model}" for model in NEW_MODELS],
}


def grant(apps, schema_editor):
    roles_grant(apps, GRANTS)
    roles_grant_app(apps, ADMINISTRATOR, ["billing"])


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0005_invoices_taxes_credit_notes"),
        ("accounts", "0003_roles"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
