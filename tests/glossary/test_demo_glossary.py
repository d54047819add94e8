"""Checks on the demo glossary shipped with the product (pure Python, no database)."""
import json
from collections import Counter
from pathlib import Path

import pytest

DEMO_GLOSSARY = Path(__file__).resolve().parents[2] / "glossary" / "fixtures" / "demo_glossary.jsonl"
KEYS = {"term", "definition", "domain", "kind", "variants", "contexts", "examples"}
DOMAINS = {
    "Administration interne et pilotage",
    "Droit public et commande publique",
    "Fiscalité et recouvrement",
    "Budget et comptabilité publique",
    "Trésor, dette et douanes",
    "Administratif et juridique général",
}


@pytest.fixture(scope="module")
def entries() -> list[dict]:
    lines = DEMO_GLOSSARY.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def test_every_line_is_an_object_with_exactly_the_expected_keys(entries):
    assert len(entries) >= 300
    for entry in entries:
        assert set(entry) == KEYS, entry.get("term")
        assert entry["term"].strip() == entry["term"] != ""
        assert entry["kind"] in {"acronym", "term"}
        assert isinstance(entry["variants"], list)
        assert all(isinstance(variant, str) and variant.strip() for variant in entry["variants"])


def test_six_domains_with_at_least_forty_entries_each(entries):
    per_domain = Counter(entry["domain"] for entry in entries)
    assert set(per_domain) == DOMAINS
    assert min(per_domain.values()) >= 40, per_domain


def test_definitions_and_contexts_are_present_and_sized(entries):
    for entry in entries:
        assert 60 <= len(entry["definition"]) <= 300, entry["term"]
        assert len(entry["contexts"]) >= 1, entry["term"]
        assert all(context.strip() for context in entry["contexts"]), entry["term"]


def test_examples_are_at_most_one_question_answer_pair(entries):
    for entry in entries:
        assert len(entry["examples"]) <= 1, entry["term"]
        for example in entry["examples"]:
            assert set(example) == {"question", "answer"}
            assert example["question"].strip() and example["answer"].strip()


def test_acronyms_and_terms_are_both_well_represented(entries):
    kinds = Counter(entry["kind"] for entry in entries)
    assert kinds["acronym"] > 0 and kinds["term"] > 0
    assert 0.5 <= kinds["acronym"] / len(entries) <= 0.7, kinds


def test_acronyms_list_their_expansion_among_variants(entries):
    for entry in entries:
        if entry["kind"] == "acronym":
            assert entry["variants"], entry["term"]


def test_at_least_eight_terms_have_two_distinct_meanings(entries):
    definitions_by_term: dict[str, set[str]] = {}
    for entry in entries:
        definitions_by_term.setdefault(entry["term"].casefold(), set()).add(entry["definition"].casefold())
    ambiguous = [term for term, definitions in definitions_by_term.items() if len(definitions) >= 2]
    assert len(ambiguous) >= 8, ambiguous


def test_no_entry_repeats_the_same_term_and_definition(entries):
    keys = Counter((entry["term"].casefold(), entry["definition"].casefold()) for entry in entries)
    duplicates = [key for key, count in keys.items() if count > 1]
    assert duplicates == []
