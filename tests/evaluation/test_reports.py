"""Typed reports and gate records: one metric vocabulary, and the stored JSON read and written back unchanged (older
shapes too)."""
import copy
import json

import pytest

from evaluation.protocols import evaluate_rankings
from evaluation.queries import EvalQuery
from evaluation.gate_records import GateRecord, QuestionTier, gate_of
from evaluation.reports import (
    HIT_AT_1,
    MRR_AT_10,
    Column,
    EvaluationReport,
    EvaluationSummary,
    LeaderboardRow,
    ModeReport,
    RankingMetrics,
    metric_field,
    metric_label,
    metric_path,
)

# A protocol's report as the first evaluation layer stored it: no "judged" nor "skipped_count", a key this code does
# not know, and a metric at a cut-off that is not a field.
OLD_PROTOCOL = {
    "overall": {"hit@1": 0.5, "hit@5": 0.75, "recall@1": 0.25, "mrr@10": 0.6, "ndcg@10": 0.65, "map@10": 0.55, "hit@3": 0.7},
    "by_domain": {"Fiscalité": {"queries": 2, "metrics": {"hit@1": 1.0, "mrr@10": 1.0}}},
    "by_kind": {"acronym": {"queries": 2, "metrics": {"hit@1": 0.5, "mrr@10": 0.6}}},
    "by_source": {},
    "skipped": ["absent"],
    "worst": [{
        "text": "CSG", "source": "term", "domain": None, "kind": None, "relevant": ["2:definition:0"],
        "first_relevant_rank": None, "ranked_above": ["1:context:1"], "metrics": {"hit@1": 0.0, "mrr@10": 0.0},
        "ranked_above_labels": ["TVA (contexte 1)"],
    }],
    "future_field": {"kept": True},
}
OLD_REPORT = {"dense": {"queries": 3, "ks": [1, 5], "cutoff": 10, "protocols": {"def_only": OLD_PROTOCOL}}}

# A gate decision as stored before the question tiers (2026-11): sentences only, 14 keys.
OLD_GATE = {
    "decision": "keep", "promote": False, "reasons": ["Le candidat ne fait pas assez mieux que le champion."],
    "primary": "def_only.mrr@10", "mode": "dense", "margin": 0.005, "domain_tolerance": 0.02, "primary_delta": -0.01,
    "domain_deltas": {"Fiscalité": -0.01}, "champion_version_id": 1, "champion_version": "base",
    "champion_evaluation_id": 4, "test_set_hash": "a" * 64, "decided_at": "2026-11-27T10:00:00+00:00",
}
TIER = {
    "version": 1, "mode": "hybrid", "exclude_known_questions": True,
    "overall": {"questions": 40, "r1": 0.5, "r10": 0.9, "mrr10": 0.62},
    "by_kind": {"acronym": {"questions": 20, "r1": 0.6, "r10": 0.95, "mrr10": 0.7}, "reverse": {"questions": 20, "r1": 0.4, "r10": 0.85, "mrr10": 0.54}},
    "unresolved": [], "wrong": [{"text": "le sigle de la sécu", "kind": "acronym", "rank": 3}],
}
GATE = {
    **OLD_GATE, "reason_codes": [{"code": "not_better", "params": {"tier": "real", "before": 0.5, "after": 0.5}}],
    "deciding_tier": "real", "tier_deltas": {"real": 0.0}, "kind_deltas": {"real": {"acronym": 0.1}},
    "tiers": {"candidate": {"real": TIER}, "champion": {"real": {**TIER, "by_kind": {"acronym": {"questions": 20, "r1": 0.5, "r10": 0.9, "mrr10": 0.6}}}}},
    "kind_tolerance": 0.02, "min_real_questions": 30, "question_mode": "hybrid", "template_reasons": [],
}


def test_one_vocabulary_names_say_what_the_metrics_are():
    assert [metric_label(key) for key in ("hit@1", "recall@10", "mrr@10", "ndcg@10", "map@10")] == [
        "Hit@1", "Recall@10", "MRR@10", "nDCG@10", "MAP@10",
    ]
    assert metric_field("hit@1") == "hit_at_1" and HIT_AT_1.field == "hit_at_1" and HIT_AT_1.label == "Hit@1"
    assert Column("def_only", MRR_AT_10).title == "Def-only MRR@10"
    assert metric_path("concept.hit@1") == Column("concept", HIT_AT_1)
    with pytest.raises(ValueError):
        metric_path("mrr@10")


def test_ranking_metrics_keep_their_stored_keys_and_unknown_cutoffs():
    metrics = RankingMetrics.from_dict(OLD_PROTOCOL["overall"])
    assert metrics.hit_at_1 == 0.5 and metrics.recall_at_1 == 0.25 and metrics.get("hit@3") == 0.7
    assert metrics.recall_at_10 is None and metrics.get("recall@10") is None
    assert metrics.to_dict() == OLD_PROTOCOL["overall"]
    assert list(metrics.to_dict()) == ["hit@1", "hit@5", "recall@1", "mrr@10", "ndcg@10", "map@10", "hit@3"]
    assert metrics.minus(RankingMetrics(hit_at_1=0.25)).to_dict() == {"hit@1": 0.25}
    assert not RankingMetrics()


def test_an_old_stored_report_loads_and_round_trips_unchanged():
    report = EvaluationReport.from_dict(copy.deepcopy(OLD_REPORT))
    protocol = report["dense"].protocols["def_only"]
    assert protocol.judged == 0 and protocol.overall.mrr_at_10 == 0.6
    assert protocol.by_domain["Fiscalité"].metrics.hit_at_1 == 1.0
    assert protocol.worst[0].first_relevant_rank is None and protocol.worst[0].ranked_above_labels == ("TVA (contexte 1)",)
    assert [(breakdown, name) for breakdown, name, _group in protocol.groups()] == [("domain", "Fiscalité"), ("kind", "acronym")]
    assert report["dense"].metric(metric_path("def_only.mrr@10")) == 0.6
    assert report["dense"].domain_metric(metric_path("def_only.hit@1")) == {"Fiscalité": 1.0}
    # Written back: the same document, without the keys its writer never wrote, with the ones this code ignores.
    assert report.to_dict() == OLD_REPORT
    assert "judged" not in report.to_dict()["dense"]["protocols"]["def_only"]
    assert report.overall() == {"dense": {"def_only": protocol.overall}}


def test_a_computed_report_is_stored_and_read_back():
    queries = [EvalQuery("TVA", "term", frozenset({1}), frozenset({1}), "Fiscalité", "acronym")]
    computed = evaluate_rankings(queries, {"TVA": ["2:definition:0", "1:definition:0"]}, {1: ["1:definition:0"], 2: ["2:definition:0"]})
    stored = computed.protocols["def_only"].for_storage(label=lambda key: f"<{key}>", keep=5, above=1)
    assert stored.per_query == [] and stored.judged == 1 and stored.worst[0].ranked_above_labels == ("<2:definition:0>",)
    data = EvaluationReport({"dense": ModeReport(queries=1, ks=computed.ks, cutoff=computed.cutoff, protocols={"def_only": stored})}).to_dict()
    json.dumps(data)
    assert data["dense"]["ks"] == [1, 5, 10, 20] and data["dense"]["protocols"]["def_only"]["overall"]["hit@1"] == 0.0
    assert EvaluationReport.from_dict(data).to_dict() == data


def test_gate_records_old_and_new_round_trip():
    old = gate_of(copy.deepcopy(OLD_GATE))
    assert not old.promote and old.reason_codes == [] and old.tiers == {} and old.kind_rows() == []
    assert old.to_dict() == OLD_GATE  # no key added to a decision stored by an older version
    new = GateRecord.from_dict(copy.deepcopy(GATE))
    assert new.reason_codes[0].code == "not_better" and new.tiers["candidate"]["real"].overall.hit_at_1 == 0.5
    assert new.to_dict() == GATE
    rows = {(row.tier, row.kind): row for row in new.kind_rows()}
    assert rows[("real", "acronym")].delta == pytest.approx(0.1) and rows[("real", "reverse")].before is None
    assert rows[("real", "all")].questions == 40 and rows[("real", "all")].delta == 0.0
    assert gate_of({}) is None


def test_question_tiers_summaries_and_leaderboard_rows_round_trip():
    tier = QuestionTier.from_dict(copy.deepcopy(TIER))
    assert tier.by_kind["reverse"].mrr_at_10 == 0.54 and tier.wrong[0].rank == 3
    assert tier.to_dict() == TIER
    summary = {"run_id": 3, "finished_at": None, "test_set_hash": "b" * 64, "queries": 3, "overall": {"dense": {"def_only": {"hit@1": 0.5}}}}
    assert EvaluationSummary.from_dict(summary).overall["dense"]["def_only"].hit_at_1 == 0.5
    assert EvaluationSummary.from_dict(summary).to_dict() == summary
    row = {"name": "gt", "kind": "model", "version_id": None, "skipped": False, "reason": "", "metrics": {"dense": {"def_only": {"mrr@10": 0.4}}}}
    assert LeaderboardRow.from_dict(row).metric("dense", Column("def_only", MRR_AT_10)) == 0.4
    assert LeaderboardRow.from_dict(row).metric("hybrid", Column("def_only", MRR_AT_10)) is None
    assert LeaderboardRow.from_dict(row).to_dict() == row
