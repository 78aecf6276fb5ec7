"""Formatting for the analytics dashboard."""

from decimal import Decimal

from django import template

register = template.Library()


@register.filter
def percent(rate: Decimal | None) -> str:
    """0.3333 → "33.33%"; None (nothing to divide by) → "–"."""
    if rate is None:
        return "–"
    return f"{Decimal(rate) * 100:.2f}%"
