"""The period and segment filters shared by the dashboard, its CSV export and the staff
API: ``first`` / ``last`` months as YYYY-MM (default: the last 12 months), and segment
values ``classification``, ``country``, ``channel``, and ``currency``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.conf import settings
from django.utils import timezone

from catalogs.pricing import months_add
from core.exceptions import ValidationFailed

from .selectors import SEGMENTS

DEFAULT_MONTHS = 12
MAX_MONTHS = 60


@dataclass(frozen=True)
class Filters:
    first: date
    last: date
    segment: dict[str, str]
    currency: str

    def as_query(self) -> dict[str, str]:
        return {"first": f"{self.first:%Y-%m}", "last": f"{self.last:%Y-%m}", "currency": self.currency,
                **{key: value for key, value in self.segment.items() if value}}


def _month(value: str | None, field: str, errors: dict) -> date | None:
    if not value:
        return None
    try:
        year, month = (int(part) for part in value.split("-")[:2])
        return date(year, month, 1)
    except ValueError:
        errors[field] = ["A month as YYYY-MM, e.g. 2026-01."]
        return None


def filters_parse(query) -> Filters:
    """Read the filters from a request's query string; every problem reported at once."""
    errors: dict[str, list[str]] = {}
    last = _month(query.get("last"), "last", errors) or timezone.localdate().replace(day=1)
    first = _month(query.get("first"), "first", errors) or months_add(last, -(DEFAULT_MONTHS - 1))
    if not errors and first > last:
        errors["first"] = ["The first month comes before the last."]
    elif not errors and months_add(first, MAX_MONTHS) <= last:
        errors["first"] = [f"At most {MAX_MONTHS} months at once."]
    if errors:
        raise ValidationFailed("The filters are not valid.", fields=errors)
    segment = {key: query.get(key, "").strip() for key in SEGMENTS if query.get(key, "").strip()}
    currency = (query.get("currency") or settings.CURRENCIES[0]).strip().upper()
    return Filters(first=first, last=last, segment=segment, currency=currency)
