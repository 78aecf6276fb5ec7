"""Products and content titles: the services, the title workflow, the multiscreen catalog
and marketing's admin screens."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine
from django.contrib.contenttypes.models import ContentType
from django.test import Client

from catalogs.models import BundleComponent, ContentTitle, Genre, Product, ProductType, TitleAvailability
from catalogs.selectors import title_is_available, title_list_for_screen
from catalogs.services import content as services
from core.actions import ActionRejected
from core.exceptions import Conflict, NotFound, ValidationFailed
from core.models import AuditEntry

pytestmark = pytest.mark.django_db

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


# --- helpers ----------------------------------------------------------------------------

def audit_for(obj) -> list[AuditEntry]:
    content_type = ContentType.objects.get_for_model(type(obj))
    return list(AuditEntry.objects.filter(content_type=content_type, object_pk=str(obj.pk)).order_by("pk"))


def last_audit(obj) -> AuditEntry:
    return audit_for(obj)[-1]


def usage_type() -> ProductType:
    return services.product_type_create(name="Usage Services", classification="SERVICE", service_type="USAGE", used_for_provisioning=True)


def termed_type(*, composition: str = "FLAT", name: str | None = None) -> ProductType:
    return services.product_type_create(name=name or f"Termed {composition.lower()}", classification="SERVICE",
                                        service_type="TERMED", composition=composition)


def goods_type() -> ProductType:
    return services.product_type_create(name="Decoders", classification="PHYSICAL_GOOD")


def complete_title(code: str = "lotr", **overrides) -> ContentTitle:
    """A draft title with everything submit asks for."""
    values = {
        "title": "Lord of the Rings", "synopsis": "A hobbit carries a ring.", "duration_minutes": 178,
        "artwork_url": "https://img.example/lotr.jpg", "year": 2001, "screens": ["WEB"],
    }
    return services.content_title_create(code=code, **{**values, **overrides})


def title_in(state: str, code: str = "lotr", **overrides) -> ContentTitle:
    """A complete title walked through the workflow to ``state``."""
    title = complete_title(code, **overrides)
    if state != "DRAFT":
        title = services.title_submit(title=title)
    if state in ("PUBLISHED", "RETIRED"):
        title = services.title_publish(title=title)
    if state == "RETIRED":
        title = services.title_retire(title=title)
    return ContentTitle.objects.get(pk=title.pk)


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


# --- product types ------------------------------------------------------------------------

def test_creating_a_product_type_audits_every_field(marketing_user):
    product_type = services.product_type_create(name="Usage Services", classification="SERVICE", service_type="USAGE",
                                                used_for_provisioning=True, performed_by=marketing_user)

    entry = last_audit(product_type)
    assert entry.action == "created" and entry.performed_by == marketing_user and entry.channel == "CALL_CENTER"
    assert entry.changes["name"] == [None, "Usage Services"]
    assert entry.changes["service_type"] == [None, "USAGE"]
    assert entry.changes["used_for_provisioning"] == [None, True]


def test_a_service_needs_a_service_type_reported_on_that_field():
    with pytest.raises(ValidationFailed) as refused:
        services.product_type_create(name="Sports", classification="SERVICE", service_type="")

    assert refused.value.fields == {"service_type": ["A service type is required for services."]}
    assert not ProductType.objects.exists() and not AuditEntry.objects.exists()


def test_only_services_have_a_service_type():
    with pytest.raises(ValidationFailed) as refused:
        services.product_type_create(name="Decoders", classification="PHYSICAL_GOOD", service_type="TERMED")

    assert "service_type" in refused.value.fields
    assert not ProductType.objects.exists()


def test_product_type_names_are_unique_and_every_problem_is_reported_at_once():
    usage_type()

    with pytest.raises(ValidationFailed) as refused:
        services.product_type_create(name=" Usage Services ", classification="NOT-A-CLASS", composition="FLAT")

    assert set(refused.value.fields) == {"name", "classification"}
    assert ProductType.objects.count() == 1


def test_updating_a_product_type_audits_only_what_changed(marketing_user):
    product_type = usage_type()

    services.product_type_update(product_type=product_type, data={"name": "PPV movies", "used_for_provisioning": True},
                                 performed_by=marketing_user)

    entry = last_audit(product_type)
    assert entry.action == "updated" and entry.changes == {"name": ["Usage Services", "PPV movies"]}
    assert ProductType.objects.get().name == "PPV movies"


def test_an_update_that_changes_nothing_writes_nothing():
    product_type = usage_type()

    services.product_type_update(product_type=product_type, data={"name": "Usage Services"})

    assert [entry.action for entry in audit_for(product_type)] == ["created"]


def test_what_a_product_type_classifies_is_fixed_once_products_exist():
    product_type = usage_type()
    services.product_create(code="ppv-lotr", name="Lord of the Rings", product_type=product_type)

    with pytest.raises(ValidationFailed) as refused:
        services.product_type_update(product_type=product_type, data={"service_type": "TERMED", "composition": "BUNDLE"})

    assert set(refused.value.fields) == {"service_type", "composition"}
    assert ProductType.objects.get().service_type == "USAGE"


def test_unknown_fields_are_refused():
    with pytest.raises(ValidationFailed) as refused:
        services.product_type_update(product_type=usage_type(), data={"colour": "red"})

    assert refused.value.fields == {"colour": ["Unknown field."]}


def test_a_product_type_in_use_cannot_be_deleted_and_an_unused_one_can(marketing_user):
    used, unused = usage_type(), goods_type()
    services.product_create(code="ppv-lotr", name="Lord of the Rings", product_type=used)

    with pytest.raises(Conflict):
        services.product_type_delete(product_type=used)
    services.product_type_delete(product_type=unused, performed_by=marketing_user)

    assert list(ProductType.objects.all()) == [used]
    assert AuditEntry.objects.filter(object_pk=str(unused.pk), action="deleted", performed_by=marketing_user).exists()


# --- products ---------------------------------------------------------------------------

def test_creating_a_product_with_its_title_is_audited(marketing_user):
    title = complete_title()

    product = services.product_create(code="ppv-lotr", name="Lord of the Rings", product_type=usage_type(), titles=[title],
                                      performed_by=marketing_user)

    assert list(product.titles.all()) == [title]
    entry = last_audit(product)
    assert entry.action == "created" and entry.performed_by == marketing_user
    assert entry.changes["titles"] == [None, "lotr"] and entry.changes["product_type"] == [None, "Usage Services"]


def test_a_product_reports_every_problem_at_once_and_is_not_created():
    with pytest.raises(ValidationFailed) as refused:
        services.product_create(code="not a code!", name="  ", product_type=None)

    assert {"code", "name", "product_type"} <= set(refused.value.fields)
    assert not Product.objects.exists() and not AuditEntry.objects.exists()


def test_product_codes_are_unique():
    product_type = usage_type()
    services.product_create(code="ppv-lotr", name="Lord of the Rings", product_type=product_type)

    with pytest.raises(ValidationFailed) as refused:
        services.product_create(code="ppv-lotr", name="Another", product_type=product_type)

    assert "code" in refused.value.fields
    assert Product.objects.count() == 1


def test_only_services_carry_content_titles():
    with pytest.raises(ValidationFailed) as refused:
        services.product_create(code="thomson", name="Thomson decoder", product_type=goods_type(), titles=[complete_title()])

    assert "titles" in refused.value.fields
    assert not Product.objects.exists()


def test_updating_a_product_audits_the_changed_fields(marketing_user):
    product = services.product_create(code="ppv-lotr", name="Lord of the Rings", product_type=usage_type())
    title = complete_title()

    services.product_update(product=product, data={"name": "LOTR", "is_active": False, "titles": [title], "description": ""},
                            performed_by=marketing_user)

    entry = last_audit(product)
    assert entry.changes == {"name": ["Lord of the Rings", "LOTR"], "is_active": [True, False], "titles": ["", "lotr"]}
    product.refresh_from_db()
    assert product.name == "LOTR" and not product.is_active and list(product.titles.all()) == [title]


def test_a_refused_product_update_changes_nothing():
    product = services.product_create(code="ppv-lotr", name="Lord of the Rings", product_type=usage_type())

    with pytest.raises(ValidationFailed):
        services.product_update(product=product, data={"name": "LOTR", "code": "bad code"})

    product.refresh_from_db()
    assert product.name == "Lord of the Rings" and product.code == "ppv-lotr"
    assert [entry.action for entry in audit_for(product)] == ["created"]


# --- bundles ----------------------------------------------------------------------------

@pytest.fixture
def bundle_and_services():
    service_type = termed_type()
    bundle = services.product_create(code="family", name="Family bundle", product_type=termed_type(composition="BUNDLE"))
    sports = services.product_create(code="sports", name="Sports", product_type=service_type)
    movies = services.product_create(code="movies", name="Movies", product_type=service_type)
    return bundle, sports, movies


def test_putting_a_service_in_a_bundle_and_repricing_it_is_audited(bundle_and_services, marketing_user):
    bundle, sports, _ = bundle_and_services

    services.bundle_component_set(bundle=bundle, component=sports, standalone_price=Decimal("12.99"), performed_by=marketing_user)
    services.bundle_component_set(bundle=bundle, component=sports, standalone_price=Decimal("13.49"), performed_by=marketing_user)

    assert BundleComponent.objects.get().standalone_price == Decimal("13.4900")
    assert [entry.changes for entry in audit_for(bundle)[1:]] == [
        {"component sports": [None, "12.9900"]},
        {"component sports": ["12.9900", "13.4900"]},
    ]


def test_only_bundles_have_components(bundle_and_services):
    _, sports, movies = bundle_and_services

    with pytest.raises(ValidationFailed) as refused:
        services.bundle_component_set(bundle=sports, component=movies, standalone_price=Decimal("9.99"))

    assert "bundle" in refused.value.fields
    assert not BundleComponent.objects.exists()


def test_a_bundle_holds_services_only_not_itself_other_bundles_or_goods(bundle_and_services):
    bundle, _, _ = bundle_and_services
    other_bundle = services.product_create(code="mega", name="Mega bundle", product_type=ProductType.objects.get(composition="BUNDLE"))
    decoder = services.product_create(code="thomson", name="Thomson decoder", product_type=goods_type())

    for component in (bundle, other_bundle, decoder):
        with pytest.raises(ValidationFailed) as refused:
            services.bundle_component_set(bundle=bundle, component=component, standalone_price=Decimal("1"))
        assert "component" in refused.value.fields
    assert not BundleComponent.objects.exists()


def test_a_standalone_price_is_a_non_negative_amount_with_at_most_four_decimals(bundle_and_services):
    bundle, sports, _ = bundle_and_services

    for price in (Decimal("-1"), Decimal("1.23456")):
        with pytest.raises(ValidationFailed) as refused:
            services.bundle_component_set(bundle=bundle, component=sports, standalone_price=price)
        assert "standalone_price" in refused.value.fields
    assert not BundleComponent.objects.exists()


def test_taking_a_service_out_of_a_bundle(bundle_and_services):
    bundle, sports, movies = bundle_and_services
    services.bundle_component_set(bundle=bundle, component=sports, standalone_price=Decimal("12.99"))

    services.bundle_component_remove(bundle=bundle, component=sports)
    with pytest.raises(NotFound):
        services.bundle_component_remove(bundle=bundle, component=movies)

    assert not BundleComponent.objects.exists()
    assert last_audit(bundle).changes == {"component sports": ["12.9900", None]}


def test_a_bundle_with_components_keeps_a_bundle_type(bundle_and_services):
    bundle, sports, _ = bundle_and_services
    services.bundle_component_set(bundle=bundle, component=sports, standalone_price=Decimal("12.99"))

    with pytest.raises(ValidationFailed) as refused:
        services.product_update(product=bundle, data={"product_type": sports.product_type})

    assert "product_type" in refused.value.fields
    assert Product.objects.get(pk=bundle.pk).product_type.composition == "BUNDLE"


def test_a_product_in_a_bundle_cannot_be_deleted(bundle_and_services):
    bundle, sports, _ = bundle_and_services
    services.bundle_component_set(bundle=bundle, component=sports, standalone_price=Decimal("12.99"))

    with pytest.raises(Conflict):
        services.product_delete(product=sports)

    assert Product.objects.filter(pk=sports.pk).exists()
    assert not AuditEntry.objects.filter(action="deleted").exists()


# --- genres and titles ------------------------------------------------------------------

def test_genre_names_are_unique_whatever_their_case():
    services.genre_create(name="Drama")

    with pytest.raises(ValidationFailed) as refused:
        services.genre_create(name="drama")

    assert refused.value.fields == {"name": ["A genre with this name already exists."]}
    assert Genre.objects.count() == 1


def test_a_title_takes_genres_by_name_creating_the_missing_ones_once(marketing_user):
    drama = services.genre_create(name="Drama")

    title = complete_title(genres=["drama", "Fantasy", "fantasy", " "], performed_by=marketing_user)

    assert sorted(genre.name for genre in title.genres.all()) == ["Drama", "Fantasy"]
    assert Genre.objects.count() == 2 and title.genres.filter(pk=drama.pk).exists()
    assert last_audit(Genre.objects.get(name="Fantasy")).performed_by == marketing_user


def test_creating_a_title_audits_its_metadata_cast_genres_and_screens(marketing_user):
    title = complete_title(cast=["Elijah Wood", " Ian  McKellen "], genres=["Fantasy"], screens=["WEB", "MOBILE"],
                           performed_by=marketing_user)

    assert title.cast == ["Elijah Wood", "Ian McKellen"] and title.state == "DRAFT"
    assert set(title.availabilities.values_list("screen", flat=True)) == {"WEB", "MOBILE"}
    changes = last_audit(title).changes
    assert changes["cast"] == [None, "Elijah Wood, Ian McKellen"]
    assert changes["genres"] == [None, "Fantasy"] and changes["screens"] == [None, "MOBILE, WEB"]
    assert changes["title"] == [None, "Lord of the Rings"] and changes["duration_minutes"] == [None, 178]


@time_machine.travel(NOW, tick=False)
def test_a_title_reports_every_problem_at_once_and_creates_nothing():
    with pytest.raises(ValidationFailed) as refused:
        services.content_title_create(
            code="lotr", title="", year=1500, duration_minutes=0, artwork_url="not a url", age_rating="X",
            available_from=NOW, available_until=NOW, screens=["WEB", "TV"], genres=["Fantasy"], cast="Elijah Wood",
        )

    fields = refused.value.fields
    assert set(fields) == {"title", "year", "duration_minutes", "artwork_url", "age_rating", "available_until", "screens", "cast"}
    assert fields["year"] == ["Enter a year between 1888 and 2035."]
    assert fields["available_until"] == ["The availability window must end after it starts."]
    assert not ContentTitle.objects.exists() and not Genre.objects.exists() and not AuditEntry.objects.exists()


def test_updating_a_title_audits_the_changed_fields_and_keeps_the_windows_of_kept_screens(marketing_user):
    title = complete_title(genres=["Fantasy"], screens=["WEB", "MOBILE"])
    services.title_availability_set(title=title, screen="WEB", available_until=datetime(2030, 1, 1, tzinfo=UTC))

    services.content_title_update(title=title, data={"year": 2002, "genres": ["Fantasy", "Adventure"], "screens": ["WEB", "SMART_TV"]},
                                  performed_by=marketing_user)

    entry = last_audit(title)
    assert entry.action == "updated" and entry.performed_by == marketing_user
    assert entry.changes == {
        "year": [2001, 2002], "genres": ["Fantasy", "Adventure, Fantasy"], "screens": ["MOBILE, WEB", "SMART_TV, WEB"],
    }
    windows = dict(TitleAvailability.objects.filter(title=title).values_list("screen", "available_until"))
    assert windows == {"WEB": datetime(2030, 1, 1, tzinfo=UTC), "SMART_TV": None}


def test_a_draft_may_be_incomplete():
    title = complete_title()

    services.content_title_update(title=title, data={"synopsis": "", "screens": []})

    title.refresh_from_db()
    assert title.synopsis == "" and not title.availabilities.exists()


@pytest.mark.parametrize("state", ["READY", "PUBLISHED"])
def test_a_ready_or_published_title_must_stay_complete(state):
    title = title_in(state)

    with pytest.raises(ValidationFailed) as refused:
        services.content_title_update(title=title, data={"synopsis": " ", "artwork_url": "", "screens": []})

    assert set(refused.value.fields) == {"synopsis", "artwork_url", "screens"}
    title.refresh_from_db()
    assert title.synopsis and title.artwork_url and title.availabilities.exists()
    assert not any(entry.action == "updated" for entry in audit_for(title))


def test_the_state_of_a_title_cannot_be_set_by_an_update():
    title = complete_title()

    with pytest.raises(ValidationFailed) as refused:
        services.content_title_update(title=title, data={"state": "PUBLISHED"})

    assert refused.value.fields == {"state": ["Unknown field."]}
    assert ContentTitle.objects.get().state == "DRAFT"


def test_only_draft_titles_not_sold_as_products_can_be_deleted(marketing_user):
    draft, published = complete_title("draft"), title_in("PUBLISHED", "published")
    sold = complete_title("sold")
    services.product_create(code="ppv-sold", name="Sold", product_type=usage_type(), titles=[sold])

    for title in (published, sold):
        with pytest.raises(Conflict):
            services.content_title_delete(title=title)
    services.content_title_delete(title=draft, performed_by=marketing_user)

    assert set(ContentTitle.objects.values_list("code", flat=True)) == {"published", "sold"}
    assert AuditEntry.objects.filter(object_pk=str(draft.pk), action="deleted").exists()


# --- availability per screen ------------------------------------------------------------------

def test_offering_a_title_on_a_screen_and_changing_its_window_is_audited(marketing_user):
    title = complete_title(screens=[])
    start, end = datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 2, 1, tzinfo=UTC)

    services.title_availability_set(title=title, screen="SMART_TV", performed_by=marketing_user)
    services.title_availability_set(title=title, screen="SMART_TV", available_from=start, available_until=end, performed_by=marketing_user)
    services.title_availability_set(title=title, screen="SMART_TV", available_from=start, available_until=end)

    availability = TitleAvailability.objects.get()
    assert (availability.available_from, availability.available_until) == (start, end)
    entries = [entry for entry in audit_for(title) if entry.action == "availability_set"]
    assert [entry.changes for entry in entries] == [
        {"screen SMART_TV": [None, "always"]},
        {"screen SMART_TV": ["always", "from 2025-01-01 02:00 until 2025-02-01 02:00"]},
    ]


def test_a_screen_window_must_end_after_it_starts_and_the_screen_must_exist():
    title = complete_title(screens=[])
    moment = datetime(2025, 1, 1, tzinfo=UTC)

    with pytest.raises(ValidationFailed) as refused:
        services.title_availability_set(title=title, screen="TV", available_from=moment, available_until=moment)

    assert set(refused.value.fields) == {"screen", "available_until"}
    assert not TitleAvailability.objects.exists()


def test_stopping_a_screen_is_audited_and_an_unknown_one_is_not_found():
    title = complete_title(screens=["WEB", "MOBILE"])

    services.title_availability_remove(title=title, screen="MOBILE")
    with pytest.raises(NotFound):
        services.title_availability_remove(title=title, screen="SMART_TV")

    assert list(title.availabilities.values_list("screen", flat=True)) == ["WEB"]
    assert last_audit(title).changes == {"screen MOBILE": ["always", None]}


def test_a_published_title_keeps_its_last_screen():
    title = title_in("PUBLISHED")
    audit_count = len(audit_for(title))

    with pytest.raises(Conflict):
        services.title_availability_remove(title=title, screen="WEB")

    assert title.availabilities.filter(screen="WEB").exists()
    assert len(audit_for(title)) == audit_count


# --- the title workflow -----------------------------------------------------------------

TRANSITIONS = {
    "submit": ("DRAFT", "READY"),
    "publish": ("READY", "PUBLISHED"),
    "return_to_draft": ("READY", "DRAFT"),
    "unpublish": ("PUBLISHED", "READY"),
    "retire": ("PUBLISHED", "RETIRED"),
}
STEP_SERVICES = {
    "submit": services.title_submit,
    "publish": services.title_publish,
    "return_to_draft": services.title_return_to_draft,
    "unpublish": services.title_unpublish,
    "retire": services.title_retire,
}


@pytest.mark.parametrize("state", ["DRAFT", "READY", "PUBLISHED", "RETIRED"])
@pytest.mark.parametrize("step", list(TRANSITIONS))
def test_each_step_runs_only_from_its_state(step, state, marketing_user):
    title = title_in(state)
    source, target = TRANSITIONS[step]

    if state == source:
        result = STEP_SERVICES[step](title=title, performed_by=marketing_user)
        assert result.state == target and ContentTitle.objects.get().state == target
        entry = last_audit(title)
        assert entry.action == step and entry.changes == {"state": [source, target]} and entry.reasons == []
        assert entry.performed_by == marketing_user
    else:
        with pytest.raises(ActionRejected) as rejected:
            STEP_SERVICES[step](title=title, performed_by=marketing_user)
        assert ContentTitle.objects.get().state == state
        assert any(f"allowed only from {source}" in reason for reason in rejected.value.reasons)
        entry = last_audit(title)
        assert entry.action == f"rejected: {step}" and entry.reasons == rejected.value.reasons and entry.changes == {}


@time_machine.travel(NOW, tick=False)
def test_submit_reports_every_missing_prerequisite_at_once(marketing_user):
    title = services.content_title_create(code="bare", title="Bare", available_until=datetime(2025, 5, 1, tzinfo=UTC))

    with pytest.raises(ActionRejected) as rejected:
        services.title_submit(title=title, performed_by=marketing_user)

    assert rejected.value.reasons == [
        "A synopsis is required.",
        "The duration is required.",
        "An artwork URL is required.",
        "It is not available on any screen; add at least one.",
        "Its availability window ended on 2025-05-01 03:00; extend or clear it.",
    ]
    assert ContentTitle.objects.get().state == "DRAFT"
    entry = last_audit(title)
    assert entry.action == "rejected: submit" and entry.reasons == rejected.value.reasons
    assert entry.performed_by == marketing_user and entry.channel == "CALL_CENTER"


def test_a_title_whose_window_has_not_ended_may_be_submitted():
    with time_machine.travel(NOW, tick=False):
        title = complete_title(available_from=datetime(2025, 1, 1, tzinfo=UTC), available_until=datetime(2025, 6, 1, 12, 1, tzinfo=UTC))

        assert services.title_submit(title=title).state == "READY"


def test_publish_checks_again_what_may_have_changed_during_review():
    with time_machine.travel(NOW, tick=False):
        title = services.title_submit(title=complete_title(available_until=datetime(2025, 6, 2, tzinfo=UTC)))

    with time_machine.travel(datetime(2025, 6, 2, tzinfo=UTC), tick=False):
        with pytest.raises(ActionRejected) as rejected:
            services.title_publish(title=title)

    assert rejected.value.reasons == ["Its availability window ended on 2025-06-02 03:00; extend or clear it."]
    assert ContentTitle.objects.get().state == "READY"
    assert last_audit(title).action == "rejected: publish"


def test_the_admin_is_offered_only_the_steps_the_state_allows():
    def codes(state):
        return [step.code for step in services.title_workflow_steps(state=state)]

    assert codes("DRAFT") == ["submit"]
    assert codes("READY") == ["publish", "return_to_draft"]
    assert codes("PUBLISHED") == ["unpublish", "retire"]
    assert codes("RETIRED") == []


# --- the multiscreen catalog (catalogs.selectors) ---------------------------------------------

def at(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_only_published_titles_are_in_the_catalog():
    for state in ("DRAFT", "READY", "PUBLISHED", "RETIRED"):
        title_in(state, code=state.lower())

    assert [title.code for title in title_list_for_screen(screen="WEB", at=at(2025, 6, 1))] == ["published"]


def test_a_title_is_listed_only_on_the_screens_it_is_offered_on():
    title = title_in("PUBLISHED", screens=["WEB", "MOBILE"])

    assert list(title_list_for_screen(screen="MOBILE", at=at(2025, 6, 1))) == [title]
    assert list(title_list_for_screen(screen="WEB", at=at(2025, 6, 1))) == [title]
    assert list(title_list_for_screen(screen="SMART_TV", at=at(2025, 6, 1))) == []
    assert list(title_list_for_screen(screen="SET_TOP_BOX", at=at(2025, 6, 1))) == []


@time_machine.travel(at(2024, 12, 1), tick=False)
def test_the_title_window_is_from_inclusive_until_exclusive():
    title = title_in("PUBLISHED", available_from=at(2025, 1, 1), available_until=at(2025, 2, 1))

    def listed(moment):
        return title_is_available(title=title, screen="WEB", at=moment)

    assert not listed(at(2024, 12, 31, 23, 59, 59))
    assert listed(at(2025, 1, 1))
    assert listed(at(2025, 1, 31, 23, 59, 59))
    assert not listed(at(2025, 2, 1))


def test_the_screen_window_is_from_inclusive_until_exclusive():
    title = title_in("PUBLISHED")
    services.title_availability_set(title=title, screen="WEB", available_from=at(2025, 3, 1), available_until=at(2025, 4, 1))

    def listed(moment):
        return title_is_available(title=title, screen="WEB", at=moment)

    assert not listed(at(2025, 2, 28, 23, 59, 59))
    assert listed(at(2025, 3, 1))
    assert listed(at(2025, 3, 31, 23, 59, 59))
    assert not listed(at(2025, 4, 1))


@time_machine.travel(at(2024, 12, 1), tick=False)
def test_both_windows_must_contain_the_moment():
    title = title_in("PUBLISHED", available_from=at(2025, 1, 1), available_until=at(2025, 3, 1), screens=["WEB", "MOBILE"])
    services.title_availability_set(title=title, screen="MOBILE", available_from=at(2025, 2, 1), available_until=at(2025, 4, 1))

    assert title_is_available(title=title, screen="WEB", at=at(2025, 1, 15))
    assert not title_is_available(title=title, screen="MOBILE", at=at(2025, 1, 15))  # screen window not yet open
    assert title_is_available(title=title, screen="MOBILE", at=at(2025, 2, 15))
    assert not title_is_available(title=title, screen="MOBILE", at=at(2025, 3, 15))  # title window closed


def test_retired_and_unpublished_titles_disappear():
    retired, unpublished, kept = (title_in("PUBLISHED", code=code) for code in ("retired", "unpublished", "kept"))

    services.title_retire(title=retired)
    services.title_unpublish(title=unpublished)

    assert list(title_list_for_screen(screen="WEB", at=at(2025, 6, 1))) == [kept]


def test_the_catalog_defaults_to_now():
    title = title_in("PUBLISHED")
    services.title_availability_set(title=title, screen="WEB", available_until=at(2025, 6, 1))

    with time_machine.travel(at(2025, 5, 31, 23, 59), tick=False):
        assert list(title_list_for_screen(screen="WEB")) == [title] and title_is_available(title=title, screen="WEB")
    with time_machine.travel(at(2025, 6, 1), tick=False):
        assert list(title_list_for_screen(screen="WEB")) == [] and not title_is_available(title=title, screen="WEB")


# --- the admin ----------------------------------------------------------------------------

PRODUCTS = "/admin/catalogs/product/"
TITLES = "/admin/catalogs/contenttitle/"
PRODUCT_TYPES = "/admin/catalogs/producttype/"


def title_form(instance: ContentTitle | None = None, availabilities: list[dict] | None = None, **changes) -> dict:
    """The change form as the browser posts it, with the title's availability inline rows."""
    data = {
        "code": "lotr", "title": "Lord of the Rings", "synopsis": "A hobbit carries a ring.", "genres": "Fantasy",
        "cast": "Elijah Wood, Ian McKellen", "year": "2001", "duration_minutes": "178", "age_rating": "12", "release_date": "",
        "artwork_url": "https://img.example/lotr.jpg", "available_from_0": "", "available_from_1": "",
        "available_until_0": "", "available_until_1": "",
    }
    data.update(changes)
    rows = availabilities or []
    initial = TitleAvailability.objects.filter(title=instance).count() if instance else 0
    data.update({"availabilities-TOTAL_FORMS": str(len(rows)), "availabilities-INITIAL_FORMS": str(initial),
                 "availabilities-MIN_NUM_FORMS": "0", "availabilities-MAX_NUM_FORMS": "1000"})
    for index, row in enumerate(rows):
        for name, value in row.items():
            data[f"availabilities-{index}-{name}"] = value
        data.setdefault(f"availabilities-{index}-available_from_0", "")
        data.setdefault(f"availabilities-{index}-available_from_1", "")
        data.setdefault(f"availabilities-{index}-available_until_0", "")
        data.setdefault(f"availabilities-{index}-available_until_1", "")
        if instance:
            data[f"availabilities-{index}-title"] = str(instance.pk)
    return data


def product_form(**changes) -> dict:
    data = {"code": "ppv-lotr", "name": "Lord of the Rings", "product_type": "", "description": "", "is_active": "on"}
    data.update(changes)
    return data


def test_agents_and_finance_may_look_but_not_add_or_change(agent, finance_user):
    product = services.product_create(code="ppv-lotr", name="Lord of the Rings", product_type=usage_type())
    title = complete_title()
    for user in (agent, finance_user):
        client = logged_in(user)
        assert client.get(f"{PRODUCTS}{product.pk}/change/").status_code == 200
        assert client.get(f"{TITLES}{title.pk}/change/").status_code == 200
        assert client.post(f"{PRODUCTS}add/", product_form(code="other", product_type=product.product_type_id)).status_code == 403
        assert client.post(f"{PRODUCTS}{product.pk}/change/", product_form(name="Hacked", product_type=product.product_type_id)).status_code == 403
        assert client.post(f"{TITLES}add/", title_form(code="other")).status_code == 403
        assert client.post(f"{TITLES}{title.pk}/change/", title_form(title, title="Hacked")).status_code == 403
        assert client.post(f"{TITLES}{title.pk}/workflow/submit/").status_code == 403

    assert Product.objects.get().name == "Lord of the Rings" and ContentTitle.objects.get().title == "Lord of the Rings"
    assert ContentTitle.objects.get().state == "DRAFT"


def test_marketing_adds_a_product_through_the_service(marketing_user):
    product_type = usage_type()
    title = complete_title()

    response = logged_in(marketing_user).post(f"{PRODUCTS}add/", product_form(product_type=product_type.pk, titles=[title.pk]))

    assert response.status_code == 302
    product = Product.objects.get()
    assert list(product.titles.all()) == [title]
    entry = last_audit(product)
    assert entry.action == "created" and entry.performed_by == marketing_user and entry.channel == "CALL_CENTER"


def test_marketing_changes_a_product(marketing_user):
    product = services.product_create(code="ppv-lotr", name="Lord of the Rings", product_type=usage_type())

    response = logged_in(marketing_user).post(f"{PRODUCTS}{product.pk}/change/", product_form(name="LOTR", product_type=product.product_type_id))

    assert response.status_code == 302
    assert Product.objects.get().name == "LOTR"
    entry = last_audit(product)
    assert entry.changes == {"name": ["Lord of the Rings", "LOTR"]} and entry.performed_by == marketing_user


def test_a_refusal_is_shown_on_the_form_as_typed_and_nothing_is_saved(marketing_user):
    response = logged_in(marketing_user).post(f"{PRODUCT_TYPES}add/", {
        "name": "Sports", "classification": "SERVICE", "service_type": "", "composition": "FLAT",
    })

    assert response.status_code == 200
    form = response.context["adminform"].form
    assert form.errors["service_type"] == ["A service type is required for services."]
    assert form["name"].value() == "Sports"
    assert not ProductType.objects.exists() and not AuditEntry.objects.exists()


def test_marketing_edits_a_title_with_genres_cast_and_screens(marketing_user):
    title = complete_title(screens=[])
    client = logged_in(marketing_user)
    assert client.get(f"{TITLES}{title.pk}/change/").status_code == 200

    response = client.post(f"{TITLES}{title.pk}/change/", title_form(title, availabilities=[
        {"screen": "WEB"},
        {"screen": "MOBILE", "available_from_0": "2025-01-01", "available_from_1": "00:00:00"},
    ]))

    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    title.refresh_from_db()
    assert title.cast == ["Elijah Wood", "Ian McKellen"] and [genre.name for genre in title.genres.all()] == ["Fantasy"]
    assert dict(title.availabilities.values_list("screen", "available_from")) == {
        "WEB": None, "MOBILE": datetime(2024, 12, 31, 22, 0, tzinfo=UTC),  # midnight in Nicosia
    }
    actions = [entry.action for entry in audit_for(title)]
    assert actions == ["created", "updated", "availability_set", "availability_set"]
    assert all(entry.performed_by == marketing_user for entry in audit_for(title)[1:])


def test_an_inline_refusal_rolls_the_whole_page_back(marketing_user):
    title = title_in("PUBLISHED")
    availability = title.availabilities.get()

    response = logged_in(marketing_user).post(f"{TITLES}{title.pk}/change/", title_form(
        title, title="Renamed", genres="", cast="",
        availabilities=[{"id": str(availability.pk), "screen": "WEB", "DELETE": "on"}],
    ))

    assert response.status_code == 200
    errors = response.context["adminform"].form.non_field_errors()
    assert any("only screen" in error for error in errors)
    title.refresh_from_db()
    assert title.title == "Lord of the Rings" and title.availabilities.exists()


def test_the_bundle_inline_is_offered_for_bundles_only_and_saves_through_the_service(marketing_user, bundle_and_services):
    bundle, sports, _ = bundle_and_services
    client = logged_in(marketing_user)
    assert client.get(f"{PRODUCTS}{sports.pk}/change/").context["inline_admin_formsets"] == []
    assert len(client.get(f"{PRODUCTS}{bundle.pk}/change/").context["inline_admin_formsets"]) == 1

    response = client.post(f"{PRODUCTS}{bundle.pk}/change/", {
        **product_form(code="family", name="Family bundle", product_type=bundle.product_type_id),
        "bundle_components-TOTAL_FORMS": "1", "bundle_components-INITIAL_FORMS": "0",
        "bundle_components-MIN_NUM_FORMS": "0", "bundle_components-MAX_NUM_FORMS": "1000",
        "bundle_components-0-component": str(sports.pk), "bundle_components-0-standalone_price": "12.99",
        "bundle_components-0-bundle": str(bundle.pk),
    })

    assert response.status_code == 302
    assert BundleComponent.objects.get().standalone_price == Decimal("12.9900")
    entry = last_audit(bundle)
    assert entry.action == "bundle_component_set" and entry.performed_by == marketing_user


def test_the_submit_button_runs_the_workflow_and_reports_every_reason(marketing_user):
    incomplete = services.content_title_create(code="bare", title="Bare")
    ready = complete_title()
    client = logged_in(marketing_user)

    page = client.get(f"{TITLES}{ready.pk}/change/").content.decode()
    assert f"{TITLES}{ready.pk}/workflow/submit/" in page and "/workflow/publish/" not in page

    response = client.post(f"{TITLES}{ready.pk}/workflow/submit/", follow=True)
    assert ContentTitle.objects.get(pk=ready.pk).state == "READY"
    assert "submitted for review" in response.content.decode()

    response = client.post(f"{TITLES}{incomplete.pk}/workflow/submit/", follow=True)
    text = response.content.decode()
    for reason in ("A synopsis is required.", "The duration is required.", "An artwork URL is required.", "not available on any screen"):
        assert reason in text
    assert ContentTitle.objects.get(pk=incomplete.pk).state == "DRAFT"
    assert last_audit(incomplete).action == "rejected: submit"


def test_retiring_asks_for_confirmation_first(marketing_user):
    title = title_in("PUBLISHED")
    client = logged_in(marketing_user)
    url = f"{TITLES}{title.pk}/workflow/retire/"

    confirmation = client.get(url)
    assert confirmation.status_code == 200 and "cannot be published again" in confirmation.content.decode()
    assert ContentTitle.objects.get().state == "PUBLISHED"

    client.post(url)
    assert ContentTitle.objects.get().state == "RETIRED"


def test_the_list_action_runs_a_step_on_each_title_and_reports_per_row(marketing_user):
    ready = complete_title("ready")
    bare = services.content_title_create(code="bare", title="Bare")

    response = logged_in(marketing_user).post(TITLES, {"action": "submit_selected", "_selected_action": [ready.pk, bare.pk]}, follow=True)

    texts = [str(message) for message in response.context["messages"]]
    assert "Lord of the Rings (2001): submitted for review." in texts
    assert any(text.startswith("Bare: not submitted for review: A synopsis is required.;") for text in texts)
    assert dict(ContentTitle.objects.values_list("code", "state")) == {"ready": "READY", "bare": "DRAFT"}


def test_agents_have_no_workflow_actions(agent):
    complete_title()

    response = logged_in(agent).get(TITLES)

    assert response.status_code == 200
    assert "submit_selected" not in response.content.decode()


def test_the_title_list_shows_state_badges_and_filters_by_state_genre_and_screen(agent):
    published = title_in("PUBLISHED", "published", genres=["Fantasy"], screens=["WEB", "MOBILE"])
    draft = complete_title("draft", title="Limitless", genres=["Thriller"], screens=["SMART_TV"])
    client = logged_in(agent)

    page = client.get(TITLES).content.decode()
    assert 'class="title-state"' in page and "Published" in page and "Mobile, Web" in page

    def listed(**query):
        return {title.code for title in client.get(TITLES, query).context["cl"].result_list}

    assert listed(state="PUBLISHED") == {"published"}
    assert listed(genre=str(Genre.objects.get(name="Thriller").pk)) == {"draft"}
    assert listed(screen="MOBILE") == {"published"} and listed(screen="SMART_TV") == {"draft"}
    assert listed(q="limit") == {draft.code} and listed(q="publ") == {published.code}


def test_history_shows_the_audit_trail(finance_user):
    title = title_in("PUBLISHED")

    page = logged_in(finance_user).get(f"{TITLES}{title.pk}/history/").content.decode()

    for action in ("created", "submit", "publish"):
        assert f"<td>{action}</td>" in page


def test_drafts_are_deleted_through_the_service_and_published_titles_are_not(marketing_user):
    draft, published = complete_title("draft"), title_in("PUBLISHED", "published")
    client = logged_in(marketing_user)

    assert client.post(f"{TITLES}{published.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.post(f"{TITLES}{draft.pk}/delete/", {"post": "yes"}).status_code == 302

    assert list(ContentTitle.objects.values_list("code", flat=True)) == ["published"]
    assert AuditEntry.objects.filter(object_pk=str(draft.pk), action="deleted", performed_by=marketing_user).exists()


def test_product_search_is_by_code_or_name_prefix(agent):
    product_type = usage_type()
    services.product_create(code="ppv-lotr", name="Lord of the Rings", product_type=product_type)
    services.product_create(code="ppv-limitless", name="Limitless", product_type=product_type)
    client = logged_in(agent)

    def found(query):
        return {product.code for product in client.get(PRODUCTS, {"q": query}).context["cl"].result_list}

    assert found("ppv-l") == {"ppv-lotr", "ppv-limitless"}
    assert found("lord") == {"ppv-lotr"}
    assert found("rings") == set()


def test_a_refused_delete_says_why_and_deletes_nothing(marketing_user):
    title = complete_title()
    services.product_create(code="ppv-lotr", name="Lord of the Rings", product_type=usage_type(), titles=[title])

    response = logged_in(marketing_user).post(f"{TITLES}{title.pk}/delete/", {"post": "yes"}, follow=True)

    texts = [str(message) for message in response.context["messages"]]
    assert texts == ["Nothing was deleted: Lord of the Rings (2001) is the content of ppv-lotr; take it off those products first."]
    assert ContentTitle.objects.filter(pk=title.pk).exists()
    assert not AuditEntry.objects.filter(action="deleted").exists()
