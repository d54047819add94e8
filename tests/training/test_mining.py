import numpy as np
import pytest

from retrieval.passages import Passage
from training.mining import MiningEntry, MiningQuery, excluded_entries, mine_hard_negatives


def unit(*values):
    vector = np.array(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def angle(degrees):
    """A unit vector at this angle from the x axis: cos(angle) is its score against the query (1, 0)."""
    radians = np.radians(degrees)
    return unit(np.cos(radians), np.sin(radians))


ENTRIES = {
    1: MiningEntry(1, "CA", "acronym", ("conseil d'administration",)),
    2: MiningEntry(2, "chiffre d'affaires", "term"),
    3: MiningEntry(3, "CA", "acronym", ("chiffre d'affaires",)),  # same acronym, another meaning
    4: MiningEntry(4, "budget", "term"),
    5: MiningEntry(5, "compte", "term"),
    6: MiningEntry(6, "dette", "term"),
}


def corpus(scores_by_key):
    """Passages whose score against the query vector (1, 0) is given, best first."""
    passages, vectors = [], []
    for key, degrees in scores_by_key.items():
        entry_id, passage_type, position = key.split(":")
        passages.append(Passage(int(entry_id), passage_type, int(position), f"text {key}"))
        vectors.append(angle(degrees))
    return passages, np.stack(vectors)


QUERY = [MiningQuery(anchor="CA", positive_key="1:definition:0", entry_id=1)]
QUERY_VECTOR = np.stack([unit(1, 0)])


def mine(passages, vectors, **options):
    options.setdefault("num_negatives", 2)
    return mine_hard_negatives(
        queries=QUERY, query_vectors=QUERY_VECTOR, passages=passages, passage_vectors=vectors, entries=ENTRIES, **options
    )


def test_exclusions_same_entry_same_name_and_equivalents():
    excluded = excluded_entries(ENTRIES, {frozenset((1, 6))})
    # 1 is "CA" (also named "conseil d'administration"); 3 is also "CA"; 6 is declared equivalent.
    assert excluded[1] == {1, 3, 6}
    # 3's variant "chiffre d'affaires" is entry 2's term: a synonym, never its negative.
    assert excluded[3] == {1, 2, 3}
    assert excluded[4] == {4}


def test_best_allowed_candidates_below_the_margin_become_negatives():
    passages, vectors = corpus(
        {
            "1:definition:0": 10,  # the positive, score cos(10°) = 0.985
            "1:context:1": 5,  # same entry: never a negative
            "3:definition:0": 12,  # another "CA": excluded
            "4:definition:0": 30,  # 0.866
            "4:context:1": 31,  # same negative entry: one passage per entry
            "5:definition:0": 40,  # 0.766
            "6:definition:0": 60,  # 0.5
        }
    )
    result = mine(passages, vectors)
    (triplet,) = result.triplets
    assert triplet.positive == "text 1:definition:0"
    assert triplet.negatives == ("text 4:definition:0", "text 5:definition:0")
    assert triplet.negative_entry_ids == (4, 5)
    assert triplet.negative_scores == pytest.approx((np.cos(np.radians(30)), np.cos(np.radians(40))), abs=1e-6)
    assert triplet.positive_score == pytest.approx(np.cos(np.radians(10)), abs=1e-6)
    assert result.suspects == []


def test_range_min_skips_the_top_candidates():
    passages, vectors = corpus({"1:definition:0": 10, "4:definition:0": 30, "5:definition:0": 40, "6:definition:0": 60})
    (triplet,) = mine(passages, vectors, range_min=1).triplets
    assert triplet.negative_entry_ids == (5, 6)


def test_suspects_close_to_positive_and_near_duplicates_go_to_screening():
    passages, vectors = corpus(
        {
            "1:definition:0": 20,  # positive 0.940
            "4:definition:0": 22,  # 0.927: within 5 % of the positive -> suspect
            "5:definition:0": 21.5,  # also within the margin
            "6:definition:0": 50,  # valid negative
        }
    )
    result = mine(passages, vectors, num_negatives=1)
    assert result.triplets[0].negative_entry_ids == (6,)
    assert {(suspect.negative_entry_id, suspect.reason) for suspect in result.suspects} == {
        (4, "close_to_positive"),
        (5, "close_to_positive"),
    }
    suspect = next(s for s in result.suspects if s.negative_entry_id == 4)
    assert suspect.anchor == "CA" and suspect.anchor_entry_id == 1 and suspect.negative_key == "4:definition:0"

    duplicates = mine(passages, vectors, num_negatives=1, relative_margin=0.0, duplicate_cosine=0.999)
    assert [(s.negative_entry_id, s.reason) for s in duplicates.suspects] == [(5, "near_duplicate"), (4, "near_duplicate")]


def test_candidates_far_above_the_positive_are_skipped_not_reported():
    passages, vectors = corpus({"1:definition:0": 60, "4:definition:0": 5, "5:definition:0": 80})
    result = mine(passages, vectors, num_negatives=1)
    assert result.triplets[0].negative_entry_ids == (5,)
    assert result.suspects == [] and result.skipped_above_positive == 1


def test_same_acronym_with_another_meaning_is_suspected():
    passages, vectors = corpus({"1:definition:0": 10, "4:definition:0": 40, "5:definition:0": 50})
    passages[1] = Passage(4, "definition", 0, "Le budget est voté par le CA chaque année.")
    result = mine(passages, vectors, num_negatives=1)
    assert [(s.negative_entry_id, s.reason) for s in result.suspects] == [(4, "same_acronym")]
    assert result.triplets[0].negative_entry_ids == (5,)


def test_screening_decisions_are_applied():
    passages, vectors = corpus(
        {"1:definition:0": 20, "4:definition:0": 22, "5:definition:0": 21.5, "6:definition:0": 50}
    )
    result = mine(passages, vectors, num_negatives=2, decisions={(1, 4): "different", (5, 1): "same"})
    assert result.triplets[0].negative_entry_ids == (4, 6)  # "different" overrides the suspicion
    assert result.suspects == []
    assert result.new_equivalences == {frozenset((1, 5))}


def test_every_query_is_mined_in_batches_and_unknown_positive_raises():
    passages, vectors = corpus({"1:definition:0": 10, "4:definition:0": 30, "5:definition:0": 40})
    queries = [MiningQuery(f"q{index}", "1:definition:0", 1) for index in range(5)]
    result = mine_hard_negatives(
        queries=queries, query_vectors=np.repeat(QUERY_VECTOR, 5, axis=0), passages=passages,
        passage_vectors=vectors, entries=ENTRIES, num_negatives=1, batch_size=2,
    )
    assert [t.anchor for t in result.triplets] == [f"q{index}" for index in range(5)]
    assert all(t.negative_entry_ids == (4,) for t in result.triplets)
    with pytest.raises(KeyError):
        mine_hard_negatives(
            queries=[MiningQuery("q", "9:definition:0", 9)], query_vectors=QUERY_VECTOR, passages=passages,
            passage_vectors=vectors, entries=ENTRIES,
        )


def test_suspects_per_query_are_capped():
    passages, vectors = corpus(
        {"1:definition:0": 20, "4:definition:0": 22, "5:definition:0": 21.5, "6:definition:0": 50}
    )
    result = mine(passages, vectors, num_negatives=1, max_suspects_per_query=1)
    assert [s.negative_entry_id for s in result.suspects] == [5]
    assert result.triplets[0].negative_entry_ids == (6,)
