from collections import Counter

import pytest

from training.split import SplitConcept, SplitLeakError, assert_no_leak, assign_splits


def concepts(count, *, domain="budget", kind="term", start=0, split=""):
    return [
        SplitConcept(entry_id=start + index, stable_key=f"{domain}-{kind}-{start + index}", domain=domain, kind=kind, split=split)
        for index in range(count)
    ]


def test_each_stratum_gets_its_share_of_test_concepts():
    pool = concepts(40, domain="budget") + concepts(20, domain="fiscalite", start=100) + concepts(10, kind="acronym", start=200)
    assignments = assign_splits(pool, test_ratio=0.1)

    assert set(assignments) == {concept.entry_id for concept in pool}
    tests_by_stratum = Counter(
        (concept.domain, concept.kind) for concept in pool if assignments[concept.entry_id] == "test"
    )
    assert tests_by_stratum == {("budget", "term"): 4, ("fiscalite", "term"): 2, ("budget", "acronym"): 1}


def test_assignment_is_deterministic_and_depends_on_the_seed():
    pool = concepts(50)
    assert assign_splits(pool) == assign_splits(list(reversed(pool)))
    test_side = {key for key, side in assign_splits(pool).items() if side == "test"}
    other_seed = {key for key, side in assign_splits(pool, seed=99).items() if side == "test"}
    assert len(test_side) == len(other_seed) == 5
    assert test_side != other_seed


def test_new_concepts_join_without_moving_the_old_ones():
    first = concepts(20)
    assigned = assign_splits(first)
    frozen = [
        SplitConcept(entry_id=c.entry_id, stable_key=c.stable_key, domain=c.domain, kind=c.kind, split=assigned[c.entry_id])
        for c in first
    ]
    newcomers = concepts(10, start=1000)

    new_assignments = assign_splits(frozen + newcomers)

    assert set(new_assignments) == {c.entry_id for c in newcomers}  # only the new ones are returned
    total_test = sum(side == "test" for side in assigned.values()) + sum(side == "test" for side in new_assignments.values())
    assert total_test == 3  # round(0.1 * 30)


def test_pinned_test_concepts_count_towards_the_quota():
    pinned = concepts(3, split="test")  # e.g. imported with --split test
    fresh = concepts(17, start=50)

    assignments = assign_splits(pinned + fresh)

    assert set(assignments.values()) == {"train"}  # 3 pinned >= round(0.1 * 20)
    assert not set(assignments) & {c.entry_id for c in pinned}


def test_small_strata_round_half_up_and_ratio_is_checked():
    assert Counter(assign_splits(concepts(5), test_ratio=0.1).values()) == {"train": 4, "test": 1}
    assert Counter(assign_splits(concepts(4), test_ratio=0.1).values()) == {"train": 4}
    with pytest.raises(ValueError):
        assign_splits(concepts(4), test_ratio=1.0)


def test_assert_no_leak_names_the_leaked_entries():
    assert_no_leak([1, 2, 3], [4, 5])
    with pytest.raises(SplitLeakError, match="2 entries.*3, 5"):
        assert_no_leak([1, 3, 5], [3, 5, 8])
