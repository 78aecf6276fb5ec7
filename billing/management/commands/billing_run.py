"""``manage.py billing_run [--date YYYY-MM-DD] [--scheme NAME] [--wait]``: start a billing
run (as finance does in the admin, through ``billing_run_create``) — for cron, or by hand.

With Celery workers the run is billed by them and the command returns at once (``--wait``
follows it until it ends); in the embedded default (eager Celery) it is billed before the
command returns.
"""

import time
from datetime import date

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from billing.models import BillingRun, BillingTermScheme
from billing.services.runs import billing_run_create, billing_run_errors
from core.choices import Channel
from core.exceptions import ApplicationError

FINISHED = (BillingRun.State.COMPLETED, BillingRun.State.COMPLETED_WITH_ERRORS)


class Command(BaseCommand):
    help = "Bill every subscription (or one scheme's) for a day: recurring charges, one-time charges, unbilled usage."

    def add_arguments(self, parser):
        parser.add_argument("--date", help="The day to bill (default: today).")
        parser.add_argument("--scheme", help="Only this billing term scheme (its name).")
        parser.add_argument("--wait", action="store_true", help="Follow the run until it ends.")

    def handle(self, *args, date=None, scheme=None, wait=False, **options):
        run_date = self._day(date)
        chosen = None
        if scheme:
            chosen = BillingTermScheme.objects.filter(name=scheme).first()
            if chosen is None:
                raise CommandError(f"There is no billing term scheme {scheme!r}.")
        try:
            run = billing_run_create(run_date=run_date, scheme=chosen, channel=Channel.SYSTEM)
        except ApplicationError as refusal:
            raise CommandError(" ".join([refusal.message, *(m for ms in (refusal.fields or {}).values() for m in ms)])) from None
        run.refresh_from_db()
        while wait and run.state not in FINISHED:
            time.sleep(1)
            run.refresh_from_db()
        if run.state not in FINISHED:
            self.stdout.write(f"{run} started ({run.get_state_display()}); workers are billing it.")
            return
        self.stdout.write(f"{run}: {run.get_state_display()}, {run.invoices_created} invoice(s), "
                          f"{run.invoiced_total} invoiced, {run.errors_count} account(s) left out.")
        for error in billing_run_errors(run=run):
            self.stdout.write(f"  account #{error['account']}: {error['reason']}")

    @staticmethod
    def _day(value):
        if not value:
            return timezone.localdate()
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise CommandError(f"{value!r} is not a date (YYYY-MM-DD).") from None
