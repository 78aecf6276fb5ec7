"""Marketing builds usage service catalogs in the admin; agents only look."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client

from catalogs.models import UsageServiceCatalog
from catalogs.services import usage_catalogs as services

from tests.world import normal_catalog

pytestmark = pytest.mark.django_db
CATALOGS = "/admin/catalogs/usageservicecatalog/"


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def catalog_form(zx, **rows) -> dict:
    data = {
        "name": "Summer movies", "provider": zx["nagra"].pk, "currency": "EUR", "priority": "100",
        "services-TOTAL_FORMS": str(len(rows)), "services-INITIAL_FORMS": "0",
    }
    for index, (key, row) in enumerate(rows.items()):
        data.update({f"services-{index}-product": zx[key].pk, **{f"services-{index}-{name}": value for name, value in row.items()}})
    return data


def test_the_add_form_is_prefilled_with_the_definitions_defaults(marketing_user, zx):
    response = logged_in(marketing_user).get(f"{CATALOGS}add/")
    assert response.status_code == 200
    page = response.content.decode()
    assert 'value="10.0000"' in page and 'value="5.00@00:01-06:59"' in page


def test_marketing_creates_a_catalog_with_defaults_and_overrides(marketing_user, zx):
    response = logged_in(marketing_user).post(f"{CATALOGS}add/", catalog_form(
        zx, lotr={"provisioning_id": "1AQ8", "base_rate": "", "tiers_text": ""},
        serendipity={"provisioning_id": "1BQ4", "base_rate": "3.00", "tiers_text": "none"},
    ))
    assert response.status_code == 302, response.content.decode()[:3000]
    catalog = UsageServiceCatalog.objects.get()
    lotr = catalog.services.get(product=zx["lotr"])
    assert lotr.base_rate == Decimal("10.0000") and lotr.tiers.count() == 1
    serendipity = catalog.services.get(product=zx["serendipity"])
    assert serendipity.base_rate == Decimal("3.0000") and not serendipity.tiers.exists()


def test_a_bad_tier_is_shown_on_its_row_and_nothing_is_saved(marketing_user, zx):
    response = logged_in(marketing_user).post(f"{CATALOGS}add/", catalog_form(zx, lotr={"provisioning_id": "1AQ8", "tiers_text": "five@night"}))
    assert response.status_code == 200
    assert "is not rate@HH:MM-HH:MM" in response.content.decode()
    assert not UsageServiceCatalog.objects.exists()


def test_a_refused_service_rule_saves_nothing(marketing_user, zx):
    response = logged_in(marketing_user).post(f"{CATALOGS}add/", catalog_form(
        zx, lotr={"provisioning_id": "1AQ8", "tiers_text": "4@01:00-03:00, 2@02:00-04:00"}))
    assert response.status_code == 200  # the form again, as typed, with the reason
    errors = response.context["adminform"].form.non_field_errors()
    assert "tiers: Tiers 01:00–03:00 and 02:00–04:00 overlap." in errors
    assert response.context["adminform"].form["name"].value() == "Summer movies"
    assert not UsageServiceCatalog.objects.exists()


def test_set_effective_in_the_admin_shows_every_reason(marketing_user, zx):
    catalog = services.usage_catalog_create(name="Summer")
    services.usage_service_add(catalog=catalog, product=zx["lotr"])
    client = logged_in(marketing_user)
    page = client.get(f"{CATALOGS}{catalog.pk}/change/").content.decode()
    assert 'data-action="set_effective"' in page and 'data-action="set_not_effective"' not in page

    response = client.post(f"{CATALOGS}{catalog.pk}/act/set_effective/", follow=True)

    messages = [str(message) for message in response.context["messages"]]
    assert "Set effective: rejected. Nothing was changed." in messages
    assert "Lord of the Rings needs a provisioning ID (its type 'Usage Services' is used for provisioning)." in messages
    assert UsageServiceCatalog.objects.get().state == "DRAFT"


def test_agents_see_catalogs_but_cannot_change_them(agent, zx):
    catalog = normal_catalog(zx)
    client = logged_in(agent)
    assert client.get(f"{CATALOGS}{catalog.pk}/change/").status_code == 200
    assert client.post(f"{CATALOGS}{catalog.pk}/act/set_effective/").status_code == 403
    assert client.post(f"{CATALOGS}add/", catalog_form(zx)).status_code == 403
    assert UsageServiceCatalog.objects.get().state == "DRAFT"


def test_history_shows_the_audit_trail(marketing_user, zx):
    catalog = normal_catalog(zx)
    services.usage_service_update(usage_service=catalog.services.get(product=zx["lotr"]), base_rate="12")
    page = logged_in(marketing_user).get(f"{CATALOGS}{catalog.pk}/history/").content.decode()
    assert "changed Lord of the Rings" in page and "10.0000" in page and "12.0000" in page
