"""Normalisation and validation of contact data, shared by the admin forms and services."""

from __future__ import annotations

import re

from django.conf import settings
from django.core.exceptions import ValidationError

_PHONE_NOISE = re.compile(r"[\s().\-/]")


def phone_normalize(raw: str, *, country_code: str | None = None) -> str:
    """Return the number in E.164 (``+35799123456``), or raise ``ValidationError``.

    Accepts spaces, dashes, dots, slashes and parentheses; ``00`` is read as ``+``; a
    number without a country code gets ``DEFAULT_PHONE_COUNTRY_CODE`` (a leading trunk
    ``0`` is dropped).
    """
    value = _PHONE_NOISE.sub("", raw or "")
    if not value:
        return ""
    if value.startswith("00"):
        value = "+" + value[2:]
    if not value.startswith("+"):
        value = "+" + (country_code or settings.DEFAULT_PHONE_COUNTRY_CODE) + value.lstrip("0")
    digits = value[1:]
    if not digits.isdigit() or not 8 <= len(digits) <= 15:
        raise ValidationError(
            "Enter a phone number of 8 to 15 digits, optionally starting with + and the country code.",
            code="invalid_phone",
        )
    return value


def phone_search_prefix(raw: str) -> str | None:
    """The E.164 prefix to look up for what an agent typed, or None if it is not a phone."""
    value = _PHONE_NOISE.sub("", raw or "")
    if value.startswith("00"):
        value = "+" + value[2:]
    if len(value.lstrip("+")) < 4 or not value.lstrip("+").isdigit():
        return None
    if value.startswith("+"):
        return value
    return "+" + settings.DEFAULT_PHONE_COUNTRY_CODE + value.lstrip("0")


def validate_currency(value: str) -> None:
    if value not in settings.CURRENCIES:
        raise ValidationError(
            f"{value!r} is not a currency this operator bills in ({', '.join(settings.CURRENCIES)}).",
            code="invalid_currency",
        )


def validate_country(value: str) -> None:
    if not re.fullmatch(r"[A-Z]{2}", value or ""):
        raise ValidationError("Use the two-letter ISO 3166 country code, e.g. CY.", code="invalid_country")
