"""Fusing dense (passage) and lexical (entry) rankings into one ranking of entries.

Reciprocal rank fusion (Cormack et al., 2009): an entry scores ``sum 1 / (k + rank)`` over the rankings
it appears in, so no score calibration between cosine and BM25 is needed. Pure module: no Django import.
"""
from __future__ import annotations

import heapq
from collections.abc import Collection
from dataclasses import dataclass

from retrieval.passages import Passage

MODES = ("hybrid", "dense", "lexical")


@dataclass
class SearchHit:
    entry_id: int
    passage: Passage | None  # the entry's best dense passage; None when only BM25 or an exact match found it
    dense_score: float | None
    lexical_score: float | None
    dense_rank: int | None  # 1-based rank of the entry in the dense ranking
    lexical_rank: int | None
    fused_score: float
    rank: int  # 1-based final rank
    exact_match: bool
    answered: bool = False  # an expert answered this very question (or one a word away) with this entry


def _entry_ranking_from_passages(dense: list[tuple[Passage, float]]) -> dict[int, tuple[int, Passage, float]]:
    """entry id -> (entry rank, best passage, its score); the best passage of an entry represents it."""
    ranking: dict[int, tuple[int, Passage, float]] = {}
    for passage, score in sorted(dense, key=lambda item: -item[1]):
        if passage.entry_id not in ranking:
            ranking[passage.entry_id] = (len(ranking) + 1, passage, score)
    return ranking


def fuse(
    *,
    dense: list[tuple[Passage, float]],
    lexical: list[tuple[int, float]],
    exact_entry_ids: Collection[int],
    top_k: int,
    k: int = 60,
    mode: str = "hybrid",
    answered_entry_ids: Collection[int] = (),
) -> list[SearchHit]:
    """One hit per entry, best first, at most ``top_k``.

    ``mode`` "dense" ignores ``lexical`` and "lexical" ignores ``dense``. Entries in ``exact_entry_ids``
    (the query names their term, acronym or a variant) come first in every mode, ordered among
    themselves by fused score; pass an empty collection to rank on the models alone (evaluation).
    Entries in ``answered_entry_ids`` (an expert answered this very question with them) come before those:
    "que veut dire APL sur mon relevé de la CAF", answered APL, must not be answered CAF because it names CAF.
    """
    if mode not in MODES:
        raise ValueError(f"Unknown search mode {mode!r}; expected one of {', '.join(MODES)}.")
    dense_ranking = _entry_ranking_from_passages(dense) if mode != "lexical" else {}
    lexical_ranking: dict[int, tuple[int, float]] = {}
    if mode != "dense":
        for entry_id, score in sorted(lexical, key=lambda item: -item[1]):
            lexical_ranking.setdefault(entry_id, (len(lexical_ranking) + 1, score))
    exact = set(exact_entry_ids)
    answered = set(answered_entry_ids)

    # Ties (same fused score) go to the better dense rank, then lexical rank, then the smaller id: stable results.
    # Only the top_k entries become hits: the ordering needs their ranks and fused score alone.
    unranked = float("inf")
    ordered = []
    for entry_id in dense_ranking.keys() | lexical_ranking.keys() | exact | answered:
        dense_rank = dense_ranking[entry_id][0] if entry_id in dense_ranking else None
        lexical_rank = lexical_ranking[entry_id][0] if entry_id in lexical_ranking else None
        fused = sum(1.0 / (k + rank) for rank in (dense_rank, lexical_rank) if rank is not None)
        ordered.append((entry_id not in answered, entry_id not in exact, -fused, dense_rank or unranked, lexical_rank or unranked, entry_id, fused))
    hits = []
    for position, (not_answered, not_exact, *_ranks, entry_id, fused) in enumerate(heapq.nsmallest(top_k, ordered), start=1):
        dense_rank, passage, dense_score = dense_ranking.get(entry_id, (None, None, None))
        lexical_rank, lexical_score = lexical_ranking.get(entry_id, (None, None))
        hits.append(
            SearchHit(
                entry_id=entry_id,
                passage=passage,
                dense_score=dense_score,
                lexical_score=lexical_score,
                dense_rank=dense_rank,
                lexical_rank=lexical_rank,
                fused_score=fused,
                rank=position,
                exact_match=not not_exact,
                answered=not not_answered,
            )
        )
    return hits
