"""``manage.py provisioning_reconcile``: compare our entitlements with the platform's now."""

from django.core.management.base import BaseCommand

from provisioning.services.reconciliation import provisioning_reconcile


class Command(BaseCommand):
    help = "Compare entitlements with the platform, repair differences with new requests, and print the summary."

    def handle(self, *args, **options):
        run = provisioning_reconcile()
        self.stdout.write(f"{run}: {run.accounts_checked} account(s) checked, {run.accounts_skipped} skipped, "
                          f"{run.differences_found} difference(s), {run.requests_created} repair request(s). {run.error}")
