"""LLM questions for training (training.llm_questions): the reply parser and the bounded, cached generation."""
import json

import pytest

from retrieval.llm import LLMError, LLMTimeoutError
from retrieval.prompts import QUESTION_GENERATION_SYSTEM_PROMPT, question_generation_messages
from retrieval.question_kinds import ACRONYM, ENGLISH, REVERSE, normalise_question
from training.builder import SOURCE_LLM_QUESTION, ConceptData, build_pairs
from training.llm_questions import (
    CachedQuestions,
    MalformedQuestionsReply,
    cache_key,
    generate_llm_questions,
    parse_questions,
)
from training.questions import GeneratedQuestion

DGFIP = ConceptData(entry_id=1, term="DGFiP", kind="acronym", definition="Direction générale des finances publiques.", domain="Fiscalité")
CAF = ConceptData(entry_id=2, term="CAF", kind="acronym", definition="Caisse d'allocations familiales.", domain="Social")


def _reply(*questions) -> str:
    return json.dumps({"questions": list(questions)}, ensure_ascii=False)


# ---- the prompt ----------------------------------------------------------------------------------------

def test_the_prompt_names_the_entry_the_count_and_the_json_shape():
    messages = question_generation_messages(term="DGFiP", definition="Direction générale des finances publiques.", domain="Fiscalité", count=4)
    assert [message["role"] for message in messages] == ["system", "user"]
    assert messages[0]["content"] == QUESTION_GENERATION_SYSTEM_PROMPT and '{"questions"' in messages[0]["content"]
    assert "DGFiP" in messages[1]["content"] and "finances publiques" in messages[1]["content"]
    assert "Fiscalité" in messages[1]["content"] and "4 questions" in messages[1]["content"]


# ---- the parser ----------------------------------------------------------------------------------------

def test_a_good_reply_gives_its_questions_in_order_stripped():
    reply = "```json\n" + _reply("  quel service gère les impôts ?  ", "what is the DGFiP", "sigle des finances publiques") + "\n```"
    assert parse_questions(reply, term="DGFiP", count=3) == ["quel service gère les impôts ?", "what is the DGFiP", "sigle des finances publiques"]


@pytest.mark.parametrize("reply", [
    "Voici des questions : quel service gère les impôts ?",  # no JSON
    '{"questions": ["quel service", }',  # broken JSON
    '["quel service gère les impôts ?"]',  # a list, not an object
    '{"answer": "quel service gère les impôts ?"}',  # no "questions"
    '{"questions": "quel service gère les impôts ?"}',  # not a list
    "",
])
def test_a_malformed_reply_is_refused(reply):
    with pytest.raises(MalformedQuestionsReply):
        parse_questions(reply, term="DGFiP", count=3)


def test_duplicates_the_bare_term_and_bad_items_are_dropped():
    reply = _reply(
        "Quel service gère les impôts ?", "quel service gere les impots", "QUEL SERVICE GÈRE LES IMPÔTS ?",  # one question
        "dgfip", "DGFiP ?",  # the bare term
        "ab", "x" * 201, "ligne\ncoupée en deux", "tab\tulation", 42, None,  # too short, too long, controls, not text
        "que veut dire DGFiP", "x" * 200,
    )
    assert parse_questions(reply, term="DGFiP", count=5) == ["Quel service gère les impôts ?", "que veut dire DGFiP", "x" * 200]


def test_at_most_count_questions_are_kept():
    assert parse_questions(_reply("une question", "deux questions", "trois questions"), term="X", count=2) == ["une question", "deux questions"]


# ---- generation ----------------------------------------------------------------------------------------

class FakeLLM:
    """A ``complete`` callable: replies by term, or raises; records what it was asked."""

    def __init__(self, replies):
        self.replies = replies
        self.asked = []

    def __call__(self, messages):
        term = messages[1]["content"].split("Terme : ", 1)[1].split("\n", 1)[0]
        self.asked.append(term)
        reply = self.replies[term]
        if isinstance(reply, Exception):
            raise reply
        return reply


def test_generation_gives_generated_questions_with_their_kinds():
    llm = FakeLLM({
        "DGFiP": _reply("que veut dire DGFiP", "sigle de la direction générale des finances publiques", "what does DGFiP stand for in France"),
        "CAF": _reply("qui verse les allocations familiales"),
    })
    result = generate_llm_questions([DGFIP, CAF], complete=llm, model="m", count=3)
    assert llm.asked == ["DGFiP", "CAF"]
    assert all(isinstance(question, GeneratedQuestion) for question in result.questions)
    kinds = {question.query: (question.kind, question.entry_id) for question in result.questions}
    assert kinds["que veut dire DGFiP"] == (ACRONYM, 1)
    assert kinds["sigle de la direction générale des finances publiques"] == (REVERSE, 1)
    assert kinds["what does DGFiP stand for in France"] == (ENGLISH, 1)
    assert kinds["qui verse les allocations familiales"][1] == 2
    assert result.stats() == {"asked": 2, "from_cache": 0, "failed": 0, "not_asked": 0, "questions": 4}
    assert [(item.entry_id, item.key) for item in result.fresh] == [
        (1, cache_key(model="m", term="DGFiP", definition=DGFIP.definition, domain="Fiscalité", count=3)),
        (2, cache_key(model="m", term="CAF", definition=CAF.definition, domain="Social", count=3)),
    ]


def test_failures_are_counted_and_skipped_never_raised():
    llm = FakeLLM({"DGFiP": LLMTimeoutError("slow"), "CAF": "Voici mes questions (pas de JSON)"})
    result = generate_llm_questions([DGFIP, CAF], complete=llm, model="m", count=3)
    assert result.questions == [] and result.fresh == []
    assert (result.asked, result.failed) == (2, 2)
    result = generate_llm_questions([DGFIP, CAF], complete=FakeLLM({"DGFiP": LLMError("503"), "CAF": _reply("aide aux familles")}), model="m", count=3)
    assert [question.query for question in result.questions] == ["aide aux familles"] and result.failed == 1


def test_the_cache_answers_for_unchanged_entries_and_a_changed_entry_is_asked_again():
    key = cache_key(model="m", term="DGFiP", definition=DGFIP.definition, domain="Fiscalité", count=3)
    cached = {
        1: CachedQuestions(key=key, questions=("le fisc",)),
        2: CachedQuestions(key="an older definition's key", questions=("ancienne question",)),
    }
    llm = FakeLLM({"CAF": _reply("aide aux familles")})
    result = generate_llm_questions([DGFIP, CAF], complete=llm, model="m", count=3, cached=cached)
    assert llm.asked == ["CAF"]
    assert [(question.query, question.entry_id) for question in result.questions] == [("le fisc", 1), ("aide aux familles", 2)]
    assert (result.from_cache, result.asked) == (1, 1) and [item.entry_id for item in result.fresh] == [2]
    # Another model or another count is another request.
    assert cache_key(model="other", term="DGFiP", definition=DGFIP.definition, domain="Fiscalité", count=3) != key
    assert cache_key(model="m", term="DGFiP", definition=DGFIP.definition, domain="Fiscalité", count=2) != key


def test_generation_is_bounded_by_entries_and_by_time():
    concepts = [ConceptData(entry_id=i, term=f"SIG{i}", kind="acronym", definition=f"Service numéro {i}.") for i in range(1, 6)]
    llm = FakeLLM({f"SIG{i}": _reply(f"service numéro {i} sigle") for i in range(1, 6)})
    result = generate_llm_questions(concepts, complete=llm, model="m", count=1, max_entries=2)
    assert llm.asked == ["SIG1", "SIG2"] and (result.asked, result.not_asked) == (2, 3)
    now = [0.0]

    def slow(messages):  # each request takes 4 "seconds"
        now[0] += 4
        return llm(messages)

    llm.asked.clear()
    result = generate_llm_questions(concepts, complete=slow, model="m", count=1, budget_seconds=10, clock=lambda: now[0])
    assert llm.asked == ["SIG1", "SIG2", "SIG3"] and result.not_asked == 2
    llm.asked.clear()
    result = generate_llm_questions(concepts, complete=llm, model="m", count=1, keep_going=lambda: len(llm.asked) < 1)
    assert llm.asked == ["SIG1"] and result.not_asked == 4


def test_nothing_is_asked_for_zero_questions_or_without_an_llm():
    llm = FakeLLM({})
    assert generate_llm_questions([DGFIP], complete=llm, model="m", count=0).stats()["asked"] == 0
    assert llm.asked == []
    result = generate_llm_questions([DGFIP], complete=None, model="m", count=3)
    assert result.not_asked == 1 and result.asked == 0


def test_held_out_real_questions_are_never_returned():
    llm = FakeLLM({"DGFiP": _reply("le fisc c'est qui ?", "que veut dire DGFiP")})
    result = generate_llm_questions([DGFIP], complete=llm, model="m", count=3, held_out={normalise_question("Le fisc c'est QUI")})
    assert [question.query for question in result.questions] == ["que veut dire DGFiP"]
    assert result.fresh[0].questions == ("le fisc c'est qui ?", "que veut dire DGFiP")  # cached whole


# ---- pairs ---------------------------------------------------------------------------------------------

def test_llm_questions_become_definition_pairs_of_their_own_source():
    questions = [GeneratedQuestion(query="le fisc", kind="paraphrase", entry_id=1)]
    pairs = build_pairs(concepts=[DGFIP, CAF], test_entry_ids={99}, llm_questions=questions)
    llm_pairs = [pair for pair in pairs if pair.source == SOURCE_LLM_QUESTION]
    assert [(pair.anchor, pair.entry_id, pair.pair_type) for pair in llm_pairs] == [("le fisc", 1, "definition")]
    assert "finances publiques" in llm_pairs[0].positive
    with pytest.raises(ValueError, match="test-side"):
        build_pairs(concepts=[CAF], test_entry_ids={1}, llm_questions=questions)
    with pytest.raises(ValueError, match="not among"):
        build_pairs(concepts=[CAF], test_entry_ids={99}, llm_questions=questions)


def test_llm_question_pairs_are_sampled_under_max_pairs_and_keep_the_earlier_pairs_of_their_entry():
    from training.builder import TrainingPair, select_training_pairs

    def pair(anchor, entry_id, source):
        return TrainingPair(anchor, f"def {entry_id}", (), source, "definition", entry_id, "d", f"{entry_id}:definition:0")

    new = [pair(f"llm {index}", 10 + index, SOURCE_LLM_QUESTION) for index in range(20)] + [pair("exam question", 40, "labelled")]
    selected = select_training_pairs(new, [], seed=2, max_pairs=5, test_entry_ids={99})
    assert len(selected) == 5 and selected[0].source == "labelled"  # expert pairs are kept whole, LLM ones sampled
    earlier = [pair("old wording", 10, "glossary")]
    replayed = select_training_pairs(new[:1], earlier, replay_ratio=1, seed=2, test_entry_ids={99})
    assert replayed == [new[0], earlier[0]]  # a first LLM question says nothing of the entry's text: not stale
