"""Reference data for payments: the VOUCHERS ledger account, role permissions and a
standard dunning schedule.

- Finance takes, cancels and refunds payments, writes off debts, reads everything and
  configures dunning.
- Call-center agents take payments (cash, cheque, transfer, a saved card) and add payment
  methods; they see refunds, chargebacks and dunning but may not refund or write off.
- The Administrator has every payments permission.
"""

from django.db import migrations

from accounts.roles import ADMINISTRATOR, CALL_CENTER_AGENT, FINANCE, roles_grant, roles_grant_app

MODELS = ["paymentmethod", "payment", "allocation", "refund", "chargeback", "writeoff", "webhookevent", "dunningschedule",
          "dunningstep", "dunningcase", "dunningevent", "gatewaycustomer"]
GRANTS = {
    FINANCE: [f"payments.view_{model}" for model in MODELS]
    + ["payments.add_payment", "payments.change_payment", "payments.add_paymentmethod", "payments.change_paymentmethod",
       "payments.add_refund", "payments.add_writeoff"]
    + [f"payments.{verb}_{model}" for model in ("dunningschedule", "dunningstep") for verb in ("add", "change", "delete")],
    CALL_CENTER_AGENT: ["payments.add_payment", "payments.view_payment", "payments.add_paymentmethod", "payments.view_paymentmethod",
                        "payments.view_allocation", "payments.view_refund", "payments.view_chargeback", "payments.view_writeoff",
                        "payments.view_dunningcase", "payments.view_dunningevent"],
}
LEDGER_ACCOUNTS = [("VOUCHERS", "Prepaid vouchers outstanding", "LIABILITY")]
STANDARD_STEPS = [(1, "REMINDER"), (3, "RETRY"), (7, "RETRY"), (7, "REMINDER"), (14, "REST")]


def seed(apps, schema_editor):
    LedgerAccount = apps.get_model("billing", "LedgerAccount")
    for code, name, kind in LEDGER_ACCOUNTS:
        LedgerAccount.objects.get_or_create(code=code, defaults={"name": name, "kind": kind})
    roles_grant(apps, GRANTS)
    roles_grant_app(apps, ADMINISTRATOR, ["payments"])
    DunningSchedule = apps.get_model("payments", "DunningSchedule")
    DunningStep = apps.get_model("payments", "DunningStep")
    if not DunningSchedule.objects.exists():
        schedule = DunningSchedule.objects.create(name="Standard", is_active=True, overdue_after_days=14)
        for day, action in STANDARD_STEPS:
            DunningStep.objects.create(schedule=schedule, day=day, action=action)


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0001_initial"),
        ("billing", "0006_roles"),
    ]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
