"""The gate that protects users: real questions first, then canaries, then templates; per-kind regressions refuse."""
import pytest
from django.utils import translation

from evaluation.gate import CANARY, REAL, GateDecision, decide_for_users, render_reason
from evaluation.gate_records import QuestionScores, QuestionTier


def tier(overall, kinds, questions=40):
    return QuestionTier(
        overall=QuestionScores(questions, overall),
        by_kind={kind: QuestionScores(questions // len(kinds), value) for kind, value in kinds.items()},
    )


CHAMPION = {
    REAL: tier(0.50, {"reverse": 0.40, "acronym": 0.60}),
    CANARY: tier(0.60, {"reverse": 0.50, "typo": 0.70}),
}


def codes(decision):
    return [reason.code for reason in decision.reasons]


def test_promotes_when_real_questions_improve_and_no_kind_regresses():
    candidate = {REAL: tier(0.60, {"reverse": 0.50, "acronym": 0.70}), CANARY: tier(0.61, {"reverse": 0.52, "typo": 0.70})}
    decision = decide_for_users(candidate=candidate, champion=CHAMPION)
    assert decision.promote and decision.deciding_tier == REAL
    assert codes(decision)[0] == "better" and "no_kind_regressed" in codes(decision)
    assert decision.tier_deltas[REAL] == pytest.approx(0.10)


def test_refuses_a_kind_that_regresses_even_when_the_overall_number_rises():
    candidate = {REAL: tier(0.60, {"reverse": 0.30, "acronym": 0.90}), CANARY: tier(0.70, {"reverse": 0.60, "typo": 0.80})}
    decision = decide_for_users(candidate=candidate, champion=CHAMPION)
    assert not decision.promote
    regressed = [reason for reason in decision.reasons if reason.code == "kind_regressed"]
    assert [(reason.params["tier"], reason.params["kind"]) for reason in regressed] == [(REAL, "reverse")]
    assert decision.kind_deltas[REAL]["reverse"] == pytest.approx(-0.10)


def test_never_promotes_a_version_that_lowers_real_question_r1():
    # Every kind within tolerance, the canaries much better, but real questions lower overall: refused.
    candidate = {REAL: tier(0.49, {"reverse": 0.39, "acronym": 0.59}), CANARY: tier(0.90, {"reverse": 0.90, "typo": 0.90})}
    decision = decide_for_users(candidate=candidate, champion=CHAMPION)
    assert not decision.promote
    assert "real_r1_lower" in codes(decision) and codes(decision)[0] == "not_better"


def test_too_few_real_questions_leave_the_decision_to_the_canaries():
    few = {REAL: tier(0.10, {"reverse": 0.10}, questions=12), CANARY: tier(0.65, {"reverse": 0.55, "typo": 0.70})}
    champion = {REAL: tier(0.90, {"reverse": 0.90}, questions=12), CANARY: CHAMPION[CANARY]}
    decision = decide_for_users(candidate=few, champion=champion, min_real=30)
    assert decision.promote and decision.deciding_tier == CANARY
    assert "real_too_few" in codes(decision)


def test_small_kinds_do_not_decide_and_templates_domain_regressions_refuse():
    candidate = {CANARY: QuestionTier(overall=QuestionScores(40, 0.70), by_kind={"reverse": QuestionScores(36, 0.70), "english": QuestionScores(4, 0.0)})}
    champion = {CANARY: QuestionTier(overall=QuestionScores(40, 0.60), by_kind={"reverse": QuestionScores(36, 0.60), "english": QuestionScores(4, 1.0)})}
    assert decide_for_users(candidate=candidate, champion=champion, min_kind=5).promote
    templates = GateDecision(True, ["..."], 0.01, {"Fiscalité": -0.05, "Social": 0.02})
    decision = decide_for_users(candidate=candidate, champion=champion, templates=templates, min_kind=5)
    assert not decision.promote and "domain_regressed" in codes(decision)


def test_templates_decide_alone_without_question_tiers_and_no_champion_promotes():
    refused = GateDecision(False, ["..."], -0.01, {})
    decision = decide_for_users(candidate={}, champion={}, templates=refused)
    assert not decision.promote and decision.deciding_tier is None and "templates_only" in codes(decision)
    first = decide_for_users(candidate={CANARY: CHAMPION[CANARY]}, champion=None)
    assert first.promote and codes(first) == ["no_champion"]


def test_reasons_are_codes_rendered_in_the_reader_language():
    candidate = {REAL: tier(0.60, {"reverse": 0.30, "acronym": 0.90}), CANARY: CHAMPION[CANARY]}
    reason = next(r for r in decide_for_users(candidate=candidate, champion=CHAMPION).reasons if r.code == "kind_regressed")
    stored = reason.to_dict()
    assert stored["params"]["kind"] == "reverse"
    with translation.override("fr"):
        french = render_reason(stored)
    with translation.override("en"):
        english = render_reason(stored)
    assert "reverse" in french and "40,0 %" in french and "30,0 %" in french and "reculent" in french
    assert english != french and "reverse" in english
    assert render_reason({"code": "unknown-code"}) == "unknown-code"
