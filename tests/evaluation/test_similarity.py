"""Pair retrieval accuracy and triplet separation over hand-made vectors."""
import math

import numpy as np
import pytest

from evaluation.similarity import pair_retrieval_accuracy, triplet_separation


def test_pair_retrieval_accuracy_top1_within_candidates():
    candidates = np.array([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]])
    queries = np.array([[2.0, 0.1], [0.1, 1.0], [1.0, 0.0]])
    # Query 0 -> candidate 0 (hit), query 1 -> candidate 1 (hit), query 2 -> positive 2 but candidate 0 is closer.
    assert pair_retrieval_accuracy(query_vectors=queries, candidate_vectors=candidates, positive_indices=[0, 1, 2]) == pytest.approx(2 / 3)


def test_pair_retrieval_tie_is_a_miss_and_edge_cases():
    candidates = np.array([[1.0, 0.0], [2.0, 0.0]])  # same direction: same cosine
    assert pair_retrieval_accuracy(query_vectors=np.array([[1.0, 0.0]]), candidate_vectors=candidates, positive_indices=[0]) == 0.0
    single = pair_retrieval_accuracy(query_vectors=np.array([[1.0, 0.0]]), candidate_vectors=candidates[:1], positive_indices=[0])
    assert single == 1.0
    assert math.isnan(pair_retrieval_accuracy(query_vectors=np.zeros((0, 2)), candidate_vectors=candidates, positive_indices=[]))
    with pytest.raises(ValueError):
        pair_retrieval_accuracy(query_vectors=np.ones((2, 2)), candidate_vectors=candidates, positive_indices=[0])


def test_triplet_separation_share():
    anchors = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    positives = np.array([[0.9, 0.1], [0.1, 0.9], [0.0, 3.0], [1.0, 1.0]])
    negatives = np.array([[0.1, 0.9], [0.9, 0.1], [1.0, 0.0], [1.0, 1.0]])  # last: equal, not separated
    assert triplet_separation(anchor_vectors=anchors, positive_vectors=positives, negative_vectors=negatives) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        triplet_separation(anchor_vectors=anchors, positive_vectors=positives[:2], negative_vectors=negatives)
