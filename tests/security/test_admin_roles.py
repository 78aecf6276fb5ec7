"""Every admin action and every admin view an app added is limited to the roles that need it.

The role matrix below is the specification (docs/security.md shows it too). The tests
enumerate the admin itself, so an action or view added later without a row here fails until
someone decides who may use it. For each role outside a row: the bulk action is not
offered and posting it changes nothing; the view answers 403 to GET and POST and changes
nothing. For each role inside a row: the action is offered and the view opens.
"""

from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib import admin
from django.test import RequestFactory

from accounts.roles import ADMINISTRATOR as X, CALL_CENTER_AGENT as A, FINANCE as F, MARKETING as M, ROLES
from tests.security.admin_world import ROLE_FIXTURES, admin_world, bulk_actions, client_for, own_views, snapshot, view_url

pytestmark = pytest.mark.django_db

#: (model, bulk action) -> roles offered it
ACTIONS = {
    ("accounts.AccountsReceivable", "suspend_selected"): {A, X},
    ("accounts.AccountsReceivable", "reactivate_selected"): {A, X},
    ("billing.BillingRun", "resume"): {F, X},
    ("catalogs.ContentTitle", "submit_selected"): {M, X},
    ("catalogs.ContentTitle", "publish_selected"): {M, X},
    ("catalogs.ContentTitle", "return_to_draft_selected"): {M, X},
    ("catalogs.PricePlan", "set_effective_selected"): {M, X},
    ("catalogs.PricePlan", "set_not_effective_selected"): {M, X},
    ("catalogs.PricePlan", "cancel_selected"): {M, X},
    ("catalogs.Promotion", "set_effective_selected"): {M, X},
    ("catalogs.Promotion", "set_not_effective_selected"): {M, X},
    ("catalogs.Promotion", "cancel_selected"): {M, X},
    ("provisioning.ProvisioningDeadLetter", "retry_selected"): {F, X},
    ("provisioning.ProvisioningDeadLetter", "cancel_selected"): {F, X},
    ("provisioning.ProvisioningRequest", "retry_selected"): {F, X},
    ("provisioning.ProvisioningRequest", "cancel_selected"): {F, X},
}

#: admin URL name -> roles that may open it
VIEWS = {
    "accounts_accountsreceivable_lifecycle": {A, X},
    "accounts_accountsreceivable_device_key": {A, X},
    "analytics_analyticsdashboard_csv": {M, F, X},
    "analytics_insights_csv": {M, F, X},
    "billing_billingtermscheme_lifecycle": {F, X},
    "billing_creditnote_document": {A, F, X},
    "billing_invoice_document": {A, F, X},
    "billing_invoice_credit": {F, X},
    "billing_revenuewaterfall_csv": {F, X},
    "catalogs_contenttitle_workflow": {M, X},
    "catalogs_contenttitle_process_import": {M, X},
    "catalogs_contenttitle_import": {M, X},
    "catalogs_contenttitle_export": {A, M, F, X},  # the published catalog is no secret to staff
    "catalogs_priceplan_lifecycle": {M, X},
    "catalogs_product_process_import": {M, X},
    "catalogs_product_import": {M, X},
    "catalogs_product_export": {A, M, F, X},
    "catalogs_promotion_lifecycle": {M, X},
    "catalogs_usageservicecatalog_lifecycle": {M, X},
    "catalogs_usageservicecatalogdefinition_lifecycle": {M, X},
    "payments_payment_refund": {F, X},
    "payments_payment_cancel": {F, X},
    "provisioning_reconciliationrun_run": {F, X},
    "subscriptions_subscription_action": {A, X},
    "subscriptions_subscription_usage": {A, X},
    "subscriptions_device_remove": {A, X},
}

#: views that only answer POST (a GET is refused to everyone); the allowed side is proven by
#: their own tests, because a POST here would really run them (imports, a reconciliation
#: against the Nagra platform)
POST_ONLY = {"catalogs_contenttitle_process_import", "catalogs_product_process_import", "provisioning_reconciliationrun_run"}


@pytest.fixture
def staff(request) -> dict:
    return {role: request.getfixturevalue(fixture) for role, fixture in ROLE_FIXTURES.items()}


@pytest.fixture
def world(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    return admin_world()


def test_the_matrix_names_every_action_and_view():
    assert set(bulk_actions()) == set(ACTIONS), "add the new admin action to ACTIONS with the roles that may run it"
    assert {name for _model, name, _route in own_views()} == set(VIEWS), "add the new admin view to VIEWS"
    assert all(roles_allowed <= set(ROLES) and X in roles_allowed for roles_allowed in [*ACTIONS.values(), *VIEWS.values()])


def test_each_action_is_offered_to_its_roles_only(staff):
    for (model_label, name), allowed in ACTIONS.items():
        model_admin = admin.site._registry[apps.get_model(model_label)]
        for role, user in staff.items():
            request = RequestFactory().get("/admin/")
            request.user = user
            offered = name in model_admin.get_actions(request)
            assert offered == (role in allowed), f"{model_label}.{name} {'offered' if offered else 'hidden'} to {role}"


def test_posting_an_action_one_may_not_run_changes_nothing(staff, world):
    before = snapshot(world)
    for (model_label, name), allowed in ACTIONS.items():
        model = apps.get_model(model_label)
        target = world.get(model_label) or model.objects.order_by("pk").first()
        selected = [target.pk] if target is not None else ["1"]
        changelist = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        for role in set(ROLES) - allowed:
            response = client_for(staff[role]).post(changelist, {"action": name, "_selected_action": selected, "post": "yes"})
            assert response.status_code in (200, 302, 403), f"{model_label}.{name} as {role}: {response.status_code}"
    assert snapshot(world) == before


def test_each_view_opens_for_its_roles_and_refuses_the_others(staff, world):
    before = snapshot(world)
    for model_label, url_name, route in own_views():
        url = view_url(model_label, url_name, route, world)
        for role, user in staff.items():
            client = client_for(user)
            if role in VIEWS[url_name]:
                if url_name not in POST_ONLY:
                    status = client.get(url).status_code
                    assert status in (200, 302), f"{url_name} as {role}: {status}"
                continue
            assert client.get(url).status_code in (403, 405), f"GET {url_name} as {role} must be refused"
            assert client.post(url, {"reason": "probe", "confirm": "yes", "post": "yes"}).status_code == 403, \
                f"POST {url_name} as {role} must be refused"
    assert snapshot(world) == before
