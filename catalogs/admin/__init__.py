"""Catalog admin for marketing staff, one module per area."""

from . import content, pricing, usage  # noqa: F401
