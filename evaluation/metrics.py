"""Ranking metrics of one query and their means over a query set (pure functions, no Django).

Values are fractions in 0..1 everywhere in the code; reports format them as percentages.

Definitions, with ``ranked`` the caller's ranking (best first; ties are ranked in the caller's order) and
``relevant`` the set of relevant passage keys:

- ``hit@k``: 1 when at least one relevant key is in the top k (sentence-transformers' ``accuracy@k``; what the
  earlier prototype reported as "R@k" for the tolerant Concept protocol).
- ``recall@k``: |relevant in the top k| / |relevant| (sentence-transformers' ``recall@k``). With one relevant
  passage, as in the Def-only protocol, recall@k equals hit@k.
- ``mrr@10``: 1 / rank of the first relevant key within the top 10, else 0.
- ``ndcg@10``: binary gains, DCG = sum(1 / log2(rank + 1)), divided by the ideal DCG over
  min(|relevant|, 10) relevant keys at the top.
- ``map@10``: average precision over the top 10, normalised by min(|relevant|, 10).

These match ``InformationRetrievalEvaluator`` of sentence-transformers 6.2 on the same rankings (checked in
``tests/evaluation/test_metrics.py``). Differences of setting, not of definition: its MAP cutoff defaults to 100
(ours 10), it breaks score ties by ascending corpus id (we keep the caller's order), and it skips queries without
relevant documents (``ranking_metrics`` refuses them; ``evaluation.protocols`` lists them as skipped).
"""
from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence

DEFAULT_KS: tuple[int, ...] = (1, 5, 10, 20)
DEFAULT_CUTOFF = 10


def metric_names(*, ks: Sequence[int] = DEFAULT_KS, cutoff: int = DEFAULT_CUTOFF) -> list[str]:
    """Names of the metrics ``ranking_metrics`` returns, in display order."""
    return (
        [f"hit@{k}" for k in ks]
        + [f"recall@{k}" for k in ks]
        + [f"mrr@{cutoff}", f"ndcg@{cutoff}", f"map@{cutoff}"]
    )


def first_relevant_rank(ranked: Sequence[str], relevant: Collection[str]) -> int | None:
    """1-based rank of the first relevant key in the whole ranking, None when none is there."""
    for position, key in enumerate(ranked, start=1):
        if key in relevant:
            return position
    return None


def ranking_metrics(
    ranked: Sequence[str],
    relevant: Collection[str],
    *,
    ks: Sequence[int] = DEFAULT_KS,
    cutoff: int = DEFAULT_CUTOFF,
) -> dict[str, float]:
    """Metrics of one query, each in 0..1 (see the module docstring for the definitions).

    A key repeated in ``ranked`` counts once, at its best rank. ``relevant`` must not be empty: a query without
    any relevant passage cannot be judged and is the caller's to skip.
    """
    if not relevant:
        raise ValueError("ranking_metrics needs at least one relevant key")
    relevant = set(relevant)
    ranked = list(dict.fromkeys(ranked))
    gains = [1 if key in relevant else 0 for key in ranked]

    metrics: dict[str, float] = {}
    for k in ks:
        found = sum(gains[:k])
        metrics[f"hit@{k}"] = 1.0 if found else 0.0
    for k in ks:
        metrics[f"recall@{k}"] = sum(gains[:k]) / len(relevant)

    top = gains[:cutoff]
    first = next((position for position, gain in enumerate(top, start=1) if gain), None)
    metrics[f"mrr@{cutoff}"] = 1.0 / first if first else 0.0

    dcg = sum(gain / math.log2(position + 1) for position, gain in enumerate(top, start=1))
    ideal_count = min(len(relevant), cutoff)
    ideal_dcg = sum(1.0 / math.log2(position + 1) for position in range(1, ideal_count + 1))
    metrics[f"ndcg@{cutoff}"] = dcg / ideal_dcg

    found_so_far = 0
    precision_sum = 0.0
    for position, gain in enumerate(top, start=1):
        if gain:
            found_so_far += 1
            precision_sum += found_so_far / position
    metrics[f"map@{cutoff}"] = precision_sum / ideal_count
    return metrics


def aggregate(per_query: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """Mean of each metric over queries (0..1). Empty input gives an empty dict.

    Every query must carry the same metric names; a mismatch is a caller bug and raises ValueError.
    """
    rows = list(per_query)
    if not rows:
        return {}
    names = list(rows[0])
    for row in rows:
        if set(row) != set(names):
            raise ValueError(f"metric names differ between queries: {sorted(row)} vs {sorted(names)}")
    return {name: math.fsum(row[name] for row in rows) / len(rows) for name in names}


def as_percent(value: float, *, digits: int = 1) -> str:
    """Format a 0..1 metric for reports: 0.9284 -> '92.8'."""
    return f"{value * 100:.{digits}f}"
