"""Real questions over the whole validated glossary, per kind: scoring, files with unresolved lines, the command."""
import json

import pytest
from django.core.management import call_command

from config.stored_messages import render
from evaluation.real_questions import (
    RealQuestion,
    evaluate_real_questions,
    outcome_of,
    real_questions_from_file,
    real_questions_from_labelled,
    score_outcomes,
)
from retrieval import labelled, selectors
from tests.retrieval.conftest import _fresh_served_indexes, glossary  # noqa: F401  (fixtures)


def test_scores_per_kind():
    outcomes = [
        outcome_of(RealQuestion("a", frozenset({1}), "acronym"), [1, 2, 3]),
        outcome_of(RealQuestion("b", frozenset({2}), "acronym"), [1, 2, 3]),
        outcome_of(RealQuestion("c", frozenset({9}), "reverse"), [1, 2, 3]),
        outcome_of(RealQuestion("d", frozenset({3, 4}), None), [5, 4, 3]),
    ]
    overall, by_kind = score_outcomes(outcomes)
    assert [o.rank for o in outcomes] == [1, 2, None, 2]
    assert (overall.questions, overall.hit_at_1, overall.hit_at_10, overall.mrr_at_10) == (4, 0.25, 0.75, 0.5)
    assert list(by_kind) == ["(aucun)", "acronym", "reverse"]
    assert (by_kind["acronym"].hit_at_1, by_kind["acronym"].mrr_at_10) == (0.5, 0.75) and by_kind["reverse"].hit_at_10 == 0.0


@pytest.mark.django_db
def test_a_file_reports_every_unresolved_line(glossary):  # noqa: F811
    from tests.factories import EntryFactory

    EntryFactory(term="CAF", definition="Capacité d'autofinancement d'une entreprise.")
    data = "\n".join([
        json.dumps({"query": "que veut dire URSSAF", "term": "URSSAF", "kind": "acronym"}),
        json.dumps({"query": "que veut dire CAF", "term": "CAF"}),  # two senses, no definition
        json.dumps({"query": "le sigle inconnu", "term": "ZZZ"}),
        "{oops",
        json.dumps({"query": "les aides au logement", "entry_id": glossary["caf"].pk, "kind": "reverse"}),
        json.dumps({"query": "z", "term": "TVA", "kind": "poem"}),
    ])
    questions, errors = real_questions_from_file(data=data)
    assert [e.line for e in errors] == [2, 3, 4, 6]
    assert "2 sens" in render(errors[0].message) and "ZZZ" in render(errors[1].message)
    # Not limited to the test side: every validated entry can be asked about.
    assert {(q.text, q.kind) for q in questions} == {("que veut dire URSSAF", "acronym"), ("les aides au logement", "reverse")}


@pytest.mark.django_db
def test_known_questions_are_left_out_when_the_model_is_judged(glossary):  # noqa: F811
    version = selectors.champion_version_get()
    question = "l'argent des vieux, il vient d'où ?"
    pension = glossary["pension"]
    labelled.labelled_question_record(text=question, entry=pension, source="exam", kind="paraphrase")
    asked = [RealQuestion(question, frozenset({pension.pk}), "paraphrase"), RealQuestion("que veut dire URSSAF ?", frozenset({glossary["urssaf"].pk}), "acronym")]
    served = evaluate_real_questions(version=version, questions=asked, exclude_known_questions=False)
    model = evaluate_real_questions(version=version, questions=asked)
    assert served.by_kind["paraphrase"].hit_at_1 == 1.0  # what users see: the known question answers it
    assert model.outcomes[0].rank != 1 and model.exclude_known_questions  # the model alone does not
    assert served.by_kind["acronym"].hit_at_1 == model.by_kind["acronym"].hit_at_1 == 1.0
    assert set(served.as_dict()["by_kind"]) == {"acronym", "paraphrase"}
    tier = model.tier(wrong=20)  # what the promotion gate reads and stores
    assert tier.overall.questions == 2 and tier.by_kind["acronym"].hit_at_1 == 1.0
    assert [wrong.text for wrong in tier.wrong] == [question]
    assert tier.to_dict()["by_kind"]["acronym"]["r1"] == 1.0  # stored under the keys the gate always wrote


@pytest.mark.django_db
def test_evaluate_command_scopes(glossary, tmp_path, capsys):  # noqa: F811
    path = tmp_path / "real.jsonl"
    path.write_text(json.dumps({"query": "que veut dire URSSAF", "term": "URSSAF", "kind": "acronym"}) + "\n" + json.dumps({"query": "x", "term": "INCONNU"}) + "\n")
    call_command("evaluate", "--queries", str(path))
    captured = capsys.readouterr()
    assert "real.jsonl, line 2" in captured.err and "INCONNU" in captured.err
    assert "1 questions, 1 unresolved" in captured.out and "acronym" in captured.out and "Hit@1" in captured.out

    for text in ("que veut dire URSSAF", "c'est quoi la CAF", "taxe sur la valeur ajoutée", "question 1", "question 3"):
        labelled.labelled_question_record(text=text, entry=glossary["urssaf"], source="exam")
    held_out = real_questions_from_labelled(held_out=True)
    # The held-out share is decided by the question's hash (pinned in tests/retrieval/test_labelled_kinds.py).
    assert {q.text for q in held_out} == {"que veut dire URSSAF", "question 1", "question 3"}
    call_command("evaluate", "--held-out", "--json")
    report = json.loads(capsys.readouterr().out)
    assert report["question_count"] == len(held_out) and report["results"][0]["exclude_known_questions"] is True
