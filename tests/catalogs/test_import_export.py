"""Importing and exporting products and content titles in the admin (CSV and XLSX):
a preview with per-row errors, all-or-nothing imports through the services (so every row
is audited), and a round trip that changes nothing."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import tablib
import time_machine
from django.contrib.contenttypes.models import ContentType
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from catalogs.models import ContentTitle, Genre, Product, ProductType, TitleAvailability
from catalogs.resources import ContentTitleResource, ProductResource
from catalogs.services import content as services
from core.models import AuditEntry

pytestmark = pytest.mark.django_db

PRODUCTS = "/admin/catalogs/product/"
TITLES = "/admin/catalogs/contenttitle/"
CSV, XLSX = "0", "1"  # the admin's import/export format choices

PRODUCT_HEADER = "code,name,product_type,description,is_active,titles\n"
TITLE_HEADER = "code,title,synopsis,genres,cast,year,duration_minutes,age_rating,release_date,is_older_movie,artwork_url,available_from,available_until,screens\n"


@pytest.fixture
def usage_type(db) -> ProductType:
    return services.product_type_create(name="Usage Services", classification="SERVICE", service_type="USAGE", used_for_provisioning=True)


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def audit_actions(model) -> list[tuple[str, str, str | None]]:
    content_type = ContentType.objects.get_for_model(model)
    return [(entry.object_repr, entry.action, entry.performed_by and entry.performed_by.username)
            for entry in AuditEntry.objects.filter(content_type=content_type).order_by("pk")]


def preview(client: Client, changelist: str, content: bytes, *, file_format: str = CSV, name: str = "upload.csv"):
    """Upload a file to the import page: the dry run, with its preview or its errors."""
    upload = SimpleUploadedFile(name, content)
    return client.post(f"{changelist}import/", {"resource": "0", "format": file_format, "import_file": upload})


def confirm(client: Client, changelist: str, previewed):
    """Press "Confirm import" on a preview."""
    form = previewed.context["confirm_form"]
    return client.post(f"{changelist}process_import/", {name: form.initial[name] for name in form.fields}, follow=True)


def row_errors(response) -> dict[int, dict[str, list[str]]]:
    return {row.number: row.error_dict for row in response.context["result"].invalid_rows}


# --- products -----------------------------------------------------------------------------

def test_marketing_previews_then_confirms_a_product_file_and_every_row_is_audited(marketing_user, usage_type):
    services.content_title_create(code="lotr", title="Lord of the Rings")
    audit_before = AuditEntry.objects.count()
    client = logged_in(marketing_user)
    content = (PRODUCT_HEADER + "ppv-lotr,Lord of the Rings,Usage Services,,TRUE,lotr\n"
               "ppv-limitless, Limitless ,Usage Services,Night movie,yes,\n").encode()

    previewed = preview(client, PRODUCTS, content)

    assert previewed.status_code == 200
    result = previewed.context["result"]
    assert not result.has_validation_errors() and [row.import_type for row in result.valid_rows()] == ["new", "new"]
    assert "Confirm import" in previewed.content.decode()
    assert not Product.objects.exists() and AuditEntry.objects.count() == audit_before  # a preview writes nothing

    done = confirm(client, PRODUCTS, previewed)

    assert "Import finished: 2 new, 0 updated" in done.content.decode()
    products = {product.code: product for product in Product.objects.all()}
    assert products["ppv-limitless"].name == "Limitless" and products["ppv-limitless"].description == "Night movie"
    assert [title.code for title in products["ppv-lotr"].titles.all()] == ["lotr"]
    assert audit_actions(Product) == [("Lord of the Rings", "created", "marketing"), ("Limitless", "created", "marketing")]


def test_a_bad_product_file_shows_every_problem_per_row_and_imports_nothing(marketing_user, usage_type):
    client = logged_in(marketing_user)
    content = (PRODUCT_HEADER
               + "ppv-lotr,Lord of the Rings,Usage Services,,TRUE,\n"
               + "ppv-sports,,Sports Services,,TRUE,\n"
               + "ppv-limitless,Limitless,Usage Services,,maybe,nope\n"
               + ",No code,Usage Services,,TRUE,\n").encode()

    previewed = preview(client, PRODUCTS, content)

    assert previewed.status_code == 200 and "confirm_form" not in previewed.context
    errors = row_errors(previewed)
    assert set(errors) == {2, 3, 4}
    assert errors[2] == {"product_type": ["There is no product type named “Sports Services”."], "name": ["This field cannot be blank."]}
    assert errors[3] == {"is_active": ["“maybe” is not TRUE or FALSE."], "titles": ["There is no title with code nope."]}
    assert errors[4] == {"code": ["This field cannot be blank."]}
    page = previewed.content.decode()
    assert "There is no product type named “Sports Services”." in page and "Some rows failed to validate" in page
    assert not Product.objects.exists()
    assert audit_actions(Product) == []


def test_an_import_changes_existing_products_through_the_service(marketing_user, usage_type):
    services.product_create(code="ppv-lotr", name="Lord of the Rings", product_type=usage_type)
    services.product_create(code="ppv-limitless", name="Limitless", product_type=usage_type)
    client = logged_in(marketing_user)
    content = (PRODUCT_HEADER + "ppv-lotr,LOTR,Usage Services,,TRUE,\nppv-limitless,Limitless,Usage Services,,TRUE,\n").encode()

    previewed = preview(client, PRODUCTS, content)
    assert [row.import_type for row in previewed.context["result"].valid_rows()] == ["update", "skip"]
    confirm(client, PRODUCTS, previewed)

    assert Product.objects.get(code="ppv-lotr").name == "LOTR"
    updates = AuditEntry.objects.filter(action="updated")
    assert [(entry.object_repr, entry.changes, entry.performed_by) for entry in updates] == [
        ("LOTR", {"name": ["Lord of the Rings", "LOTR"]}, marketing_user)
    ]


def test_a_file_that_became_invalid_after_its_preview_imports_nothing(marketing_user, usage_type):
    client = logged_in(marketing_user)
    content = (PRODUCT_HEADER + "ppv-lotr,Lord of the Rings,Usage Services,,TRUE,\n"
               "ppv-decoder,Thomson decoder,Decoders,,TRUE,\n").encode()
    decoders = services.product_type_create(name="Decoders", classification="PHYSICAL_GOOD")
    previewed = preview(client, PRODUCTS, content)
    services.product_type_delete(product_type=decoders)

    done = confirm(client, PRODUCTS, previewed)

    text = done.content.decode()
    assert "Nothing was imported: row 2: There is no product type named “Decoders”." in text
    assert not Product.objects.exists()


def test_nothing_is_imported_when_any_row_is_invalid_whoever_imports(marketing_user, usage_type):
    dataset = tablib.Dataset(headers=["code", "name", "product_type"])
    dataset.append(["ppv-lotr", "Lord of the Rings", "Usage Services"])
    dataset.append(["ppv-sports", "Sports", "Sports Services"])

    result = ProductResource().import_data(dataset, dry_run=False, user=marketing_user)

    assert result.has_validation_errors()
    assert not Product.objects.exists() and audit_actions(Product) == []


def test_a_file_without_the_code_column_is_refused(marketing_user, usage_type):
    previewed = preview(logged_in(marketing_user), PRODUCTS, b"name,product_type\nLord of the Rings,Usage Services\n")

    assert previewed.context["result"].has_errors() and "confirm_form" not in previewed.context
    assert "code" in previewed.content.decode()
    assert not Product.objects.exists()


# --- titles -------------------------------------------------------------------------------

def test_marketing_imports_titles_with_genres_cast_screens_and_windows(marketing_user):
    services.genre_create(name="Fantasy")
    client = logged_in(marketing_user)
    content = (TITLE_HEADER
               + 'lotr,Lord of the Rings,A hobbit carries a ring.,"fantasy, Adventure","Elijah Wood, Ian McKellen",2001,178,12,'
                 '2001-12-19,no,https://img.example/lotr.jpg,2025-01-01 00:00,,"WEB, Smart TV"\n'
               + "serendipity,Serendipity,,Romance,,2001,90,PG,,TRUE,,,,\n").encode()

    previewed = preview(client, TITLES, content)
    assert [row.import_type for row in previewed.context["result"].valid_rows()] == ["new", "new"]
    confirm(client, TITLES, previewed)

    lotr = ContentTitle.objects.get(code="lotr")
    assert lotr.cast == ["Elijah Wood", "Ian McKellen"] and lotr.year == 2001 and lotr.release_date == date(2001, 12, 19)
    assert sorted(genre.name for genre in lotr.genres.all()) == ["Adventure", "Fantasy"]
    assert set(lotr.availabilities.values_list("screen", flat=True)) == {"WEB", "SMART_TV"}
    assert lotr.available_from == datetime(2024, 12, 31, 22, 0, tzinfo=UTC)  # midnight in the operator's time zone
    assert lotr.state == "DRAFT" and not lotr.is_older_movie
    assert ContentTitle.objects.get(code="serendipity").is_older_movie
    assert Genre.objects.count() == 3  # "fantasy" is the existing Fantasy
    assert audit_actions(ContentTitle) == [("Lord of the Rings (2001)", "created", "marketing"), ("Serendipity (2001)", "created", "marketing")]


def test_a_bad_title_file_shows_every_problem_per_row_and_imports_nothing(marketing_user):
    client = logged_in(marketing_user)
    content = (TITLE_HEADER
               + "lotr,Lord of the Rings,,,,2001,178,,,,,,,WEB\n"
               + "limitless,Limitless,,,,two thousand eleven,105,,,,,,,WEB\n"
               + "serendipity,,,,,1500,,,,,,,,TV\n"
               + "memento,Memento,,,,2000,,,19/03/2001,,,2025-02-01 00:00,2025-01-01 00:00,\n").encode()

    previewed = preview(client, TITLES, content)

    errors = row_errors(previewed)
    assert set(errors) == {2, 3, 4}
    assert errors[2] == {"year": ["“two thousand eleven” is not a whole number; write it like 2011."]}
    assert errors[3]["title"] == ["This field cannot be blank."]
    assert errors[3]["screens"] == ["Unknown screen TV; use SET_TOP_BOX, SMART_TV, MOBILE, WEB."]
    assert errors[3]["year"][0].startswith("Enter a year between 1888 and")
    assert errors[4] == {"release_date": ["“19/03/2001” is not a date; write it as YYYY-MM-DD."],
                         "available_until": ["The availability window must end after it starts."]}
    assert "confirm_form" not in previewed.context
    assert not ContentTitle.objects.exists() and not Genre.objects.exists() and audit_actions(ContentTitle) == []


def test_the_state_column_is_exported_but_never_imported(marketing_user):
    title = services.content_title_create(code="lotr", title="Lord of the Rings", synopsis="Ring.", duration_minutes=178,
                                          artwork_url="https://img.example/lotr.jpg", screens=["WEB"])
    services.title_submit(title=title)
    client = logged_in(marketing_user)

    previewed = preview(client, TITLES, b"code,title,state\nlotr,Lord of the Rings,PUBLISHED\n")
    confirm(client, TITLES, previewed)

    assert [row.import_type for row in previewed.context["result"].valid_rows()] == ["skip"]
    assert ContentTitle.objects.get().state == "READY"


# --- who may import and export --------------------------------------------------------------

def test_only_marketing_and_administrators_may_import(agent, finance_user, marketing_user, administrator):
    for user in (agent, finance_user):
        client = logged_in(user)
        for changelist in (PRODUCTS, TITLES):
            assert client.get(f"{changelist}import/").status_code == 403
            assert client.post(f"{changelist}process_import/", {}).status_code == 403
        assert "/import/" not in client.get(PRODUCTS).content.decode()
    for user in (marketing_user, administrator):
        assert logged_in(user).get(f"{PRODUCTS}import/").status_code == 200


def test_every_catalog_role_may_export(agent, finance_user, usage_type):
    services.product_create(code="ppv-lotr", name="Lord of the Rings", product_type=usage_type)

    for user in (agent, finance_user):
        exported = export(logged_in(user), PRODUCTS, ProductResource, CSV)
        assert exported.status_code == 200
        assert exported.content.decode().splitlines() == [PRODUCT_HEADER.strip(), "ppv-lotr,Lord of the Rings,Usage Services,,TRUE,"]


# --- the XLSX round trip --------------------------------------------------------------------

def export(client: Client, changelist: str, resource, file_format: str):
    fields = {f"{resource.__name__.lower()}_{name}": "on" for name in resource().get_export_order()}
    return client.post(f"{changelist}export/", {"resource": "0", "format": file_format, **fields})


def catalog_snapshot() -> dict:
    return {
        "products": list(Product.objects.order_by("code").values()),
        "product_titles": list(Product.titles.through.objects.order_by("pk").values()),
        "titles": list(ContentTitle.objects.order_by("code").values()),
        "title_genres": list(ContentTitle.genres.through.objects.order_by("pk").values()),
        "availabilities": list(TitleAvailability.objects.order_by("pk").values()),
        "genres": list(Genre.objects.order_by("pk").values()),
        "audit": AuditEntry.objects.count(),
    }


@time_machine.travel(datetime(2025, 6, 1, tzinfo=UTC), tick=False)
def test_exporting_to_xlsx_and_importing_the_file_unchanged_changes_nothing(marketing_user, usage_type):
    lotr = services.content_title_create(
        code="lotr", title="Lord of the Rings", synopsis="A hobbit carries a ring,\nfar away.", genres=["Fantasy", "Adventure"],
        cast=["Elijah Wood", "Ian McKellen"], year=2001, duration_minutes=178, age_rating="12", release_date=date(2001, 12, 19),
        artwork_url="https://img.example/lotr.jpg", available_from=datetime(2025, 1, 1, 10, 30, tzinfo=UTC),
        available_until=datetime(2026, 7, 1, tzinfo=UTC), screens=["WEB", "SMART_TV"],
    )
    services.title_availability_set(title=lotr, screen="WEB", available_until=datetime(2026, 1, 1, tzinfo=UTC))
    services.title_publish(title=services.title_submit(title=lotr))
    serendipity = services.content_title_create(code="serendipity", title="Serendipity", is_older_movie=True)
    services.product_create(code="ppv-lotr", name="Lord of the Rings", product_type=usage_type, titles=[lotr])
    services.product_create(code="ppv-serendipity", name="Serendipity", product_type=usage_type, titles=[serendipity],
                            description="Older movie", is_active=False)
    services.product_create(code="ppv-limitless", name="Limitless", product_type=usage_type)
    before = catalog_snapshot()
    client = logged_in(marketing_user)

    for changelist, resource in ((TITLES, ContentTitleResource), (PRODUCTS, ProductResource)):
        exported = export(client, changelist, resource, XLSX)
        assert exported.status_code == 200 and exported["Content-Type"].startswith("application/vnd.openxmlformats")

        previewed = preview(client, changelist, exported.content, file_format=XLSX, name="catalog.xlsx")
        result = previewed.context["result"]
        assert not result.has_errors() and not result.has_validation_errors()
        assert {row.import_type for row in result.valid_rows()} == {"skip"}
        done = confirm(client, changelist, previewed)
        assert "0 new, 0 updated, 0 deleted and" in done.content.decode()

    assert catalog_snapshot() == before
