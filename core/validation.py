"""Collecting every problem with an input before refusing it.

Services gather field errors in an ``Errors`` dict (field → messages) from the model's own
rules (``model_errors``) and their domain rules (``error_add``), then refuse once with all
of them (``errors_raise``), so a user sees every problem at once.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models

from core.exceptions import ValidationFailed

Errors = dict[str, list[str]]


def error_add(errors: Errors, field: str, message: str) -> None:
    errors.setdefault(field, []).append(message)


def model_errors(instance: models.Model, errors: Errors, *, exclude: Iterable[str] = (), prefix: str = "",
                 validate_unique: bool = False, validate_constraints: bool = False) -> None:
    """Add the model's field rules (and optionally uniqueness and check constraints) to
    ``errors``; ``prefix`` names nested input (``"address."``)."""
    try:
        instance.full_clean(exclude=list(exclude), validate_unique=validate_unique, validate_constraints=validate_constraints)
    except DjangoValidationError as error:
        for name, messages in error.message_dict.items():
            key = "non_field_errors" if name == "__all__" else f"{prefix}{name}"
            errors.setdefault(key, []).extend(messages)


def errors_raise(errors: Errors, message: str) -> None:
    if errors:
        raise ValidationFailed(message, fields=errors)
