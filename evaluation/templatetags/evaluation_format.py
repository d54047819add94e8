"""Formatting of metrics in the report pages: fractions shown as percentages, deltas as signed points."""
from __future__ import annotations

from django import template
from django.utils.formats import number_format

register = template.Library()
MISSING = "—"


@register.filter
def percent(value: float | None) -> str:
    """0.9284 -> "92,8" (in the reader's locale); None -> "—"."""
    if value is None:
        return MISSING
    return number_format(round(value * 100, 1), 1)


@register.filter
def points(value: float | None) -> str:
    """A difference of fractions in percentage points, signed: 0.012 -> "+1,2"; None -> "—"."""
    if value is None:
        return MISSING
    sign = "+" if value >= 0 else "−"
    return f"{sign}{number_format(round(abs(value) * 100, 1), 1)}"


@register.filter
def get(mapping, key):
    """``mapping[key]`` in a template (keys such as "def_only.mrr@10" cannot be written with dots)."""
    if not mapping:
        return None
    return mapping.get(key)
