"""Every change an administrator makes in the admin to money, prices, rates or states
leaves an audit row saying who changed what, from which value to which.

The walk starts from the admin registry: each ModelAdmin is in ``FORM_EDITS`` (a field changed on
its change form), ``LIFECYCLES`` (a state changed with its life cycle buttons), ``READ_ONLY``
(the test proves its change form and delete are refused; what it adds goes through
service-backed pages, some of them walked below), or ``NOT_MONEY_OR_STATE`` with the
reason. A ModelAdmin registered later fails until it is placed. Audit rows are the
``core.AuditEntry`` table, except customers' accounts, whose trail is ``AccountEvent``.
"""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal

import pytest
from django import forms
from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.test import Client, RequestFactory

from core.models import AuditEntry
from tests.security.admin_world import admin_world, model_admins

pytestmark = pytest.mark.django_db

#: model -> why the admin may write it without an audit row
NOT_MONEY_OR_STATE = {
    "accounts.Contact": "names and addresses; the service records each change as an AccountEvent anyway",
    "auth.Group": "the roles; changed by data migrations (accounts/roles.py), not money or state",
    "auth.User": "staff logins (Django's own admin log records their changes)",
    "authtoken.TokenProxy": "API tokens of staff integrations",
    "catalogs.Genre": "a list of genre names",
    "catalogs.Product": "names and descriptions; its prices live in price plans and usage catalogs",
    "catalogs.ProductType": "classifications of products; no prices",
}

#: models whose admin is a window: it can neither add, change nor delete
READ_ONLY = {
    "accounts.AccountEvent", "analytics.AnalyticsDashboard", "billing.CreditNote", "billing.Invoice",
    "billing.JournalEntry", "billing.LedgerAccount", "billing.RevenueRecognition", "billing.RevenueWaterfall",
    "billing.UsageDetailRecord", "catalogs.CouponRedemption", "core.AuditEntry", "payments.Chargeback",
    "payments.DunningCase", "payments.PaymentMethod", "payments.Refund", "payments.WebhookEvent",
    "provisioning.ProvisioningDeadLetter", "provisioning.ProvisioningRequest", "provisioning.ReconciliationRun",
    "payments.Payment", "subscriptions.Subscription", "billing.BillingRun", "payments.WriteOff",
    "billing.OneTimeCharge", "billing.PromotionGrant",
}

#: models whose state changes through the admin's life cycle buttons (core.admin.LifecycleActionsMixin)
LIFECYCLES = {
    "billing.BillingTermScheme", "catalogs.PricePlan", "catalogs.Promotion", "catalogs.UsageServiceCatalog",
    "catalogs.UsageServiceCatalogDefinition",
}

#: model -> (field edited on its change form, the new value)
FORM_EDITS = {
    "accounts.AccountsReceivable": ("credit_limit", "150.00"),
    "accounts.Classification": ("description", "Customers with a signed framework contract"),
    "billing.TaxRate": ("name", "Standard VAT (Cyprus)"),
    "catalogs.ContentTitle": ("synopsis", "A hobbit, a ring, a long walk."),
    "payments.DunningSchedule": ("overdue_after_days", "21"),
    "provisioning.ProvisioningProvider": ("state", None),  # None: the next choice
}


def test_every_admin_is_placed():
    labels = {model._meta.label for model, _model_admin in model_admins()}
    placed = set(NOT_MONEY_OR_STATE) | READ_ONLY | set(FORM_EDITS) | LIFECYCLES
    assert labels - placed == set(), "place the new ModelAdmin in FORM_EDITS, LIFECYCLES, READ_ONLY or NOT_MONEY_OR_STATE"
    assert placed - labels == set(), "these are no longer registered"


def test_read_only_admins_cannot_write(administrator):
    request = RequestFactory().get("/admin/")
    request.user = administrator
    for model, model_admin in model_admins():
        label = model._meta.label
        if label not in READ_ONLY:
            continue
        obj = model.objects.order_by("pk").first() or model()  # an object's page, not the list
        assert not model_admin.has_change_permission(request, obj), f"{label}: the change form can write"
        assert not model_admin.has_delete_permission(request, obj), f"{label}: it can be deleted"


# --- a change form, round-tripped ---------------------------------------------------------

def _plain(value, field: forms.Field):
    if value is None:
        return ""
    if isinstance(value, models.Model):
        return str(value.pk)
    if isinstance(value, (list, tuple, models.QuerySet)):
        return [_plain(item, field) for item in value]
    if isinstance(value, bool):
        return "on" if value else ""
    if isinstance(value, (datetime, date, time, Decimal)):
        return value.isoformat() if not isinstance(value, Decimal) else str(value)
    return str(value)


def _form_fields(form: forms.BaseForm) -> dict:
    data = {}
    for name, field in form.fields.items():
        bound = form[name]
        value = bound.value()
        if isinstance(field.widget, forms.MultiWidget):
            parts = field.widget.decompress(value)
            for index, part in enumerate(parts):
                data[f"{bound.html_name}_{index}"] = _plain(part, field)
            continue
        plain = _plain(value, field)
        if plain != "" or not isinstance(field, forms.BooleanField):
            data[bound.html_name] = plain
    return data


def change_form_payload(response) -> dict:
    """What the browser would send back unchanged: the form and its inline rows."""
    data = _form_fields(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        data.update(_form_fields(formset.management_form))
        for row in formset.forms:
            data.update(_form_fields(row))
    return {key: value for key, value in data.items() if value != ""}


def audit_rows(obj, after_id: int):
    return AuditEntry.objects.filter(content_type=ContentType.objects.get_for_model(type(obj)),
                                     object_pk=str(obj.pk), pk__gt=after_id)


def account_events(obj, after_id: int):
    from accounts.models import AccountEvent

    return AccountEvent.objects.filter(account=obj, pk__gt=after_id)


@pytest.fixture
def world(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    built = admin_world()
    from accounts.models import Classification
    from billing.models import TaxRate
    from payments.models import DunningSchedule
    from provisioning.models import ProvisioningProvider

    for label, model in (("accounts.Classification", Classification), ("billing.TaxRate", TaxRate),
                         ("payments.DunningSchedule", DunningSchedule),
                         ("provisioning.ProvisioningProvider", ProvisioningProvider)):
        built[label] = model.objects.order_by("pk").first()
        assert built[label] is not None, f"the world has no {label}"
    return built


@pytest.mark.parametrize("label", sorted(FORM_EDITS))
def test_a_change_through_the_admin_form_is_audited(administrator, world, label):
    from accounts.models import AccountEvent

    obj = world[label]
    model = type(obj)
    url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/{obj.pk}/change/"
    client = Client()
    client.force_login(administrator)
    page = client.get(url)
    assert page.status_code == 200
    field, value = FORM_EDITS[label]
    payload = change_form_payload(page)
    if value is None:
        choices = [str(choice) for choice, _label in model._meta.get_field(field).choices]
        value = next(choice for choice in choices if choice != payload.get(field))
    before = getattr(obj, field)
    last_audit = AuditEntry.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    last_event = AccountEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0

    response = client.post(url, {**payload, field: value, "_save": "Save"})

    assert response.status_code == 302, f"{label}: the admin refused the change: {_errors(response)}"
    obj.refresh_from_db()
    assert str(getattr(obj, field)) != str(before), f"{label}: {field} did not change"
    if label == "accounts.AccountsReceivable":
        event = account_events(obj, last_event).get()
        assert event.performed_by == administrator
        assert field in event.changes and event.changes[field][0] in (str(before), before)
        return
    row = audit_rows(obj, last_audit).get()
    assert row.performed_by == administrator
    assert row.channel == "CALL_CENTER"
    changed = {name.removesuffix("_id"): values for name, values in row.changes.items()}
    assert field in changed, f"{label}: the audit row does not name {field}: {row.changes}"
    assert [str(item) for item in changed[field]] == [str(before), str(getattr(obj, field))]


def _errors(response) -> str:
    context = getattr(response, "context", None)
    if not context or "adminform" not in context:
        return str(response.status_code)
    errors = dict(context["adminform"].form.errors)
    for inline in context["inline_admin_formsets"]:
        errors.update({f"inline {i}": e for i, e in enumerate(inline.formset.errors) if e})
        if inline.formset.non_form_errors():
            errors["inline"] = inline.formset.non_form_errors()
    return str(errors)


# --- a state changed with the life cycle buttons -------------------------------------------

@pytest.mark.parametrize("label", sorted(LIFECYCLES))
def test_a_state_change_through_the_admin_is_audited(administrator, world, label):
    from django.apps import apps

    model = apps.get_model(label)
    model_admin = admin.site._registry[model]
    obj = world.get(label) or model.objects.order_by("pk").first()
    codes = [code for code, _label in model_admin.lifecycle_available(obj) if code != "revise"]
    assert codes, f"{label}: no life cycle action is available for {obj} ({obj.state})"
    before = obj.state
    last_audit = AuditEntry.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    client = Client()
    client.force_login(administrator)

    url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/{obj.pk}/act/{codes[-1]}/"
    response = client.post(url)

    assert response.status_code == 302
    obj.refresh_from_db()
    rows = list(audit_rows(obj, last_audit))
    assert rows, f"{label}: {codes[-1]} wrote no audit row"
    assert all(row.performed_by == administrator for row in rows)
    if obj.state == before:
        assert rows[-1].action.startswith("rejected") and rows[-1].reasons, f"{label}: refused without reasons"
    else:
        assert any(row.changes.get("state") == [before, obj.state] for row in rows), [row.changes for row in rows]


# --- service-backed pages ----------------------------------------------------------------

def test_suspending_a_customer_in_the_admin_is_audited(administrator, world):
    from accounts.models import AccountEvent

    account = world["accounts.AccountsReceivable"]
    last_event = AccountEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    client = Client()
    client.force_login(administrator)

    response = client.post(f"/admin/accounts/accountsreceivable/{account.pk}/lifecycle/suspend/", {"reason": "Fraud check"})

    assert response.status_code == 302
    event = account_events(account, last_event).get()
    assert (event.performed_by, event.from_state, event.to_state) == (administrator, "ACTIVE", "SUSPENDED")


def test_cancelling_a_payment_in_the_admin_is_audited(administrator, world):
    payment = world["payments.Payment"]
    before = payment.state
    last_audit = AuditEntry.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    client = Client()
    client.force_login(administrator)

    response = client.post(f"/admin/payments/payment/{payment.pk}/cancel/", {"reason": "Cheque bounced", "confirm": "on"})

    assert response.status_code == 302
    payment.refresh_from_db()
    assert payment.state != before
    row = audit_rows(payment, last_audit).get()
    assert (row.performed_by, row.action, row.reasons) == (administrator, "cancelled", ["Cheque bounced"])
    assert row.changes == {"state": [before, "CANCELLED"]}
