"""Extractive answers and the no-answer threshold; generative answers against a local OpenAI-compatible server."""
import json
import socket

import pytest

from retrieval.answers import (
    NO_ANSWER_TEXT,
    MalformedReplyError,
    extractive_answer,
    generative_answer,
    parse_answer_reply,
    translate_to_french,
)
from retrieval.hybrid import SearchHit
from retrieval.llm import LLMClient, LLMError
from retrieval.passages import EntryData, Passage
from retrieval.preprocess import build_vocabulary, preprocess_query
from tests.llm_server import running_llm_server

THRESHOLD = 0.4
URSSAF = EntryData(
    id=1,
    term="URSSAF",
    kind="acronym",
    definition="Organisme qui collecte les cotisations sociales.",
    contexts=("L'employeur déclare ses salariés à l'URSSAF.", "Second contexte."),
    domain="Social",
)
CPAM = EntryData(id=2, term="CPAM", kind="acronym", definition="Caisse primaire d'assurance maladie.")
CAF = EntryData(id=3, term="CAF", kind="acronym", definition="Caisse d'allocations familiales.")
TVA = EntryData(id=4, term="TVA", kind="acronym", definition="Taxe sur la valeur ajoutée.")


def hit(entry: EntryData, rank: int, *, dense: float | None = 0.7, lexical: float | None = None, exact=False, passage=None) -> SearchHit:
    return SearchHit(
        entry_id=entry.id,
        passage=passage or (Passage(entry.id, "definition", 0, entry.definition) if dense is not None else None),
        dense_score=dense,
        lexical_score=lexical,
        dense_rank=rank if dense is not None else None,
        lexical_rank=rank if lexical is not None else None,
        fused_score=1 / (60 + rank),
        rank=rank,
        exact_match=exact,
    )


def ranked(*entries: EntryData, best_dense: float = 0.7):
    return [(hit(entry, rank, dense=best_dense if rank == 1 else 0.5), entry) for rank, entry in enumerate(entries, start=1)]


# Extractive


def test_extractive_answer_from_the_best_entry_with_numbered_sources():
    answer = extractive_answer(hits_with_entries=ranked(URSSAF, CPAM, CAF, TVA), threshold=THRESHOLD)
    assert answer.mode == "extractive" and answer.fallback_reason is None
    assert answer.text.startswith("URSSAF : Organisme qui collecte les cotisations sociales. [S1]")
    assert "L'employeur déclare ses salariés à l'URSSAF." in answer.text  # one usage context
    assert "Second contexte" not in answer.text
    assert "CPAM [S2]" in answer.text and "CAF [S3]" in answer.text
    assert [(s.number, s.entry_id, s.term, s.passage_type) for s in answer.sources] == [
        (1, 1, "URSSAF", "definition"),
        (2, 2, "CPAM", "definition"),
        (3, 3, "CAF", "definition"),
    ]
    assert answer.sources[0].text == URSSAF.definition


def test_extractive_answer_quotes_the_retrieved_context():
    context = Passage(1, "context", 2, "Second contexte.")
    answer = extractive_answer(hits_with_entries=[(hit(URSSAF, 1, passage=context), URSSAF)], threshold=THRESHOLD)
    assert "« Second contexte. »" in answer.text and answer.sources[0].passage_type == "context"


def test_no_answer_below_the_threshold():
    answer = extractive_answer(hits_with_entries=ranked(URSSAF, CPAM, best_dense=0.2), threshold=THRESHOLD)
    assert (answer.mode, answer.text, answer.sources) == ("none", NO_ANSWER_TEXT, [])
    assert extractive_answer(hits_with_entries=[], threshold=THRESHOLD).mode == "none"


def test_exact_match_and_lexical_only_hits_always_answer():
    exact = [(hit(URSSAF, 1, dense=0.1, exact=True), URSSAF)]
    assert extractive_answer(hits_with_entries=exact, threshold=THRESHOLD).mode == "extractive"
    lexical_only = [(hit(CPAM, 1, dense=None, lexical=7.5), CPAM)]
    answer = extractive_answer(hits_with_entries=lexical_only, threshold=THRESHOLD)
    assert answer.mode == "extractive" and answer.sources[0].text == CPAM.definition


# Reply parsing


def test_reply_parsing_accepts_fenced_json_and_collects_citations():
    assert parse_answer_reply('```json\n{"answer": "Oui [S2].", "sources": [1]}\n```', source_count=2) == ("Oui [S2].", [1, 2])
    malformed = (
        "pas du JSON",
        '{"answer": ""}',
        '{"answer": "x [S4]", "sources": []}',
        '{"answer": "x", "sources": [9]}',
        '["x"]',
        '{"answer": "x", "sources": "1"}',
    )
    for reply in malformed:
        with pytest.raises(MalformedReplyError):
            parse_answer_reply(reply, source_count=3)


# Generative, against the local server


@pytest.fixture
def llm_server():
    with running_llm_server() as server:
        yield server


def client(server, *, timeout: float = 5.0) -> LLMClient:
    return LLMClient(base_url=server.base_url, model="test-model", api_key="k", timeout=timeout)


def test_generative_answer_is_grounded_and_cites_existing_sources(llm_server):
    llm_server.replies.append(json.dumps({"answer": "L'URSSAF collecte les cotisations sociales [S1].", "sources": [1]}))
    answer = generative_answer(
        question="c'est quoi l'urssaf ?", hits_with_entries=ranked(URSSAF, CPAM, CAF), llm=client(llm_server), threshold=THRESHOLD
    )
    assert answer.mode == "generative" and answer.fallback_reason is None
    assert answer.text == "L'URSSAF collecte les cotisations sociales [S1]."
    assert [source.entry_id for source in answer.sources] == [1]
    request = llm_server.requests[0]
    assert request["model"] == "test-model" and request["temperature"] == 0
    system, user = request["messages"]
    assert "uniquement à partir des extraits" in system["content"] and '"sources"' in system["content"]
    assert "[S1] URSSAF (domaine : Social)" in user["content"] and "[S3] CAF" in user["content"]
    assert user["content"].endswith("Question : c'est quoi l'urssaf ?")


def test_a_model_that_does_not_know_gives_no_answer(llm_server):
    llm_server.replies.append(json.dumps({"answer": "Je ne sais pas : les extraits n'en parlent pas.", "sources": []}))
    answer = generative_answer(question="Qui a gagné le match ?", hits_with_entries=ranked(URSSAF), llm=client(llm_server), threshold=THRESHOLD)
    assert answer.mode == "none" and answer.sources == [] and "Je ne sais pas" in answer.text


def test_below_the_threshold_the_llm_is_not_asked(llm_server):
    answer = generative_answer(question="?", hits_with_entries=ranked(URSSAF, best_dense=0.1), llm=client(llm_server), threshold=THRESHOLD)
    assert answer.mode == "none" and llm_server.requests == []


def test_timeout_falls_back_to_the_extractive_answer(llm_server, caplog):
    llm_server.mode, llm_server.sleep_seconds = "sleep", 2.0
    answer = generative_answer(question="urssaf", hits_with_entries=ranked(URSSAF, CPAM), llm=client(llm_server, timeout=0.3), threshold=THRESHOLD)
    assert answer.mode == "extractive" and answer.fallback_reason.startswith("timeout")
    assert answer.text.startswith("URSSAF : ")
    assert "fell back" in caplog.text


@pytest.mark.parametrize(
    "reply_mode, reply, reason",
    [
        ("malformed", None, "malformed reply: no JSON object"),
        ("script", '{"answer": "Voir [S5].", "sources": [5]}', "malformed reply: cites sources that do not exist"),
        ("script", '{"answer": "   ", "sources": [1]}', "malformed reply: empty answer"),
        ("script", "", "LLM error"),
    ],
)
def test_malformed_replies_fall_back_to_the_extractive_answer(llm_server, reply_mode, reply, reason):
    llm_server.mode = reply_mode
    if reply is not None:
        llm_server.replies.append(reply)
    answer = generative_answer(question="urssaf", hits_with_entries=ranked(URSSAF, CPAM), llm=client(llm_server), threshold=THRESHOLD)
    assert answer.mode == "extractive" and answer.fallback_reason.startswith(reason)
    assert [source.number for source in answer.sources] == [1, 2]


def test_translation_through_the_llm(llm_server):
    llm_server.replies.append("« Qu'est-ce que la CPAM ? »")
    assert translate_to_french("What is the CPAM?", llm=client(llm_server)) == "Qu'est-ce que la CPAM ?"
    assert "Traduis en français" in llm_server.requests[0]["messages"][0]["content"]

    llm_server.replies.append("qu'est-ce que la cpam")
    vocabulary = build_vocabulary([("CPAM", "acronym", ["Caisse primaire d'assurance maladie"])])
    llm = client(llm_server)
    processed = preprocess_query("what is the cpam", vocabulary=vocabulary, translate=lambda text: translate_to_french(text, llm=llm))
    assert processed.translation == "qu'est-ce que la cpam"
    assert processed.final == "qu'est-ce que la cpam Caisse primaire d'assurance maladie"


def test_an_unreachable_llm_raises_llm_error():
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(LLMError):
        LLMClient(base_url=f"http://127.0.0.1:{port}/v1", model="m", timeout=1).complete([{"role": "user", "content": "x"}])


# Issue #17: keyword hits, acronym expansions, English words


ANTS = EntryData(id=5, term="ANTS", kind="acronym", definition="Agence qui délivre passeports et cartes d'identité.",
                 variants=("Agence nationale des titres sécurisés",))


def keyword_case(*, ants_lexical: float, second_lexical: float):
    """The best hit is a weak dense match; ANTS, at rank 2, is BM25's first hit."""
    best = SearchHit(entry_id=CPAM.id, passage=Passage(CPAM.id, "definition", 0, CPAM.definition), dense_score=0.3,
                     lexical_score=second_lexical, dense_rank=1, lexical_rank=2, fused_score=0.03, rank=1, exact_match=False)
    ants = SearchHit(entry_id=ANTS.id, passage=None, dense_score=None, lexical_score=ants_lexical, dense_rank=None,
                     lexical_rank=1, fused_score=0.02, rank=2, exact_match=False)
    return [(best, CPAM), (ants, ANTS)]


def test_a_strong_keyword_hit_answers_and_says_so():
    answer = extractive_answer(hits_with_entries=keyword_case(ants_lexical=9.0, second_lexical=3.0), threshold=THRESHOLD)
    assert answer.mode == "extractive"
    assert answer.text.startswith("Réponse trouvée par mots-clés")
    assert "ANTS (Agence nationale des titres sécurisés) : Agence qui délivre passeports" in answer.text
    assert [source.entry_id for source in answer.sources] == [ANTS.id, CPAM.id]


def test_a_keyword_hit_without_a_clear_lead_does_not_answer():
    answer = extractive_answer(hits_with_entries=keyword_case(ants_lexical=4.0, second_lexical=3.0), threshold=THRESHOLD)
    assert answer.mode == "none"


def test_the_expansion_of_an_acronym_is_given_in_english_words():
    urssaf = EntryData(id=1, term="URSSAF", kind="acronym", definition="Organisme qui collecte les cotisations sociales.",
                       variants=("Urssaf", "Union de recouvrement des cotisations de sécurité sociale et d'allocations familiales"),
                       contexts=("L'employeur déclare ses salariés à l'URSSAF.",))
    hits = [(hit(urssaf, 1, dense=0.2, exact=True), urssaf), (hit(CPAM, 2), CPAM)]
    answer = extractive_answer(hits_with_entries=hits, threshold=THRESHOLD, language="en")
    assert answer.text.startswith("URSSAF (Union de recouvrement des cotisations de sécurité sociale et d'allocations familiales): ")
    assert "Example of use: “L'employeur" in answer.text and "See also: CPAM [S2]." in answer.text
    assert "Exemple d'usage" not in answer.text and "Voir aussi" not in answer.text
    assert extractive_answer(hits_with_entries=[], threshold=THRESHOLD, language="en").text.startswith("I found no reliable answer")
