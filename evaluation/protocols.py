"""Relevance protocols and the benchmark report of a ranked query set (pure functions, no Django).

Two protocols, reported side by side because the tolerant one alone is misleadingly easy (usage contexts often
contain the term verbatim, so the earlier prototype's Concept R@1 was ~99% for every model):

- ``concept`` (tolerant): every passage (definition and usage contexts) of the query's ``entry_ids``;
- ``def_only`` (strict): only the definition passage of the query's ``definition_entry_ids``.

Passages are identified by their key ``"{entry_id}:{passage_type}:{position}"`` (``retrieval.passages``).
``passages_by_entry`` maps each indexed entry id to the keys of its passages.
"""
from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence

from evaluation.metrics import DEFAULT_CUTOFF, DEFAULT_KS, aggregate, first_relevant_rank, ranking_metrics
from evaluation.queries import QUERY_SOURCES, EvalQuery
from evaluation.reports import GroupReport, ModeReport, ProtocolReport, QueryResult, RankingMetrics

PROTOCOLS = ("concept", "def_only")
# Breakdown group of queries whose domain or kind is unknown or mixed (a merged query spanning several). A key
# stored in reports (kept as it was: reports are compared with older ones); pages show it translated (group_label).
NO_GROUP = "(aucun)"


def relevant_keys(
    query: EvalQuery,
    protocol: str,
    passages_by_entry: Mapping[int, Collection[str]],
) -> set[str]:
    """Keys of the passages relevant to ``query`` under ``protocol`` ("concept" or "def_only")."""
    if protocol == "concept":
        return {key for entry_id in query.entry_ids for key in passages_by_entry.get(entry_id, ())}
    if protocol == "def_only":
        return {
            key
            for entry_id in query.definition_entry_ids
            for key in passages_by_entry.get(entry_id, ())
            if is_definition_key(key)
        }
    raise ValueError(f"unknown protocol {protocol!r}; expected one of {PROTOCOLS}")


def is_definition_key(key: str) -> bool:
    return key.split(":")[1] == "definition"


def evaluate_rankings(
    queries: Sequence[EvalQuery],
    rankings: Mapping[str, Sequence[str]],
    passages_by_entry: Mapping[int, Collection[str]],
    *,
    protocols: Sequence[str] = PROTOCOLS,
    ks: Sequence[int] = DEFAULT_KS,
    cutoff: int = DEFAULT_CUTOFF,
    worst_count: int = 20,
) -> ModeReport:
    """Judge each query's ranking (passage keys, best first, keyed by query text) under each protocol.

    Every query must have a ranking (an empty list when the system returned nothing). A query without any
    relevant passage under a protocol is listed in that protocol's ``skipped`` and left out of its metrics.
    The worst queries are those whose first relevant passage came lowest (not found at all first).
    """
    missing = [query.text for query in queries if query.text not in rankings]
    if missing:
        raise ValueError(f"no ranking for {len(missing)} queries, e.g. {missing[:3]}")
    report = ModeReport(queries=len(queries), ks=tuple(ks), cutoff=cutoff)
    for protocol in protocols:
        judged: list[QueryResult] = []
        skipped: list[str] = []
        for query in queries:
            relevant = relevant_keys(query, protocol, passages_by_entry)
            if not relevant:
                skipped.append(query.text)
                continue
            ranked = list(rankings[query.text])
            rank = first_relevant_rank(ranked, relevant)
            judged.append(
                QueryResult(
                    text=query.text,
                    source=query.source,
                    domain=query.domain,
                    kind=query.kind,
                    relevant=tuple(sorted(relevant)),
                    first_relevant_rank=rank,
                    ranked_above=tuple(ranked if rank is None else ranked[: rank - 1]),
                    metrics=RankingMetrics.from_dict(ranking_metrics(ranked, relevant, ks=ks, cutoff=cutoff)),
                )
            )
        worst = sorted(
            (result for result in judged if result.first_relevant_rank != 1),
            key=lambda result: (result.first_relevant_rank is not None, -(result.first_relevant_rank or 0)),
        )[:worst_count]
        report.protocols[protocol] = ProtocolReport(
            overall=_mean(judged),
            by_domain=_breakdown(judged, lambda result: result.domain),
            by_kind=_breakdown(judged, lambda result: result.kind),
            by_source=_breakdown(judged, lambda result: result.source, order=QUERY_SOURCES),
            skipped=skipped,
            worst=worst,
            per_query=judged,
            judged=len(judged),
            skipped_count=len(skipped),
        )
    return report


def _breakdown(
    results: Sequence[QueryResult],
    group_of: Callable[[QueryResult], str | None],
    *,
    order: Sequence[str] = (),
) -> dict[str, GroupReport]:
    groups: dict[str, list[QueryResult]] = {}
    for result in results:
        groups.setdefault(group_of(result) or NO_GROUP, []).append(result)
    rank = {name: position for position, name in enumerate(order)}
    names = sorted(groups, key=lambda name: (rank.get(name, len(rank)), name == NO_GROUP, name))
    return {
        name: GroupReport(queries=len(groups[name]), metrics=_mean(groups[name]))
        for name in names
    }


def _mean(results: Sequence[QueryResult]) -> RankingMetrics:
    return RankingMetrics.from_dict(aggregate(result.metrics.to_dict() for result in results))
