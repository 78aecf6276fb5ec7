"""Usage service catalogs: defaults from the definition, validations, the life cycle with
every reason at once, versioning, and the audit trail."""

from __future__ import annotations

from datetime import time, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import Classification
from catalogs.models import UsageServiceCatalog, UsageServiceCatalogDefinition
from catalogs.services import usage_catalogs as services
from core.actions import ActionRejected
from core.admin import audit_entries_for
from core.exceptions import ApplicationError, ValidationFailed
from core.models import AuditEntry
from tests.world import NIGHT, normal_catalog

pytestmark = pytest.mark.django_db


def test_new_entries_take_the_definitions_defaults_and_may_override_them(zx):
    catalog = normal_catalog(zx)
    lotr = catalog.services.get(product=zx["lotr"])
    assert lotr.base_rate == Decimal("10.0000")
    assert [(t.rate, t.start_time, t.end_time) for t in lotr.tiers.all()] == [(Decimal("5.0000"), time(0, 1), time(6, 59))]
    serendipity = catalog.services.get(product=zx["serendipity"])
    assert serendipity.base_rate == Decimal("3.0000") and not serendipity.tiers.exists()
    assert catalog.provider == zx["nagra"] and catalog.definition == zx["definition"] and catalog.state == "DRAFT"


def test_a_catalog_needs_an_effective_definition(zx):
    services.usage_definition_act(definition=zx["definition"], action="set_not_effective")
    with pytest.raises(ApplicationError) as raised:
        services.usage_catalog_create(name="Orphan")
    assert raised.value.code == "no_effective_definition"
    assert not UsageServiceCatalog.objects.exists()


def test_only_one_definition_may_be_effective(zx):
    other = services.usage_definition_create(name="Second", usage_service_types=[zx["usage"]], providers=[zx["nagra"]])
    with pytest.raises(ActionRejected) as raised:
        services.usage_definition_act(definition=other, action="set_effective")
    assert raised.value.reasons == ["Only one definition may be effective: set 'OTT definition' not effective first."]
    other.refresh_from_db()
    assert other.state == "DRAFT"


@pytest.mark.parametrize(
    "product_key, kwargs, field",
    [
        ("ppv", {}, "product"),  # a termed service is not a usage service
        ("lotr", {"provisioning_id": "1BQ1"}, "provisioning_id"),  # taken by Limitless
        ("lotr", {"base_rate": "-1"}, "base_rate"),
        ("lotr", {"base_rate": "1.23456"}, "base_rate"),
        ("lotr", {"tiers": [{"rate": "4", "start_time": time(1, 0), "end_time": time(3, 0)}, {"rate": "2", "start_time": time(2, 59), "end_time": time(4, 0)}]}, "tiers"),
        ("lotr", {"tiers": [{"rate": "", "start_time": time(1, 0), "end_time": time(3, 0)}]}, "tiers"),
        ("lotr", {"tiers": [{"rate": "4", "start_time": None, "end_time": time(3, 0)}]}, "tiers"),
        ("lotr", {"tiers": [{"rate": "4", "start_time": time(1, 0, 30), "end_time": time(3, 0)}]}, "tiers"),
    ],
)
def test_bad_usage_services_are_refused_and_nothing_changes(zx, product_key, kwargs, field):
    catalog = services.usage_catalog_create(name="Test")
    services.usage_service_add(catalog=catalog, product=zx["limitless"], provisioning_id="1BQ1")
    audits = AuditEntry.objects.count()
    with pytest.raises(ValidationFailed) as raised:
        services.usage_service_add(catalog=catalog, product=zx[product_key], **kwargs)
    assert field in raised.value.fields
    assert catalog.services.count() == 1
    assert AuditEntry.objects.count() == audits


def test_midnight_crossing_tiers_that_overlap_are_refused(zx):
    catalog = services.usage_catalog_create(name="Test")
    late = {"rate": "4", "start_time": time(22, 0), "end_time": time(1, 0)}
    early = {"rate": "3", "start_time": time(0, 30), "end_time": time(2, 0)}
    with pytest.raises(ValidationFailed) as raised:
        services.usage_service_add(catalog=catalog, product=zx["lotr"], provisioning_id="1AQ8", tiers=[late, early])
    assert "overlap" in " ".join(raised.value.fields["tiers"])
    service = services.usage_service_add(catalog=catalog, product=zx["lotr"], provisioning_id="1AQ8",
                                         tiers=[late, {**early, "start_time": time(1, 1)}])
    assert service.tiers.count() == 2


def test_setting_effective_reports_every_reason_at_once(zx):
    catalog = services.usage_catalog_create(name="Broken", valid_until=timezone.now() - timedelta(days=1))
    services.usage_service_add(catalog=catalog, product=zx["lotr"])  # no provisioning ID
    services.usage_service_add(catalog=catalog, product=zx["limitless"])
    zx["limitless"].is_active = False
    zx["limitless"].save()

    with pytest.raises(ActionRejected) as raised:
        services.usage_catalog_act(catalog=catalog, action="set_effective")

    reasons = raised.value.reasons
    assert any(reason.startswith("Its validity ended") for reason in reasons)
    assert "Lord of the Rings needs a provisioning ID (its type 'Usage Services' is used for provisioning)." in reasons
    assert "Limitless needs a provisioning ID (its type 'Usage Services' is used for provisioning)." in reasons
    assert "Limitless is not an active product." in reasons
    catalog.refresh_from_db()
    assert catalog.state == "DRAFT"
    rejection = AuditEntry.objects.get(action="rejected: set_effective")
    assert rejection.reasons == reasons


def test_an_empty_catalog_and_a_stopped_provider_cannot_become_effective(zx):
    catalog = services.usage_catalog_create(name="Empty")
    zx["nagra"].state = "NOT_EFFECTIVE"
    zx["nagra"].save()
    with pytest.raises(ActionRejected) as raised:
        services.usage_catalog_act(catalog=catalog, action="set_effective")
    assert raised.value.reasons == ["Its provisioning provider 'Nagra Media Platform' is not effective.", "It has no usage services."]


def test_fixing_the_problem_lets_it_become_effective(zx):
    catalog = services.usage_catalog_create(name="Summer")
    service = services.usage_service_add(catalog=catalog, product=zx["lotr"])
    with pytest.raises(ActionRejected):
        services.usage_catalog_act(catalog=catalog, action="set_effective")
    services.usage_service_update(usage_service=service, provisioning_id="1AQ8")
    catalog = services.usage_catalog_act(catalog=catalog, action="set_effective")
    assert catalog.state == "EFFECTIVE"
    assert [(e.action, e.changes) for e in audit_entries_for(catalog)][:3] == [
        ("set_effective", {"state": ["DRAFT", "EFFECTIVE"]}),
        ("changed Lord of the Rings", {"LOTR.provisioning_id": ["", "1AQ8"]}),
        ("rejected: set_effective", {}),
    ]


@pytest.mark.parametrize(
    "start_state, action, allowed",
    [
        ("DRAFT", "set_effective", True), ("DRAFT", "set_not_effective", False), ("DRAFT", "cancel", True),
        ("EFFECTIVE", "set_effective", False), ("EFFECTIVE", "set_not_effective", True), ("EFFECTIVE", "cancel", False),
        ("NOT_EFFECTIVE", "set_effective", True), ("NOT_EFFECTIVE", "set_not_effective", False), ("NOT_EFFECTIVE", "cancel", False),
        ("CANCELLED", "set_effective", False), ("CANCELLED", "set_not_effective", False), ("CANCELLED", "cancel", False),
    ],
)
def test_life_cycle_restrictions(zx, start_state, action, allowed):
    catalog = normal_catalog(zx)
    UsageServiceCatalog.objects.filter(pk=catalog.pk).update(state=start_state)
    if allowed:
        assert services.usage_catalog_act(catalog=catalog, action=action).state != start_state
    else:
        with pytest.raises(ActionRejected) as raised:
            services.usage_catalog_act(catalog=catalog, action=action)
        assert f"It is {start_state};" in raised.value.reasons[0]
        assert UsageServiceCatalog.objects.get(pk=catalog.pk).state == start_state


def test_cancelled_catalogs_cannot_be_edited(zx):
    catalog = normal_catalog(zx)
    services.usage_catalog_act(catalog=catalog, action="cancel")
    with pytest.raises(ApplicationError) as raised:
        services.usage_service_add(catalog=catalog, product=zx["lotr"])
    assert raised.value.code == "catalog_not_editable"


def test_conditions_and_updates_are_audited(zx):
    catalog = services.usage_catalog_create(name="VIP subscribers")
    vip = Classification.objects.get(code="VIP")
    services.usage_catalog_update(catalog=catalog, data={"classifications": [vip], "priority": 10})
    entry = AuditEntry.objects.filter(action="updated").get()
    assert entry.changes == {"priority": [100, 10], "classifications": ["", "VIP"]}
    with pytest.raises(ValidationFailed) as raised:
        services.usage_catalog_update(catalog=catalog, data={"required_services": [zx["lotr"]]})
    assert "required_services" in raised.value.fields
    with pytest.raises(ValidationFailed):
        services.usage_catalog_update(catalog=catalog, data={"state": "EFFECTIVE"})


def test_rate_changes_are_audited_old_to_new(zx):
    catalog = normal_catalog(zx)
    service = catalog.services.get(product=zx["lotr"])
    services.usage_service_update(usage_service=service, base_rate="12.50", tiers=[])
    entry = AuditEntry.objects.get(action="changed Lord of the Rings")
    assert entry.changes == {"LOTR.base_rate": ["10.0000", "12.5000"], "LOTR.tiers": ["5.00@00:01-06:59", ""]}


def test_a_new_version_copies_everything_and_replaces_the_old_one_when_effective(zx):
    catalog = normal_catalog(zx)
    services.usage_catalog_act(catalog=catalog, action="set_effective")

    version_2 = services.usage_catalog_revise(catalog=catalog)

    assert (version_2.version, version_2.state, version_2.previous_version) == (2, "DRAFT", catalog)
    assert sorted(version_2.services.values_list("provisioning_id", flat=True)) == ["1AQ8", "1BQ1", "1BQ4"]
    assert list(version_2.required_services.all()) == [zx["ppv"]]
    services.usage_service_update(usage_service=version_2.services.get(product=zx["lotr"]), base_rate="11.00")
    assert catalog.services.get(product=zx["lotr"]).base_rate == Decimal("10.0000")  # the old prices stay

    services.usage_catalog_act(catalog=version_2, action="set_effective")

    catalog.refresh_from_db()
    assert catalog.state == "NOT_EFFECTIVE"
    with pytest.raises(ApplicationError) as raised:
        services.usage_catalog_revise(catalog=catalog)
    assert raised.value.code == "version_exists"


def test_drafts_are_not_versioned(zx):
    with pytest.raises(ApplicationError) as raised:
        services.usage_catalog_revise(catalog=services.usage_catalog_create(name="Draft"))
    assert raised.value.code == "catalog_not_revisable"


def test_definition_default_rate_rules(zx):
    with pytest.raises(ValidationFailed) as raised:
        services.usage_definition_default_rate_set(definition=zx["definition"], product_type=zx["termed"], base_rate="x",
                                                   tiers=[NIGHT, NIGHT])
    assert {"product_type", "base_rate", "tiers"} <= set(raised.value.fields)
    assert UsageServiceCatalogDefinition.objects.get().default_rates.get().base_rate == Decimal("10.0000")
