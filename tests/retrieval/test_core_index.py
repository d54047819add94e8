"""Passages, the exact vector index and the BM25 lexical index (synthetic vectors, no model)."""
import io
import sys

import numpy as np
import pytest

from retrieval.lexical import LexicalIndex, lexical_document, tokenize
from retrieval.passages import EntryData, Passage, entry_passages, passages_of
from retrieval.vector_index import FaissUnavailableError, FaissVectorIndex, VectorIndex


def unit_rows(count: int, dimension: int = 8, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(count, dimension)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def passages_for(entry_id: int, contexts: int = 1) -> list[Passage]:
    return entry_passages(
        entry_id=entry_id,
        term=f"T{entry_id}",
        definition=f"définition {entry_id}",
        contexts=[f"contexte {entry_id}.{i}" for i in range(contexts)],
    )


# Passages


def test_definition_passage_gets_the_term_only_when_missing():
    with_term = entry_passages(entry_id=1, term="URSSAF", definition="L'Urssaf collecte les cotisations.", contexts=[])
    assert with_term == [Passage(1, "definition", 0, "L'Urssaf collecte les cotisations.")]
    without = entry_passages(
        entry_id=2, term="CAF", definition="Caisse d'allocations familiales, pas un café.", contexts=["La CAF verse l'APL.", "  "]
    )
    assert without[0].text == "CAF : Caisse d'allocations familiales, pas un café."
    assert without[1] == Passage(2, "context", 1, "La CAF verse l'APL.")
    assert len(without) == 2  # blank contexts give no passage
    assert without[1].key == "2:context:1"


def test_passages_of_entry_data():
    entry = EntryData(id=5, term="Élysée", definition="Palais présidentiel.", contexts=("Réunion à l'Élysée.",))
    assert [p.key for p in passages_of(entry)] == ["5:definition:0", "5:context:1"]
    assert passages_of(entry)[0].text == "Élysée : Palais présidentiel."


# Vector index


def test_search_returns_best_cosine_first():
    passages = [p for entry_id in (1, 2, 3) for p in passages_for(entry_id)]
    vectors = unit_rows(len(passages))
    index = VectorIndex.build(passages, vectors)
    results = index.search(vectors[3], top_k=2)
    assert results[0][0] == passages[3] and results[0][1] == pytest.approx(1.0, abs=1e-5)
    assert len(results) == 2 and results[0][1] >= results[1][1]
    expected_order = np.argsort(-(vectors @ vectors[3]))
    assert [p for p, _ in index.search(vectors[3], top_k=10)] == [passages[i] for i in expected_order]
    assert index.keys[0] == "1:definition:0"


def test_scan_scores_are_the_exact_products_and_leave_the_process_blas_setting_as_it_was():
    from threadpoolctl import threadpool_info, threadpool_limits

    from retrieval.vector_index import scores_of

    matrix, query = unit_rows(3000, dimension=64, seed=4), unit_rows(1, dimension=64, seed=5)[0]
    with threadpool_limits(limits=2, user_api="blas"):  # a process whose BLAS has a pool: the scan does not use it
        before = [library["num_threads"] for library in threadpool_info() if library["user_api"] == "blas"]
        scores = scores_of(matrix, query)
        after = [library["num_threads"] for library in threadpool_info() if library["user_api"] == "blas"]
    assert after == before
    assert scores.dtype == np.float32 and scores.shape == (3000,)
    np.testing.assert_allclose(scores, matrix.astype(np.float64) @ query.astype(np.float64), atol=1e-6)


def test_upsert_and_remove_equal_a_rebuild():
    entries = {entry_id: passages_for(entry_id, contexts=entry_id % 3) for entry_id in range(1, 8)}
    vectors = {entry_id: unit_rows(len(ps), seed=entry_id) for entry_id, ps in entries.items()}
    original_vectors = np.vstack(list(vectors.values()))
    index = VectorIndex.build([p for ps in entries.values() for p in ps], original_vectors)
    before = original_vectors.copy()

    entries[3] = passages_for(3, contexts=4)  # edited: more contexts
    vectors[3] = unit_rows(5, seed=33)
    index.upsert_entry(3, entries[3], vectors[3])
    entries[4] = entry_passages(entry_id=4, term="T4", definition="nouvelle définition", contexts=["nouveau contexte"])
    vectors[4] = unit_rows(2, seed=44)  # same passage count: rewritten in place
    index.upsert_entry(4, entries[4], vectors[4])
    del entries[5], vectors[5]
    index.remove_entry(5)
    index.remove_entry(99)  # not indexed: nothing happens
    entries[9], vectors[9] = passages_for(9), unit_rows(2, seed=9)
    index.upsert_entry(9, entries[9], vectors[9])

    rebuilt = VectorIndex.build([p for ps in entries.values() for p in ps], np.vstack(list(vectors.values())))
    assert sorted(index.keys) == sorted(rebuilt.keys)
    query = unit_rows(1, seed=123)[0]
    ours_found, theirs_found = index.search(query, top_k=6), rebuilt.search(query, top_k=6)
    assert [p for p, _ in ours_found] == [p for p, _ in theirs_found]
    assert [score for _, score in ours_found] == pytest.approx([score for _, score in theirs_found], abs=1e-6)
    ours = {p.key: row for p, row in zip(index.passages, index.matrix)}
    theirs = {p.key: row for p, row in zip(rebuilt.passages, rebuilt.matrix)}
    for key, row in theirs.items():
        np.testing.assert_array_equal(ours[key], row)
    assert index.matrix.flags["C_CONTIGUOUS"] and index.matrix.dtype == np.float32
    np.testing.assert_array_equal(original_vectors, before)  # the caller's array is never written to


def test_upsert_refuses_foreign_passages_and_wrong_dimensions():
    index = VectorIndex.build(passages_for(1), unit_rows(2))
    with pytest.raises(ValueError):
        index.upsert_entry(2, passages_for(3), unit_rows(2))
    with pytest.raises(ValueError):
        index.upsert_entry(2, passages_for(2), unit_rows(2, dimension=4))


def test_empty_index_grows_from_nothing():
    index = VectorIndex.build([], np.zeros((0, 8), dtype=np.float32))
    assert index.search(unit_rows(1)[0], top_k=3) == []
    index.upsert_entry(1, passages_for(1), unit_rows(2))
    assert len(index) == 2 and index.search(unit_rows(2)[0], top_k=1)[0][0].key == "1:definition:0"


def test_bytes_round_trip_without_pickle():
    passages = passages_for(1, contexts=2) + entry_passages(entry_id=2, term="Élysée", definition="Palais « présidentiel »", contexts=[])
    index = VectorIndex.build(passages, unit_rows(len(passages)))
    data = index.to_bytes()
    restored = VectorIndex.from_bytes(data)
    assert restored.passages == index.passages
    np.testing.assert_array_equal(restored.matrix, index.matrix)
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:  # loads without pickle
        assert set(archive.files) == {"matrix", "meta"}


def test_faiss_variant_explains_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)  # makes `import faiss` fail as if not installed
    with pytest.raises(FaissUnavailableError, match="faiss-cpu"):
        FaissVectorIndex(passages_for(1), unit_rows(2))


# Lexical


def test_tokenize_folds_case_accents_elisions_and_plurals():
    assert tokenize("C'est quoi l'URSSAF ?") == ["urssaf"]
    assert tokenize("Qu’est-ce que l’allocation adulte handicapé") == ["allocation", "adulte", "handicape"]
    assert tokenize("Les allocations d'État") == ["allocation", "etat"]
    assert tokenize("TVA 2024") == ["tva", "2024"]


def test_lexical_search_ranks_entries_by_bm25():
    entries = [
        EntryData(
            id=10,
            term="URSSAF",
            definition="Organisme qui collecte les cotisations sociales.",
            variants=("Union de recouvrement des cotisations de sécurité sociale",),
        ),
        EntryData(id=11, term="CPAM", definition="Caisse primaire d'assurance maladie.", kind="acronym"),
        EntryData(id=12, term="Cotisation", definition="Somme versée pour financer la protection sociale."),
    ]
    index = LexicalIndex.build([lexical_document(entry) for entry in entries])
    results = index.search("les cotisations de l'Urssaf", top_k=5)
    assert results[0][0] == 10 and {entry_id for entry_id, _ in results} == {10, 12}
    assert all(score > 0 for _, score in results)
    assert index.search("Assurance MALADIE", top_k=5)[0][0] == 11
    assert index.search("xyz inconnu", top_k=5) == []
    assert index.search("cotisation", top_k=1)[0][0] in {10, 12} and len(index.search("cotisation", top_k=1)) == 1
    assert LexicalIndex.build([]).search("urssaf", top_k=3) == []


def test_an_entry_delta_round_trips_and_applies_like_an_upsert_or_a_removal():
    from retrieval.vector_index import EntryDelta, compaction_due

    base = VectorIndex.build(passages_for(1, contexts=1) + passages_for(2, contexts=1), unit_rows(4))
    new_passages = passages_for(1, contexts=2)
    delta = EntryDelta.from_bytes(EntryDelta(1, tuple(new_passages), unit_rows(3, seed=5)).to_bytes())
    expected = VectorIndex.build(base.passages, base.matrix)
    expected.upsert_entry(1, new_passages, unit_rows(3, seed=5))
    delta.apply_to(base)
    assert base.keys == expected.keys
    np.testing.assert_allclose(base.matrix, expected.matrix)
    EntryDelta.from_bytes(EntryDelta.removal(2).to_bytes()).apply_to(base)
    assert {passage.entry_id for passage in base.passages} == {1}
    # Folded in when deltas hold a tenth of the index's passages, at least 200.
    assert not compaction_due(delta_passages=199, passage_count=100)
    assert compaction_due(delta_passages=200, passage_count=100)
    assert not compaction_due(delta_passages=9_999, passage_count=100_000) and compaction_due(delta_passages=10_000, passage_count=100_000)


def test_rows_of_entries_are_the_rows_of_their_passages_after_edits():
    index = VectorIndex.build(passages_for(1, contexts=2) + passages_for(2, contexts=1) + passages_for(3, contexts=0), unit_rows(6))
    index.upsert_entry(2, passages_for(2, contexts=3), unit_rows(4, seed=3))  # more passages: appended at the end
    index.remove_entry(1)
    index.upsert_entry(4, passages_for(4, contexts=1), unit_rows(2, seed=4))
    for wanted in ({1}, {2}, {3, 4}, {2, 3, 4, 9}, set()):
        expected = [row for row, passage in enumerate(index.passages) if passage.entry_id in wanted]
        assert index.rows_of_entries(wanted).tolist() == expected


LEXICAL_ENTRIES = [
    EntryData(id=10, term="URSSAF", definition="Organisme qui collecte les cotisations sociales."),
    EntryData(id=11, term="CPAM", definition="Caisse primaire d'assurance maladie.", kind="acronym"),
    EntryData(id=12, term="Cotisation", definition="Somme versée pour financer la protection sociale."),
    EntryData(id=13, term="CAF", definition="Caisse d'allocations familiales qui verse les prestations."),
]


def test_a_lexical_overlay_scores_a_document_exactly_as_the_full_build_does():
    index = LexicalIndex.build([lexical_document(entry) for entry in LEXICAL_ENTRIES])
    same = index.with_changes(changed=[lexical_document(LEXICAL_ENTRIES[1])])  # entry 11 rewritten as it was
    assert same.overlay_size == 1
    for query in ("caisse maladie", "cotisations sociales", "CPAM"):
        overlaid, built = same.search(query, top_k=5), index.search(query, top_k=5)
        assert [entry_id for entry_id, _ in overlaid] == [entry_id for entry_id, _ in built] and built
        assert [score for _, score in overlaid] == pytest.approx([score for _, score in built], rel=1e-5)


def test_a_lexical_overlay_serves_edits_additions_and_removals():
    index = LexicalIndex.build([lexical_document(entry) for entry in LEXICAL_ENTRIES])
    edited = EntryData(id=11, term="CPAM", definition="Caisse primaire zorglub.", kind="acronym")
    added = EntryData(id=14, term="CNAV", definition="Caisse nationale d'assurance vieillesse.", kind="acronym")
    changed = index.with_changes(changed=[lexical_document(edited), lexical_document(added)], removed=[13])
    assert changed.search("zorglub", top_k=5)[0][0] == 11  # a word no full build has seen
    assert 11 not in [entry_id for entry_id, _ in changed.search("assurance maladie", top_k=5)]  # its old text is gone
    assert changed.search("assurance vieillesse", top_k=5)[0][0] == 14
    assert changed.search("allocations familiales", top_k=5) == []  # removed
    assert len(changed) == 4 and len(index) == 4
    assert index.search("allocations familiales", top_k=5)[0][0] == 13  # the original is untouched
    again = changed.with_changes(changed=[lexical_document(LEXICAL_ENTRIES[3])])  # brought back
    assert again.search("allocations familiales", top_k=5)[0][0] == 13 and again.overlay_size == 3


def _overlay_scores_one_document_at_a_time(index: LexicalIndex, query: str) -> list[tuple[int, float]]:
    """The overlay's BM25 as it was computed before its term-document matrix: each document alone, in Python."""
    import math

    tokens = tokenize(query)
    k1, b, documents = index._bm25.k1, index._bm25.b, len(index.entry_ids)
    frequencies = index._document_frequencies
    idf = {token: math.log(1 + (documents - frequencies[token] + 0.5) / (frequencies[token] + 0.5)) for token in set(tokens)}
    scored = []
    for entry_id, (counts, length) in index._overlay.items():
        norm = k1 * ((1 - b) + b * length / index._average_length)
        score = sum(idf[token] * counts[token] / (norm + counts[token]) for token in tokens if token in counts)
        if score > 0:
            scored.append((entry_id, score))
    return scored


def test_the_overlay_matrix_scores_exactly_as_each_document_alone():
    index = LexicalIndex.build([lexical_document(entry) for entry in LEXICAL_ENTRIES])
    changed = index.with_changes(
        changed=[
            lexical_document(EntryData(id=11, term="CPAM", definition="Caisse primaire d'assurance maladie des assurés.", kind="acronym")),
            lexical_document(EntryData(id=14, term="CNAV", definition="Caisse nationale d'assurance vieillesse : caisse des retraites.")),
            lexical_document(EntryData(id=15, term="Zorglub", definition="Mot que seul l'overlay connaît, zorglub zorglub.")),
            lexical_document(LEXICAL_ENTRIES[0]),
        ],
        removed=[13],
    )
    queries = ("caisse", "caisse caisse assurance", "zorglub", "cotisations sociales", "assurance vieillesse retraites", "inconnu", "CPAM CNAV")
    for query in queries:
        expected = _overlay_scores_one_document_at_a_time(changed, query)
        assert changed._overlay_scores(tokenize(query)) == expected  # the same floats, in the same order
        ranked = changed.search(query, top_k=10)
        for entry_id, score in expected:
            assert (entry_id, score) in ranked
    assert changed.search("zorglub", top_k=3)[0][0] == 15 and changed.search("inconnu", top_k=3) == []


def test_a_layered_vocabulary_answers_like_one_built_with_the_new_entry():
    from retrieval.preprocess import LayeredVocabulary, build_vocabulary

    rows = [(entry.term, entry.kind, entry.variants, entry.definition) for entry in LEXICAL_ENTRIES]
    new = ("CNAV", "acronym", ("Caisse nationale d'assurance vieillesse",), "Caisse qui verse les retraites.")
    layered, full = LayeredVocabulary(build_vocabulary(rows), build_vocabulary([new])), build_vocabulary([*rows, new])
    for key in ("CNAV", "CPAM", "URSSAF"):
        assert (key in layered.acronyms, layered.acronyms.get(key)) == (key in full.acronyms, full.acronyms.get(key))
    for word in ("cnav", "vieillesse", "cotisations", "zorglub"):
        assert layered.knows(word) == full.knows(word)
    for typo in ("vieilesse", "cotisatons", "maladi"):
        assert layered.closest(typo, max_distance=2) == full.closest(typo, max_distance=2)
    assert layered.closest("vieilesse", max_distance=2) == ("vieillesse", 1) and not build_vocabulary(rows).knows("cnav")
