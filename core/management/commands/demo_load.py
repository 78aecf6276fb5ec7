"""Load the Company ZX demo: staff per role, customers, and (as later apps add them) the
catalog, billing and provisioning configuration. Safe to run again."""

from django.core.management.base import BaseCommand

from accounts.demo import demo_customers_load, demo_staff_load
from billing.demo import demo_billing_load
from catalogs.demo import demo_catalog_load
from subscriptions.demo import demo_subscriptions_load


class Command(BaseCommand):
    help = "Load (or refresh) the demo data and print the demo logins."

    def add_arguments(self, parser):
        parser.add_argument("--base-url", default="http://127.0.0.1:8000", help="Where the server will listen, for the printed URLs.")

    def handle(self, *args, base_url: str, **options):
        logins = demo_staff_load() + demo_customers_load()
        catalog = demo_catalog_load()
        billing = demo_billing_load()
        subscriptions = demo_subscriptions_load()
        base_url = base_url.rstrip("/")
        out = self.stdout
        out.write("")
        out.write(self.style.SUCCESS("Demo data loaded."))
        out.write(f"  Admin:     {base_url}/admin/")
        out.write(f"  API docs:  {base_url}/api/docs/")
        out.write(f"  API:       {base_url}/api/v1/")
        out.write("  Company ZX catalog: " + ", ".join(str(c) for c in catalog["catalogs"])
                  + f"; movies {', '.join(str(m) for m in catalog['movies'].values())}; price plan {catalog['price_plan']}")
        out.write(f"  Billing: {billing['tax_rate']}; scheme {billing['scheme']} invoices every order at once"
                  if billing["scheme"].max_unbilled_udrs == 1 else f"  Billing: {billing['tax_rate']}")
        out.write("  Subscriptions with an effective PPV Service: "
                  + ", ".join(f"{s.number} ({s.account.contact.display_name})" for s in subscriptions))
        out.write("  Logins:")
        for login in logins:
            out.write(f"    {login.who:<22} {login.username:<28} {login.password:<26} ({login.where})")
        out.write("")
