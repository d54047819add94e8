"""Promotion gate: better, worse, per-domain regression, no champion."""
import pytest

from evaluation.gate import decide, render_reason
from evaluation.reports import ModeReport, metric_path


def report(overall, domains, queries=100):
    return ModeReport.from_dict({
        "queries": queries,
        "protocols": {
            "def_only": {
                "overall": {"mrr@10": overall},
                "by_domain": {name: {"queries": 10, "metrics": {"mrr@10": value}} for name, value in domains.items()},
            }
        },
    })


CHAMPION = report(0.70, {"Fiscalité": 0.80, "Social": 0.60})


def sentences(decision) -> list[str]:
    """The reasons (codes and parameters) as a reader sees them, in the default language (French)."""
    return [render_reason(reason) for reason in decision.reasons]


def test_promotes_a_better_candidate():
    decision = decide(candidate=report(0.72, {"Fiscalité": 0.81, "Social": 0.63}), champion=CHAMPION)
    assert decision.promote
    assert decision.primary_delta == pytest.approx(0.02)
    assert decision.domain_deltas == {"Fiscalité": pytest.approx(0.01), "Social": pytest.approx(0.03)}
    assert decision.reasons[0].code == "template_better"
    first = sentences(decision)[0]
    assert "fait mieux" in first and "72,0 %" in first and "+2,0 points" in first


def test_refuses_a_worse_or_not_enough_better_candidate():
    worse = decide(candidate=report(0.69, {"Fiscalité": 0.80, "Social": 0.60}), champion=CHAMPION)
    assert not worse.promote and worse.primary_delta == pytest.approx(-0.01)
    assert worse.reasons[0].code == "template_not_better" and "ne fait pas assez mieux" in sentences(worse)[0]
    barely = decide(candidate=report(0.703, {"Fiscalité": 0.80, "Social": 0.60}), champion=CHAMPION)
    assert not barely.promote


def test_refuses_a_per_domain_regression():
    decision = decide(candidate=report(0.75, {"Fiscalité": 0.90, "Social": 0.55}), champion=CHAMPION)
    assert not decision.promote
    assert any("« Social » recule de -5,0 points" in reason for reason in sentences(decision))
    # Within the tolerance, a small domain loss does not block.
    assert decide(candidate=report(0.75, {"Fiscalité": 0.90, "Social": 0.59}), champion=CHAMPION).promote


def test_no_champion_promotes_and_missing_metric_refuses():
    first = decide(candidate=report(0.5, {}), champion=None)
    assert first.promote and first.primary_delta is None and "Aucun modèle champion" in sentences(first)[0]
    assert not decide(candidate=ModeReport.from_dict({"protocols": {}}), champion=CHAMPION).promote


def test_warns_when_query_counts_differ():
    decision = decide(candidate=report(0.72, {}, queries=90), champion=CHAMPION)
    assert decision.promote
    assert decision.reasons[-1].code == "template_query_count_differs" and "même nombre de requêtes" in sentences(decision)[-1]


def test_metric_path():
    assert CHAMPION.metric(metric_path("def_only.mrr@10")) == 0.70
    assert CHAMPION.metric(metric_path("concept.mrr@10")) is None
    with pytest.raises(ValueError):
        metric_path("mrr@10")


def test_the_template_gates_reasons_are_stored_as_codes_and_written_down_when_it_decided():
    from django.utils import translation

    from config.stored_messages import render
    from evaluation.gate_records import GateRecord, Reason
    from evaluation.gating import gate_messages

    templates = decide(candidate=report(0.72, {"Fiscalité": 0.81, "Social": 0.63}), champion=CHAMPION)
    record = GateRecord(
        promote=True, reason_codes=[Reason("templates_only", {"promote": True, "delta": 0.02})],
        template_reason_codes=list(templates.reasons), champion_version_id=1, deciding_tier=None,
    )
    stored = record.to_dict()
    assert [item["code"] for item in stored["template_reason_codes"]] == ["template_better", "template_no_domain_regressed"]
    again = GateRecord.from_dict(stored)
    assert again.template_reason_codes == record.template_reason_codes
    with translation.override("fr"):
        written = [render(message) for message in gate_messages(again)]
    assert written[0].startswith("Pas de questions réelles ni canari") and "fait mieux" in written[1] and len(written) == 3
    with translation.override("en"):
        assert "does better than the champion" in render(gate_messages(again)[1])
    # A question tier decided: the template gate's own comparison is not written down.
    assert len(gate_messages(GateRecord.from_dict({**stored, "deciding_tier": "canary"}))) == 1
