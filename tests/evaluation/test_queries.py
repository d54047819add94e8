"""Query sets: built from test-side concepts, de-duplicated, and read from a user's JSONL file."""
import json

from config.stored_messages import render
from evaluation.queries import EvalConcept, build_queries, group_by_term, normalise_query, parse_query_file

TVA = EvalConcept(1, "TVA", "acronym", "Fiscalité", "Taxe sur la valeur ajoutée.", ("La TVA est due.",), ("Qui paie la TVA ?",))
CSG_TAX = EvalConcept(2, "CSG", "acronym", "Social", "Contribution sociale généralisée.", (), ())
CSG_OTHER = EvalConcept(3, "csg", "acronym", "Budget", "Comité de suivi de la gestion.", (), ("c'est quoi CSG ?",))
CONCEPTS = [TVA, CSG_TAX, CSG_OTHER]


def by_text(queries):
    return {query.text: query for query in queries}


def test_term_cest_quoi_and_examples_per_concept():
    queries = by_text(build_queries([TVA]))
    assert list(queries) == ["TVA", "C'est quoi TVA ?", "Qui paie la TVA ?"]
    assert [q.source for q in queries.values()] == ["term", "cest_quoi", "example"]
    assert all(q.entry_ids == q.definition_entry_ids == frozenset({1}) for q in queries.values())
    assert queries["TVA"].domain == "Fiscalité" and queries["TVA"].kind == "acronym"


def test_duplicates_merge_their_relevant_entries_and_count_once():
    queries = build_queries(CONCEPTS)
    texts = [normalise_query(q.text) for q in queries]
    assert len(texts) == len(set(texts))
    csg = by_text(queries)["CSG"]
    assert csg.entry_ids == csg.definition_entry_ids == frozenset({2, 3})
    assert csg.source == "term"
    assert csg.domain is None  # two domains: the merged query belongs to neither
    # The example "c'est quoi CSG ?" is the same query as the generated "C'est quoi CSG ?".
    assert by_text(queries)["C'est quoi CSG ?"].entry_ids == frozenset({2, 3})
    assert len(queries) == 5


def test_flags_only_on_the_test_side():
    queries = by_text(build_queries([TVA], flagged=[("Taux de TVA  en 2024", 1), ("question d'entraînement", 99)]))
    assert queries["Taux de TVA en 2024"].source == "flag"
    assert queries["Taux de TVA en 2024"].entry_ids == frozenset({1})
    assert "question d'entraînement" not in queries


def jsonl(*records):
    return "\n".join(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in records).encode()


def test_query_file_relevance_and_errors_with_line_numbers():
    data = jsonl(
        {"query": "que veut dire CSG", "term": "CSG"},
        {"query": "la CSG sur les salaires", "term": "Csg", "definition": "  contribution sociale   généralisée "},
        "",
        {"query": "qui paie la TVA ?", "entry_ids": [1]},
        {"query": "inconnu", "term": "ZZZ"},
        "{not json",
        {"query": "sans cible"},
        {"query": "mauvais id", "entry_ids": [42]},
        {"query": "mauvaise définition", "term": "TVA", "definition": "Autre chose"},
        ["pas un objet"],
    )
    queries, errors = parse_query_file(data, concepts_by_term=group_by_term(CONCEPTS))
    found = by_text(queries)
    assert found["que veut dire CSG"].entry_ids == found["que veut dire CSG"].definition_entry_ids == frozenset({2, 3})
    salaries = found["la CSG sur les salaires"]
    assert salaries.entry_ids == frozenset({2, 3})
    assert salaries.definition_entry_ids == frozenset({2})
    assert salaries.domain == "Social"
    assert found["qui paie la TVA ?"].source == "file"
    assert [e.line for e in errors] == [5, 6, 7, 8, 9, 10]
    # The messages are stored messages (English source and parameters), shown in the reader's language.
    assert "ZZZ" in render(errors[0].message)
    assert "42" in render(errors[3].message)


def test_query_file_accepts_lines_and_merges_duplicates():
    lines = [json.dumps({"query": "TVA", "entry_ids": [1]}), json.dumps({"query": " tva ", "term": "CSG"})]
    queries, errors = parse_query_file(lines, concepts_by_term=group_by_term(CONCEPTS))
    assert errors == []
    assert len(queries) == 1
    assert queries[0].entry_ids == frozenset({1, 2, 3})


def test_glossary_scope_needs_one_sense_and_reads_kinds():
    data = jsonl(
        {"query": "que veut dire CSG", "term": "CSG"},
        {"query": "la CSG sur les salaires", "term": "CSG", "definition": "Contribution sociale généralisée", "kind": "acronym"},
        {"query": "qui paie la TVA ?", "entry_id": 1, "kind": "paraphrase"},
        {"query": "mauvais type", "entry_id": 1, "kind": "poème"},
    )
    queries, errors = parse_query_file(data, concepts_by_term=group_by_term(CONCEPTS), scope="glossary")
    assert [(e.line, "2 sens" in render(e.message)) for e in errors] == [(1, True), (4, False)]
    assert {(q.text, q.question_kind, q.definition_entry_ids) for q in queries} == {
        ("la CSG sur les salaires", "acronym", frozenset({2})), ("qui paie la TVA ?", "paraphrase", frozenset({1})),
    }
    # The test scope keeps its tolerant reading: a term names all its senses.
    queries, errors = parse_query_file(data, concepts_by_term=group_by_term(CONCEPTS))
    assert [e.line for e in errors] == [4] and len(queries) == 3
