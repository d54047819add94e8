"""Formatting of metrics in the report pages: fractions shown as percentages, deltas as signed points."""
from __future__ import annotations

from django import template
from django.utils.formats import number_format

register = template.Library()


@register.filter
def stored(value) -> str:
    """A stored message (config.stored_messages) in the reader's language; any other value as it is."""
    from config.stored_messages import render

    return render(value)


@register.filter
def group_label(name: str) -> str:
    """A report's group (domain, kind, source) as shown: the stored key of queries without one in the reader's
    language."""
    from django.utils.translation import gettext as _

    from evaluation.protocols import NO_GROUP

    return _("(none)") if name == NO_GROUP else name


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
    """``mapping[key]`` in a template (a mode, a protocol, a metric key such as "mrr@10"); None when absent."""
    if not mapping:
        return None
    return mapping.get(key)


@register.filter
def of(column, overall):
    """The value of a table column (``evaluation.reports.Column``) in overall metrics by protocol."""
    return column.of(overall or {})


@register.filter
def gate_reasons(gate) -> list[str]:
    """A stored gate decision's reasons in the reader's language (evaluation.gating.gate_reasons)."""
    from evaluation.gating import gate_reasons as reasons

    return reasons(gate)


@register.filter
def question_kind_label(kind: str) -> str:
    """A question kind's label in the reader's language ("all": every kind)."""
    from django.utils.translation import pgettext

    from evaluation.real_questions import NO_KIND
    from retrieval.models import LabelledQuestion

    if kind == "all":
        return pgettext("feminine", "all")
    if kind == NO_KIND:
        return group_label(kind)
    return str(dict(LabelledQuestion.Kind.choices).get(kind, kind))
