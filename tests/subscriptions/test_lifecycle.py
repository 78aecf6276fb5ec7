"""The subscription life cycle actions: which states each may start from, every validation
(rejections change nothing), what each does to the subscription, its services and
installed items, and exactly which provisioning requests (the outbox) it writes."""

from __future__ import annotations

import threading
import time
from datetime import date, datetime, timezone as dt_timezone

import pytest
import time_machine
from django.db import connection, transaction

from accounts import services as account_services
from billing.models import BillingTermScheme
from catalogs.models import PricePlan, Product, UsageService
from catalogs.services import pricing
from core.actions import ActionRejected
from provisioning.models import ProvisioningRequest
from subscriptions.models import InstalledItem, Subscription, SubscriptionAction, SubscriptionService
from subscriptions.services.actions import subscription_act, subscription_create
from subscriptions.services.lifecycle import (
    installed_item_add,
    installed_item_remove,
    installed_item_swap,
    subscription_actions_available,
    subscription_activate,
    subscription_deactivate,
    subscription_end_resting,
    subscription_rest,
    subscription_service_add,
    subscription_service_remove,
    subscription_service_swap,
    subscription_terminate,
)
from tests.factories import customer_create

pytestmark = pytest.mark.django_db

# 23:30 UTC on 10 March is already 11 March in Nicosia: dates are the operator's.
NOW = datetime(2026, 3, 10, 23, 30, tzinfo=dt_timezone.utc)
TODAY = date(2026, 3, 11)
STATES = ["DRAFT", "EFFECTIVE", "NOT_EFFECTIVE", "IN_RESTING", "CANCELLED"]


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def account(db):
    return customer_create(first_name="Eleni", last_name="Christou", email="eleni@example.com")


def product(code: str) -> Product:
    return Product.objects.get(code=code)


def subscription_in(account, scheme, state: str, services: dict[str, str] | None = None) -> Subscription:
    """Set-up: a subscription in ``state`` holding these services ({product code: state})."""
    subscription = subscription_create(account=account, billing_term_scheme=scheme)
    Subscription.objects.filter(pk=subscription.pk).update(state=state)
    for code, service_state in (services or {}).items():
        SubscriptionService.objects.create(subscription=subscription, product=product(code), state=service_state,
                                           start_date=None if service_state == "DRAFT" else date(2026, 1, 5))
    subscription.refresh_from_db()
    return subscription


def decoder_on(subscription: Subscription, serial: str, state: str = "INSTALLED") -> InstalledItem:
    return InstalledItem.objects.create(subscription=subscription, product=product("THOMSON-DECODER"), serial_number=serial,
                                        state=state)


def outbox() -> list[tuple[str, dict]]:
    return [(request.kind, request.parameters) for request in ProvisioningRequest.objects.order_by("pk")]


def services_of(subscription: Subscription) -> list[tuple]:
    return list(subscription.services.order_by("pk").values_list("product__code", "state", "start_date", "end_date"))


def snapshot(subscription: Subscription) -> tuple:
    """Everything an action could change."""
    subscription.refresh_from_db()
    return (subscription.state, services_of(subscription), SubscriptionService.objects.count(),
            list(InstalledItem.objects.order_by("pk").values_list("serial_number", "state", "removed_at")),
            ProvisioningRequest.objects.count())


def entitlement(kind: str, account, code: str) -> tuple[str, dict]:
    return kind, {"account": account.number, "product": code, "provisioning_id": code}


def rejected(call, **kwargs) -> list[str]:
    with pytest.raises(ActionRejected) as raised:
        call(**kwargs)
    return raised.value.reasons


# --- restrictions ----------------------------------------------------------------------------

ALL_BUT_CANCELLED = {"DRAFT", "EFFECTIVE", "NOT_EFFECTIVE", "IN_RESTING"}
ALLOWED_FROM = {
    "ACTIVATE": {"DRAFT", "NOT_EFFECTIVE"},
    "DEACTIVATE": {"EFFECTIVE"},
    "ADD_SERVICE": {"DRAFT", "EFFECTIVE", "NOT_EFFECTIVE"},
    "REMOVE_SERVICE": ALL_BUT_CANCELLED,
    "SWAP_SERVICE": {"DRAFT", "EFFECTIVE", "NOT_EFFECTIVE"},
    "REST": {"EFFECTIVE"},
    "END_RESTING": {"IN_RESTING"},
    "TERMINATE": ALL_BUT_CANCELLED,
    "ADD_INSTALLED_ITEM": ALL_BUT_CANCELLED,
    "REMOVE_INSTALLED_ITEM": ALL_BUT_CANCELLED,
    "SWAP_INSTALLED_ITEM": ALL_BUT_CANCELLED,
}
LABELS = {"ACTIVATE": "activate", "DEACTIVATE": "deactivate", "ADD_SERVICE": "add service", "REMOVE_SERVICE": "remove service",
          "SWAP_SERVICE": "swap service", "REST": "rest (suspend)", "END_RESTING": "end resting (resume)",
          "TERMINATE": "terminate", "ADD_INSTALLED_ITEM": "add installed item", "REMOVE_INSTALLED_ITEM": "remove installed item",
          "SWAP_INSTALLED_ITEM": "swap installed item"}


def valid_parameters(behavior: str, service: SubscriptionService, item: InstalledItem) -> dict:
    """Parameters that pass every validation, so only the restriction decides."""
    return {
        "ADD_SERVICE": {"product": product("SPORTS-PACK")},
        "REMOVE_SERVICE": {"service": service},
        "SWAP_SERVICE": {"service": service, "to_product": product("SPORTS-PACK")},
        "TERMINATE": {"reason": "Moving abroad."},
        "ADD_INSTALLED_ITEM": {"product": product("THOMSON-DECODER"), "serial_number": "TH-NEW-1"},
        "REMOVE_INSTALLED_ITEM": {"item": item},
        "SWAP_INSTALLED_ITEM": {"item": item, "serial_number": "TH-NEW-2"},
    }.get(behavior, {})


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("behavior", list(ALLOWED_FROM))
def test_each_action_starts_only_from_its_states(zx_catalog, billing_scheme, account, behavior, state):
    # given a subscription in `state`, its PPV Service in the same state and a decoder
    subscription = subscription_in(account, billing_scheme, state, {"PPV-SERVICE": state})
    item = decoder_on(subscription, "TH-1", "REMOVED" if state == "CANCELLED" else "INSTALLED")
    params = valid_parameters(behavior, subscription.services.get(), item)
    before = snapshot(subscription)

    if state in ALLOWED_FROM[behavior]:
        action = subscription_act(subscription=subscription, behavior=behavior, **params)
        assert action.state == "EXECUTED"
    else:
        with pytest.raises(ActionRejected) as raised:
            subscription_act(subscription=subscription, behavior=behavior, transaction_reference="refused", **params)
        allowed = ", ".join(sorted(ALLOWED_FROM[behavior]))
        assert raised.value.reasons[0] == f"It is {state}; {LABELS[behavior]} is allowed only from {allowed}."
        assert snapshot(subscription) == before
        assert SubscriptionAction.objects.get(transaction_reference="refused").state == "REJECTED"


@pytest.mark.parametrize("state, available", [
    ("DRAFT", ["ACTIVATE", "ADD_SERVICE", "REMOVE_SERVICE", "SWAP_SERVICE", "TERMINATE", "ADD_INSTALLED_ITEM",
               "REMOVE_INSTALLED_ITEM", "SWAP_INSTALLED_ITEM"]),
    ("EFFECTIVE", ["DEACTIVATE", "ADD_SERVICE", "REMOVE_SERVICE", "SWAP_SERVICE", "REST", "TERMINATE", "ADD_INSTALLED_ITEM",
                   "REMOVE_INSTALLED_ITEM", "SWAP_INSTALLED_ITEM", "ADD_SERVICE_USAGE"]),
    ("IN_RESTING", ["REMOVE_SERVICE", "END_RESTING", "TERMINATE", "ADD_INSTALLED_ITEM", "REMOVE_INSTALLED_ITEM",
                    "SWAP_INSTALLED_ITEM"]),
    ("CANCELLED", []),
])
def test_the_actions_available_follow_the_state(billing_scheme, account, state, available):
    subscription = subscription_in(account, billing_scheme, state)
    assert subscription_actions_available(subscription) == available


# --- activate --------------------------------------------------------------------------------

def test_activate_makes_the_services_effective_and_asks_the_platform_for_the_account_and_entitlements(
        zx_catalog, billing_scheme, account, agent):
    # given a draft subscription with two services and one already cancelled
    subscription = subscription_in(account, billing_scheme, "DRAFT", {"PPV-SERVICE": "DRAFT", "SPORTS-PACK": "DRAFT"})
    SubscriptionService.objects.create(subscription=subscription, product=product("INSTALLATION"), state="CANCELLED")

    action = subscription_activate(subscription=subscription, performed_by=agent, channel="CALL_CENTER")

    subscription.refresh_from_db()
    assert subscription.state == "EFFECTIVE"
    assert services_of(subscription) == [("PPV-SERVICE", "EFFECTIVE", TODAY, None), ("SPORTS-PACK", "EFFECTIVE", TODAY, None),
                                         ("INSTALLATION", "CANCELLED", None, None)]
    assert outbox() == [("CREATE_ACCOUNT", {"account": account.number}),
                        entitlement("ADD_ENTITLEMENT", account, "PPV-SERVICE"),
                        entitlement("ADD_ENTITLEMENT", account, "SPORTS-PACK")]
    requests = ProvisioningRequest.objects.all()
    assert {(r.action_id, r.subscription_id, r.provider.name, r.state) for r in requests} == {
        (action.pk, subscription.pk, "Nagra Media Platform", "PENDING")}
    assert (action.state, action.performed_by, action.executed_at) == ("EXECUTED", agent, NOW)


def test_the_platform_account_is_asked_for_once_per_account(zx_catalog, billing_scheme, account):
    subscription_activate(subscription=subscription_in(account, billing_scheme, "DRAFT", {"PPV-SERVICE": "DRAFT"}))
    second = subscription_in(account, billing_scheme, "DRAFT", {"SPORTS-PACK": "DRAFT"})

    action = subscription_activate(subscription=second)

    assert [(r.kind, r.parameters["product"]) for r in ProvisioningRequest.objects.filter(action=action)] == [
        ("ADD_ENTITLEMENT", "SPORTS-PACK")]
    assert ProvisioningRequest.objects.filter(kind="CREATE_ACCOUNT").count() == 1


def test_a_product_the_platform_knows_by_a_provisioning_id_is_entitled_by_it(zx_catalog, billing_scheme, account):
    normal = zx_catalog["catalogs"][0]
    UsageService.objects.create(catalog=normal, product=product("SPORTS-PACK"), provisioning_id="SP01", base_rate=0)
    subscription = subscription_in(account, billing_scheme, "DRAFT", {"SPORTS-PACK": "DRAFT"})

    subscription_activate(subscription=subscription)

    assert outbox()[-1] == ("ADD_ENTITLEMENT", {"account": account.number, "product": "SPORTS-PACK", "provisioning_id": "SP01"})


def test_activating_again_keeps_the_first_start_date(zx_catalog, billing_scheme, account):
    # given a deactivated subscription whose service started in January
    subscription = subscription_in(account, billing_scheme, "NOT_EFFECTIVE", {"PPV-SERVICE": "NOT_EFFECTIVE"})

    subscription_activate(subscription=subscription)

    assert services_of(subscription) == [("PPV-SERVICE", "EFFECTIVE", date(2026, 1, 5), None)]


def test_activate_gives_every_reason_and_changes_nothing(zx_catalog, billing_scheme, account):
    # given a suspended account, a terminated scheme and no services but a cancelled one
    subscription = subscription_in(account, billing_scheme, "DRAFT", {"PPV-SERVICE": "CANCELLED"})
    account_services.account_suspend(account=account)
    BillingTermScheme.objects.filter(pk=billing_scheme.pk).update(state="TERMINATED")
    before = snapshot(subscription)

    reasons = rejected(subscription_activate, subscription=subscription, transaction_reference="act-1")

    assert reasons == [
        f"The account {account.number} is SUSPENDED; subscriptions are activated only for ACTIVE accounts.",
        "The billing term scheme Normal is TERMINATED; it must be EFFECTIVE.",
        f"Subscription {subscription.number} has no termed services: add one first.",
    ]
    assert snapshot(subscription) == before
    recorded = SubscriptionAction.objects.get(transaction_reference="act-1")
    assert (recorded.state, recorded.reasons) == ("REJECTED", reasons)


def test_a_repeated_activation_returns_the_first_and_does_nothing_again(zx_catalog, billing_scheme, account):
    subscription = subscription_in(account, billing_scheme, "DRAFT", {"PPV-SERVICE": "DRAFT"})
    first = subscription_activate(subscription=subscription, transaction_reference="activate-42")
    written = outbox()

    again = subscription_activate(subscription=subscription, transaction_reference="activate-42")

    assert again.pk == first.pk and again.state == "EXECUTED"
    assert outbox() == written and SubscriptionAction.objects.count() == 1


# --- deactivate, rest, end resting --------------------------------------------------------

@pytest.fixture
def effective(zx_catalog, billing_scheme, account):
    """An EFFECTIVE subscription with PPV Service and Sports Pack EFFECTIVE, and one
    service cancelled long ago."""
    subscription = subscription_in(account, billing_scheme, "EFFECTIVE", {"PPV-SERVICE": "EFFECTIVE", "SPORTS-PACK": "EFFECTIVE"})
    SubscriptionService.objects.create(subscription=subscription, product=product("INSTALLATION"), state="CANCELLED")
    return subscription


def test_deactivate_removes_every_entitlement(effective, account):
    subscription_deactivate(subscription=effective)

    effective.refresh_from_db()
    assert effective.state == "NOT_EFFECTIVE"
    assert [state for _, state, _, _ in services_of(effective)] == ["NOT_EFFECTIVE", "NOT_EFFECTIVE", "CANCELLED"]
    assert outbox() == [entitlement("REMOVE_ENTITLEMENT", account, "PPV-SERVICE"),
                        entitlement("REMOVE_ENTITLEMENT", account, "SPORTS-PACK")]


def test_rest_suspends_the_services_and_end_resting_gives_them_back(effective, account):
    subscription_rest(subscription=effective)

    effective.refresh_from_db()
    assert effective.state == "IN_RESTING"
    assert [state for _, state, _, _ in services_of(effective)] == ["IN_RESTING", "IN_RESTING", "CANCELLED"]
    assert outbox() == [entitlement("REMOVE_ENTITLEMENT", account, "PPV-SERVICE"),
                        entitlement("REMOVE_ENTITLEMENT", account, "SPORTS-PACK")]

    subscription_end_resting(subscription=effective)

    effective.refresh_from_db()
    assert effective.state == "EFFECTIVE"
    assert services_of(effective) == [("PPV-SERVICE", "EFFECTIVE", date(2026, 1, 5), None),
                                      ("SPORTS-PACK", "EFFECTIVE", date(2026, 1, 5), None),
                                      ("INSTALLATION", "CANCELLED", None, None)]
    assert outbox()[2:] == [entitlement("ADD_ENTITLEMENT", account, "PPV-SERVICE"),
                            entitlement("ADD_ENTITLEMENT", account, "SPORTS-PACK")]


def test_end_resting_needs_an_active_account(effective, account):
    subscription_rest(subscription=effective)
    account_services.account_suspend(account=account)
    before = snapshot(effective)

    reasons = rejected(subscription_end_resting, subscription=effective)

    assert reasons == [f"The account {account.number} is SUSPENDED; services resume only for ACTIVE accounts."]
    assert snapshot(effective) == before


# --- terminate -------------------------------------------------------------------------------

def test_terminate_cancels_everything_and_unpairs_the_decoders(effective, account):
    decoder_on(effective, "TH-1")
    decoder_on(effective, "TH-OLD", state="REMOVED")

    action = subscription_terminate(subscription=effective, reason="  Moving abroad. ")

    effective.refresh_from_db()
    assert effective.state == "CANCELLED"
    assert services_of(effective) == [("PPV-SERVICE", "CANCELLED", date(2026, 1, 5), TODAY),
                                      ("SPORTS-PACK", "CANCELLED", date(2026, 1, 5), TODAY),
                                      ("INSTALLATION", "CANCELLED", None, None)]
    assert list(effective.installed_items.order_by("pk").values_list("serial_number", "state")) == [
        ("TH-1", "REMOVED"), ("TH-OLD", "REMOVED")]
    assert effective.installed_items.get(serial_number="TH-1").removed_at == NOW
    assert outbox() == [entitlement("REMOVE_ENTITLEMENT", account, "PPV-SERVICE"),
                        entitlement("REMOVE_ENTITLEMENT", account, "SPORTS-PACK"),
                        ("UNPAIR_DEVICE", {"account": account.number, "serial_number": "TH-1", "product": "THOMSON-DECODER"})]
    assert action.result["reason"] == "Moving abroad."


def test_terminating_a_resting_subscription_removes_no_entitlement_twice(zx_catalog, billing_scheme, account):
    subscription = subscription_in(account, billing_scheme, "IN_RESTING", {"PPV-SERVICE": "IN_RESTING"})

    subscription_terminate(subscription=subscription, reason="Unpaid.")

    assert services_of(subscription) == [("PPV-SERVICE", "CANCELLED", date(2026, 1, 5), TODAY)]
    assert outbox() == []


@pytest.mark.parametrize("reason, expected", [
    ("   ", "Give the reason for terminating subscription {number}."),
    ("x" * 501, "Keep the reason to 500 characters."),
])
def test_terminate_needs_a_reason(effective, reason, expected):
    before = snapshot(effective)

    reasons = rejected(subscription_terminate, subscription=effective, reason=reason)

    assert reasons == [expected.format(number=effective.number)]
    assert snapshot(effective) == before


# --- add, remove, swap a service -------------------------------------------------------------

def test_a_service_added_to_an_effective_subscription_starts_today_and_is_entitled(zx_catalog, billing_scheme, account):
    subscription = subscription_in(account, billing_scheme, "EFFECTIVE", {"PPV-SERVICE": "EFFECTIVE"})

    action = subscription_service_add(subscription=subscription, product=product("SPORTS-PACK"))

    service = SubscriptionService.objects.get(pk=action.result["service"])
    assert (service.product.code, service.state, service.start_date, service.price_plan.code) == (
        "SPORTS-PACK", "EFFECTIVE", TODAY, "OTT-BASIC")
    assert outbox() == [entitlement("ADD_ENTITLEMENT", account, "SPORTS-PACK")]


def test_a_service_added_to_a_draft_waits_for_activation(zx_catalog, billing_scheme, account):
    subscription = subscription_in(account, billing_scheme, "DRAFT")

    action = subscription_service_add(subscription=subscription, product=product("SPORTS-PACK"))

    assert services_of(subscription) == [("SPORTS-PACK", "DRAFT", None, None)]
    assert action.result == {"service": subscription.services.get().pk, "price_plan": "OTT-BASIC", "state": "DRAFT"}
    assert outbox() == []


def test_a_repeated_add_service_adds_it_once(zx_catalog, billing_scheme, account):
    subscription = subscription_in(account, billing_scheme, "EFFECTIVE")
    first = subscription_service_add(subscription=subscription, product=product("SPORTS-PACK"), transaction_reference="add-7")

    again = subscription_service_add(subscription=subscription, product=product("SPORTS-PACK"), transaction_reference="add-7")

    assert again.pk == first.pk and again.result == first.result
    assert subscription.services.count() == 1 and ProvisioningRequest.objects.count() == 1


def test_a_chosen_effective_plan_with_the_product_is_used(zx_catalog, billing_scheme, account):
    # given a second effective plan pricing Sports Pack higher (so it is not the default rate)
    plan = pricing.price_plan_create(code="SPORTS-PLUS", name="Sports Plus")
    pricing.price_plan_rate_set(price_plan=plan, product=product("SPORTS-PACK"), charge_type="RECURRING", amount="14.99",
                                billing_period="MONTH")
    pricing.price_plan_set_effective(price_plan=plan)
    subscription = subscription_in(account, billing_scheme, "EFFECTIVE")

    action = subscription_service_add(subscription=subscription, product=product("SPORTS-PACK"), price_plan=plan)

    assert SubscriptionService.objects.get(pk=action.result["service"]).price_plan == plan


@pytest.mark.parametrize("code, reason", [
    ("INSTALLATION", "Installation is not a termed service."),
    ("THOMSON-DECODER", "Thomson decoder is not a termed service."),
    ("LOTR", "Lord of the Rings is not a termed service."),
])
def test_only_termed_services_are_added(zx_catalog, billing_scheme, account, code, reason):
    subscription = subscription_in(account, billing_scheme, "EFFECTIVE")
    before = snapshot(subscription)

    assert rejected(subscription_service_add, subscription=subscription, product=product(code)) == [reason]
    assert snapshot(subscription) == before


def test_an_inactive_service_already_held_is_refused_for_both_reasons(zx_catalog, billing_scheme, account):
    subscription = subscription_in(account, billing_scheme, "EFFECTIVE", {"SPORTS-PACK": "EFFECTIVE"})
    Product.objects.filter(code="SPORTS-PACK").update(is_active=False)
    before = snapshot(subscription)

    reasons = rejected(subscription_service_add, subscription=subscription, product=product("SPORTS-PACK"))

    assert reasons == ["Sports Pack is no longer sold (inactive).", f"Subscription {subscription.number} already has Sports Pack."]
    assert snapshot(subscription) == before


def test_a_cancelled_service_may_be_added_again(zx_catalog, billing_scheme, account):
    subscription = subscription_in(account, billing_scheme, "EFFECTIVE", {"SPORTS-PACK": "CANCELLED"})

    subscription_service_add(subscription=subscription, product=product("SPORTS-PACK"))

    assert [state for _, state, _, _ in services_of(subscription)] == ["CANCELLED", "EFFECTIVE"]


def test_a_service_without_a_price_for_the_account_is_refused(zx_catalog, billing_scheme, account):
    # given the only plan pricing Sports Pack is no longer effective, and chosen anyway
    plan = PricePlan.objects.get(code="OTT-BASIC")
    pricing.price_plan_set_not_effective(price_plan=plan)
    subscription = subscription_in(account, billing_scheme, "EFFECTIVE")
    before = snapshot(subscription)

    reasons = rejected(subscription_service_add, subscription=subscription, product=product("SPORTS-PACK"), price_plan=plan)

    assert reasons == ["No effective price plan has a rate for Sports Pack for Normal accounts now.",
                       "The price plan OTT Basic is not an effective plan with a rate for Sports Pack."]
    assert snapshot(subscription) == before


def test_a_chosen_plan_must_price_the_service(zx_catalog, billing_scheme, account):
    empty = pricing.price_plan_create(code="EMPTY", name="Empty plan")
    subscription = subscription_in(account, billing_scheme, "EFFECTIVE")
    before = snapshot(subscription)

    reasons = rejected(subscription_service_add, subscription=subscription, product=product("SPORTS-PACK"), price_plan=empty)

    assert reasons == ["The price plan Empty plan is not an effective plan with a rate for Sports Pack."]
    assert snapshot(subscription) == before


def test_remove_service_cancels_it_and_removes_its_entitlement(effective, account):
    sports = effective.services.get(product__code="SPORTS-PACK")

    action = subscription_service_remove(subscription=effective, service=sports)

    assert action.result == {"service": sports.pk}
    assert services_of(effective)[1] == ("SPORTS-PACK", "CANCELLED", date(2026, 1, 5), TODAY)
    assert outbox() == [entitlement("REMOVE_ENTITLEMENT", account, "SPORTS-PACK")]


def test_removing_a_resting_service_writes_no_request(zx_catalog, billing_scheme, account):
    subscription = subscription_in(account, billing_scheme, "IN_RESTING", {"SPORTS-PACK": "IN_RESTING"})

    subscription_service_remove(subscription=subscription, service=subscription.services.get())

    assert services_of(subscription) == [("SPORTS-PACK", "CANCELLED", date(2026, 1, 5), TODAY)]
    assert outbox() == []


def test_remove_service_refuses_a_cancelled_or_foreign_service(effective, zx_catalog, billing_scheme):
    cancelled = effective.services.get(product__code="INSTALLATION")
    stranger = subscription_in(customer_create(), billing_scheme, "EFFECTIVE", {"SPORTS-PACK": "EFFECTIVE"})
    before = snapshot(effective)

    assert rejected(subscription_service_remove, subscription=effective, service=cancelled) == [
        f"Installation is already cancelled on subscription {effective.number}."]
    assert rejected(subscription_service_remove, subscription=effective, service=stranger.services.get()) == [
        f"Sports Pack is not a service of subscription {effective.number}."]
    assert snapshot(effective) == before


def test_swap_service_cancels_the_old_and_adds_the_new(zx_catalog, billing_scheme, account):
    subscription = subscription_in(account, billing_scheme, "EFFECTIVE", {"PPV-SERVICE": "EFFECTIVE"})
    old = subscription.services.get()

    action = subscription_service_swap(subscription=subscription, service=old, to_product=product("SPORTS-PACK"))

    assert services_of(subscription) == [("PPV-SERVICE", "CANCELLED", date(2026, 1, 5), TODAY),
                                         ("SPORTS-PACK", "EFFECTIVE", TODAY, None)]
    assert action.result["removed"] == old.pk
    assert outbox() == [entitlement("REMOVE_ENTITLEMENT", account, "PPV-SERVICE"),
                        entitlement("ADD_ENTITLEMENT", account, "SPORTS-PACK")]


def test_swap_service_gives_the_reasons_of_both_halves(effective):
    cancelled = effective.services.get(product__code="INSTALLATION")
    before = snapshot(effective)

    reasons = rejected(subscription_service_swap, subscription=effective, service=cancelled, to_product=product("SPORTS-PACK"))

    assert reasons == [f"Installation is already cancelled on subscription {effective.number}.",
                       f"Subscription {effective.number} already has Sports Pack."]
    assert snapshot(effective) == before


# --- installed items -------------------------------------------------------------------------

def test_add_installed_item_installs_and_pairs_the_decoder(effective, account):
    action = installed_item_add(subscription=effective, product=product("THOMSON-DECODER"), serial_number=" TH-100 ")

    item = InstalledItem.objects.get(pk=action.result["item"])
    assert (item.subscription, item.serial_number, item.state) == (effective, "TH-100", "INSTALLED")
    assert outbox() == [("PAIR_DEVICE", {"account": account.number, "serial_number": "TH-100", "product": "THOMSON-DECODER"})]


def test_add_installed_item_gives_every_reason(effective):
    Product.objects.filter(code="THOMSON-DECODER").update(is_active=False)
    before = snapshot(effective)

    assert rejected(installed_item_add, subscription=effective, product=product("SPORTS-PACK"), serial_number="  ") == [
        "Sports Pack is not a physical good.", "Give the item's serial number."]
    assert rejected(installed_item_add, subscription=effective, product=product("THOMSON-DECODER"), serial_number="S" * 65) == [
        "Thomson decoder is no longer sold (inactive).", "A serial number has at most 64 characters."]
    assert snapshot(effective) == before


def test_a_serial_installed_elsewhere_is_refused(effective, billing_scheme):
    other = subscription_in(customer_create(), billing_scheme, "EFFECTIVE")
    decoder_on(other, "TH-7")
    before = snapshot(effective)

    reasons = rejected(installed_item_add, subscription=effective, product=product("THOMSON-DECODER"), serial_number="TH-7")

    assert reasons == [f"Serial number TH-7 is already installed on subscription {other.number}."]
    assert snapshot(effective) == before


@pytest.mark.django_db(transaction=True)
def test_a_concurrent_install_of_the_same_serial_gets_the_same_reason(zx_catalog, billing_scheme):
    """Real transactions on PostgreSQL: the install checks the serial while another
    subscription's install of it is not committed yet, so only the unique index stops it."""
    assert connection.vendor == "postgresql", "make test runs this on PostgreSQL"
    first = subscription_in(customer_create(), billing_scheme, "EFFECTIVE")
    second = subscription_in(customer_create(), billing_scheme, "EFFECTIVE")
    outcome: list[object] = []

    def install_on_second():
        try:
            installed_item_add(subscription=second, product=product("THOMSON-DECODER"), serial_number="TH-RACE")
        except ActionRejected as refusal:
            outcome.append(refusal.reasons)
        except Exception as error:  # noqa: BLE001 - asserted below
            outcome.append(error)
        finally:
            connection.close()

    with transaction.atomic():
        decoder_on(first, "TH-RACE")  # installed, not committed yet
        racer = threading.Thread(target=install_on_second)
        racer.start()
        waiting_for_lock(timeout=10)  # the second install passed validation and waits on the index
    racer.join(timeout=10)

    assert outcome == [[f"Serial number TH-RACE is already installed on subscription {first.number}."]]
    assert list(InstalledItem.objects.values_list("subscription", flat=True)) == [first.pk]
    assert ProvisioningRequest.objects.count() == 0


def waiting_for_lock(timeout: float) -> None:
    """Poll until another connection waits on a row or index lock (the clock is frozen,
    so count the polls rather than read the time)."""
    with connection.cursor() as cursor:
        for _ in range(int(timeout / 0.02)):
            cursor.execute("SELECT pg_stat_clear_snapshot()")  # else the view is read once per transaction
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()")
            if cursor.fetchone()[0]:
                return
            time.sleep(0.02)
    raise AssertionError("the concurrent install never waited on the unique index")


def test_remove_installed_item_unpairs_it(effective, account):
    item = decoder_on(effective, "TH-1")

    installed_item_remove(subscription=effective, item=item)

    item.refresh_from_db()
    assert (item.state, item.removed_at) == ("REMOVED", NOW)
    assert outbox() == [("UNPAIR_DEVICE", {"account": account.number, "serial_number": "TH-1", "product": "THOMSON-DECODER"})]


def test_only_an_item_installed_on_the_subscription_is_removed(effective, billing_scheme):
    removed = decoder_on(effective, "TH-OLD", state="REMOVED")
    foreign = decoder_on(subscription_in(customer_create(), billing_scheme, "EFFECTIVE"), "TH-9")
    before = snapshot(effective)

    for item in (removed, foreign):
        assert rejected(installed_item_remove, subscription=effective, item=item) == [
            f"Thomson decoder {item.serial_number} is not installed on subscription {effective.number}."]
    assert snapshot(effective) == before


def test_swap_installed_item_replaces_the_decoder(effective, account):
    old = decoder_on(effective, "TH-1")

    action = installed_item_swap(subscription=effective, item=old, serial_number="TH-2")

    assert list(effective.installed_items.order_by("pk").values_list("serial_number", "state")) == [
        ("TH-1", "REMOVED"), ("TH-2", "INSTALLED")]
    assert action.result == {"removed": old.pk, "item": effective.installed_items.get(serial_number="TH-2").pk}
    assert outbox() == [("SWAP_DEVICE", {"account": account.number, "old_serial_number": "TH-1", "new_serial_number": "TH-2",
                                         "product": "THOMSON-DECODER"})]


def test_swap_installed_item_gives_every_reason(effective, billing_scheme):
    removed = decoder_on(effective, "TH-OLD", state="REMOVED")
    other = subscription_in(customer_create(), billing_scheme, "EFFECTIVE")
    decoder_on(other, "TH-9")
    before = snapshot(effective)

    reasons = rejected(installed_item_swap, subscription=effective, item=removed, serial_number="TH-9",
                       product=product("INSTALLATION"))

    assert reasons == [f"Thomson decoder TH-OLD is not installed on subscription {effective.number}.",
                       "Installation is not a physical good.",
                       f"Serial number TH-9 is already installed on subscription {other.number}."]
    assert snapshot(effective) == before
