"""The data snapshot of a training run: what exactly the model was trained on (pure functions).

Every model version records the content hash of its training pairs so that every benchmark number traces back
to immutable data. The canonical form is one JSON object per pair (sorted keys, UTF-8, compact separators),
lines sorted, so the same material gives the same hash whatever the order it was built in; the trainer shuffles
the pairs with its own seed anyway.
"""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from training.builder import TrainingPair


@dataclass(frozen=True)
class Snapshot:
    content_hash: str
    total: int
    by_source: dict[str, int] = field(default_factory=dict)
    by_domain: dict[str, int] = field(default_factory=dict)
    by_pair_type: dict[str, int] = field(default_factory=dict)
    jsonl_bytes: bytes = b""

    def counts(self) -> dict[str, dict[str, int]]:
        """The counts as one JSON-ready mapping (for a snapshot row or a report)."""
        return {"source": self.by_source, "domain": self.by_domain, "pair_type": self.by_pair_type}


def pair_record(pair: TrainingPair) -> dict:
    """A pair as a JSON-ready mapping (negatives as a list)."""
    record = asdict(pair)
    record["negatives"] = list(pair.negatives)
    return record


def canonical_jsonl(pairs: Sequence[TrainingPair]) -> bytes:
    lines = sorted(
        json.dumps(pair_record(pair), ensure_ascii=False, sort_keys=True, separators=(",", ":")) for pair in pairs
    )
    return "".join(line + "\n" for line in lines).encode("utf-8")


def _sorted_counts(values) -> dict[str, int]:
    return dict(sorted(Counter(values).items()))


def snapshot_of(pairs: Sequence[TrainingPair]) -> Snapshot:
    """Content hash (sha256 of the canonical JSONL), counts by source, domain and pair type, and the JSONL."""
    jsonl = canonical_jsonl(pairs)
    return Snapshot(
        content_hash=hashlib.sha256(jsonl).hexdigest(),
        total=len(pairs),
        by_source=_sorted_counts(pair.source for pair in pairs),
        by_domain=_sorted_counts(pair.domain or "" for pair in pairs),
        by_pair_type=_sorted_counts(pair.pair_type for pair in pairs),
        jsonl_bytes=jsonl,
    )


def pairs_from_jsonl(data: bytes) -> list[TrainingPair]:
    """Read back a snapshot's JSONL (to replay earlier material or to retrain on the exact same data)."""
    pairs = []
    for line in data.decode("utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            record["negatives"] = tuple(record["negatives"])
            pairs.append(TrainingPair(**record))
    return pairs
