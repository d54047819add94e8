"""Concept and Def-only protocols, and the benchmark report with its breakdowns and worst queries."""
import json

import pytest

from evaluation.protocols import NO_GROUP, evaluate_rankings, relevant_keys
from evaluation.queries import EvalQuery

PASSAGES = {
    1: ["1:definition:0", "1:context:1", "1:context:2"],
    2: ["2:definition:0"],
    3: ["3:definition:0", "3:context:1"],
}


def query(text, ids, *, definition_ids=None, source="term", domain="Fiscalité", kind="acronym"):
    ids = frozenset(ids)
    return EvalQuery(text, source, ids, frozenset(definition_ids) if definition_ids is not None else ids, domain, kind)


def test_relevant_keys_per_protocol():
    q = query("TVA", {1, 3}, definition_ids={1})
    assert relevant_keys(q, "concept", PASSAGES) == {"1:definition:0", "1:context:1", "1:context:2", "3:definition:0", "3:context:1"}
    assert relevant_keys(q, "def_only", PASSAGES) == {"1:definition:0"}
    assert relevant_keys(query("absent", {9}), "concept", PASSAGES) == set()
    with pytest.raises(ValueError):
        relevant_keys(q, "strict", PASSAGES)


def test_report_overall_breakdowns_worst_and_skipped():
    queries = [
        query("TVA", {1}),
        query("C'est quoi TVA ?", {1}, source="cest_quoi"),
        query("CSG", {2}, domain="Social"),
        query("absent", {9}, domain=None),
    ]
    rankings = {
        "TVA": ["1:definition:0", "2:definition:0"],
        "C'est quoi TVA ?": ["1:context:1", "2:definition:0", "1:definition:0"],
        "CSG": ["1:context:1", "3:definition:0"],
        "absent": [],
    }
    report = evaluate_rankings(queries, rankings, PASSAGES, ks=(1, 5))
    assert report.queries == 4
    concept, strict = report.protocols["concept"], report.protocols["def_only"]

    # Concept: TVA hit@1, "C'est quoi" hit@1 (a context counts), CSG missed.
    assert concept.overall.hit_at_1 == pytest.approx(2 / 3)
    # Def-only: TVA rank 1, "C'est quoi" rank 3, CSG missed.
    assert strict.overall.mrr_at_10 == pytest.approx((1 + 1 / 3 + 0) / 3)
    assert strict.skipped == ["absent"] and concept.skipped == ["absent"]

    assert list(strict.by_domain) == ["Fiscalité", "Social"]
    assert strict.by_domain["Fiscalité"].queries == 2
    assert strict.by_domain["Social"].metrics.mrr_at_10 == 0.0
    assert list(strict.by_source) == ["term", "cest_quoi"]
    assert strict.by_kind["acronym"].queries == 3

    # Worst first: not found at all, then found lowest.
    assert [(w.text, w.first_relevant_rank) for w in strict.worst] == [("CSG", None), ("C'est quoi TVA ?", 3)]
    assert strict.worst[1].ranked_above == ("1:context:1", "2:definition:0")
    assert strict.worst[0].ranked_above == ("1:context:1", "3:definition:0")

    as_dict = report.to_dict()
    json.dumps(as_dict)  # JSON-ready
    assert as_dict["protocols"]["def_only"]["overall"]["mrr@10"] == strict.overall.mrr_at_10
    assert as_dict["protocols"]["def_only"]["by_domain"]["Social"]["queries"] == 1
    assert as_dict["protocols"]["def_only"]["judged"] == 3 and as_dict["protocols"]["def_only"]["skipped_count"] == 1
    assert "per_query" not in as_dict["protocols"]["def_only"]  # never stored


def test_unknown_domain_grouped_last_and_missing_ranking_refused():
    queries = [query("A", {1}, domain=None), query("B", {2}, domain="Budget")]
    report = evaluate_rankings(queries, {"A": [], "B": []}, PASSAGES, protocols=("def_only",))
    assert list(report.protocols) == ["def_only"]
    assert list(report.protocols["def_only"].by_domain) == ["Budget", NO_GROUP]
    with pytest.raises(ValueError):
        evaluate_rankings(queries, {"A": []}, PASSAGES)
