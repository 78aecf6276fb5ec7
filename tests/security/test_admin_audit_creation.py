"""The admin pages that create or change money leave an audit row saying who did it, to
what, and for how much; a bad submission shows its error and writes neither the record nor
an audit row.

``test_admin_audit.py`` walks change forms and life cycle buttons. These are the pages it
does not reach, each submitted here as the role that may use it:

=============================================  ==========  ================================================
page                                           role        audit row(s) (target: action)
=============================================  ==========  ================================================
one-time charge, add                           agent       account: "one-time charge added"
promotion grant, add (by coupon)               agent       coupon: "redeemed"; subscription: "promotion granted"
payment, add ("Take a payment"): cash          agent       payment: "succeeded"
payment, add ("Take a payment"): saved card    agent       payment: "charge started"; Stripe's answer: "succeeded"
payment, refund page                           finance     payment: "refund requested"; then "refunded"
write-off, add                                 finance     invoice: "written off"
invoice, credit note page (its cancellation)   finance     invoice: "credit"
billing run, add (start a run)                 finance     run: "created"
billing run, "resume" bulk action              finance     run: "resumed"
tax rate, add                                  finance     tax rate: "created"
billing term scheme, add                       finance     scheme: "created"
price plan, add with a rate                    marketing   plan: "created", "rate_set"
price plan (DRAFT), a rate's amount changed    marketing   plan: "rate_set" [old, new]
promotion, add with a coupon                   marketing   promotion: "created", "coupon_created"
usage service catalog, add with a service      marketing   catalog: "created", "added <product>"
usage service catalog (DRAFT), rate changed    marketing   catalog: "changed <product>" [old, new]
usage service catalog, "New version" button    marketing   new version: "created as version …"; old: "new version … drafted"
definition, add with a default rate            marketing   definition: "created", "default rate for <type>"
subscription, "Add Service Usage" (PPV order)  agent       the invoice it posts: "post"; the order itself is on
                                                           the subscription's trail, its SubscriptionAction row
=============================================  ==========  ================================================

Not here: chargebacks have no admin page (Stripe's webhooks open and close them); invoices
are posted by billing runs and orders, never in the admin, and cancelled only by a credit
note; a payment's cancel page is in ``test_admin_audit.py``; the subscription action
buttons (add or swap a service, ...) change no money themselves and are recorded as
SubscriptionAction rows like the order.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from core.models import AuditEntry
from tests.payments.conftest import localstripe_url  # noqa: F401  (a fixture: the fake Stripe server, started once)
from tests.security.admin_world import admin_world, client_for
from tests.security.test_admin_audit import change_form_payload

pytestmark = pytest.mark.django_db

CALL_CENTER = "CALL_CENTER"


@pytest.fixture
def world(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    return admin_world()


def audit_mark() -> int:
    return AuditEntry.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def audited_since(mark: int) -> list[tuple]:
    """(model, object pk, action, who, channel) of every audit row written after ``mark``."""
    rows = AuditEntry.objects.filter(pk__gt=mark).select_related("content_type", "performed_by").order_by("pk")
    return [(row.content_type.model_class()._meta.label, row.object_pk, row.action, row.performed_by, row.channel) for row in rows]


def audit_row(mark: int, obj, action: str) -> AuditEntry:
    from django.contrib.contenttypes.models import ContentType

    return AuditEntry.objects.get(pk__gt=mark, content_type=ContentType.objects.get_for_model(type(obj)), object_pk=str(obj.pk),
                                  action=action)


def page_errors(response) -> dict:
    """The errors a form page shows: its form's and its inline rows'."""
    context = response.context or {}
    form = context.get("adminform").form if context.get("adminform") else context.get("form")
    errors = dict(form.errors) if form is not None else {}
    for inline in context.get("inline_admin_formsets") or []:
        errors.update({f"{inline.formset.prefix}-{number}": row for number, row in enumerate(inline.formset.errors) if row})
    return errors


def a_posted_invoice(world):
    """A PPV order of the world's customer: the "Normal" scheme invoices it at once (POSTED, all open)."""
    from billing.models import Invoice
    from catalogs.models import ContentTitle
    from subscriptions.services.orders import usage_order_place

    usage_order_place(subscription=world["subscriptions.Subscription"], title=ContentTitle.objects.get(code="LIMITLESS"))
    return Invoice.objects.filter(account=world["accounts.AccountsReceivable"], state="POSTED").latest("pk")


def inline_prefix(page, model_name: str) -> str:
    return next(inline.formset.prefix for inline in page.context["inline_admin_formsets"]
                if inline.formset.model._meta.model_name == model_name)


# --- billing: charges and grants (agents) -----------------------------------------------------

def test_an_agent_adding_a_one_time_charge_is_audited_on_the_account(agent, world):
    from billing.models import OneTimeCharge
    from catalogs.models import Product

    account, subscription = world["accounts.AccountsReceivable"], world["subscriptions.Subscription"]
    client = client_for(agent)
    assert client.get("/admin/billing/onetimecharge/add/").status_code == 200
    mark = audit_mark()

    response = client.post("/admin/billing/onetimecharge/add/", {
        "account": account.pk, "subscription": subscription.pk, "product": Product.objects.get(code="INSTALLATION").pk,
        "charged_on": timezone.localdate().isoformat()})

    assert response.status_code == 302
    charge = OneTimeCharge.objects.get(account=account)
    assert (charge.description, charge.amount, charge.currency, charge.state) == ("Installation", Decimal("25.00"), "EUR", "PENDING")
    assert audited_since(mark) == [("accounts.AccountsReceivable", str(account.pk), "one-time charge added", agent, CALL_CENTER)]
    assert audit_row(mark, account, "one-time charge added").changes == {"charge": [None, "Installation 25.00 EUR"]}


def test_an_agent_granting_a_promotion_by_coupon_is_audited_on_the_subscription_and_the_coupon(agent, world):
    from billing.models import PromotionGrant
    from catalogs.models import Coupon

    subscription = world["subscriptions.Subscription"]
    coupon = Coupon.objects.get(code="WELCOME50")
    client = client_for(agent)
    assert client.get("/admin/billing/promotiongrant/add/").status_code == 200
    mark = audit_mark()

    response = client.post("/admin/billing/promotiongrant/add/", {"subscription": subscription.pk, "coupon_code": "WELCOME50"})

    assert response.status_code == 302
    grant = PromotionGrant.objects.get(subscription=subscription)
    assert (grant.promotion, grant.granted_by, grant.channel) == (coupon.promotion, agent, CALL_CENTER)
    assert audited_since(mark) == [
        ("catalogs.Coupon", str(coupon.pk), "redeemed", agent, CALL_CENTER),
        ("subscriptions.Subscription", str(subscription.pk), "promotion granted", agent, CALL_CENTER),
    ]
    assert audit_row(mark, subscription, "promotion granted").changes == {
        "promotion": [None, coupon.promotion.name], "coupon": [None, "WELCOME50"]}


# --- payments: taking money (agents), giving it back and writing it off (finance) ----------------

def test_an_agent_taking_a_cash_payment_is_audited(agent, world):
    from payments.models import Payment

    account = world["accounts.AccountsReceivable"]
    client = client_for(agent)
    assert client.get(f"/admin/payments/payment/add/?account={account.pk}").status_code == 200
    mark = audit_mark()

    response = client.post("/admin/payments/payment/add/", {"account": account.number, "kind": "CASH", "amount": "12.50",
                                                             "reference": "", "invoice": ""})

    assert response.status_code == 302
    payment = Payment.objects.exclude(pk=world["payments.Payment"].pk).get()
    assert (payment.kind, payment.amount, payment.state, payment.created_by) == ("CASH", Decimal("12.50"), "SUCCEEDED", agent)
    assert audited_since(mark) == [("payments.Payment", str(payment.pk), "succeeded", agent, CALL_CENTER)]
    assert audit_row(mark, payment, "succeeded").changes == {"amount": [None, "12.50"]}


@pytest.fixture
def card_on_file(world, settings, localstripe_url):
    """The world's customer saved a Visa card in the portal (Stripe.js played against localstripe)."""
    import urllib.request

    from tests.conftest import portal_client_for
    from tests.payments.conftest import PUBLISHABLE_KEY, SECRET_KEY, WEBHOOK_SECRET, FakeBrowser
    from tests.payments.flows import VISA, save_card

    settings.STRIPE_API_BASE, settings.STRIPE_SECRET_KEY = localstripe_url, SECRET_KEY
    settings.STRIPE_PUBLISHABLE_KEY, settings.STRIPE_WEBHOOK_SECRET = PUBLISHABLE_KEY, WEBHOOK_SECRET
    urllib.request.urlopen(urllib.request.Request(f"{localstripe_url}/_config/data", method="DELETE")).read()
    return save_card(portal_client_for(world["accounts.AccountsReceivable"]), FakeBrowser(localstripe_url), VISA)


def test_an_agent_charging_the_saved_card_is_audited(agent, world, card_on_file):
    from payments.models import Payment

    account = world["accounts.AccountsReceivable"]
    mark = audit_mark()

    response = client_for(agent).post("/admin/payments/payment/add/", {"account": account.number, "kind": "CARD", "amount": "20.00",
                                                                       "reference": "", "invoice": ""})

    assert response.status_code == 302
    payment = Payment.objects.get(kind="CARD")
    assert (payment.amount, payment.state, payment.created_by, payment.channel) == (Decimal("20.00"), "SUCCEEDED", agent, CALL_CENTER)
    # The agent started the charge; Stripe's answer settled it.
    assert audited_since(mark) == [
        ("payments.Payment", str(payment.pk), "charge started", agent, CALL_CENTER),
        ("payments.Payment", str(payment.pk), "succeeded", None, "SYSTEM"),
    ]
    assert audit_row(mark, payment, "succeeded").changes == {"amount": [None, "20.00"]}


def test_finance_refunding_a_payment_is_audited(finance_user, world):
    from payments.models import Refund

    payment = world["payments.Payment"]  # 2.00 in cash, kept as credit
    url = f"/admin/payments/payment/{payment.pk}/refund/"
    client = client_for(finance_user)
    assert client.get(url).status_code == 200
    mark = audit_mark()

    response = client.post(url, {"amount": "1.50", "reason": "Goodwill", "confirm": "on"})

    assert response.status_code == 302
    refund = Refund.objects.get(payment=payment)
    assert (refund.amount, refund.state, refund.created_by) == (Decimal("1.50"), "SUCCEEDED", finance_user)
    # Asked for by Finance; the money left once the ledger entry was posted (a card's when Stripe says so).
    assert audited_since(mark) == [
        ("payments.Payment", str(payment.pk), "refund requested", finance_user, CALL_CENTER),
        ("payments.Payment", str(payment.pk), "refunded", None, "SYSTEM"),
    ]
    assert audit_row(mark, payment, "refund requested").changes == {"refund": [None, "1.50"]}


def test_finance_writing_off_a_debt_is_audited_on_the_invoice(finance_user, world):
    from payments.models import WriteOff

    invoice = a_posted_invoice(world)
    client = client_for(finance_user)
    assert client.get(f"/admin/payments/writeoff/add/?invoice={invoice.number}").status_code == 200
    mark = audit_mark()

    response = client.post("/admin/payments/writeoff/add/", {"invoice": invoice.number, "amount": "3.00", "reason": "Goodwill",
                                                              "confirm": "on"})

    assert response.status_code == 302
    write_off = WriteOff.objects.get(invoice=invoice)
    assert (write_off.amount, write_off.created_by) == (Decimal("3.00"), finance_user)
    assert audited_since(mark) == [("billing.Invoice", str(invoice.pk), "written off", finance_user, CALL_CENTER)]
    row = audit_row(mark, invoice, "written off")
    assert (row.changes, row.reasons) == ({"amount": [None, "3.00"]}, ["Goodwill"])


# --- billing: credit notes, runs, tax rates, schemes (finance) -------------------------------------

def test_finance_issuing_a_credit_note_is_audited_on_the_invoice(finance_user, world):
    from billing.models import CreditNote

    invoice = a_posted_invoice(world)
    url = f"/admin/billing/invoice/{invoice.pk}/credit/"
    client = client_for(finance_user)
    assert client.get(url).status_code == 200
    mark = audit_mark()

    response = client.post(url, {"reason": "Did not play", "scope": "all", "confirm": "on"})

    assert response.status_code == 302
    note = CreditNote.objects.get(invoice=invoice)
    invoice.refresh_from_db()
    assert (note.gross_total, note.issued_by, invoice.state) == (invoice.gross_total, finance_user, "CANCELLED")
    assert audited_since(mark) == [("billing.Invoice", str(invoice.pk), "credit", finance_user, CALL_CENTER)]
    assert audit_row(mark, invoice, "credit").changes == {
        "state": ["POSTED", "CANCELLED"], "credit_note": [None, note.number], "credited": [None, str(note.gross_total)]}


def test_finance_starting_a_billing_run_is_audited(finance_user, world):
    from billing.models import BillingRun

    today = timezone.localdate()
    client = client_for(finance_user)
    assert client.get("/admin/billing/billingrun/add/").status_code == 200
    mark = audit_mark()

    response = client.post("/admin/billing/billingrun/add/", {"run_date": today.isoformat(), "scheme": ""})

    assert response.status_code == 302
    run = BillingRun.objects.get()
    assert (run.run_date, run.created_by) == (today, finance_user)
    assert audited_since(mark) == [("billing.BillingRun", str(run.pk), "created", finance_user, CALL_CENTER)]
    assert audit_row(mark, run, "created").changes == {"run_date": [None, today.isoformat()], "scheme": [None, "every scheme"]}


def test_finance_resuming_a_billing_run_is_audited(finance_user, world):
    from billing.services.runs import billing_run_create, billing_run_plan

    run = billing_run_plan(run=billing_run_create(run_date=timezone.localdate()))  # RUNNING: its worker died
    assert run.state == "RUNNING"
    mark = audit_mark()

    response = client_for(finance_user).post("/admin/billing/billingrun/", {"action": "resume", "_selected_action": [run.pk]})

    assert response.status_code == 302
    assert audited_since(mark) == [("billing.BillingRun", str(run.pk), "resumed", finance_user, CALL_CENTER)]


def test_finance_adding_a_tax_rate_is_audited(finance_user, world):
    from billing.models import TaxRate

    client = client_for(finance_user)
    assert client.get("/admin/billing/taxrate/add/").status_code == 200
    mark = audit_mark()

    response = client.post("/admin/billing/taxrate/add/", {"country": "GR", "tax_class": "SERVICE", "name": "VAT", "rate": "24.00",
                                                            "valid_from": "2026-01-01", "valid_until": ""})

    assert response.status_code == 302
    rate = TaxRate.objects.get(country="GR")
    assert audited_since(mark) == [("billing.TaxRate", str(rate.pk), "created", finance_user, CALL_CENTER)]
    assert audit_row(mark, rate, "created").changes == {
        "country": [None, "GR"], "tax_class": [None, "SERVICE"], "name": [None, "VAT"], "rate": [None, "24.00"],
        "valid_from": [None, "2026-01-01"]}


def test_finance_adding_a_billing_term_scheme_is_audited(finance_user, world):
    from billing.models import BillingTermScheme

    client = client_for(finance_user)
    page = client.get("/admin/billing/billingtermscheme/add/")
    assert page.status_code == 200
    mark = audit_mark()

    response = client.post("/admin/billing/billingtermscheme/add/", {
        **change_form_payload(page), "name": "Prepaid", "max_unbilled_udrs": "", "max_unbilled_amount": "50.00", "_save": "Save"})

    assert response.status_code == 302
    scheme = BillingTermScheme.objects.get(name="Prepaid")
    assert audited_since(mark) == [("billing.BillingTermScheme", str(scheme.pk), "created", finance_user, CALL_CENTER)]
    changes = audit_row(mark, scheme, "created").changes
    assert (changes["name"], changes["max_unbilled_amount"]) == ([None, "Prepaid"], [None, "50.00"])


# --- catalogs: prices, promotions and usage rates (marketing) -------------------------------------

def test_marketing_adding_a_price_plan_with_a_rate_is_audited(marketing_user, world):
    from catalogs.models import PricePlan, Product

    client = client_for(marketing_user)
    page = client.get("/admin/catalogs/priceplan/add/")
    assert page.status_code == 200
    rates = inline_prefix(page, "priceplanrate")
    mark = audit_mark()

    response = client.post("/admin/catalogs/priceplan/add/", {
        **change_form_payload(page), "code": "OTT-PLUS", "name": "OTT Plus", "currency": "EUR", "_save": "Save",
        f"{rates}-TOTAL_FORMS": "1", f"{rates}-0-product": Product.objects.get(code="INSTALLATION").pk,
        f"{rates}-0-charge_type": "ONE_TIME", f"{rates}-0-amount": "30.00", f"{rates}-0-free_trial_days": "0"})

    assert response.status_code == 302, page_errors(response)
    plan = PricePlan.objects.get(code="OTT-PLUS")
    assert list(plan.rates.values_list("product__code", "amount")) == [("INSTALLATION", Decimal("30.00"))]
    assert audited_since(mark) == [
        ("catalogs.PricePlan", str(plan.pk), "created", marketing_user, CALL_CENTER),
        ("catalogs.PricePlan", str(plan.pk), "rate_set", marketing_user, CALL_CENTER),
    ]
    assert audit_row(mark, plan, "rate_set").changes["INSTALLATION/one_time.amount"] == [None, "30.0000"]  # unit prices keep 4 decimals


def test_marketing_changing_a_rate_of_a_draft_price_plan_is_audited_from_old_to_new(marketing_user, world):
    from catalogs.models import Product
    from catalogs.services.pricing import price_plan_create, price_plan_rate_set

    plan = price_plan_create(code="OTT-PLUS", name="OTT Plus")
    price_plan_rate_set(price_plan=plan, product=Product.objects.get(code="INSTALLATION"), charge_type="ONE_TIME", amount="30.00")
    url = f"/admin/catalogs/priceplan/{plan.pk}/change/"
    client = client_for(marketing_user)
    page = client.get(url)
    rates = inline_prefix(page, "priceplanrate")
    mark = audit_mark()

    response = client.post(url, {**change_form_payload(page), f"{rates}-0-amount": "35.00", "_save": "Save"})

    assert response.status_code == 302
    assert plan.rates.get().amount == Decimal("35.00")
    assert audited_since(mark) == [("catalogs.PricePlan", str(plan.pk), "rate_set", marketing_user, CALL_CENTER)]
    assert audit_row(mark, plan, "rate_set").changes == {"INSTALLATION/one_time.amount": ["30.0000", "35.0000"]}


def test_marketing_adding_a_promotion_with_a_coupon_is_audited(marketing_user, world):
    from catalogs.models import Promotion

    client = client_for(marketing_user)
    page = client.get("/admin/catalogs/promotion/add/")
    assert page.status_code == 200
    coupons = inline_prefix(page, "coupon")
    mark = audit_mark()

    response = client.post("/admin/catalogs/promotion/add/", {
        **change_form_payload(page), "code": "SPRING5", "name": "Spring: 5 off for 3 months", "kind": "AMOUNT", "value": "5.00",
        "periods": "3", "requires_coupon": "on", "_save": "Save",
        f"{coupons}-TOTAL_FORMS": "1", f"{coupons}-0-code": "spring5", f"{coupons}-0-max_per_account": "1",
        f"{coupons}-0-is_active": "on"})

    assert response.status_code == 302, page_errors(response)
    promotion = Promotion.objects.get(code="SPRING5")
    assert list(promotion.coupons.values_list("code", flat=True)) == ["SPRING5"]
    assert audited_since(mark) == [
        ("catalogs.Promotion", str(promotion.pk), "created", marketing_user, CALL_CENTER),
        ("catalogs.Promotion", str(promotion.pk), "coupon_created", marketing_user, CALL_CENTER),
    ]
    changes = audit_row(mark, promotion, "created").changes
    assert (changes["kind"], changes["value"], changes["periods"]) == ([None, "AMOUNT"], [None, "5.0000"], [None, 3])


def test_marketing_adding_a_usage_catalog_with_a_service_is_audited(marketing_user, world):
    from catalogs.models import Product, UsageServiceCatalog

    serendipity = Product.objects.get(code="SERENDIPITY")
    client = client_for(marketing_user)
    page = client.get("/admin/catalogs/usageservicecatalog/add/")
    assert page.status_code == 200
    services = inline_prefix(page, "usageservice")
    mark = audit_mark()

    response = client.post("/admin/catalogs/usageservicecatalog/add/", {
        **change_form_payload(page), "name": "Summer cinema", "provider": _provider(), "_save": "Save",
        f"{services}-0-product": serendipity.pk, f"{services}-0-provisioning_id": "9SUM", f"{services}-0-base_rate": "2.50",
        f"{services}-0-tiers_text": "none"})

    assert response.status_code == 302, page_errors(response)
    catalog = UsageServiceCatalog.objects.get(name="Summer cinema")
    assert list(catalog.services.values_list("product__code", "base_rate")) == [("SERENDIPITY", Decimal("2.50"))]
    assert audited_since(mark) == [
        ("catalogs.UsageServiceCatalog", str(catalog.pk), "created", marketing_user, CALL_CENTER),
        ("catalogs.UsageServiceCatalog", str(catalog.pk), f"added {serendipity}", marketing_user, CALL_CENTER),
    ]
    assert audit_row(mark, catalog, f"added {serendipity}").changes["SERENDIPITY.base_rate"] == [None, "2.5000"]


def test_marketing_changing_a_rate_of_a_draft_usage_catalog_is_audited_from_old_to_new(marketing_user, world):
    from catalogs.models import Product
    from catalogs.services.usage_catalogs import usage_catalog_create, usage_service_add

    serendipity = Product.objects.get(code="SERENDIPITY")
    catalog = usage_catalog_create(name="Summer cinema")
    usage_service_add(catalog=catalog, product=serendipity, provisioning_id="9SUM", base_rate="2.50", tiers=[])
    url = f"/admin/catalogs/usageservicecatalog/{catalog.pk}/change/"
    client = client_for(marketing_user)
    page = client.get(url)
    services = inline_prefix(page, "usageservice")
    mark = audit_mark()

    response = client.post(url, {**change_form_payload(page), f"{services}-0-base_rate": "2.00", "_save": "Save"})

    assert response.status_code == 302, page_errors(response)
    assert catalog.services.get().base_rate == Decimal("2.00")
    assert audited_since(mark) == [
        ("catalogs.UsageServiceCatalog", str(catalog.pk), f"changed {serendipity}", marketing_user, CALL_CENTER)]
    assert audit_row(mark, catalog, f"changed {serendipity}").changes == {"SERENDIPITY.base_rate": ["2.5000", "2.0000"]}


def test_marketing_drafting_a_new_version_of_a_usage_catalog_is_audited_on_both(marketing_user, world):
    from catalogs.models import UsageServiceCatalog

    catalog = UsageServiceCatalog.objects.filter(state="EFFECTIVE").order_by("pk").first()
    mark = audit_mark()

    response = client_for(marketing_user).post(f"/admin/catalogs/usageservicecatalog/{catalog.pk}/act/revise/")

    assert response.status_code == 302
    copy = UsageServiceCatalog.objects.get(previous_version=catalog)
    assert (copy.state, copy.version) == ("DRAFT", catalog.version + 1)
    assert audited_since(mark) == [
        ("catalogs.UsageServiceCatalog", str(copy.pk), f"created as version {copy.version} of {catalog}", marketing_user, CALL_CENTER),
        ("catalogs.UsageServiceCatalog", str(catalog.pk), f"new version {copy.version} drafted", marketing_user, CALL_CENTER),
    ]


def test_marketing_adding_a_definition_with_a_default_rate_is_audited(marketing_user, world):
    from catalogs.models import ProductType, UsageServiceCatalogDefinition
    from provisioning.models import ProvisioningProvider

    usage = ProductType.objects.get(service_type="USAGE")
    client = client_for(marketing_user)
    page = client.get("/admin/catalogs/usageservicecatalogdefinition/add/")
    assert page.status_code == 200
    defaults = inline_prefix(page, "definitiondefaultrate")
    mark = audit_mark()

    response = client.post("/admin/catalogs/usageservicecatalogdefinition/add/", {
        **change_form_payload(page), "name": "OTT definition 2027", "usage_service_types": [usage.pk],
        "providers": [ProvisioningProvider.objects.order_by("pk").first().pk], "_save": "Save",
        f"{defaults}-0-product_type": usage.pk, f"{defaults}-0-base_rate": "8.00", f"{defaults}-0-tiers_text": "none"})

    assert response.status_code == 302, page_errors(response)
    definition = UsageServiceCatalogDefinition.objects.get(name="OTT definition 2027")
    assert definition.default_rates.get().base_rate == Decimal("8.00")
    assert audited_since(mark) == [
        ("catalogs.UsageServiceCatalogDefinition", str(definition.pk), "created", marketing_user, CALL_CENTER),
        ("catalogs.UsageServiceCatalogDefinition", str(definition.pk), f"default rate for {usage}", marketing_user, CALL_CENTER),
    ]
    assert audit_row(mark, definition, f"default rate for {usage}").changes == {"base_rate": [None, "8.0000"], "tiers": [None, ""]}


# --- subscriptions: a PPV order taken by an agent ----------------------------------------------

def test_an_agent_ordering_a_movie_for_a_caller_is_recorded_with_who_and_how_much(agent, world):
    from billing.models import Invoice, UsageDetailRecord
    from catalogs.models import ContentTitle
    from subscriptions.models import SubscriptionAction

    subscription = world["subscriptions.Subscription"]
    title = ContentTitle.objects.get(code="SERENDIPITY")
    url = f"/admin/subscriptions/subscription/{subscription.pk}/add-service-usage/"
    client = client_for(agent)
    form = {"transaction_reference": "call-4711", "title": title.pk, "device": ""}
    preview = client.post(url, form)
    assert preview.status_code == 200 and preview.context["quote"] is not None
    mark = audit_mark()

    response = client.post(url, {**form, "confirmed": "True", "previewed": f"{title.pk}:"})

    assert response.status_code == 302
    action = SubscriptionAction.objects.get(transaction_reference="call-4711")
    udr = UsageDetailRecord.objects.get(pk=action.result["udr"])
    assert (action.behavior, action.state, action.performed_by, action.channel) == ("ADD_SERVICE_USAGE", "EXECUTED", agent, CALL_CENTER)
    assert (udr.title, udr.amount, udr.channel) == (title, preview.context["quote"].amount, CALL_CENTER)
    assert action.result["amount"] == str(udr.amount)
    # The order is on the subscription's own trail (the action above); the invoice the
    # "Normal" scheme posts for it at once is audited like any invoice.
    invoice = Invoice.objects.get(number=action.result["invoice"])
    assert (invoice.state, invoice.gross_total) == ("POSTED", udr.amount)
    assert audited_since(mark) == [("billing.Invoice", str(invoice.pk), "post", agent, CALL_CENTER)]


# --- a bad submission shows its error and writes nothing ----------------------------------------

def _product(code: str) -> int:
    from catalogs.models import Product

    return Product.objects.get(code=code).pk


def _usage_type() -> int:
    from catalogs.models import ProductType

    return ProductType.objects.get(service_type="USAGE").pk


def _provider() -> int:
    from provisioning.models import ProvisioningProvider

    return ProvisioningProvider.objects.order_by("pk").first().pk


def _add_form_payload(client, url: str, **fields) -> dict:
    """The add page as the browser would send it, with ``fields`` typed in; ``{model}`` in a
    field's name is the prefix of that model's inline rows."""
    page = client.get(url)
    prefixes = {inline.formset.model._meta.model_name: inline.formset.prefix for inline in page.context["inline_admin_formsets"]}
    return {**change_form_payload(page), "_save": "Save", **{name.format(**prefixes): value for name, value in fields.items()}}


#: case -> (role fixture, model counted, url, payload(client, world), the error the page shows)
BAD_SUBMISSIONS = {
    "one-time charge for a product with no one-time rate": (
        "agent", "billing.OneTimeCharge", "/admin/billing/onetimecharge/add/",
        lambda client, world: {"account": world["accounts.AccountsReceivable"].pk, "product": _product("SPORTS-PACK"),
                               "charged_on": timezone.localdate().isoformat()},
        "has no one-time rate"),
    "promotion grant with an unknown coupon": (
        "agent", "billing.PromotionGrant", "/admin/billing/promotiongrant/add/",
        lambda client, world: {"subscription": world["subscriptions.Subscription"].pk, "coupon_code": "NO-SUCH-CODE"},
        "There is no coupon NO-SUCH-CODE"),
    "cash payment of a negative amount": (
        "agent", "payments.Payment", "/admin/payments/payment/add/",
        lambda client, world: {"account": world["accounts.AccountsReceivable"].number, "kind": "CASH", "amount": "-5.00",
                               "reference": "", "invoice": ""},
        "Ensure this value is greater than or equal to 0.01"),
    "refund of a negative amount": (
        "finance_user", "payments.Refund", "/admin/payments/payment/{payment}/refund/",
        lambda client, world: {"amount": "-1.00", "reason": "Goodwill", "confirm": "on"},
        "Ensure this value is greater than or equal to 0.01"),
    "write-off without a reason": (
        "finance_user", "payments.WriteOff", "/admin/payments/writeoff/add/",
        lambda client, world: {"invoice": world["invoice"].number, "amount": "3.00", "reason": "", "confirm": "on"},
        "This field is required"),
    "credit note of a negative line amount": (
        "finance_user", "billing.CreditNote", "/admin/billing/invoice/{invoice}/credit/",
        lambda client, world: {"reason": "Did not play", "scope": "lines", "confirm": "on",
                               **{f"line_{line.pk}": "-1.00" for line in world["invoice"].lines.all()}},
        "Ensure this value is greater than or equal to 0.01"),
    "billing run for tomorrow": (
        "finance_user", "billing.BillingRun", "/admin/billing/billingrun/add/",
        lambda client, world: {"run_date": (timezone.localdate() + timedelta(days=1)).isoformat(), "scheme": ""},
        "A billing run cannot be for a day that has not come yet."),
    "tax rate over 100 percent": (
        "finance_user", "billing.TaxRate", "/admin/billing/taxrate/add/",
        lambda client, world: {"country": "GR", "tax_class": "SERVICE", "name": "VAT", "rate": "124.00",
                               "valid_from": "2026-01-01", "valid_until": ""},
        "less than or equal to 100"),
    "billing term scheme with a negative usage limit": (
        "finance_user", "billing.BillingTermScheme", "/admin/billing/billingtermscheme/add/",
        lambda client, world: _add_form_payload(client, "/admin/billing/billingtermscheme/add/", name="Prepaid",
                                                max_unbilled_amount="-50.00"),
        "greater than or equal to"),
    "price plan with a negative rate": (
        "marketing_user", "catalogs.PricePlan", "/admin/catalogs/priceplan/add/",
        lambda client, world: _add_form_payload(client, "/admin/catalogs/priceplan/add/", code="OTT-PLUS", name="OTT Plus", **{
            "{priceplanrate}-TOTAL_FORMS": "1", "{priceplanrate}-0-product": _product("INSTALLATION"),
            "{priceplanrate}-0-charge_type": "ONE_TIME", "{priceplanrate}-0-amount": "-30.00",
            "{priceplanrate}-0-free_trial_days": "0"}),
        "greater than or equal to 0"),
    "promotion of 150 percent": (
        "marketing_user", "catalogs.Promotion", "/admin/catalogs/promotion/add/",
        lambda client, world: _add_form_payload(client, "/admin/catalogs/promotion/add/", code="HALF-AGAIN", name="Too generous",
                                                kind="PERCENT", value="150"),
        "A percentage cannot exceed 100."),
    "usage catalog with a negative rate": (
        "marketing_user", "catalogs.UsageServiceCatalog", "/admin/catalogs/usageservicecatalog/add/",
        lambda client, world: _add_form_payload(client, "/admin/catalogs/usageservicecatalog/add/", name="Summer cinema",
                                                provider=_provider(), **{
            "{usageservice}-0-product": _product("SERENDIPITY"), "{usageservice}-0-provisioning_id": "9SUM",
            "{usageservice}-0-base_rate": "-2.50", "{usageservice}-0-tiers_text": "none"}),
        "A rate must be zero or more."),
    "definition with a tier that is not a rate": (
        "marketing_user", "catalogs.UsageServiceCatalogDefinition", "/admin/catalogs/usageservicecatalogdefinition/add/",
        lambda client, world: _add_form_payload(
            client, "/admin/catalogs/usageservicecatalogdefinition/add/", name="OTT definition 2027",
            usage_service_types=[_usage_type()], providers=[_provider()], **{
                "{definitiondefaultrate}-0-product_type": _usage_type(), "{definitiondefaultrate}-0-base_rate": "8.00",
                "{definitiondefaultrate}-0-tiers_text": "cheap at night"}),
        "is not rate@HH:MM-HH:MM"),
}


@pytest.mark.parametrize("case", sorted(BAD_SUBMISSIONS))
def test_a_bad_submission_shows_the_error_and_writes_neither_the_record_nor_an_audit_row(request, world, case):
    from django.apps import apps

    role, label, url, payload, error = BAD_SUBMISSIONS[case]
    client = client_for(request.getfixturevalue(role))
    world["invoice"] = a_posted_invoice(world)
    url = url.format(payment=world["payments.Payment"].pk, invoice=world["invoice"].pk)
    data = payload(client, world)
    model = apps.get_model(label)
    records, mark = model.objects.count(), audit_mark()

    response = client.post(url, data)

    assert response.status_code == 200, f"{case}: the page accepted it ({response.status_code})"
    assert error in response.content.decode(), f"{case}: the page does not say {error!r} but {page_errors(response)}"
    assert model.objects.count() == records, f"{case}: a {label} was written"
    assert audited_since(mark) == [], f"{case}: an audit row was written"
