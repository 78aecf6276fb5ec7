"""Company ZX end to end (DESIGN.md §4) against the real topology: every order goes over HTTP
to gunicorn (portal, decoder, source-system ingestion) or through the admin in Chromium
(call center); the Celery worker delivers the provisioning commands to the Nagra simulator
and collects invoices through localstripe; the test only sets up the catalog and the
customers and then reads what the system did.

Time: gunicorn runs on the wall clock and cannot be time-travelled, and the order API has
no "ordered at" field (an order is priced at the instant it is placed). So:

* live orders (portal, decoder, call center) are checked against the rating function's own
  notion of time — the night tier applies when the order's ``usage_at``, read on the
  operator's wall clock (``catalogs.rating.wall_clock``, TIME_ZONE), falls in 00:01-06:59;
* a deterministic day and night pair goes through the usage ingestion API, which carries
  ``usage_at``: yesterday 03:00 (night, €5.00) and yesterday 15:00 (day, €10.00), rated and
  invoiced by the worker's bulk rating.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.utils import timezone

from billing.models import Invoice, UsageDetailRecord
from billing.selectors import trial_balance
from catalogs.models import ContentTitle
from catalogs.rating import wall_clock
from payments.models import Payment
from provisioning.models import ProvisioningRequest
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS

from .conftest import Http, card_save
from .topology import wait_until
from .world import ZxWorld, nagra_entitlements, world_create


D = Decimal
VAT = D("0.19")
DEADLINE = 40.0


def net_of(gross: Decimal) -> Decimal:
    """Catalog prices include 19 % VAT: the net part, to the cent."""
    return (gross / (1 + VAT)).quantize(D("0.01"), rounding=ROUND_HALF_UP)


def tiered_price(usage_at: str) -> Decimal:
    """€5.00 when the rating function's wall clock says night (00:01-06:59), else €10.00."""
    local = wall_clock(datetime.fromisoformat(usage_at)).time()
    return D("5.00") if time(0, 1) <= local <= time(6, 59, 59) else D("10.00")


def call_center_order(base: str, *, account_number: str, title_label: str, expected: str) -> None:
    """An agent, in Chromium: finds the customer, Add Service Usage, preview, confirm.

    In a thread of its own: Playwright's sync API refuses to start where an asyncio loop
    runs, and the browser tests' session-wide Playwright keeps one in the main thread.
    Nothing here touches the database (gunicorn does)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(_call_center_order, base, account_number, title_label, expected).result(timeout=180)


def _call_center_order(base: str, account_number: str, title_label: str, expected: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(20_000)
            page.goto(f"{base}/admin/login/")
            page.fill("#id_username", "agent")
            page.fill("#id_password", "staff-password-1")
            page.click("input[type=submit]")
            page.wait_for_selector("#user-tools")
            page.goto(f"{base}/admin/accounts/accountsreceivable/?q={account_number}")
            page.locator("#result_list a", has_text=account_number).click()
            page.locator("fieldset[aria-label=subscriptions]").locator("a.button", has_text="Add Service Usage").click()
            page.select_option("#id_title", label=title_label)
            page.click("input[type=submit][value='Preview price']")
            expect(page.locator("#price-preview")).to_contain_text(expected)
            page.click("input[type=submit][value='Confirm order']")
            expect(page.locator(".messagelist")).to_contain_text(f"Ordered {title_label} for {expected}")
        finally:
            browser.close()


def ingest_day_and_night(staff: Http, world: ZxWorld) -> dict[str, Decimal]:
    local_yesterday = timezone.localdate() - timedelta(days=1)
    tz = timezone.get_current_timezone()
    night = datetime.combine(local_yesterday, time(3, 0), tzinfo=tz)
    day = datetime.combine(local_yesterday, time(15, 0), tzinfo=tz)
    records = [
        {"external_id": "zx-night-1", "account": world.maria.account.number, "product": "LOTR", "usage_at": night.isoformat(),
         "subscription": world.maria.number, "title": "LOTR"},
        {"external_id": "zx-day-1", "account": world.maria.account.number, "product": "LIMITLESS", "usage_at": day.isoformat(),
         "subscription": world.maria.number},
    ]
    response = staff.post("/api/v1/usage-records/batch/", {"source": "NAGRA", "records": records})
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 2, response.json()
    return {"zx-night-1": D("5.00"), "zx-day-1": D("10.00")}


def test_company_zx_through_every_channel(topology, e2e_settings, stripe_js):
    world = world_create()
    base = topology.url
    maria = Http.portal(base, username="maria@example.com", password=world.password)
    andreas = Http.portal(base, username="andreas@example.com", password=world.password)
    nikos = Http.portal(base, username="nikos@example.com", password=world.password)
    decoder = Http.device(base, key=world.decoder_key)
    staff = Http.token(base, key=world.ingest_token)
    lotr, limitless = ContentTitle.objects.get(code="LOTR"), ContentTitle.objects.get(code="LIMITLESS")

    # The portal: Maria orders Lord of the Rings before she has a card (the invoice waits).
    portal_order = maria.post("/api/v1/orders/", {"title": lotr.pk, "screen": "WEB"}, key="maria-lotr")
    assert portal_order.status_code == 201, portal_order.text
    assert portal_order.json()["channel"] == "PORTAL"
    assert D(portal_order.json()["amount"]) == tiered_price(portal_order.json()["usage_at"])
    replay = maria.post("/api/v1/orders/", {"title": lotr.pk, "screen": "WEB"}, key="maria-lotr")
    assert replay.json()["id"] == portal_order.json()["id"]  # the retried request is the same order

    # She saves a card (Stripe.js → localstripe) and pays that invoice from the portal.
    card_save(maria, stripe_js)
    first_invoice = Invoice.objects.get(account=world.maria.account, lines__udr_id=portal_order.json()["id"])
    paid = maria.post(f"/api/v1/invoices/{first_invoice.pk}/pay/", key="pay-first")
    assert paid.status_code == 200, paid.text
    assert paid.json()["paid"] is True and paid.json()["payment"]["state"] == "SUCCEEDED"

    # The decoder: Limitless with the remote's BUY button (the worker collects this one).
    device_order = decoder.post("/api/v1/device/orders/", {"title": limitless.pk}, key="remote-1")
    assert device_order.status_code == 201, device_order.text
    assert device_order.json()["channel"] == "DEVICE"
    assert D(device_order.json()["amount"]) == tiered_price(device_order.json()["usage_at"])

    # The call center, in Chromium: Serendipity, the older movie, €3.00 day and night.
    call_center_order(base, account_number=world.maria.account.number, title_label="Serendipity (2001)", expected="3.00 EUR")

    # The VIP orders for free; a subscription without an EFFECTIVE PPV Service is refused.
    vip_order = andreas.post("/api/v1/orders/", {"title": lotr.pk})
    assert vip_order.status_code == 201 and D(vip_order.json()["amount"]) == 0
    refused = nikos.post("/api/v1/orders/", {"title": limitless.pk})
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["fields"]["reasons"] == ["The subscription needs an EFFECTIVE PPV Service to order Limitless."]
    assert not UsageDetailRecord.objects.filter(account=world.nikos.account).exists()

    # Night and day at a known time: the source system's records, rated by the worker.
    ingested = ingest_day_and_night(staff, world)

    # --- what the system did by itself ---------------------------------------------------
    maria_udrs = wait_until(
        lambda: (lambda udrs: udrs if len(udrs) == 5 and all(u.state == "BILLED" for u in udrs) else None)(
            list(UsageDetailRecord.objects.filter(account=world.maria.account).order_by("pk"))),
        timeout=DEADLINE, what="Maria's five orders rated and billed", services=tuple(topology.services.values()))
    by_ref = {udr.external_id: udr.amount for udr in maria_udrs if udr.source != "ORDER"}
    assert by_ref == ingested
    call_center = next(udr for udr in maria_udrs if udr.channel == "CALL_CENTER")
    assert (call_center.amount, call_center.title.code) == (D("3.00"), "SERENDIPITY")

    # Invoices, to the cent: the price includes 19 % VAT (the ingested pair on one invoice,
    # each line's VAT rounded on its own).
    invoices = maria.get("/api/v1/invoices/").json()["results"]
    live = [D(portal_order.json()["amount"]), D(device_order.json()["amount"]), D("3.00")]
    expected = sorted([(price, net_of(price)) for price in live] + [(D("15.00"), net_of(D("5.00")) + net_of(D("10.00")))])
    assert sorted((D(invoice["gross_total"]), D(invoice["net_total"])) for invoice in invoices) == expected
    assert all(D(invoice["net_total"]) + D(invoice["tax_total"]) == D(invoice["gross_total"]) for invoice in invoices)
    assert not andreas.get("/api/v1/invoices/").json()["results"]  # free orders are not invoiced

    # Payments: the first paid from the portal, the others collected by the worker's task.
    total = sum(D(invoice["gross_total"]) for invoice in invoices)
    payments = wait_until(
        lambda: (lambda rows: rows if len(rows) == 4 and all(p["state"] == "SUCCEEDED" for p in rows) else None)(
            maria.get("/api/v1/payments/").json()["results"]),
        timeout=DEADLINE, what="every invoice collected by card", services=(topology.services["worker"],))
    assert sum(D(payment["amount"]) for payment in payments) == total
    assert Payment.objects.filter(account=world.maria.account).count() == 4  # none charged twice
    balances = trial_balance()
    assert sum(balances.values()) == 0
    assert balances["GATEWAY"] == total and balances["AR"] == 0

    # Provisioning: every command delivered by the worker, once; the platform holds the movies.
    wait_until(lambda: not ProvisioningRequest.objects.exclude(state="COMPLETED").exists(), timeout=DEADLINE,
               what="every provisioning request COMPLETED", services=(topology.services["worker"], topology.services["nagra"]))
    assert ProvisioningRequest.objects.filter(kind="PURCHASE_PPV").count() == 4  # the live orders, not the ingested records
    platform = nagra_entitlements(topology.env["NAGRA_ENDPOINT"], world.maria.account.number)
    assert {"1AQ8", "1BQ1", "1BQ4"} <= set(platform)
    assert "1AQ8" in nagra_entitlements(topology.env["NAGRA_ENDPOINT"], world.andreas.account.number)

    # Entitlements over the API: the portal's list and the decoder's check.
    entitled = {item["title_code"] for item in maria.get("/api/v1/entitlements/").json()["results"]}
    assert {"LOTR", "LIMITLESS", "SERENDIPITY"} <= entitled
    check = decoder.get(f"/api/v1/device/entitlements/{lotr.pk}/")
    assert check.status_code == 200 and check.json()["entitled"] is True, check.text
    assert not nikos.get("/api/v1/entitlements/").json()["results"]
