"""The frozen train/test split of concepts (pure functions, no Django).

A concept (one glossary entry: one meaning of a term) is assigned to the train or the test side once and
never moves, so that every benchmark of every model version is computed on the same test concepts and no
test concept ever reaches the training data. The split is grouped by entry (all the passages, variants and
example questions of an entry go to the same side) and stratified by (domain, kind): in each stratum about
``test_ratio`` of the concepts are test concepts.

Assignment is deterministic and incremental. Each concept is ranked by a seeded hash of a stable key (for
example the entry's ``term_key`` and definition hash), so the same glossary always gives the same split. When
new concepts arrive, the concepts already assigned (pinned by an import or assigned by an earlier call) keep
their side and are counted: a stratum needs ``round(test_ratio * stratum size)`` test concepts, minus those it
already has, and the missing ones are the unassigned concepts with the smallest hashes. The others go to train.
"""
from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Literal

TRAIN = "train"
TEST = "test"
Side = Literal["train", "test"]


@dataclass(frozen=True)
class SplitConcept:
    """What the split needs to know of one entry.

    ``split`` is the side the entry already has ("" when unassigned). An existing side, whether pinned by an
    import or assigned by an earlier call, is never changed.
    """

    entry_id: int
    stable_key: str
    domain: str | None
    kind: str
    split: str = ""


class SplitLeakError(ValueError):
    """A concept is on both sides of the split."""


def split_rank(stable_key: str, *, seed: int) -> int:
    """The seeded hash that orders candidates for the test side (smallest first)."""
    digest = hashlib.sha256(f"{seed}\x1f{stable_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def stratum_test_quota(stratum_size: int, *, test_ratio: float) -> int:
    """Number of test concepts a stratum of this size should hold (half rounds up, unlike ``round``)."""
    return math.floor(test_ratio * stratum_size + 0.5)


def assign_splits(
    concepts: Sequence[SplitConcept], *, test_ratio: float = 0.1, seed: int = 13
) -> dict[int, Side]:
    """Assign every unassigned concept to a side; return only the new assignments (entry id -> side).

    Concepts already on a side are counted in their stratum but never moved. A stratum that already holds
    more test concepts than its quota gets no new ones (nothing is moved back to train).
    """
    if not 0.0 <= test_ratio < 1.0:
        raise ValueError(f"test_ratio must be in [0, 1), got {test_ratio}")
    strata: dict[tuple[str | None, str], list[SplitConcept]] = defaultdict(list)
    for concept in concepts:
        if concept.split not in ("", TRAIN, TEST):
            raise ValueError(f"entry {concept.entry_id}: unknown split {concept.split!r}")
        strata[(concept.domain, concept.kind)].append(concept)

    assignments: dict[int, Side] = {}
    for members in strata.values():
        already_test = sum(1 for concept in members if concept.split == TEST)
        missing = max(0, stratum_test_quota(len(members), test_ratio=test_ratio) - already_test)
        unassigned = sorted(
            (concept for concept in members if not concept.split),
            key=lambda concept: (split_rank(concept.stable_key, seed=seed), concept.entry_id),
        )
        for position, concept in enumerate(unassigned):
            assignments[concept.entry_id] = TEST if position < missing else TRAIN
    return assignments


def assert_no_leak(train_entry_ids: Collection[int], test_entry_ids: Collection[int]) -> None:
    """Raise ``SplitLeakError`` naming the entries found on both sides."""
    leaked = set(train_entry_ids) & set(test_entry_ids)
    if leaked:
        shown = ", ".join(str(entry_id) for entry_id in sorted(leaked)[:20])
        raise SplitLeakError(f"{len(leaked)} entries are on both sides of the split: {shown}")
