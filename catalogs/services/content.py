"""Every write to products and content titles, and the title workflow.

The admin, the import files and (later) the API call these functions. Each validates the
whole input first and reports every problem at once (``ValidationFailed`` with per-field
messages), owns its transaction, locks the row it changes, and writes an ``AuditEntry``
naming the changed fields. A refused request changes nothing.

Titles move through an explicit workflow, one ``core.actions.Action`` per step::

    submit           DRAFT     -> READY       (the title is complete and on a screen)
    publish          READY     -> PUBLISHED   (the same checks, again: time has passed)
    return_to_draft  READY     -> DRAFT
    unpublish        PUBLISHED -> READY
    retire           PUBLISHED -> RETIRED     (final)

Only PUBLISHED titles appear in the multiscreen catalog (``catalogs.selectors``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, models, transaction
from django.db.models import ProtectedError
from django.utils import timezone

from catalogs.models import BundleComponent, ContentTitle, Genre, Product, ProductType, TitleAvailability
from core.actions import AuditedAction
from core.choices import Channel, Screen
from core.exceptions import Conflict, NotFound, ValidationFailed
from core.validation import Errors, error_add, errors_raise, model_errors
from core.services import audit_changes, audit_record


PRODUCT_TYPE_FIELDS = ("name", "classification", "service_type", "composition", "used_for_provisioning")
PRODUCT_FIELDS = ("code", "name", "product_type", "description", "is_active", "titles")
GENRE_FIELDS = ("name",)
TITLE_SCALAR_FIELDS = (
    "code", "title", "synopsis", "year", "duration_minutes", "age_rating", "release_date",
    "is_older_movie", "artwork_url", "available_from", "available_until",
)
TITLE_FIELDS = (*TITLE_SCALAR_FIELDS, "genres", "cast", "screens")
TEXT_FIELDS = frozenset({"code", "name", "title", "synopsis", "description", "artwork_url"})

#: The first film was shot in 1888; a year far in the future is a typing mistake.
FIRST_FILM_YEAR = 1888
YEARS_AHEAD = 10

#: Titles in these states are (or are about to be) offered to viewers, so they must stay complete.
OFFERED_STATES = frozenset({ContentTitle.State.READY, ContentTitle.State.PUBLISHED})


# --- shared helpers ---------------------------------------------------------------------

def _reject_unknown(data: Mapping[str, Any], allowed: Iterable[str]) -> None:
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise ValidationFailed("These fields cannot be set here.", fields={name: ["Unknown field."] for name in unknown})


def _text(name: str, value: Any) -> Any:
    """Surrounding spaces are never meant; strip them from text fields."""
    if name in TEXT_FIELDS and isinstance(value, str):
        return value.strip()
    if name in TEXT_FIELDS and value is None:
        return ""
    return value


def _lock(queryset: models.QuerySet, pk: Any, what: str) -> models.Model:
    try:
        return queryset.select_for_update().get(pk=pk)
    except queryset.model.DoesNotExist:
        raise NotFound(f"The {what} does not exist (any more).") from None


def _save_unique(instance: models.Model, *, field: str, message: str) -> None:
    """Save; a concurrent writer that took the same unique value gets a field error, not a 500."""
    try:
        with transaction.atomic():
            instance.save()
    except IntegrityError as error:
        raise ValidationFailed(message, fields={field: [message]}) from error


def _delete(instance: models.Model, *, performed_by, channel: str) -> None:
    """Audit, then delete; an object still referenced elsewhere is refused, not half-deleted."""
    audit_record(target=instance, action="deleted", performed_by=performed_by, channel=channel)
    try:
        with transaction.atomic():
            instance.delete()
    except ProtectedError as error:
        users = sorted({str(obj._meta.verbose_name_plural) for obj in error.protected_objects})
        raise Conflict(f"{instance} is still used by {', '.join(users)}; it cannot be deleted.", code="in_use") from error


def _joined(values: Iterable[str]) -> str:
    return ", ".join(values)


def _moment(value: datetime | date | None) -> str:
    if isinstance(value, datetime):
        return timezone.localtime(value).strftime("%Y-%m-%d %H:%M")
    return "" if value is None else str(value)


def _window_errors(available_from: datetime | None, available_until: datetime | None, errors: Errors) -> None:
    if available_from and available_until and available_until <= available_from:
        error_add(errors, "available_until", "The availability window must end after it starts.")


# --- product types ----------------------------------------------------------------------

def _product_type_values(product_type: ProductType) -> dict[str, Any]:
    return {name: getattr(product_type, name) for name in PRODUCT_TYPE_FIELDS}


def _product_type_errors(product_type: ProductType, *, before: dict[str, Any] | None = None) -> Errors:
    errors: Errors = {}
    model_errors(product_type, errors, validate_unique=True)
    is_service = product_type.classification == ProductType.Classification.SERVICE
    if is_service and not product_type.service_type:
        error_add(errors, "service_type", "A service type is required for services.")
    elif product_type.classification and not is_service and product_type.service_type:
        error_add(errors, "service_type", "Only services have a service type; leave it empty.")
    if before is not None and product_type.products.exists():
        # Existing products are billed and provisioned by what their type says they are.
        for name in ("classification", "service_type", "composition"):
            if before[name] != getattr(product_type, name):
                error_add(errors, name, "Products of this type exist, so this cannot change; create a new product type instead.")
    return errors


def product_type_create(
    *,
    name: str,
    classification: str,
    service_type: str = "",
    composition: str = ProductType.Composition.FLAT,
    used_for_provisioning: bool = False,
    performed_by=None,
    channel: str = Channel.CALL_CENTER,
) -> ProductType:
    """Create a product type. A service type is required for services and only for them."""
    product_type = ProductType(
        name=_text("name", name), classification=classification, service_type=service_type or "",
        composition=composition, used_for_provisioning=used_for_provisioning,
    )
    errors_raise(_product_type_errors(product_type), "The product type could not be created.")
    with transaction.atomic():
        _save_unique(product_type, field="name", message="A product type with this name already exists.")
        audit_record(target=product_type, action="created", changes=audit_changes({}, _product_type_values(product_type)),
                     performed_by=performed_by, channel=channel)
    return product_type


def product_type_update(
    *, product_type: ProductType, data: Mapping[str, Any], performed_by=None, channel: str = Channel.CALL_CENTER
) -> ProductType:
    """Change a product type. What it classifies (classification, service type,
    composition) is fixed once products of the type exist."""
    _reject_unknown(data, PRODUCT_TYPE_FIELDS)
    with transaction.atomic():
        locked = _lock(ProductType.objects, product_type.pk, "product type")
        before = _product_type_values(locked)
        for name, value in data.items():
            setattr(locked, name, "" if name == "service_type" and value is None else _text(name, value))
        errors_raise(_product_type_errors(locked, before=before), "The product type could not be updated.")
        changes = audit_changes(before, _product_type_values(locked))
        if changes:
            _save_unique(locked, field="name", message="A product type with this name already exists.")
            audit_record(target=locked, action="updated", changes=changes, performed_by=performed_by, channel=channel)
    return locked


def product_type_delete(*, product_type: ProductType, performed_by=None, channel: str = Channel.CALL_CENTER) -> None:
    """Delete a product type that no product uses."""
    with transaction.atomic():
        _delete(_lock(ProductType.objects, product_type.pk, "product type"), performed_by=performed_by, channel=channel)


# --- products ---------------------------------------------------------------------------

def _product_values(product: Product, titles: Iterable[ContentTitle]) -> dict[str, Any]:
    return {
        "code": product.code,
        "name": product.name,
        "product_type": str(product.product_type) if product.product_type_id else None,
        "description": product.description,
        "is_active": product.is_active,
        "titles": _joined(sorted(title.code for title in titles)),
    }


def _product_errors(product: Product, titles: list[ContentTitle]) -> Errors:
    errors: Errors = {}
    model_errors(product, errors, validate_unique=True)
    product_type = product.product_type if product.product_type_id else None
    if product_type is None:
        return errors
    if titles and product_type.classification != ProductType.Classification.SERVICE:
        error_add(errors, "titles", f"Only services carry content titles; {product_type} is a {product_type.get_classification_display().lower()} type.")
    if (product.pk and product_type.composition != ProductType.Composition.BUNDLE
            and product.bundle_components.exists()):
        error_add(errors, "product_type", "This bundle has components; remove them before giving it a product type that is not a bundle.")
    return errors


def product_create(
    *,
    code: str,
    name: str,
    product_type: ProductType | None,
    description: str = "",
    is_active: bool = True,
    titles: Iterable[ContentTitle] = (),
    performed_by=None,
    channel: str = Channel.CALL_CENTER,
) -> Product:
    """Create a product of a type, with the content titles behind it (services only)."""
    product = Product(code=_text("code", code), name=_text("name", name), product_type=product_type,
                      description=_text("description", description), is_active=is_active)
    titles = list(titles)
    errors_raise(_product_errors(product, titles), "The product could not be created.")
    with transaction.atomic():
        _save_unique(product, field="code", message="A product with this code already exists.")
        product.titles.set(titles)
        audit_record(target=product, action="created", changes=audit_changes({}, _product_values(product, titles)),
                     performed_by=performed_by, channel=channel)
    return product


def product_update(*, product: Product, data: Mapping[str, Any], performed_by=None, channel: str = Channel.CALL_CENTER) -> Product:
    """Change a product's code, name, type, description, active flag or titles."""
    _reject_unknown(data, PRODUCT_FIELDS)
    with transaction.atomic():
        locked = _lock(Product.objects.select_related("product_type"), product.pk, "product")
        current_titles = list(locked.titles.all())
        before = _product_values(locked, current_titles)
        titles = list(data["titles"]) if "titles" in data else current_titles
        for name, value in data.items():
            if name != "titles":
                setattr(locked, name, _text(name, value))
        errors_raise(_product_errors(locked, titles), "The product could not be updated.")
        changes = audit_changes(before, _product_values(locked, titles))
        if changes:
            _save_unique(locked, field="code", message="A product with this code already exists.")
            if "titles" in changes:
                locked.titles.set(titles)
            audit_record(target=locked, action="updated", changes=changes, performed_by=performed_by, channel=channel)
    return locked


def product_delete(*, product: Product, performed_by=None, channel: str = Channel.CALL_CENTER) -> None:
    """Delete a product nothing refers to (no rates, catalogs or bundles); otherwise deactivate it."""
    with transaction.atomic():
        _delete(_lock(Product.objects, product.pk, "product"), performed_by=performed_by, channel=channel)


# --- bundles ----------------------------------------------------------------------------

def bundle_component_set(
    *, bundle: Product, component: Product, standalone_price: Decimal, performed_by=None, channel: str = Channel.CALL_CENTER
) -> BundleComponent:
    """Put a service in a bundle, or change its standalone selling price (what the bundle's
    price is allocated by for revenue recognition)."""
    with transaction.atomic():
        locked = _lock(Product.objects.select_related("product_type"), bundle.pk, "bundle")
        errors: Errors = {}
        if locked.product_type.composition != ProductType.Composition.BUNDLE:
            error_add(errors, "bundle", f"{locked} is not a bundle: its product type {locked.product_type} is flat.")
        component_type = component.product_type
        if component.pk == locked.pk:
            error_add(errors, "component", "A bundle cannot contain itself.")
        elif component_type.composition == ProductType.Composition.BUNDLE:
            error_add(errors, "component", f"{component} is a bundle itself; bundles cannot be nested.")
        elif component_type.classification != ProductType.Classification.SERVICE:
            error_add(errors, "component", f"{component} is not a service; bundles are made of services.")
        entry = BundleComponent.objects.filter(bundle=locked, component=component).first()
        before = f"{entry.standalone_price:.4f}" if entry else None
        entry = entry or BundleComponent(bundle=locked, component=component)
        entry.standalone_price = standalone_price
        model_errors(entry, errors, exclude=["bundle", "component"], validate_unique=True)
        errors_raise(errors, "The bundle component could not be saved.")
        after = f"{Decimal(entry.standalone_price):.4f}"
        if before != after:
            entry.save()
            audit_record(target=locked, action="bundle_component_set", changes={f"component {component.code}": [before, after]},
                         performed_by=performed_by, channel=channel)
    return entry


def bundle_component_remove(*, bundle: Product, component: Product, performed_by=None, channel: str = Channel.CALL_CENTER) -> None:
    """Take a service out of a bundle."""
    with transaction.atomic():
        locked = _lock(Product.objects, bundle.pk, "bundle")
        entry = BundleComponent.objects.filter(bundle=locked, component=component).first()
        if entry is None:
            raise NotFound(f"{component} is not in the bundle {locked}.")
        before = f"{entry.standalone_price:.4f}"
        entry.delete()
        audit_record(target=locked, action="bundle_component_removed", changes={f"component {component.code}": [before, None]},
                     performed_by=performed_by, channel=channel)


# --- genres -----------------------------------------------------------------------------

def _genre_errors(genre: Genre) -> Errors:
    errors: Errors = {}
    model_errors(genre, errors, validate_unique=True)
    if "name" not in errors and Genre.objects.filter(name__iexact=genre.name).exclude(pk=genre.pk).exists():
        error_add(errors, "name", "A genre with this name already exists.")
    return errors


def genre_create(*, name: str, performed_by=None, channel: str = Channel.CALL_CENTER) -> Genre:
    genre = Genre(name=_text("name", name))
    errors_raise(_genre_errors(genre), "The genre could not be created.")
    with transaction.atomic():
        _save_unique(genre, field="name", message="A genre with this name already exists.")
        audit_record(target=genre, action="created", changes={"name": [None, genre.name]}, performed_by=performed_by, channel=channel)
    return genre


def genre_update(*, genre: Genre, data: Mapping[str, Any], performed_by=None, channel: str = Channel.CALL_CENTER) -> Genre:
    _reject_unknown(data, GENRE_FIELDS)
    with transaction.atomic():
        locked = _lock(Genre.objects, genre.pk, "genre")
        before = {"name": locked.name}
        locked.name = _text("name", data.get("name", locked.name))
        errors_raise(_genre_errors(locked), "The genre could not be updated.")
        changes = audit_changes(before, {"name": locked.name})
        if changes:
            _save_unique(locked, field="name", message="A genre with this name already exists.")
            audit_record(target=locked, action="updated", changes=changes, performed_by=performed_by, channel=channel)
    return locked


def genre_delete(*, genre: Genre, performed_by=None, channel: str = Channel.CALL_CENTER) -> None:
    """Delete a genre; titles simply lose it."""
    with transaction.atomic():
        _delete(_lock(Genre.objects, genre.pk, "genre"), performed_by=performed_by, channel=channel)


def _genres_resolve(names: list[str], *, performed_by, channel: str) -> list[Genre]:
    """The genres with these names, matched case-insensitively; missing ones are created."""
    genres = []
    for name in names:
        genre = Genre.objects.filter(name__iexact=name).first()
        if genre is None:
            genre, created = Genre.objects.get_or_create(name=name)
            if created:
                audit_record(target=genre, action="created", changes={"name": [None, name]}, performed_by=performed_by, channel=channel)
        genres.append(genre)
    return genres


# --- content titles ---------------------------------------------------------------------

def _names(values: Any, field: str, errors: Errors, *, max_length: int) -> list[str]:
    """A clean list of names: spaces collapsed, blanks and repeats dropped, order kept."""
    if isinstance(values, str) or not isinstance(values, Iterable):
        error_add(errors, field, "Give a list of names.")
        return []
    names: list[str] = []
    seen: set[str] = set()
    for value in values:
        if not isinstance(value, str):
            error_add(errors, field, f"{value!r} is not a name.")
            continue
        name = " ".join(value.split())
        if not name or name.casefold() in seen:
            continue
        if len(name) > max_length:
            error_add(errors, field, f"“{name[:30]}…” is longer than {max_length} characters.")
            continue
        seen.add(name.casefold())
        names.append(name)
    return names


def _genre_spellings(names: list[str]) -> list[str]:
    """Names as the existing genres spell them, so "drama" and "Drama" are the same genre."""
    existing = {genre.name.casefold(): genre.name for genre in Genre.objects.all()}
    return [existing.get(name.casefold(), name) for name in names]


def _screens(values: Any, errors: Errors) -> list[str]:
    if isinstance(values, str) or not isinstance(values, Iterable):
        error_add(errors, "screens", "Give a list of screens.")
        return []
    screens: list[str] = []
    for value in values:
        if value not in Screen.values:
            error_add(errors, "screens", f"Unknown screen {value!r}; choose from {', '.join(Screen.values)}.")
        elif value not in screens:
            screens.append(value)
    return screens


def _missing_content(title: ContentTitle) -> dict[str, str]:
    """What a title needs before viewers may see it, by field."""
    missing = {}
    if not (title.synopsis or "").strip():
        missing["synopsis"] = "A synopsis is required."
    if not title.duration_minutes:
        missing["duration_minutes"] = "The duration is required."
    if not (title.artwork_url or "").strip():
        missing["artwork_url"] = "An artwork URL is required."
    return missing


def _title_errors(title: ContentTitle, errors: Errors, *, screens: list[str]) -> None:
    model_errors(title, errors, validate_unique=True)
    _window_errors(title.available_from, title.available_until, errors)
    latest_year = timezone.localdate().year + YEARS_AHEAD
    if "year" not in errors and title.year is not None and not FIRST_FILM_YEAR <= title.year <= latest_year:
        error_add(errors, "year", f"Enter a year between {FIRST_FILM_YEAR} and {latest_year}.")
    if "duration_minutes" not in errors and title.duration_minutes == 0:
        error_add(errors, "duration_minutes", "The duration must be at least one minute.")
    if title.state in OFFERED_STATES:
        state = title.get_state_display().lower()
        for field, message in _missing_content(title).items():
            error_add(errors, field, f"{message} A title that is {state} must stay complete.")
        if not screens:
            error_add(errors, "screens", f"A title that is {state} must stay available on at least one screen.")


def _title_values(title: ContentTitle, *, genres: list[str], screens: list[str]) -> dict[str, Any]:
    values = {name: getattr(title, name) for name in TITLE_SCALAR_FIELDS}
    values["cast"] = _joined(title.cast)
    values["genres"] = _joined(sorted(genres, key=str.casefold))
    values["screens"] = _joined(sorted(screens))
    return values


def _screens_sync(title: ContentTitle, screens: list[str]) -> None:
    """Offer the title on exactly these screens; screens it keeps keep their windows."""
    title.availabilities.exclude(screen__in=screens).delete()
    existing = set(title.availabilities.values_list("screen", flat=True))
    TitleAvailability.objects.bulk_create(TitleAvailability(title=title, screen=screen) for screen in screens if screen not in existing)


def content_title_create(
    *,
    code: str,
    title: str,
    synopsis: str = "",
    genres: Iterable[str] = (),
    cast: Iterable[str] = (),
    year: int | None = None,
    duration_minutes: int | None = None,
    age_rating: str = "",
    release_date: date | None = None,
    is_older_movie: bool = False,
    artwork_url: str = "",
    available_from: datetime | None = None,
    available_until: datetime | None = None,
    screens: Iterable[str] = (),
    performed_by=None,
    channel: str = Channel.CALL_CENTER,
) -> ContentTitle:
    """Create a DRAFT title. Genres are names (missing genres are created), cast is a list
    of names (leading roles first), screens are where it may be watched (no window)."""
    errors: Errors = {}
    genre_names = _genre_spellings(_names(genres, "genres", errors, max_length=Genre._meta.get_field("name").max_length))
    content = ContentTitle(
        code=_text("code", code), title=_text("title", title), synopsis=_text("synopsis", synopsis),
        cast=_names(cast, "cast", errors, max_length=200), year=year, duration_minutes=duration_minutes,
        age_rating=age_rating or "", release_date=release_date, is_older_movie=is_older_movie,
        artwork_url=_text("artwork_url", artwork_url), available_from=available_from, available_until=available_until,
    )
    screen_values = _screens(screens, errors)
    _title_errors(content, errors, screens=screen_values)
    errors_raise(errors, "The title could not be created.")
    with transaction.atomic():
        _save_unique(content, field="code", message="A title with this code already exists.")
        content.genres.set(_genres_resolve(genre_names, performed_by=performed_by, channel=channel))
        _screens_sync(content, screen_values)
        changes = audit_changes({}, _title_values(content, genres=genre_names, screens=screen_values))
        audit_record(target=content, action="created", changes=changes, performed_by=performed_by, channel=channel)
    return content


def content_title_update(
    *, title: ContentTitle, data: Mapping[str, Any], performed_by=None, channel: str = Channel.CALL_CENTER
) -> ContentTitle:
    """Change a title's metadata, genres, cast, window or screens (``screens`` lists every
    screen it is offered on: others are removed; windows of kept screens are kept).

    A READY or PUBLISHED title must stay complete: clearing its synopsis, duration or
    artwork, or taking it off every screen, is refused. Its state changes only through
    the workflow services.
    """
    _reject_unknown(data, TITLE_FIELDS)
    errors: Errors = {}
    with transaction.atomic():
        locked = _lock(ContentTitle.objects, title.pk, "title")
        current_genres = [genre.name for genre in locked.genres.all()]
        current_screens = list(locked.availabilities.values_list("screen", flat=True))
        before = _title_values(locked, genres=current_genres, screens=current_screens)
        genre_max = Genre._meta.get_field("name").max_length
        genre_names = _genre_spellings(_names(data["genres"], "genres", errors, max_length=genre_max)) if "genres" in data else current_genres
        screens = _screens(data["screens"], errors) if "screens" in data else current_screens
        if "cast" in data:
            locked.cast = _names(data["cast"], "cast", errors, max_length=200)
        for name in TITLE_SCALAR_FIELDS:
            if name in data:
                setattr(locked, name, _text(name, data[name]))
        _title_errors(locked, errors, screens=screens)
        errors_raise(errors, "The title could not be updated.")
        changes = audit_changes(before, _title_values(locked, genres=genre_names, screens=screens))
        if changes:
            _save_unique(locked, field="code", message="A title with this code already exists.")
            if "genres" in changes:
                locked.genres.set(_genres_resolve(genre_names, performed_by=performed_by, channel=channel))
            if "screens" in changes:
                _screens_sync(locked, screens)
            audit_record(target=locked, action="updated", changes=changes, performed_by=performed_by, channel=channel)
    return locked


def content_title_delete(*, title: ContentTitle, performed_by=None, channel: str = Channel.CALL_CENTER) -> None:
    """Delete a DRAFT title no product refers to. Titles that went further keep their
    history: retire them instead."""
    with transaction.atomic():
        locked = _lock(ContentTitle.objects, title.pk, "title")
        if locked.state != ContentTitle.State.DRAFT:
            raise Conflict(f"{locked} is {locked.get_state_display().lower()}; only draft titles can be deleted. Retire it instead.",
                           code="title_not_draft")
        products = list(locked.products.values_list("code", flat=True))
        if products:
            raise Conflict(f"{locked} is the content of {_joined(products)}; take it off those products first.", code="in_use")
        _delete(locked, performed_by=performed_by, channel=channel)


# --- availability per screen -------------------------------------------------------------

def _window_text(availability: TitleAvailability | None) -> str | None:
    if availability is None:
        return None
    start, end = availability.available_from, availability.available_until
    if start is None and end is None:
        return "always"
    return " ".join(part for part in (start and f"from {_moment(start)}", end and f"until {_moment(end)}") if part)


def title_availability_set(
    *,
    title: ContentTitle,
    screen: str,
    available_from: datetime | None = None,
    available_until: datetime | None = None,
    performed_by=None,
    channel: str = Channel.CALL_CENTER,
) -> TitleAvailability:
    """Offer a title on a kind of screen, within [from, until) (empty: open-ended), or
    change that window."""
    errors: Errors = {}
    if screen not in Screen.values:
        error_add(errors, "screen", f"Unknown screen {screen!r}; choose from {', '.join(Screen.values)}.")
    _window_errors(available_from, available_until, errors)
    errors_raise(errors, "The availability could not be saved.")
    with transaction.atomic():
        locked = _lock(ContentTitle.objects, title.pk, "title")
        availability = TitleAvailability.objects.filter(title=locked, screen=screen).first()
        before = _window_text(availability)
        availability = availability or TitleAvailability(title=locked, screen=screen)
        availability.available_from, availability.available_until = available_from, available_until
        after = _window_text(availability)
        if before != after:
            availability.save()
            audit_record(target=locked, action="availability_set", changes={f"screen {screen}": [before, after]},
                         performed_by=performed_by, channel=channel)
    return availability


def title_availability_remove(*, title: ContentTitle, screen: str, performed_by=None, channel: str = Channel.CALL_CENTER) -> None:
    """Stop offering a title on a kind of screen. A READY or PUBLISHED title keeps at least one."""
    with transaction.atomic():
        locked = _lock(ContentTitle.objects, title.pk, "title")
        availability = TitleAvailability.objects.filter(title=locked, screen=screen).first()
        if availability is None:
            raise NotFound(f"{locked} is not offered on {screen}.")
        if locked.state in OFFERED_STATES and not locked.availabilities.exclude(pk=availability.pk).exists():
            raise Conflict(
                f"{locked} is {locked.get_state_display().lower()} and this is its only screen; "
                "unpublish or return it to draft first.",
                code="last_screen",
            )
        before = _window_text(availability)
        availability.delete()
        audit_record(target=locked, action="availability_removed", changes={f"screen {screen}": [before, None]},
                     performed_by=performed_by, channel=channel)


# --- the title workflow -----------------------------------------------------------------

def _publication_problems(title: ContentTitle) -> list[str]:
    """Why viewers could not be shown the title now (empty: they could)."""
    problems = list(_missing_content(title).values())
    if not title.availabilities.exists():
        problems.append("It is not available on any screen; add at least one.")
    if title.available_until is not None and title.available_until <= timezone.now():
        problems.append(f"Its availability window ended on {_moment(title.available_until)}; extend or clear it.")
    return problems


class TitleAction(AuditedAction[ContentTitle]):
    """A workflow step of a content title. Executed or rejected, it is written to the
    title's audit trail ("submit", or "rejected: submit" with every reason)."""


class TitleSubmit(TitleAction):
    code = "submit"
    label = "Submit for review"
    allowed_from = frozenset({ContentTitle.State.DRAFT})
    target_state = ContentTitle.State.READY

    def validate(self, obj: ContentTitle, **params: Any) -> Iterable[str]:
        return _publication_problems(obj)


class TitlePublish(TitleAction):
    """Checks again what submit checked: the title may have been edited, or its window may
    have ended, while it waited for review."""

    code = "publish"
    label = "Publish"
    allowed_from = frozenset({ContentTitle.State.READY})
    target_state = ContentTitle.State.PUBLISHED

    def validate(self, obj: ContentTitle, **params: Any) -> Iterable[str]:
        return _publication_problems(obj)


class TitleReturnToDraft(TitleAction):
    code = "return_to_draft"
    label = "Return to draft"
    allowed_from = frozenset({ContentTitle.State.READY})
    target_state = ContentTitle.State.DRAFT


class TitleUnpublish(TitleAction):
    code = "unpublish"
    label = "Unpublish"
    allowed_from = frozenset({ContentTitle.State.PUBLISHED})
    target_state = ContentTitle.State.READY


class TitleRetire(TitleAction):
    code = "retire"
    label = "Retire"
    allowed_from = frozenset({ContentTitle.State.PUBLISHED})
    target_state = ContentTitle.State.RETIRED


#: The workflow table: every step, in the order the admin offers them.
TITLE_WORKFLOW: tuple[type[TitleAction], ...] = (TitleSubmit, TitlePublish, TitleReturnToDraft, TitleUnpublish, TitleRetire)


def title_workflow_steps(*, state: str) -> list[type[TitleAction]]:
    """The steps that may start from ``state`` (what the admin offers as buttons)."""
    return [step for step in TITLE_WORKFLOW if step.allowed_from is None or state in step.allowed_from]


def title_submit(*, title: ContentTitle, performed_by=None, channel: str = Channel.CALL_CENTER) -> ContentTitle:
    """DRAFT → READY, once the title has a synopsis, duration, artwork, a screen and a
    window that has not ended. Raises ``ActionRejected`` with every reason otherwise."""
    return TitleSubmit().execute(title, performed_by=performed_by, channel=channel)


def title_publish(*, title: ContentTitle, performed_by=None, channel: str = Channel.CALL_CENTER) -> ContentTitle:
    """READY → PUBLISHED: viewers see it on its screens, within its windows."""
    return TitlePublish().execute(title, performed_by=performed_by, channel=channel)


def title_return_to_draft(*, title: ContentTitle, performed_by=None, channel: str = Channel.CALL_CENTER) -> ContentTitle:
    """READY → DRAFT: the review sent it back."""
    return TitleReturnToDraft().execute(title, performed_by=performed_by, channel=channel)


def title_unpublish(*, title: ContentTitle, performed_by=None, channel: str = Channel.CALL_CENTER) -> ContentTitle:
    """PUBLISHED → READY: off the catalog for now, ready to be published again."""
    return TitleUnpublish().execute(title, performed_by=performed_by, channel=channel)


def title_retire(*, title: ContentTitle, performed_by=None, channel: str = Channel.CALL_CENTER) -> ContentTitle:
    """PUBLISHED → RETIRED: off the catalog for good."""
    return TitleRetire().execute(title, performed_by=performed_by, channel=channel)
