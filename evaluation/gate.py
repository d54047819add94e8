"""The promotion gate: is a candidate model version better than the champion? (pure functions, no Django)

Both sides are benchmark reports of one mode (``evaluation.reports.ModeReport``). A candidate is
promoted only when it beats the champion on the primary metric by at least ``margin`` and no domain loses more
than ``domain_tolerance`` on that metric; without a champion the candidate is promoted. Metrics and margins are
fractions (0.005 = 0.5 point); the reasons, shown to maintainers, speak in percentage points.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from evaluation.gate_records import QuestionTier, Reason
from evaluation.reports import Column, ModeReport, metric_path

DEFAULT_PRIMARY = "def_only.mrr@10"
# The template tier compares versions in dense mode: the lexical half of hybrid search is the same for every
# version, so it would only dilute the difference the fine-tuning made.
GATE_MODE = "dense"


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    reasons: list[str]
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
    "def_only.mrr@10"), with the reasons in French sentences."""
    column: Column = metric_path(primary)
    candidate_value = candidate.metric(column)
    if candidate_value is None:
        return GateDecision(False, [f"Le candidat n'a pas de mesure {primary} : il ne peut pas être comparé."], None)
    if champion is None:
        return GateDecision(
            True,
            [f"Aucun modèle champion : le candidat est promu ({primary} = {_percent(candidate_value)} %)."],
            None,
        )
    champion_value = champion.metric(column)
    if champion_value is None:
        return GateDecision(
            True,
            [f"Le champion n'a pas de mesure {primary} : le candidat est promu ({_percent(candidate_value)} %)."],
            None,
        )

    reasons: list[str] = []
    promote = True
    primary_delta = candidate_value - champion_value
    summary = (
        f"{primary} : candidat {_percent(candidate_value)} %, champion {_percent(champion_value)} % "
        f"(écart {_points(primary_delta)} points, marge exigée {_percent(margin)} point)."
    )
    if primary_delta >= margin:
        reasons.append(f"Le candidat fait mieux que le champion. {summary}")
    else:
        promote = False
        reasons.append(f"Le candidat ne fait pas assez mieux que le champion. {summary}")

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
        reasons.append(
            f"Le domaine « {domain} » recule de {_points(delta)} points sur {primary} "
            f"({_percent(champion_domains[domain])} % -> {_percent(candidate_domains[domain])} %), "
            f"au-delà de la tolérance de {_percent(domain_tolerance)} points."
        )
    if domain_deltas and not regressions:
        reasons.append(f"Aucun domaine ne recule de plus de {_percent(domain_tolerance)} points.")

    candidate_queries, champion_queries = candidate.queries, champion.queries
    if candidate_queries != champion_queries:
        reasons.append(
            f"Attention : les deux mesures ne portent pas sur le même nombre de requêtes "
            f"({candidate_queries} contre {champion_queries}) ; relancez le banc d'essai du champion "
            f"sur le même jeu de test."
        )
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


def render_reason(reason: Mapping | Reason) -> str:
    """A stored reason (code + parameters) as a sentence in the active language."""
    from django.utils.translation import gettext as _

    reason = reason if isinstance(reason, Reason) else Reason.from_dict(reason)
    code, params = reason.code, dict(reason.params or {})
    tiers = {REAL: _("held-out real questions"), CANARY: _("canary questions"), TEMPLATES: _("query templates")}
    for key in ("before", "after", "margin", "tolerance"):
        if isinstance(params.get(key), (int, float)):
            params[key] = _percent(params[key])
    if isinstance(params.get("delta"), (int, float)):
        params["delta"] = _points(params["delta"])
    if "tier" in params:
        params["tier"] = tiers.get(params["tier"], params["tier"])
    messages = {
        "no_champion": _("No champion model: the candidate is promoted."),
        "better": _("The candidate does better on the %(tier)s (%(questions)s questions): Hit@1 %(before)s %% -> %(after)s %%."),
        "not_better": _(
            "The candidate does not do enough better on the %(tier)s (%(questions)s questions): Hit@1 %(before)s %% "
            "-> %(after)s %%, required gain %(margin)s point."
        ),
        "kind_regressed": _(
            'Questions of kind "%(kind)s" fall on the %(tier)s: Hit@1 %(before)s %% -> %(after)s %%, beyond the '
            "tolerance of %(tolerance)s points."
        ),
        "real_r1_lower": _(
            "The held-out real questions fall (Hit@1 %(before)s %% -> %(after)s %%): a version that answers users "
            "worse is never promoted automatically."
        ),
        "real_too_few": _(
            "Only %(questions)s held-out real questions (%(minimum)s needed): they do not decide yet."
        ),
        "domain_regressed": _('The domain "%(domain)s" falls by %(delta)s points on the query templates.'),
        "templates_only": _("No real or canary questions: the query templates decide alone."),
        "no_kind_regressed": _("No kind of question falls by more than %(tolerance)s points."),
    }
    message = messages.get(code)
    if message is None:
        return str(reason.extra.get("text") or code)
    try:
        return message % params
    except (KeyError, TypeError, ValueError):
        return message.split("%(")[0].strip()
