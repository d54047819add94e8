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


@register.filter
def gate_reasons(gate) -> list[str]:
    """A stored gate decision's reasons in the reader's language (evaluation.gating.gate_reasons)."""
    from evaluation.gating import gate_reasons as reasons

    return reasons(gate or {})


@register.filter
def gate_kind_rows(gate) -> list[dict]:
    """Per question tier and kind: questions, champion and candidate R@1 (fractions) and the change."""
    tiers = (gate or {}).get("tiers") or {}
    candidate, champion = tiers.get("candidate") or {}, tiers.get("champion") or {}
    rows = []
    for tier, data in candidate.items():
        theirs = champion.get(tier) or {}
        for kind, metrics in [*sorted(data.get("by_kind", {}).items()), ("all", data.get("overall", {}))]:
            before = (theirs.get("by_kind", {}).get(kind) if kind != "all" else theirs.get("overall")) or {}
            rows.append({
                "tier": tier, "kind": kind, "questions": metrics.get("questions"), "before": before.get("r1"),
                "after": metrics.get("r1"),
                "delta": None if before.get("r1") is None or metrics.get("r1") is None else metrics["r1"] - before["r1"],
            })
    return rows


@register.filter
def question_kind_label(kind: str) -> str:
    """A question kind's label in the reader's language ("all": every kind)."""
    from django.utils.translation import gettext as _

    from retrieval.models import LabelledQuestion

    if kind == "all":
        return _("toutes")
    return str(dict(LabelledQuestion.Kind.choices).get(kind, kind))
