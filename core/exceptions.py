"""Domain errors.

Services raise these; the API's exception handler turns them into the one 4xx error format
and the admin shows their message next to the row or form. Each carries a stable ``code``
for machines and a ``message`` for people; validation errors carry per-field messages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from django.core.exceptions import ValidationError as DjangoValidationError


class ApplicationError(Exception):
    """A request that the domain refuses; nothing was changed."""

    code = "application_error"
    http_status = 400

    def __init__(self, message: str, *, code: str | None = None, fields: Mapping[str, Sequence[str]] | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.fields: dict[str, list[str]] = {name: list(messages) for name, messages in (fields or {}).items()}

    def __str__(self) -> str:
        if not self.fields:
            return self.message
        details = "; ".join(f"{name}: {' '.join(messages)}" for name, messages in self.fields.items())
        return f"{self.message} ({details})"


class ValidationFailed(ApplicationError):
    code = "validation_error"
    http_status = 400

    @classmethod
    def from_django(cls, error: DjangoValidationError, message: str = "The data is not valid.") -> ValidationFailed:
        if hasattr(error, "error_dict"):
            fields = {
                ("non_field_errors" if name == "__all__" else name): [str(m) for m in errors_for_field.messages]
                for name, errors_for_field in ((n, DjangoValidationError(e)) for n, e in error.error_dict.items())
            }
            return cls(message, fields=fields)
        return cls(" ".join(str(m) for m in error.messages))


class NotFound(ApplicationError):
    code = "not_found"
    http_status = 404


class PermissionDenied(ApplicationError):
    code = "permission_denied"
    http_status = 403


class Conflict(ApplicationError):
    code = "conflict"
    http_status = 409


class TransitionNotAllowed(Conflict):
    """A state-changing action was asked for from a state it may not start from."""

    code = "transition_not_allowed"
