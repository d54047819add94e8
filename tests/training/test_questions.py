"""The deterministic generators of natural-like questions (no Django); the kind rules are tested in
tests/retrieval/test_labelled_kinds.py."""
from dataclasses import dataclass

from glossary.text import fold
from training.questions import (
    KINDS,
    canary_queries,
    edit_distance,
    generated_questions,
    typo_variants,
)

DGFIP_DEF = "Direction générale des finances publiques"


def test_edit_distance_counts_swaps_as_one_edit():
    assert edit_distance("dgifp", "dgfip") == 1
    assert edit_distance("ursaff", "urssaf") == 2
    assert edit_distance("abc", "xyzuvw") == 3


def test_typo_variants_are_deterministic_close_and_never_the_term():
    variants = typo_variants("URSSAF", seed=3, count=3)
    assert variants == typo_variants("URSSAF", seed=3, count=3) and len(variants) == 3
    assert all(variant != "urssaf" and edit_distance(variant, "urssaf") <= 2 for variant in variants)
    assert typo_variants("UE", seed=3) == []


def test_generated_questions_are_deterministic_cover_the_kinds_and_use_english_glosses():
    make = lambda seed: generated_questions(  # noqa: E731
        entry_id=7, term="DGFIP", definition=DGFIP_DEF, variants=("Directorate General of Public Finances",), seed=seed, per_kind=2
    )
    first = make(13)
    assert first == make(13) and first != make(14)
    kinds = {question.kind for question in first}
    assert kinds == set(KINDS) - {"ambiguous"}  # not ambiguous: no other entry shares the term
    assert all(question.entry_id == 7 for question in first)
    reverse = [question.query for question in first if question.kind == "reverse"]
    assert all("dgfip" not in fold(query) for query in reverse) and any("finances" in query for query in reverse)
    assert any("Directorate General" in question.query for question in first if question.kind == "english")
    ambiguous = generated_questions(entry_id=8, term="CAF", definition="Caisse d'allocations familiales.", ambiguous=True, per_kind=2)
    assert not any(question.kind == "acronym" for question in ambiguous)  # a bare shared acronym settles nothing
    assert any(question.kind == "ambiguous" and "CAF" in question.query.upper() for question in ambiguous)


@dataclass(frozen=True)
class Concept:
    entry_id: int
    term: str
    definition: str
    variants: tuple[str, ...] = ()


TEST_SIDE = [
    Concept(1, "CAF", "Caisse d'allocations familiales"),
    Concept(2, "CAF", "Chef appui feu"),
    Concept(3, "DGFIP", DGFIP_DEF),
    Concept(4, "URSSAF", "Union de recouvrement des cotisations de sécurité sociale et d'allocations familiales"),
    Concept(5, "TVA", "Taxe sur la valeur ajoutée"),
]


def test_canary_covers_every_kind_only_with_the_given_entries_and_is_deterministic():
    canary = canary_queries(TEST_SIDE, seed=5, per_kind=3)
    assert canary == canary_queries(TEST_SIDE, seed=5, per_kind=3)
    assert {question.kind for question in canary} == set(KINDS)
    assert {question.entry_id for question in canary} <= {concept.entry_id for concept in TEST_SIDE}
    assert all(sum(question.kind == kind for question in canary) <= 3 for kind in KINDS)
    assert {question.entry_id for question in canary if question.kind == "ambiguous"} <= {1, 2}
    # Templates are not enough: the canary holds reverse look-ups that do not name the acronym.
    assert any(question.kind == "reverse" and not any(fold(c.term) in fold(question.query).split() for c in TEST_SIDE) for question in canary)
