"""``manage.py provisioning_dispatch``: send the due provisioning requests now (what the
beat entry does every 30 s), e.g. after the platform came back from maintenance."""

from django.core.management.base import BaseCommand

from provisioning.services.sending import provisioning_requests_dispatch


class Command(BaseCommand):
    help = "Send the due provisioning requests (in order per account) and report how many attempts were made."

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=500)

    def handle(self, *args, limit: int, **options):
        attempts = provisioning_requests_dispatch(limit=limit)
        self.stdout.write(f"{attempts} provisioning attempt(s) made.")
