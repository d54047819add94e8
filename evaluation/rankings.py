"""Passage rankings of the evaluated search modes, and the fingerprint of a test set (pure, no Django).

- dense: every passage ranked by cosine with the query (one matrix product over normalised vectors);
- lexical and hybrid: ``retrieval.hybrid.fuse`` ranks entries (BM25 alone, or reciprocal rank fusion of the
  dense passage ranking and BM25); each entry is then expanded to its passages, in dense-score order when
  dense scores exist (hybrid), else definition first (lexical: BM25 matched the term and definition). So a
  wrong entry ranked first still pushes the right definition down, and Def-only stays strict.

Exact term matches are not put first (``exact_entry_ids`` empty): the evaluation measures the models and
the fusion, not the lookup of a term typed verbatim, which would make every "term" query trivially right.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence

import numpy as np

from evaluation.queries import EvalQuery
from retrieval.hybrid import SearchHit, fuse
from retrieval.passages import Passage

# How many passages each ranking keeps: well past every metric's cutoff (20), and the "ranked above" lists.
RANKING_DEPTH = 100


def top_rows(scores: np.ndarray, *, depth: int = RANKING_DEPTH) -> np.ndarray:
    """Indices of the ``depth`` best scores, best first (ties keep the passages' order)."""
    order = np.argsort(-scores, kind="stable")
    return order[:depth]


def dense_ranking(scores: np.ndarray, passages: Sequence[Passage], *, depth: int = RANKING_DEPTH) -> list[str]:
    """Passage keys by cosine, best first; ``scores`` is one query's row of the query x passage matrix."""
    return [passages[row].key for row in top_rows(scores, depth=depth)]


def rows_by_entry(passages: Sequence[Passage]) -> dict[int, list[int]]:
    """Each entry's passage rows, in the order of ``passages`` (definition first)."""
    rows: dict[int, list[int]] = {}
    for row, passage in enumerate(passages):
        rows.setdefault(passage.entry_id, []).append(row)
    return rows


def fused_ranking(
    *,
    passages: Sequence[Passage],
    entry_rows: Mapping[int, Sequence[int]],
    lexical: list[tuple[int, float]],
    scores: np.ndarray | None,
    mode: str,
    depth: int = RANKING_DEPTH,
) -> tuple[list[str], list[SearchHit]]:
    """Passage keys of a lexical or hybrid search, and the entry-level hits they come from.

    ``scores`` is the query's dense row (needed for hybrid), ``lexical`` the BM25 ``(entry_id, score)`` list.
    """
    dense: list[tuple[Passage, float]] = []
    if mode != "lexical":
        if scores is None:
            raise ValueError(f"mode {mode!r} needs the dense scores")
        dense = [(passages[row], float(scores[row])) for row in top_rows(scores, depth=depth)]
    hits = fuse(dense=dense, lexical=lexical, exact_entry_ids=(), top_k=len(entry_rows), mode=mode)
    keys: list[str] = []
    for hit in hits:
        rows = list(entry_rows.get(hit.entry_id, ()))
        if scores is not None and mode != "lexical":
            rows.sort(key=lambda row: -scores[row])
        keys.extend(passages[row].key for row in rows)
        if len(keys) >= depth:
            break
    return keys[:depth], hits


def fingerprint(queries: Sequence[EvalQuery], passages: Sequence[Passage]) -> str:
    """sha256 of the queries (text, source, relevant entries) and the passages (key, text), order-free.

    Two reports are comparable only when this is equal: same questions, same relevance, same corpus.
    """
    query_lines = sorted(
        json.dumps([query.text, query.source, sorted(query.entry_ids), sorted(query.definition_entry_ids)], ensure_ascii=False)
        for query in queries
    )
    passage_lines = sorted(json.dumps([passage.key, passage.text], ensure_ascii=False) for passage in passages)
    payload = "\n".join(["queries", *query_lines, "passages", *passage_lines])
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()
