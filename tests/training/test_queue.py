"""The review queue's pure functions: uncertainty per source, similarity searches, diverse ordering (no Django)."""
import numpy as np
import pytest

from training import queue
from training.queue import Rankable


def _longest_similar_run(order, *, at_least=0.8):
    longest = current = 1 if order else 0
    for previous, item in zip(order, order[1:]):
        current = current + 1 if queue.item_similarity(previous, item) >= at_least else 1
        longest = max(longest, current)
    return longest


def test_question_signals_and_uncertainty():
    sure = queue.question_signals(top_score=0.9, margin=0.3, dense_top_entry=1, lexical_top_entry=1, no_answer=False)
    assert sure == {}
    assert queue.question_uncertainty(sure) == 0.0

    close = queue.question_signals(top_score=0.9, margin=0.01, dense_top_entry=1, lexical_top_entry=1, no_answer=False)
    assert close == {"small_margin": pytest.approx(0.9)}
    disagree = queue.question_signals(top_score=0.9, margin=0.3, dense_top_entry=1, lexical_top_entry=2, no_answer=False)
    assert set(disagree) == {"dense_lexical_disagree"}
    low = queue.question_signals(top_score=0.3, margin=None, dense_top_entry=None, lexical_top_entry=None, no_answer=True)
    assert low == {"low_top_score": 1.0, "no_answer": 1.0}

    # More evidence never lowers the score, and every score stays in [0, 1].
    scores = [queue.question_uncertainty(signals) for signals in (close, disagree, low)]
    assert all(0 < score <= 1 for score in scores)
    both = queue.question_signals(top_score=0.9, margin=0.01, dense_top_entry=1, lexical_top_entry=2, no_answer=False)
    assert queue.question_uncertainty(both) > max(queue.question_uncertainty(close), queue.question_uncertainty(disagree))
    assert queue.question_uncertainty(low) > queue.question_uncertainty(close)


def test_top_entries_by_ranking_reads_logged_hits():
    hits = [
        {"entry_id": 5, "dense_rank": 2, "lexical_rank": 1},
        {"entry_id": 7, "dense_rank": 1, "lexical_rank": None},
    ]
    assert queue.top_entries_by_ranking(hits) == (7, 5)
    assert queue.top_entries_by_ranking([]) == (None, None)


def test_per_source_scores_are_ordered_sensibly():
    assert queue.flag_score(has_correct_entry=False, about_retrieval=True) > queue.flag_score(has_correct_entry=True, about_retrieval=True)
    assert queue.flag_score(has_correct_entry=False, about_retrieval=False) < 0.5
    assert queue.negative_suspicion(score=0.91, positive_score=0.90) == 1.0
    assert queue.negative_suspicion(score=0.70, positive_score=0.90) == 0.0
    assert 0 < queue.negative_suspicion(score=0.86, positive_score=0.90) < 1
    assert [queue.self_retrieval_score(rank) for rank in (1, 2, 10)] == pytest.approx([0.0, 0.5, 0.9])
    assert queue.self_retrieval_score(None) == 1.0
    assert queue.duplicate_score(similarity=0.92, threshold=0.92) == pytest.approx(0.5)
    assert queue.duplicate_score(similarity=1.0, threshold=0.92) == pytest.approx(1.0)
    fresh, old = queue.draft_score(age_days=0), queue.draft_score(age_days=60)
    assert 0 < fresh < old < 1
    assert queue.draft_score(age_days=0, duplicate_similarity=0.95) > old


def test_near_duplicate_pairs_in_blocks():
    vectors = np.array([[1, 0, 0], [0.999, 0.0447, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    pairs = queue.near_duplicate_pairs(vectors, threshold=0.95, chunk=2)
    assert [(i, j) for i, j, _ in pairs] == [(0, 1)]
    assert pairs[0][2] == pytest.approx(0.999, abs=1e-3)
    assert queue.near_duplicate_pairs(vectors, threshold=1.01) == []


def test_self_retrieval_ranks_in_one_product_and_ignores_homonyms():
    # Entry 10 has two passages; its best one decides its score. Entry 30 is a homonym of entry 20.
    passages = np.array([[1, 0], [0.6, 0.8], [0.8, 0.6], [0.9, 0.436]], dtype=np.float32)
    passage_entries = [10, 10, 20, 30]
    queries = np.array([[0, 1], [1, 0]], dtype=np.float32)
    first, second = queue.self_retrieval_ranks(
        query_vectors=queries, passage_vectors=passages, passage_entry_ids=passage_entries,
        target_entry_ids=[20, 20], ignored_entry_ids=[{20, 30}, set()],
    )
    # Query (0, 1): entry 10 scores 0.8 (its second passage), 20 scores 0.6, 30 (a homonym) is ignored.
    assert (first.rank, first.above) == (2, (10,))
    assert first.above_scores == pytest.approx((0.8,))
    # Query (1, 0): 10 scores 1.0, 30 scores 0.9, 20 scores 0.8: rank 3.
    assert (second.rank, second.above) == (3, (10, 30))
    missing = queue.self_retrieval_ranks(
        query_vectors=queries[:1], passage_vectors=passages, passage_entry_ids=passage_entries, target_entry_ids=[99]
    )
    assert missing[0].rank == 4


def _items():
    items = []
    # Twelve near-identical high scorers (same source, same domain) and a few other kinds of items.
    for n in range(12):
        items.append(Rankable(key=f"q{n:02}", score=0.95 - n * 0.001, source="question", domain="Fiscalité", entry_ids=frozenset({n})))
    for n in range(4):
        items.append(Rankable(key=f"d{n}", score=0.7, source="draft", domain="Social", entry_ids=frozenset({100 + n})))
        items.append(Rankable(key=f"f{n}", score=0.8, source="flag", domain="Budget", entry_ids=frozenset({200 + n})))
    return items


def test_diverse_order_breaks_runs_of_similar_items_but_keeps_priority():
    items = _items()
    by_score = sorted(items, key=lambda item: -item.score)
    assert _longest_similar_run(by_score) == 12

    order = queue.diverse_order(items)
    assert sorted(item.key for item in order) == sorted(item.key for item in items)
    assert _longest_similar_run(order) < 10
    assert order[0].key == "q00"  # the most useful item still comes first
    # Among items alike, the better score comes first.
    questions = [item.key for item in order if item.source == "question"]
    assert questions == sorted(questions)
    # Pure relevance (weight 1) is plain score order.
    assert [item.key for item in queue.diverse_order(items, relevance_weight=1.0)] == [item.key for item in sorted(items, key=lambda i: (-i.score, i.key))]


def test_items_about_the_same_entry_are_kept_apart():
    a = Rankable(key="a", score=0.9, source="duplicate", domain=None, entry_ids=frozenset({1, 2}))
    b = Rankable(key="b", score=0.89, source="draft", domain=None, entry_ids=frozenset({2}))
    c = Rankable(key="c", score=0.6, source="flag", domain=None, entry_ids=frozenset({3}))
    assert queue.item_similarity(a, b) == 1.0
    assert [item.key for item in queue.diverse_order([a, b, c])] == ["a", "c", "b"]


def test_group_by_domain_makes_domain_blocks():
    order = queue.diverse_order(_items(), group_by_domain=True)
    domains = [item.domain for item in order]
    blocks = [domain for position, domain in enumerate(domains) if position == 0 or domains[position - 1] != domain]
    assert blocks == ["Fiscalité", "Budget", "Social"]
    assert queue.diverse_order([]) == []
