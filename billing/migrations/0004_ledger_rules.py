"""The chart of accounts, and the ledger's rules enforced by PostgreSQL itself:

- every journal entry balances (the sum of its postings is zero), checked at commit by a
  deferred constraint trigger, so code that forgets a leg cannot commit;
- postings and entries are append-only: UPDATE and DELETE are refused (corrections are
  reversing entries).

SQLite (the embedded default) relies on the ledger service's own checks.
"""

from django.db import migrations

CHART = [
    ("AR", "Accounts receivable", "ASSET"),
    ("CASH", "Cash and cheques", "ASSET"),
    ("BANK", "Bank", "ASSET"),
    ("GATEWAY", "Payment gateway clearing", "ASSET"),
    ("REVENUE_PPV", "Pay-per-view revenue", "REVENUE"),
    ("REVENUE_RECURRING", "Subscription revenue", "REVENUE"),
    ("REVENUE_ONE_TIME", "One-time charges revenue", "REVENUE"),
    ("DEFERRED_REVENUE", "Deferred revenue", "LIABILITY"),
    ("TAX_PAYABLE", "Tax payable", "LIABILITY"),
    ("WRITE_OFF", "Bad debt written off", "EXPENSE"),
    ("CHARGEBACK_LOSS", "Chargeback losses", "EXPENSE"),
]

TRIGGERS = """
CREATE OR REPLACE FUNCTION billing_entry_balanced() RETURNS trigger AS $$
DECLARE total numeric;
BEGIN
    SELECT COALESCE(SUM(amount), 0) INTO total FROM billing_posting WHERE entry_id = NEW.entry_id;
    IF total <> 0 THEN
        RAISE EXCEPTION 'journal entry % does not balance: its postings sum to %', NEW.entry_id, total
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE CONSTRAINT TRIGGER billing_posting_balanced AFTER INSERT ON billing_posting
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION billing_entry_balanced();

CREATE OR REPLACE FUNCTION billing_ledger_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only: % on % refused; post a reversal instead', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END $$ LANGUAGE plpgsql;

CREATE TRIGGER billing_posting_append_only BEFORE UPDATE OR DELETE ON billing_posting
    FOR EACH ROW EXECUTE FUNCTION billing_ledger_append_only();
CREATE TRIGGER billing_journalentry_append_only BEFORE UPDATE OR DELETE ON billing_journalentry
    FOR EACH ROW EXECUTE FUNCTION billing_ledger_append_only();
"""

DROP = """
DROP TRIGGER IF EXISTS billing_journalentry_append_only ON billing_journalentry;
DROP TRIGGER IF EXISTS billing_posting_append_only ON billing_posting;
DROP TRIGGER IF EXISTS billing_posting_balanced ON billing_posting;
DROP FUNCTION IF EXISTS billing_ledger_append_only();
DROP FUNCTION IF EXISTS billing_entry_balanced();
"""


def chart(apps, schema_editor):
    LedgerAccount = apps.get_model("billing", "LedgerAccount")
    for code, name, kind in CHART:
        LedgerAccount.objects.get_or_create(code=code, defaults={"name": name, "kind": kind})


def triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(TRIGGERS, params=None)


def drop_triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("billing", "0003_ledger")]

    operations = [
        migrations.RunPython(chart, migrations.RunPython.noop),
        migrations.RunPython(triggers, drop_triggers),
    ]
