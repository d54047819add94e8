"""Similarity tests of an embedding model over precomputed embeddings (pure numpy, no Django).

- pair retrieval: for each query vector (a term or a question), is its own positive (the definition) the most
  similar of the candidate set? Reported as top-1 accuracy, e.g. term -> definition and question -> definition;
- triplet separation: share of triplets where cos(anchor, positive) > cos(anchor, negative), e.g. with the
  mined hard negatives.

Vectors need not be normalised: cosine similarity is used throughout.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    matrix = np.asarray(vectors, dtype=np.float64)
    if matrix.ndim != 2:
        raise ValueError(f"expected a 2-D array of vectors, got shape {matrix.shape}")
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1.0, norms)


def pair_retrieval_accuracy(
    *,
    query_vectors: np.ndarray,
    candidate_vectors: np.ndarray,
    positive_indices: Sequence[int],
) -> float:
    """Share of queries whose positive (row ``positive_indices[i]`` of the candidates) is strictly the most
    similar candidate to query ``i``; a tie with another candidate counts as a miss. 0..1; NaN with no query."""
    queries = _unit_rows(query_vectors)
    candidates = _unit_rows(candidate_vectors)
    positives = np.asarray(positive_indices, dtype=np.int64)
    if len(positives) != len(queries):
        raise ValueError("one positive index per query is needed")
    if len(queries) == 0:
        return float("nan")
    scores = queries @ candidates.T
    positive_scores = scores[np.arange(len(queries)), positives]
    others = scores.copy()
    others[np.arange(len(queries)), positives] = -np.inf
    best_other = others.max(axis=1) if candidates.shape[0] > 1 else np.full(len(queries), -np.inf)
    return float(np.mean(positive_scores > best_other))


def triplet_separation(
    *,
    anchor_vectors: np.ndarray,
    positive_vectors: np.ndarray,
    negative_vectors: np.ndarray,
) -> float:
    """Share of rows i where cos(anchor_i, positive_i) > cos(anchor_i, negative_i). 0..1; NaN with no row."""
    anchors = _unit_rows(anchor_vectors)
    positives = _unit_rows(positive_vectors)
    negatives = _unit_rows(negative_vectors)
    if not (len(anchors) == len(positives) == len(negatives)):
        raise ValueError("anchors, positives and negatives must have the same number of rows")
    if len(anchors) == 0:
        return float("nan")
    positive_scores = np.sum(anchors * positives, axis=1)
    negative_scores = np.sum(anchors * negatives, axis=1)
    return float(np.mean(positive_scores > negative_scores))
