"""Import and export of products and content titles (CSV, XLSX) with django-import-export.

Rows are identified by natural keys, never database ids: a product by its ``code``, its
type by ``name``, a title by its ``code``; genres, cast, screens and a product's titles
are comma-separated lists in one cell ("Drama, Romance"; "WEB, MOBILE").

The widgets only read cells. Every row is then saved by the catalog services
(``catalogs.services.content``), which validate it as they would a form and write the audit
rows; ``Model.save()`` is never called from here. A row lists every problem it has at
once: the cells that could not be read together with what the service refused. An
import is all or nothing: if any row is invalid, the whole file is rolled back.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import transaction
from import_export import fields, resources, widgets

from catalogs.models import ContentTitle, Product, ProductType
from catalogs.services import content as services
from core.choices import Channel, Screen
from core.exceptions import ApplicationError, ValidationFailed

# --- widgets: one cell <-> one value ------------------------------------------------------


class CodeWidget(widgets.CharWidget):
    """A natural key: surrounding spaces are never part of it."""

    def clean(self, value, row=None, **kwargs):
        return super().clean(value, row, **kwargs).strip()


class WholeNumberWidget(widgets.Widget):
    def __init__(self, example: str):
        super().__init__()
        self.example = example

    def clean(self, value, row=None, **kwargs) -> int | None:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():  # spreadsheets store numbers as floats
            return int(value)
        text = str(value).strip()
        if text.isascii() and text.isdigit():
            return int(text)
        raise ValueError(f"“{value}” is not a whole number; write it like {self.example}.")

    def render(self, value, obj=None, **kwargs):
        if value is None:
            return ""
        return value if kwargs.get("force_native_type") else str(value)


class BooleanCellWidget(widgets.Widget):
    """TRUE/FALSE (also yes/no, 1/0); an empty cell means ``default``. Anything else is an
    error rather than a silent FALSE."""

    TRUE = frozenset({"true", "yes", "y", "1"})
    FALSE = frozenset({"false", "no", "n", "0"})

    def __init__(self, default: bool):
        super().__init__()
        self.default = default

    def clean(self, value, row=None, **kwargs) -> bool:
        if isinstance(value, bool):
            return value
        text = "" if value is None else str(value).strip().casefold()
        if text.endswith(".0"):  # 1.0 / 0.0 from a spreadsheet
            text = text[:-2]
        if not text:
            return self.default
        if text in self.TRUE:
            return True
        if text in self.FALSE:
            return False
        raise ValueError(f"“{value}” is not TRUE or FALSE.")

    def render(self, value, obj=None, **kwargs):
        if kwargs.get("force_native_type"):
            return value
        return "TRUE" if value else "FALSE"


class DateCellWidget(widgets.DateWidget):
    def clean(self, value, row=None, **kwargs) -> date | None:
        if isinstance(value, datetime):  # spreadsheets store dates as date-times
            return value.date()
        try:
            return super().clean(value.strip() if isinstance(value, str) else value, row, **kwargs)
        except (TypeError, ValueError):
            raise ValueError(f"“{value}” is not a date; write it as YYYY-MM-DD.") from None


class DateTimeCellWidget(widgets.DateTimeWidget):
    def clean(self, value, row=None, **kwargs) -> datetime | None:
        try:
            return super().clean(value.strip() if isinstance(value, str) else value, row, **kwargs)
        except (TypeError, ValueError):
            raise ValueError(f"“{value}” is not a date and time; write it as YYYY-MM-DD HH:MM (operator's time zone).") from None


class ProductTypeWidget(widgets.ForeignKeyWidget):
    """A product type by its name."""

    def __init__(self):
        super().__init__(ProductType, field="name")

    def clean(self, value, row=None, **kwargs) -> ProductType | None:
        name = value.strip() if isinstance(value, str) else value
        try:
            return super().clean(name, row, **kwargs)
        except ProductType.DoesNotExist:
            raise ValueError(f"There is no product type named “{name}”.") from None


class NameListWidget(widgets.Widget):
    """Several names in one cell, separated by commas. ``attribute`` names what to show of
    a related object; ``ordered`` keeps the order (cast: leading roles first)."""

    def __init__(self, *, attribute: str = "name", ordered: bool = False):
        super().__init__()
        self.attribute = attribute
        self.ordered = ordered

    def clean(self, value, row=None, **kwargs) -> list[str]:
        if value is None:
            return []
        return [part.strip() for part in str(value).split(",") if part.strip()]

    def render(self, value, obj=None, **kwargs) -> str:
        names = [item if isinstance(item, str) else str(getattr(item, self.attribute)) for item in value or []]
        return ", ".join(names if self.ordered else sorted(names, key=str.casefold))


class ScreenListWidget(NameListWidget):
    """Screens by value (SMART_TV) or label (Smart TV), in any case."""

    SCREENS = {**{value.casefold(): value for value in Screen.values}, **{label.casefold(): value for value, label in Screen.choices}}

    def __init__(self):
        super().__init__(attribute="screen")

    def clean(self, value, row=None, **kwargs) -> list[str]:
        names = super().clean(value, row, **kwargs)
        unknown = [name for name in names if name.casefold() not in self.SCREENS]
        if unknown:
            raise ValueError(f"Unknown screen {', '.join(unknown)}; use {', '.join(Screen.values)}.")
        return [self.SCREENS[name.casefold()] for name in names]


class TitleListWidget(NameListWidget):
    """Content titles by code."""

    def __init__(self):
        super().__init__(attribute="code")

    def clean(self, value, row=None, **kwargs) -> list[ContentTitle]:
        codes = super().clean(value, row, **kwargs)
        found = {title.code: title for title in ContentTitle.objects.filter(code__in=codes)}
        missing = [code for code in codes if code not in found]
        if missing:
            raise ValueError(f"There is no title with code {', '.join(missing)}.")
        return [found[code] for code in codes]


class ListColumn(fields.Field):
    """A relation the services set (a product's titles, a title's genres and screens),
    as a list in one cell. On import the cell is read (and so checked) but never assigned
    to the instance; the row's service call sets the relation."""

    def __init__(self, name: str, *, widget: NameListWidget, source: str | None = None):
        super().__init__(attribute=name, column_name=name, widget=widget)
        self.source = source or name

    def get_value(self, instance) -> list:
        if instance.pk is None:
            return []
        return list(getattr(instance, self.source).all())

    def save(self, instance, row, is_m2m=False, **kwargs) -> None:
        self.clean(row, **kwargs)

    def unchanged(self, instance, row) -> bool:
        return self.widget.render(self.clean(row)).casefold() == self.export(instance).casefold()


# --- resources --------------------------------------------------------------------------


class _RowUnreadable(Exception):
    """Undo a service call made only to collect its findings for a row with unreadable cells."""


class ServiceSavedResource(resources.ModelResource):
    """A resource whose rows are saved by services (``create``/``update``), all or nothing."""

    channel = Channel.CALL_CENTER

    class Meta:
        import_id_fields = ("code",)
        use_transactions = True
        skip_unchanged = True
        report_skipped = True
        clean_model_instances = False

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._unreadable: dict[str, list[ValidationError]] = {}

    # --- what subclasses provide -------------------------------------------------------
    def create(self, values: dict[str, Any], *, performed_by):
        raise NotImplementedError

    def update(self, instance, values: dict[str, Any], *, performed_by):
        raise NotImplementedError

    # --- the import pipeline ---------------------------------------------------------
    def import_data(self, dataset, dry_run=False, raise_errors=False, use_transactions=None, collect_failed_rows=False,
                    rollback_on_validation_errors=False, **kwargs):
        """All or nothing, whoever calls it: one invalid row rolls the whole file back."""
        return super().import_data(dataset, dry_run=dry_run, raise_errors=raise_errors, use_transactions=True,
                                   collect_failed_rows=collect_failed_rows, rollback_on_validation_errors=True, **kwargs)

    def skip_row(self, instance, original, row, import_validation_errors=None) -> bool:
        """A row that would change nothing is shown as skipped and not sent to the service."""
        if import_validation_errors or original.pk is None:
            return False
        for field in self._writable_fields(row):
            if isinstance(field, ListColumn):
                if not field.unchanged(original, row):
                    return False
            elif field.get_value(instance) != field.get_value(original):
                return False
        return True

    def validate_instance(self, instance, import_validation_errors=None, validate_unique=True) -> None:
        # The cells that could not be read are reported by save_instance together with
        # what the service finds in the rest of the row, so a row lists every problem.
        self._unreadable = dict(import_validation_errors or {})

    def save_instance(self, instance, is_create, row, **kwargs) -> None:
        unreadable, self._unreadable = self._unreadable, {}
        errors = ValidationError(unreadable).message_dict if unreadable else {}
        values = self._values(instance, row, is_create=is_create, unreadable=set(errors))
        performed_by = kwargs.get("user")
        try:
            with transaction.atomic():
                saved = self.create(values, performed_by=performed_by) if is_create else self.update(instance, values, performed_by=performed_by)
                if errors:
                    raise _RowUnreadable
        except _RowUnreadable:
            pass
        except ValidationFailed as refusal:
            for name, messages in refusal.fields.items():
                if name not in unreadable:  # the service saw the column's default, not the cell
                    errors.setdefault(NON_FIELD_ERRORS if name == "non_field_errors" else name, []).extend(messages)
        except ApplicationError as refusal:
            errors.setdefault(NON_FIELD_ERRORS, []).append(refusal.message)
        if errors:
            raise ValidationError(errors)
        for model_field in instance._meta.concrete_fields:  # show what the service saved
            setattr(instance, model_field.attname, getattr(saved, model_field.attname))
        instance._state.adding = False

    def save_m2m(self, instance, row, **kwargs) -> None:
        """The services set relations."""

    def _writable_fields(self, row) -> list[fields.Field]:
        return [field for field in self.get_import_fields() if not field.readonly and field.column_name in row]

    def _values(self, instance, row, *, is_create: bool, unreadable: set[str]) -> dict[str, Any]:
        """The row as service arguments. A new object gets every field, with the model's
        default where the column is missing or its cell unreadable; an update gets only
        the columns present and readable."""
        values = {}
        for field in self.get_import_fields():
            readable = field.column_name in row and field.attribute not in unreadable
            if field.readonly or not (readable or is_create):
                continue
            if isinstance(field, ListColumn):
                if readable:
                    values[field.attribute] = field.clean(row)
            else:
                values[field.attribute] = field.get_value(instance)
        return values


class ProductResource(ServiceSavedResource):
    code = fields.Field(attribute="code", column_name="code", widget=CodeWidget())
    name = fields.Field(attribute="name", column_name="name", widget=widgets.CharWidget())
    product_type = fields.Field(attribute="product_type", column_name="product_type", widget=ProductTypeWidget())
    description = fields.Field(attribute="description", column_name="description", widget=widgets.CharWidget())
    is_active = fields.Field(attribute="is_active", column_name="is_active", widget=BooleanCellWidget(default=True))
    titles = ListColumn("titles", widget=TitleListWidget())

    class Meta:
        model = Product
        name = "Products (by code)"
        fields = ("code", "name", "product_type", "description", "is_active", "titles")

    def get_queryset(self):
        return Product.objects.select_related("product_type")

    def create(self, values, *, performed_by):
        return services.product_create(**values, performed_by=performed_by, channel=self.channel)

    def update(self, instance, values, *, performed_by):
        return services.product_update(product=instance, data=values, performed_by=performed_by, channel=self.channel)


class ContentTitleResource(ServiceSavedResource):
    code = fields.Field(attribute="code", column_name="code", widget=CodeWidget())
    title = fields.Field(attribute="title", column_name="title", widget=widgets.CharWidget())
    synopsis = fields.Field(attribute="synopsis", column_name="synopsis", widget=widgets.CharWidget())
    genres = ListColumn("genres", widget=NameListWidget())
    cast = fields.Field(attribute="cast", column_name="cast", widget=NameListWidget(ordered=True))
    year = fields.Field(attribute="year", column_name="year", widget=WholeNumberWidget(example="2011"))
    duration_minutes = fields.Field(attribute="duration_minutes", column_name="duration_minutes", widget=WholeNumberWidget(example="105"))
    age_rating = fields.Field(attribute="age_rating", column_name="age_rating", widget=widgets.CharWidget())
    release_date = fields.Field(attribute="release_date", column_name="release_date", widget=DateCellWidget())
    is_older_movie = fields.Field(attribute="is_older_movie", column_name="is_older_movie", widget=BooleanCellWidget(default=False))
    artwork_url = fields.Field(attribute="artwork_url", column_name="artwork_url", widget=widgets.CharWidget())
    available_from = fields.Field(attribute="available_from", column_name="available_from", widget=DateTimeCellWidget())
    available_until = fields.Field(attribute="available_until", column_name="available_until", widget=DateTimeCellWidget())
    screens = ListColumn("screens", widget=ScreenListWidget(), source="availabilities")
    #: Exported for reference; the state changes only through the workflow, never by import.
    state = fields.Field(attribute="state", column_name="state", readonly=True)

    class Meta:
        model = ContentTitle
        name = "Content titles (by code)"
        fields = (
            "code", "title", "synopsis", "genres", "cast", "year", "duration_minutes", "age_rating", "release_date",
            "is_older_movie", "artwork_url", "available_from", "available_until", "screens", "state",
        )

    def get_queryset(self):
        return ContentTitle.objects.prefetch_related("genres", "availabilities")

    def create(self, values, *, performed_by):
        return services.content_title_create(**values, performed_by=performed_by, channel=self.channel)

    def update(self, instance, values, *, performed_by):
        return services.content_title_update(title=instance, data=values, performed_by=performed_by, channel=self.channel)
