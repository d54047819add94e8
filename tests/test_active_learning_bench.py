"""The active-learning benchmark end to end on a tiny synthetic glossary (2 cycles of 2 training steps)."""
import json

import pytest

from bench import report
from bench.active_learning import decisions_to_match, measure, section_of
from bench.active_learning_scenario import GENERATED, UNSEEN, WRITTEN, Settings, build_scenario
from bench.active_learning_simulation import ACTIVE, RANDOM, expert_answers, held_out_answer
from bench.synthetic import Question, synthetic_entries

TINY = Settings(
    glossary_size=30, generated_pool=10, generated_unseen=6, cycles=2, per_cycle=3, glossary_pairs=16, max_steps=2, batch_size=8
)


def tiny_glossary():
    rows = [{"term": entry.term, "definition": entry.definition} for entry in synthetic_entries(30, seed=5)]
    asked = [Question(f"que veut dire {row['term']} ?", row["term"], row["definition"], "acronym") for row in rows[:6]]
    return rows, asked


def test_scenario_splits_questions_and_keeps_unseen_entries_out_of_the_pool():
    rows, asked = tiny_glossary()
    scenario = build_scenario(rows=rows, asked=asked, settings=TINY)
    assert len(scenario.concepts) == 30
    origins = lambda questions: [question.origin for question in questions]  # noqa: E731
    assert origins(scenario.pool).count(WRITTEN) == 3 and origins(scenario.pool).count(GENERATED) == 10
    assert origins(scenario.held_out).count(WRITTEN) == 3 and origins(scenario.held_out).count(GENERATED) == 10
    assert origins(scenario.held_out).count(UNSEEN) == 6
    # A held-out wording is never a pool wording; every generated pool question has a held-out rewording.
    assert not {question.key for question in scenario.pool} & {question.key for question in scenario.held_out}
    generated = lambda questions: {q.entry_id for q in questions if q.origin == GENERATED}  # noqa: E731
    assert generated(scenario.pool) == generated(scenario.held_out)
    # Entries of the unseen questions are nobody's pool question and are the ones kept out of training.
    unseen = {question.entry_id for question in scenario.held_out if question.origin == UNSEEN}
    assert unseen == scenario.held_out_entry_ids and len(unseen) == 6
    assert not {question.entry_id for question in scenario.pool} & unseen


def test_decisions_to_match_interpolates_and_reports_never():
    curve = [(0, 0.2), (10, 0.4), (20, 0.6)]
    assert decisions_to_match(curve, 0.5) == pytest.approx(15.0)
    assert decisions_to_match(curve, 0.1) == 0.0
    assert decisions_to_match(curve, 0.7) is None


def test_expert_answer_takes_the_entries_ranked_above_the_right_one_as_negatives():
    rows, asked = tiny_glossary()
    question = build_scenario(rows=rows, asked=asked, settings=TINY).pool[0]
    import numpy as np

    answers = expert_answers(np.array([[99, 98, question.entry_id, 97]]), [question])
    assert answers[0].entry_id == question.entry_id and answers[0].wrong_entry_ids == (99, 98)


@pytest.mark.slow
def test_quick_path_returns_both_curves_and_the_ratio(tmp_path):
    rows, asked = tiny_glossary()
    chart_path = tmp_path / "active_learning.svg"
    numbers = measure(rows=rows, asked=asked, settings=TINY, chart_path=chart_path, workdir=tmp_path)

    for strategy in (ACTIVE, RANDOM):
        curve = numbers["curves"][strategy]
        assert [point["decisions"] for point in curve] == [0, 3, 6]
        assert all(0.0 <= point["hit@1"] <= point["mrr@10"] <= 1.0 for point in curve)
    assert numbers["curves"][ACTIVE][0] == numbers["curves"][RANDOM][0]  # the same starting model
    assert "ratio" in numbers and numbers["random_decisions"] == 6
    assert sum(numbers["kinds_chosen"][ACTIVE].values()) == sum(numbers["kinds_chosen"][RANDOM].values()) == 6
    assert chart_path.read_text(encoding="utf-8").startswith("<svg")
    # The product's gate after each training: held-out answers are not trained on, the served curve follows the
    # candidates the gate promoted and stays at the start otherwise.
    assert numbers["canary_questions"] > 0
    for strategy in (ACTIVE, RANDOM):
        rows_ = numbers["gate"][strategy]
        assert [row["cycle"] for row in rows_] == [1, 2] and all(row["decisions"] == 3 * row["cycle"] for row in rows_)
        assert all(row["trained_answers"] + row["real_questions"] == row["decisions"] for row in rows_)
        assert all(row["deciding_tier"] == "canary" for row in rows_)  # fewer than 30 held-out answers
        quality = lambda point: {key: value for key, value in point.items() if key != "decisions"}  # noqa: E731
        served, curve = numbers["served"][strategy], numbers["curves"][strategy]
        assert [point["decisions"] for point in served] == [0, 3, 6]
        for position, row in enumerate(rows_, start=1):
            if row["promote"]:
                assert quality(served[position]) == quality(curve[position])
            else:
                assert quality(served[position]) == quality(served[position - 1])

    section = section_of(numbers)
    markdown = report.section_markdown(section)
    assert "Active MRR@10" in markdown and "Random Hit@1" in markdown
    assert "Active served Hit@1" in markdown and "The promotion gate after each cycle" in markdown
    assert section.targets[0].met in (True, False)
    json.dumps(section.data)  # stored by the bench runner as JSON


def test_held_out_answers_follow_the_products_stable_hash():
    from retrieval.question_kinds import is_held_out, normalise_question

    rows, asked = tiny_glossary()
    pool = build_scenario(rows=rows, asked=asked, settings=TINY).pool
    assert [held_out_answer(question) for question in pool] == [is_held_out(normalise_question(question.query)) for question in pool]
