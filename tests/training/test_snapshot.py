from training.builder import ConceptData, build_pairs
from training.snapshot import pairs_from_jsonl, snapshot_of

CONCEPTS = [
    ConceptData(entry_id=1, term="URSSAF", kind="acronym", definition="Organisme de recouvrement.", contexts=("L'URSSAF relance.",), domain="Social"),
    ConceptData(entry_id=2, term="impôt", kind="term", definition="Prélèvement obligatoire.", examples=(("Qui paie l'impôt ?", "Les contribuables."),), domain="Fiscalité"),
]


def test_snapshot_counts_and_hash_do_not_depend_on_order():
    pairs = build_pairs(concepts=CONCEPTS, test_entry_ids=set(), questions_per_kind=0)
    snapshot = snapshot_of(pairs)

    assert snapshot.total == len(pairs) == 8
    assert snapshot.by_source == {"example": 2, "glossary": 6}
    assert snapshot.by_domain == {"Fiscalité": 4, "Social": 4}
    assert snapshot.by_pair_type == {"answer": 1, "context": 1, "definition": 6}
    assert snapshot.counts()["source"] == snapshot.by_source
    assert len(snapshot.content_hash) == 64
    assert snapshot_of(list(reversed(pairs))).content_hash == snapshot.content_hash


def test_snapshot_changes_with_the_content_and_round_trips():
    pairs = build_pairs(concepts=CONCEPTS, test_entry_ids=set(), questions_per_kind=0)
    snapshot = snapshot_of(pairs)
    changed = build_pairs(concepts=[CONCEPTS[0]], test_entry_ids=set(), questions_per_kind=0)
    assert snapshot_of(changed).content_hash != snapshot.content_hash

    lines = snapshot.jsonl_bytes.decode().splitlines()
    assert len(lines) == 8 and "URSSAF" in snapshot.jsonl_bytes.decode()  # UTF-8, not escaped
    restored = pairs_from_jsonl(snapshot.jsonl_bytes)
    assert sorted(restored, key=repr) == sorted(pairs, key=repr)
    assert snapshot_of(restored).content_hash == snapshot.content_hash
