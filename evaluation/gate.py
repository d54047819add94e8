"""The promotion gate: is a candidate model version better than the champion? (pure functions, no Django)

Both sides are benchmark reports in the shape of ``evaluation.protocols.Report.as_dict()``. A candidate is
promoted only when it beats the champion on the primary metric by at least ``margin`` and no domain loses more
than ``domain_tolerance`` on that metric; without a champion the candidate is promoted. Metrics and margins are
fractions (0.005 = 0.5 point); the reasons, shown to maintainers, speak in percentage points.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

DEFAULT_PRIMARY = "def_only.mrr@10"


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    reasons: list[str]
    primary_delta: float | None  # candidate - champion on the primary metric; None without a champion
    domain_deltas: dict[str, float] = field(default_factory=dict)  # per domain present on both sides


def metric_at(report: Mapping, path: str) -> float | None:
    """Overall metric of a report dict by dotted path ``"protocol.metric"``; None when absent."""
    protocol, name = _split(path)
    return report.get("protocols", {}).get(protocol, {}).get("overall", {}).get(name)


def domain_metrics(report: Mapping, path: str) -> dict[str, float]:
    """The metric at ``path`` for each domain of the report."""
    protocol, name = _split(path)
    by_domain = report.get("protocols", {}).get(protocol, {}).get("by_domain", {})
    return {
        domain: group["metrics"][name]
        for domain, group in by_domain.items()
        if name in group.get("metrics", {})
    }


def _split(path: str) -> tuple[str, str]:
    protocol, separator, name = path.partition(".")
    if not separator or not name:
        raise ValueError(f"a metric path is 'protocol.metric', e.g. {DEFAULT_PRIMARY!r}; got {path!r}")
    return protocol, name


def _points(value: float) -> str:
    return f"{value * 100:+.1f}".replace(".", ",")


def _percent(value: float) -> str:
    return f"{value * 100:.1f}".replace(".", ",")


def decide(
    *,
    candidate: Mapping,
    champion: Mapping | None,
    primary: str = DEFAULT_PRIMARY,
    margin: float = 0.005,
    domain_tolerance: float = 0.02,
) -> GateDecision:
    """Whether to promote ``candidate`` over ``champion``, with the reasons in French sentences."""
    candidate_value = metric_at(candidate, primary)
    if candidate_value is None:
        return GateDecision(False, [f"Le candidat n'a pas de mesure {primary} : il ne peut pas être comparé."], None)
    if champion is None:
        return GateDecision(
            True,
            [f"Aucun modèle champion : le candidat est promu ({primary} = {_percent(candidate_value)} %)."],
            None,
        )
    champion_value = metric_at(champion, primary)
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

    candidate_domains = domain_metrics(candidate, primary)
    champion_domains = domain_metrics(champion, primary)
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

    candidate_queries, champion_queries = candidate.get("queries"), champion.get("queries")
    if candidate_queries != champion_queries:
        reasons.append(
            f"Attention : les deux mesures ne portent pas sur le même nombre de requêtes "
            f"({candidate_queries} contre {champion_queries}) ; relancez le banc d'essai du champion "
            f"sur le même jeu de test."
        )
    return GateDecision(promote, reasons, primary_delta, domain_deltas)
