"""Reciprocal rank fusion on a crafted case, exact matches first, single-signal modes, and a tiny real search."""
import pytest

from retrieval.catalogue import DEFAULT_MODEL_NAME, get_spec
from retrieval.embedding import encode_documents, encode_queries, load_model
from retrieval.hybrid import fuse
from retrieval.lexical import LexicalIndex, lexical_document
from retrieval.passages import EntryData, Passage, passages_of
from retrieval.vector_index import VectorIndex

DEF1, CTX1 = Passage(1, "definition", 0, "un"), Passage(1, "context", 1, "un bis")
DEF2_CTX = Passage(2, "context", 1, "deux")
DEF3 = Passage(3, "definition", 0, "trois")
DENSE = [(DEF1, 0.9), (DEF2_CTX, 0.85), (CTX1, 0.8), (DEF3, 0.7)]
LEXICAL = [(3, 12.0), (2, 8.0), (4, 5.0)]


def test_rrf_order_on_a_crafted_case():
    hits = fuse(dense=DENSE, lexical=LEXICAL, exact_entry_ids=(), top_k=10)
    # 3: 1/63 + 1/61 > 2: 1/62 + 1/62 > 1: 1/61 > 4: 1/63
    assert [hit.entry_id for hit in hits] == [3, 2, 1, 4]
    assert [hit.rank for hit in hits] == [1, 2, 3, 4]
    third = hits[0]
    assert (third.dense_rank, third.lexical_rank, third.dense_score, third.lexical_score) == (3, 1, 0.7, 12.0)
    assert third.fused_score == pytest.approx(1 / 63 + 1 / 61)
    first = hits[2]
    assert first.passage == DEF1 and first.dense_score == 0.9 and first.lexical_rank is None  # best passage kept
    assert hits[3].passage is None and hits[3].dense_rank is None
    assert not any(hit.exact_match for hit in hits)


def test_exact_matches_come_first_even_when_unranked():
    hits = fuse(dense=DENSE, lexical=LEXICAL, exact_entry_ids={4, 9}, top_k=3)
    assert [hit.entry_id for hit in hits] == [4, 9, 3]
    assert hits[0].exact_match and hits[1].exact_match and not hits[2].exact_match
    assert hits[1].fused_score == 0 and hits[1].passage is None


def test_dense_and_lexical_only_modes_ignore_the_other_signal():
    dense_only = fuse(dense=DENSE, lexical=LEXICAL, exact_entry_ids=(), top_k=10, mode="dense")
    assert [hit.entry_id for hit in dense_only] == [1, 2, 3]
    assert all(hit.lexical_score is None and hit.lexical_rank is None for hit in dense_only)
    lexical_only = fuse(dense=DENSE, lexical=LEXICAL, exact_entry_ids=(), top_k=2, mode="lexical")
    assert [hit.entry_id for hit in lexical_only] == [3, 2]
    assert all(hit.passage is None and hit.dense_score is None for hit in lexical_only)
    with pytest.raises(ValueError):
        fuse(dense=DENSE, lexical=LEXICAL, exact_entry_ids=(), top_k=2, mode="both")


def _fuse_building_every_hit(*, dense, lexical, exact_entry_ids, top_k, k=60, mode="hybrid", answered_entry_ids=()):
    """Fusion as it was before it built only the top_k hits: every entry a hit, all sorted, then cut."""
    from retrieval.hybrid import SearchHit, _entry_ranking_from_passages

    dense_ranking = _entry_ranking_from_passages(dense) if mode != "lexical" else {}
    lexical_ranking = {}
    if mode != "dense":
        for entry_id, score in sorted(lexical, key=lambda item: -item[1]):
            lexical_ranking.setdefault(entry_id, (len(lexical_ranking) + 1, score))
    exact, answered = set(exact_entry_ids), set(answered_entry_ids)
    hits = []
    for entry_id in dense_ranking.keys() | lexical_ranking.keys() | exact | answered:
        dense_rank, passage, dense_score = dense_ranking.get(entry_id, (None, None, None))
        lexical_rank, lexical_score = lexical_ranking.get(entry_id, (None, None))
        fused = sum(1.0 / (k + rank) for rank in (dense_rank, lexical_rank) if rank is not None)
        hits.append(SearchHit(entry_id, passage, dense_score, lexical_score, dense_rank, lexical_rank, fused, 0, entry_id in exact, entry_id in answered))
    unranked = float("inf")
    hits.sort(key=lambda hit: (not hit.answered, not hit.exact_match, -hit.fused_score, hit.dense_rank or unranked, hit.lexical_rank or unranked, hit.entry_id))
    hits = hits[:top_k]
    for position, hit in enumerate(hits, start=1):
        hit.rank = position
    return hits


def test_fusion_ranks_exactly_as_building_every_hit_did():
    import random

    rng = random.Random(7)
    for case in range(300):
        entries = list(range(1, rng.randint(2, 60)))
        # Few distinct scores: many ties, which the order must break the same way.
        dense = [(Passage(rng.choice(entries), rng.choice(["definition", "context"]), rng.randint(0, 3), "t"), rng.choice([0.5, 0.6, 0.7, 0.8]))
                 for _ in range(rng.randint(0, 50))]
        lexical = [(entry_id, rng.choice([1.0, 2.0, 3.0])) for entry_id in rng.sample(entries, rng.randint(0, len(entries)))]
        exact = set(rng.sample(entries + [999], rng.randint(0, min(3, len(entries) + 1))))
        answered = set(rng.sample(entries + [998], rng.randint(0, min(2, len(entries) + 1))))
        for mode in ("hybrid", "dense", "lexical"):
            top_k = rng.choice([1, 3, 10, 50, 100])
            got = fuse(dense=dense, lexical=lexical, exact_entry_ids=exact, answered_entry_ids=answered, top_k=top_k, mode=mode)
            expected = _fuse_building_every_hit(dense=dense, lexical=lexical, exact_entry_ids=exact, answered_entry_ids=answered, top_k=top_k, mode=mode)
            assert got == expected, (case, mode)


GLOSSARY = [
    EntryData(
        id=1,
        term="URSSAF",
        kind="acronym",
        definition="Organisme chargé de collecter les cotisations et contributions sociales des employeurs.",
        variants=("Union de recouvrement des cotisations de sécurité sociale et d'allocations familiales",),
        contexts=("L'employeur verse chaque mois les cotisations sociales à l'URSSAF.",),
    ),
    EntryData(
        id=2,
        term="CPAM",
        kind="acronym",
        definition="Caisse primaire d'assurance maladie, qui rembourse les soins des assurés.",
        contexts=("La CPAM rembourse la consultation chez le médecin.",),
    ),
    EntryData(id=3, term="Impôt sur le revenu", definition="Impôt annuel calculé sur les revenus du foyer fiscal."),
    EntryData(id=4, term="TVA", kind="acronym", definition="Taxe sur la valeur ajoutée, payée par le consommateur final."),
]


@pytest.fixture(scope="module")
def search_engine():
    spec = get_spec(DEFAULT_MODEL_NAME)
    model = load_model(spec, device="cpu")
    passages = [passage for entry in GLOSSARY for passage in passages_of(entry)]
    vectors = VectorIndex.build(passages, encode_documents(model, spec, [p.text for p in passages]))
    lexical = LexicalIndex.build([lexical_document(entry) for entry in GLOSSARY])

    def search(query: str, *, exact=(), mode="hybrid"):
        query_vector = encode_queries(model, spec, [query])[0]
        return fuse(dense=vectors.search(query_vector, top_k=20), lexical=lexical.search(query, top_k=20), exact_entry_ids=exact, top_k=4, mode=mode)

    return search


def test_a_real_hybrid_search_over_a_tiny_glossary(search_engine):
    hits = search_engine("cotisations sociales des employeurs")
    assert hits[0].entry_id == 1 and hits[0].dense_score is not None and hits[0].lexical_score is not None
    assert search_engine("remboursement des soins par l'assurance maladie", mode="lexical")[0].entry_id == 2
    assert search_engine("TVA", exact={4})[0].entry_id == 4
