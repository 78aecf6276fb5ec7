"""Schema post-processing: facts about every operation that drf-spectacular cannot see
from a single view."""

from __future__ import annotations

INVALID_PAGE = {"description": "No such page (the `page` is past the last one)."}


def paginated_lists_document_invalid_page(result, generator, request, public):
    """A paginated list answers 404 to a page past its end (DRF's PageNumberPagination);
    say so on every operation that takes a ``page`` parameter, so clients and the
    schema-driven tests (tests/security/test_schemathesis.py) expect it."""
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue
            if any(parameter.get("name") == "page" and parameter.get("in") == "query"
                   for parameter in operation.get("parameters", [])):
                operation.setdefault("responses", {}).setdefault("404", INVALID_PAGE)
    return result
