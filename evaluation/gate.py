"""The promotion gate: is a candidate model version better than the champion? (pure functions, no Django)

Both sides are benchmark reports of one mode (``evaluation.reports.ModeReport``). A candidate is
promoted only when it beats the champion on the primary metric by at least ``margin`` and no domain loses more
than ``domain_tolerance`` on that metric; without a champion the candidate is promoted. Metrics and margins are
fractions (0.005 = 0.5 point); the reasons, shown to maintainers, speak in percentage points. Reasons are a code
and parameters (``Reason``), rendered in the reader's language (``render_reason``).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from config.stored_messages import gettext_noop, message, render
from evaluation.gate_records import QuestionTier, Reason
from evaluation.reports import Column, ModeReport, metric_path

DEFAULT_PRIMARY = "def_only.mrr@10"
# The template tier compares versions in dense mode: the lexical half of hybrid search is the same for every
# version, so it would only dilute the difference the fine-tuning made.
GATE_MODE = "dense"


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    reasons: list[Reason]
    primary_delta: float | None  # candidate - champion on the primary metric; None without a champion
    domain_deltas: dict[str, float] = field(default_factory=dict)  # per domain present on both sides


def _points(value: float) -> str:
    return f"{value * 100:+.1f}".replace(".", ",")


def _percent(value: float) -> str:
    return f"{value * 100:.1f}".replace(".", ",")


def decide(
    *,
    candidate: ModeReport,
    champion: ModeReport | None,
    primary: str = DEFAULT_PRIMARY,
    margin: float = 0.005,
    domain_tolerance: float = 0.02,
) -> GateDecision:
    """Whether to promote ``candidate`` over ``champion`` on the ``primary`` metric ("protocol.metric", e.g.
    "def_only.mrr@10"), with the reasons (codes: ``render_reason``)."""
    column: Column = metric_path(primary)
    candidate_value = candidate.metric(column)
    if candidate_value is None:
        return GateDecision(False, [Reason("template_no_metric", {"primary": primary})], None)
    if champion is None:
        return GateDecision(True, [Reason("template_no_champion", {"primary": primary, "value": candidate_value})], None)
    champion_value = champion.metric(column)
    if champion_value is None:
        return GateDecision(True, [Reason("template_champion_no_metric", {"primary": primary, "value": candidate_value})], None)

    reasons: list[Reason] = []
    promote = True
    primary_delta = candidate_value - champion_value
    summary = {
        "primary": primary, "candidate_value": candidate_value, "champion_value": champion_value, "delta": primary_delta,
        "margin": margin,
    }
    if primary_delta >= margin:
        reasons.append(Reason("template_better", summary))
    else:
        promote = False
        reasons.append(Reason("template_not_better", summary))

    candidate_domains = candidate.domain_metric(column)
    champion_domains = champion.domain_metric(column)
    domain_deltas = {
        domain: candidate_domains[domain] - champion_domains[domain]
        for domain in candidate_domains
        if domain in champion_domains
    }
    regressions = {domain: delta for domain, delta in domain_deltas.items() if delta < -domain_tolerance}
    for domain, delta in sorted(regressions.items(), key=lambda item: item[1]):
        promote = False
        reasons.append(Reason("template_domain_regressed", {
            "domain": domain, "delta": delta, "primary": primary, "before": champion_domains[domain],
            "after": candidate_domains[domain], "tolerance": domain_tolerance,
        }))
    if domain_deltas and not regressions:
        reasons.append(Reason("template_no_domain_regressed", {"tolerance": domain_tolerance}))

    candidate_queries, champion_queries = candidate.queries, champion.queries
    if candidate_queries != champion_queries:
        reasons.append(Reason("template_query_count_differs", {
            "candidate_queries": candidate_queries, "champion_queries": champion_queries,
        }))
    return GateDecision(promote, reasons, primary_delta, domain_deltas)


# ---- the gate that protects users: real questions, then canaries, then templates ----------------------------
#
# Templates alone proved plumbing, not quality (GUIDE, section 2): a version trained on "C'est quoi X ?" lifted the
# template set by 33 points while real questions fell from Hit@1 0.32 to 0.10. So the gate looks, in this order, at
# the held-out real questions (when there are enough of them), at a synthetic canary set built from the test side
# that covers every kind of question, and at the template report; a candidate that loses more than a small
# tolerance on any kind of any tier is refused, and one that lowers real-question Hit@1 at all is never promoted
# automatically. Reasons are stored as a code and parameters and rendered in the reader's language.

REAL = "real"
CANARY = "canary"
TEMPLATES = "templates"
TIER_ORDER = (REAL, CANARY)


@dataclass(frozen=True)
class TieredDecision:
    promote: bool
    reasons: list[Reason]
    deciding_tier: str | None  # the tier whose overall Hit@1 had to improve (None: no champion, or templates decided)
    tier_deltas: dict[str, float] = field(default_factory=dict)  # overall Hit@1 candidate - champion per tier
    kind_deltas: dict[str, dict[str, float]] = field(default_factory=dict)  # per tier, per kind


def _usable(tier: str, candidate: QuestionTier | None, champion: QuestionTier | None, *, min_real: int) -> bool:
    if candidate is None or champion is None or not candidate.overall.questions:
        return False
    return tier != REAL or min(candidate.overall.questions, champion.overall.questions) >= min_real


def decide_for_users(
    *,
    candidate: Mapping[str, QuestionTier],
    champion: Mapping[str, QuestionTier] | None,
    templates: GateDecision | None = None,
    min_real: int = 30,
    min_kind: int = 5,
    kind_tolerance: float = 0.02,
    domain_tolerance: float | None = None,
    margin: float = 0.005,
) -> TieredDecision:
    """Whether to promote ``candidate`` over ``champion`` from the question tiers both were asked (``real``,
    ``canary``) and the template gate's decision (``templates``, from :func:`decide`).

    * no champion: promote (the first version);
    * every usable tier (real only with ``min_real`` questions on both sides): no kind with ``min_kind`` questions
      may lose more than ``kind_tolerance`` of Hit@1; real questions may not lose any Hit@1 overall;
    * the first usable tier (real, else canary) must gain at least ``margin`` of Hit@1 overall;
    * templates: the template gate's domain regressions (beyond ``domain_tolerance``, by default
      ``kind_tolerance``) refuse too; with no usable question tier, the template gate decides alone, as before.
    """
    if champion is None:
        return TieredDecision(True, [Reason("no_champion")], None)
    reasons: list[Reason] = []
    promote = True
    tier_deltas: dict[str, float] = {}
    kind_deltas: dict[str, dict[str, float]] = {}
    usable = [tier for tier in TIER_ORDER if _usable(tier, candidate.get(tier), champion.get(tier), min_real=min_real)]
    if REAL not in usable and candidate.get(REAL) is not None:
        reasons.append(Reason("real_too_few", {"questions": candidate[REAL].overall.questions, "minimum": min_real}))
    for tier in usable:
        mine, theirs = candidate[tier], champion[tier]
        delta = mine.overall.hit_at_1 - theirs.overall.hit_at_1
        tier_deltas[tier] = delta
        kind_deltas[tier] = {
            kind: score.hit_at_1 - theirs.by_kind[kind].hit_at_1
            for kind, score in mine.by_kind.items()
            if kind in theirs.by_kind and min(score.questions, theirs.by_kind[kind].questions) >= min_kind
        }
        for kind, kind_delta in sorted(kind_deltas[tier].items(), key=lambda item: item[1]):
            if kind_delta < -kind_tolerance:
                promote = False
                reasons.append(Reason("kind_regressed", {
                    "tier": tier, "kind": kind, "before": theirs.by_kind[kind].hit_at_1, "after": mine.by_kind[kind].hit_at_1,
                    "tolerance": kind_tolerance,
                }))
        if tier == REAL and delta < 0:
            promote = False
            reasons.append(Reason("real_r1_lower", {"before": theirs.overall.hit_at_1, "after": mine.overall.hit_at_1}))
    deciding = usable[0] if usable else None
    if deciding is not None:
        params = {
            "tier": deciding, "before": champion[deciding].overall.hit_at_1, "after": candidate[deciding].overall.hit_at_1,
            "margin": margin, "questions": candidate[deciding].overall.questions,
        }
        if tier_deltas[deciding] >= margin:
            reasons.insert(0, Reason("better", params))
        else:
            promote = False
            reasons.insert(0, Reason("not_better", params))
    if templates is not None:
        tolerance = kind_tolerance if domain_tolerance is None else domain_tolerance
        regressed = {domain: delta for domain, delta in templates.domain_deltas.items() if delta < -tolerance}
        for domain, delta in sorted(regressed.items(), key=lambda item: item[1]):
            promote = False
            reasons.append(Reason("domain_regressed", {"domain": domain, "delta": delta, "tolerance": tolerance}))
        if deciding is None:
            promote = promote and templates.promote
            reasons.append(Reason("templates_only", {"promote": templates.promote, "delta": templates.primary_delta}))
    if promote:
        reasons.append(Reason("no_kind_regressed", {"tolerance": kind_tolerance}))
    return TieredDecision(promote, reasons, deciding, tier_deltas, kind_deltas)


REASON_MESSAGES = {  # code -> English message (the French is in the catalogue)
    "no_champion": gettext_noop("No champion model: the candidate is promoted."),
    "better": gettext_noop("The candidate does better on the %(tier)s (%(questions)s questions): Hit@1 %(before)s %% -> %(after)s %%."),
    "not_better": gettext_noop(
        "The candidate does not do enough better on the %(tier)s (%(questions)s questions): Hit@1 %(before)s %% "
        "-> %(after)s %%, required gain %(margin)s point."
    ),
    "kind_regressed": gettext_noop(
        'Questions of kind "%(kind)s" fall on the %(tier)s: Hit@1 %(before)s %% -> %(after)s %%, beyond the '
        "tolerance of %(tolerance)s points."
    ),
    "real_r1_lower": gettext_noop(
        "The held-out real questions fall (Hit@1 %(before)s %% -> %(after)s %%): a version that answers users "
        "worse is never promoted automatically."
    ),
    "real_too_few": gettext_noop(
        "Only %(questions)s held-out real questions (%(minimum)s needed): they do not decide yet."
    ),
    "domain_regressed": gettext_noop('The domain "%(domain)s" falls by %(delta)s points on the query templates.'),
    "templates_only": gettext_noop("No real or canary questions: the query templates decide alone."),
    "no_kind_regressed": gettext_noop("No kind of question falls by more than %(tolerance)s points."),
    # the template gate (decide)
    "template_no_metric": gettext_noop("The candidate has no %(primary)s measure: it cannot be compared."),
    "template_no_champion": gettext_noop("No champion model: the candidate is promoted (%(primary)s = %(value)s %%)."),
    "template_champion_no_metric": gettext_noop(
        "The champion has no %(primary)s measure: the candidate is promoted (%(value)s %%)."
    ),
    "template_better": gettext_noop(
        "The candidate does better than the champion. %(primary)s: candidate %(candidate_value)s %%, champion "
        "%(champion_value)s %% (difference %(delta)s points, required margin %(margin)s point)."
    ),
    "template_not_better": gettext_noop(
        "The candidate does not do enough better than the champion. %(primary)s: candidate %(candidate_value)s %%, "
        "champion %(champion_value)s %% (difference %(delta)s points, required margin %(margin)s point)."
    ),
    "template_domain_regressed": gettext_noop(
        "The domain “%(domain)s” falls by %(delta)s points on %(primary)s (%(before)s %% -> %(after)s %%), beyond "
        "the tolerance of %(tolerance)s points."
    ),
    "template_no_domain_regressed": gettext_noop("No domain falls by more than %(tolerance)s points."),
    "template_query_count_differs": gettext_noop(
        "Warning: the two measures are not on the same number of queries (%(candidate_queries)s against "
        "%(champion_queries)s); run the champion's benchmark again on the same test set."
    ),
}
TIER_MESSAGES = {
    REAL: gettext_noop("held-out real questions"),
    CANARY: gettext_noop("canary questions"),
    TEMPLATES: gettext_noop("query templates"),
}
_PERCENT_PARAMS = ("before", "after", "margin", "tolerance", "value", "candidate_value", "champion_value")


def reason_message(reason: Mapping | Reason) -> dict | None:
    """A reason (code + parameters) as a stored message (config.stored_messages), its numbers formatted; None
    for an unknown code."""
    reason = reason if isinstance(reason, Reason) else Reason.from_dict(reason)
    code, params = reason.code, dict(reason.params or {})
    if code not in REASON_MESSAGES:
        return None
    for key in _PERCENT_PARAMS:
        if isinstance(params.get(key), (int, float)):
            params[key] = _percent(params[key])
    if isinstance(params.get("delta"), (int, float)):
        params["delta"] = _points(params["delta"])
    if "tier" in params:
        tier = params["tier"]
        params["tier"] = message(TIER_MESSAGES[tier]) if tier in TIER_MESSAGES else tier
    return message(REASON_MESSAGES[code], **params)


def render_reason(reason: Mapping | Reason) -> str:
    """A stored reason (code + parameters) as a sentence in the active language."""
    reason = reason if isinstance(reason, Reason) else Reason.from_dict(reason)
    stored = reason_message(reason)
    if stored is None:
        return str(reason.extra.get("text") or reason.code)
    return render(stored)
