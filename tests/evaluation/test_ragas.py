"""RAGAS report: offline metrics on crafted samples (values computed by hand), NaN accounting, and the LLM
metrics against the local fake OpenAI-compatible server (tests/llm_server.py)."""
import json
import math

import pytest

from evaluation.ragas_report import LLM_METRICS, OFFLINE_METRICS, LLMJudge, RagasSample, ragas_report, summarise
from tests.llm_server import MALFORMED_CONTENT, running_llm_server

# Texts far apart in Levenshtein similarity (< 0.5 between any two of them), so that each retrieved text matches
# a reference text only when it is that very text.
TVA = "Taxe sur la valeur ajoutée, impôt indirect sur la consommation."
URSSAF = "Union de recouvrement des cotisations de sécurité sociale."
LOLF = "Loi organique relative aux lois de finances."
NOISE = "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"


def sample(retrieved_ids, reference_ids, retrieved, reference, **extra):
    return RagasSample("C'est quoi la TVA ?", retrieved_ids, reference_ids, retrieved, reference, **extra)


def test_offline_metrics_known_values():
    samples = [
        # ids: 2 of 3 retrieved are references (precision 2/3); 2 of 4 references retrieved (recall 1/2).
        # texts: verdicts [1, 0, 1] -> AP = (1/1 + 2/3) / 2 = 5/6; references TVA, LOLF both retrieved -> recall 1.
        sample(["1:definition:0", "9:context:1", "2:definition:0"], ["1:definition:0", "2:definition:0", "3:x:0", "4:x:0"],
               [TVA, NOISE, LOLF], [TVA, LOLF]),
        # ids: 1 of 2 (precision 1/2), 1 of 1 (recall 1); texts: verdicts [0, 1] -> AP = (1/2) / 1; recall 1 of 2.
        sample(["9:context:1", "1:definition:0"], ["1:definition:0"], [NOISE, URSSAF], [URSSAF, TVA]),
    ]
    report = ragas_report(samples)
    assert report.samples == 2 and report.runs == 1 and report.judge_model is None
    assert set(report.metrics) == set(OFFLINE_METRICS)
    m = report.metrics
    assert m["id_based_context_precision"].mean == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert m["id_based_context_recall"].mean == pytest.approx((1 / 2 + 1) / 2)
    assert m["non_llm_context_precision_with_reference"].mean == pytest.approx((5 / 6 + 1 / 2) / 2, abs=1e-6)
    assert m["non_llm_context_recall"].mean == pytest.approx((1 + 1 / 2) / 2)
    assert all(summary.failed_share == 0 and summary.computed == 2 for summary in m.values())


def test_nan_scores_are_counted_not_averaged():
    samples = [
        sample(["a"], ["a"], [TVA], [TVA]),
        sample([], ["a"], [], [TVA]),  # nothing retrieved: id precision and text recall cannot be computed
    ]
    m = ragas_report(samples).metrics
    assert m["id_based_context_precision"].mean == 1.0
    assert m["id_based_context_precision"].failed_share == 0.5
    assert m["non_llm_context_recall"].failed_share == 0.5
    assert m["id_based_context_recall"].mean == 0.5 and m["id_based_context_recall"].failed_share == 0


def test_summarise():
    summary = summarise([1.0, math.nan, 0.5, math.nan], not_applicable=3)
    assert summary.mean == 0.75 and summary.failed_share == 0.5 and summary.computed == 4 and summary.not_applicable == 3
    assert summarise([]).mean is None and summarise([]).failed_share == 0.0
    assert summarise([math.nan]).mean is None


QUESTION = "Qu'est-ce que la TVA ?"


def judge_reply(body: dict) -> str:
    """Answers ragas' structured prompts with fixed verdicts; the prompt tells which answer shape is wanted.
    A prompt mentioning PANNE gets malformed output, to exercise the NaN accounting."""
    text = "\n".join(str(message.get("content", "")) for message in body["messages"])
    if "Statements to translate:" in text:
        strings = json.JSONDecoder().raw_decode(text.split("Statements to translate:", 1)[1].strip())[0]
        return json.dumps({"statements": strings})
    if "PANNE" in text:
        return MALFORMED_CONTENT
    if "NLIStatementOutput" in text:
        return json.dumps({"statements": [
            {"statement": "La TVA est un impôt.", "reason": "dans le contexte", "verdict": 1},
            {"statement": "Elle date de 1066.", "reason": "absent du contexte", "verdict": 0},
        ]})
    if "StatementGeneratorOutput" in text:
        return json.dumps({"statements": ["La TVA est un impôt.", "Elle date de 1066."]})
    if "AnswerRelevanceOutput" in text:
        return json.dumps({"question": QUESTION, "noncommittal": 0})
    if "ContextPrecisionOutput" in text:
        return json.dumps({"reason": "utile", "verdict": 1})
    if "ContextRecallOutput" in text:
        return json.dumps({"classifications": [
            {"statement": "impôt", "reason": "attribuable", "attributed": 1},
            {"statement": "1954", "reason": "non attribuable", "attributed": 0},
        ]})
    raise AssertionError(f"unexpected prompt: {text[:200]}")


@pytest.fixture
def judge():
    with running_llm_server() as server:
        server.responder = judge_reply
        yield server


def test_llm_metrics_with_a_judge(judge):
    good = RagasSample(QUESTION, ["1:definition:0"], ["1:definition:0"], [TVA], [TVA],
                       answer="La TVA est un impôt. Elle date de 1066.", reference_answer="La TVA est un impôt indirect.")
    broken = RagasSample("PANNE", ["1:definition:0"], ["1:definition:0"], [TVA], [TVA],
                         answer="PANNE", reference_answer="PANNE")
    no_answer = RagasSample(QUESTION, ["1:definition:0"], ["1:definition:0"], [TVA], [TVA])
    report = ragas_report([good, broken, no_answer], judge=LLMJudge(base_url=judge.base_url, model="juge"), runs=2)

    assert report.judge_model == "juge" and report.runs == 2
    assert report.prompt_language == "french" and report.notes == []
    assert any("Statements to translate:" in str(request["messages"]) for request in judge.requests)
    assert set(report.metrics) == set(OFFLINE_METRICS) | set(LLM_METRICS)
    m = report.metrics
    assert m["faithfulness"].mean == pytest.approx(0.5)
    assert m["answer_relevancy"].mean == pytest.approx(1.0, abs=1e-5)
    assert m["llm_context_precision_with_reference"].mean == pytest.approx(1.0, abs=1e-6)
    assert m["llm_context_recall"].mean == pytest.approx(0.5)
    for name in LLM_METRICS:
        # Two applicable samples x two runs; the broken one fails each time; the one without answer is apart.
        assert m[name].computed == 4, name
        assert m[name].failed_share == 0.5, name
        assert m[name].not_applicable == 1, name


def test_unreachable_judge_keeps_english_prompts_and_fails_every_llm_score():
    good = RagasSample(QUESTION, ["a"], ["a"], [TVA], [TVA], answer="La TVA est un impôt.", reference_answer="Un impôt.")
    report = ragas_report([good], judge=LLMJudge(base_url="http://127.0.0.1:9/v1", model="juge", timeout=2))
    assert report.prompt_language == "english" and report.notes
    assert all(report.metrics[name].failed_share == 1.0 for name in LLM_METRICS)
    assert report.metrics["id_based_context_recall"].mean == 1.0
