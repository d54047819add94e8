"""The active-learning review queue as pure functions: how useful each item is, and in which order to show them.

Each source has its own uncertainty score in [0, 1] (higher = an expert's answer teaches the model more).
The order then trades that score against diversity, maximal-marginal-relevance style (Carbonell & Goldstein,
1998): an item that looks like the ones just shown (same source, same domain, same entries) is pushed back,
so an expert never sees ten near-identical items in a row. Nothing here imports Django.
"""
from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

# ---- uncertainty per source ---------------------------------------------------------------------------

# A lead of the first entry over the second at or above this cosine gap counts as a confident ranking.
CONFIDENT_MARGIN = 0.10
# Best dense scores between these bounds go from "unsure" (1) to "sure" (0); model-agnostic enough for the
# normalised cosines of sentence-transformers models.
LOW_TOP_SCORE = 0.30
HIGH_TOP_SCORE = 0.70
# How strongly each signal alone makes a logged question worth asking about.
SIGNAL_WEIGHTS = {"no_answer": 0.9, "small_margin": 0.8, "low_top_score": 0.6, "dense_lexical_disagree": 0.5}


def _clip(value: float) -> float:
    return min(1.0, max(0.0, value))


def _noisy_or(strengths: Sequence[float]) -> float:
    """Combine independent pieces of evidence: any strong one is enough, several weak ones add up."""
    return _clip(1.0 - math.prod(1.0 - _clip(strength) for strength in strengths))


def question_signals(*, top_score: float | None, margin: float | None, dense_top_entry: int | None, lexical_top_entry: int | None, no_answer: bool) -> dict[str, float]:
    """Each uncertainty signal of a logged question, in [0, 1] (absent signals are left out)."""
    signals: dict[str, float] = {}
    if no_answer:
        signals["no_answer"] = 1.0
    if margin is not None:
        signals["small_margin"] = _clip(1.0 - margin / CONFIDENT_MARGIN)
    if top_score is not None:
        signals["low_top_score"] = _clip((HIGH_TOP_SCORE - top_score) / (HIGH_TOP_SCORE - LOW_TOP_SCORE))
    if dense_top_entry is not None and lexical_top_entry is not None and dense_top_entry != lexical_top_entry:
        signals["dense_lexical_disagree"] = 1.0
    return {name: value for name, value in signals.items() if value > 0}


def question_uncertainty(signals: dict[str, float]) -> float:
    """How unsure the serving version was about a question, from its ``question_signals``."""
    return _noisy_or([SIGNAL_WEIGHTS[name] * value for name, value in signals.items()])


def top_entries_by_ranking(hits: Sequence[dict]) -> tuple[int | None, int | None]:
    """(entry ranked first by the dense model, entry ranked first by BM25) among logged hits."""
    dense = next((hit["entry_id"] for hit in hits if hit.get("dense_rank") == 1), None)
    lexical = next((hit["entry_id"] for hit in hits if hit.get("lexical_rank") == 1), None)
    return dense, lexical


def flag_score(*, has_correct_entry: bool, about_retrieval: bool) -> float:
    """An open flag is a confirmed failure. It teaches most when nobody has said yet which entry was right;
    a flag about the wording of an answer (not about what was retrieved) teaches the embedding model little."""
    if not about_retrieval:
        return 0.3
    return 1.0 if not has_correct_entry else 0.6


# A mined negative scoring this far below its positive is clearly a different passage.
NEGATIVE_CLEAR_GAP = 0.10


def negative_suspicion(*, score: float, positive_score: float) -> float:
    """How likely a mined negative is a false negative: 1 when it scores as high as the positive, 0 when far below."""
    return _clip(1.0 - (positive_score - score) / NEGATIVE_CLEAR_GAP)


def self_retrieval_score(rank: int | None) -> float:
    """An entry missed for its own term: rank 2 -> 0.5, rank 10 -> 0.9, beyond the ranked list (None) -> 1."""
    if rank is None:
        return 1.0
    return _clip(1.0 - 1.0 / rank)


def duplicate_score(*, similarity: float, threshold: float) -> float:
    """Two definitions above the duplicate threshold: 0.5 at the threshold, 1 when identical."""
    return _clip(0.5 + 0.5 * (similarity - threshold) / max(1e-9, 1.0 - threshold))


# Drafts older than this have waited long enough to be as urgent as a draft can be.
DRAFT_PATIENCE_DAYS = 30


def draft_score(*, age_days: float, duplicate_similarity: float | None = None) -> float:
    """A draft waiting for validation: more urgent as it ages, much more when it may duplicate an entry."""
    waiting = 0.3 + 0.3 * _clip(age_days / DRAFT_PATIENCE_DAYS)
    if duplicate_similarity is None:
        return waiting
    return _noisy_or([waiting, _clip(duplicate_similarity)])


# ---- similarity searches over normalised vectors ---------------------------------------------------------

def near_duplicate_pairs(vectors: np.ndarray, *, threshold: float, chunk: int = 1024) -> list[tuple[int, int, float]]:
    """Pairs (i, j, cosine) with i < j whose rows of ``vectors`` (normalised) have cosine >= ``threshold``.

    Computed by blocks of ``chunk`` rows so memory stays bounded for large glossaries.
    """
    matrix = np.asarray(vectors, dtype=np.float32)
    pairs: list[tuple[int, int, float]] = []
    for start in range(0, matrix.shape[0], chunk):
        block = matrix[start:start + chunk] @ matrix.T
        rows, cols = np.nonzero(block >= threshold)
        for row, col in zip(rows.tolist(), cols.tolist()):
            i = start + row
            if i < col:
                pairs.append((i, col, float(block[row, col])))
    return sorted(pairs, key=lambda pair: (-pair[2], pair[0], pair[1]))


@dataclass(frozen=True)
class SelfRetrieval:
    """Where a target entry ranks (1-based, among entries) for a query, and the entries ranked above it."""

    rank: int
    above: tuple[int, ...]
    above_scores: tuple[float, ...]


def self_retrieval_ranks(
    *,
    query_vectors: np.ndarray,
    passage_vectors: np.ndarray,
    passage_entry_ids: Sequence[int],
    target_entry_ids: Sequence[int],
    ignored_entry_ids: Sequence[set[int]] | None = None,
    show_above: int = 9,
) -> list[SelfRetrieval]:
    """Rank every target entry for its query in one matrix product, an entry scoring as its best passage.

    ``ignored_entry_ids[i]`` are entries not counted against target i (e.g. homonyms: an acronym with two
    meanings cannot put both first for the bare acronym). A target without any passage ranks last.
    """
    entry_ids = np.asarray(passage_entry_ids, dtype=np.int64)
    if not len(entry_ids):
        return [SelfRetrieval(rank=1, above=(), above_scores=()) for _target in target_entry_ids]
    unique_ids, column_of_passage = np.unique(entry_ids, return_inverse=True)
    passage_scores = np.asarray(query_vectors, dtype=np.float32) @ np.asarray(passage_vectors, dtype=np.float32).T
    # Passages sorted by entry, then one maximum per entry over each contiguous run of columns.
    by_entry = np.argsort(column_of_passage, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(column_of_passage[by_entry]) != 0])
    entry_scores = np.maximum.reduceat(passage_scores[:, by_entry], starts, axis=1)
    column_by_id = {int(entry_id): column for column, entry_id in enumerate(unique_ids)}
    results = []
    for row, target in enumerate(target_entry_ids):
        scores = entry_scores[row].copy()
        for ignored in (ignored_entry_ids[row] if ignored_entry_ids else ()):
            if ignored != target and ignored in column_by_id:
                scores[column_by_id[ignored]] = -np.inf
        target_score = scores[column_by_id[target]] if target in column_by_id else -np.inf
        better = np.flatnonzero(scores > target_score)
        better = better[np.argsort(-scores[better], kind="stable")]
        results.append(
            SelfRetrieval(
                rank=len(better) + 1,
                above=tuple(int(unique_ids[column]) for column in better[:show_above]),
                above_scores=tuple(float(scores[column]) for column in better[:show_above]),
            )
        )
    return results


# ---- ordering: uncertainty with diversity ---------------------------------------------------------------

@dataclass(frozen=True)
class Rankable:
    """What the ordering needs to know of a queue item."""

    key: str
    score: float
    source: str
    domain: str | None = None
    entry_ids: frozenset[int] = field(default_factory=frozenset)


def item_similarity(a: Rankable, b: Rankable) -> float:
    """How alike two items look to an expert: about the same entries (1), else same source and domain."""
    if a.entry_ids & b.entry_ids:
        return 1.0
    return 0.5 * (a.source == b.source) + 0.3 * (a.domain is not None and a.domain == b.domain)


# Weight of the item's own score against its likeness to the items just placed (MMR's lambda).
RELEVANCE_WEIGHT = 0.6
# How many of the items just placed an item is compared with: diversity "in a row", not over the whole queue.
DIVERSITY_WINDOW = 5
# Per (source, domain) bucket, only this many best items compete at each step: same order, linear cost.
_BUCKET_HEADS = 3


def diverse_order(
    items: Sequence[Rankable],
    *,
    relevance_weight: float = RELEVANCE_WEIGHT,
    window: int = DIVERSITY_WINDOW,
    group_by_domain: bool = False,
) -> list[Rankable]:
    """Items in review order: greedily the best ``relevance_weight * score - (1 - relevance_weight) * likeness``
    where likeness is the highest ``item_similarity`` to the last ``window`` items placed.

    With ``group_by_domain`` the order is made of domain blocks (the block with the best item first), each
    block ordered the same way, so an expert can work through one domain at a time.
    """
    if group_by_domain:
        blocks: dict[str | None, list[Rankable]] = defaultdict(list)
        for item in items:
            blocks[item.domain].append(item)
        ordered_blocks = sorted(blocks.values(), key=lambda block: (-max(item.score for item in block), str(block[0].domain)))
        return [item for block in ordered_blocks for item in diverse_order(block, relevance_weight=relevance_weight, window=window)]

    buckets: dict[tuple[str, str | None], list[Rankable]] = defaultdict(list)
    for item in sorted(items, key=lambda item: (-item.score, item.key)):
        buckets[(item.source, item.domain)].append(item)
    order: list[Rankable] = []
    while buckets:
        recent = order[-window:] if window else []
        best_value, best_bucket, best_index = -math.inf, None, 0
        for bucket_key, bucket in buckets.items():
            for index, item in enumerate(bucket[:_BUCKET_HEADS]):
                likeness = max((item_similarity(item, placed) for placed in recent), default=0.0)
                value = relevance_weight * item.score - (1.0 - relevance_weight) * likeness
                if value > best_value or (value == best_value and item.key < buckets[best_bucket][best_index].key):
                    best_value, best_bucket, best_index = value, bucket_key, index
        order.append(buckets[best_bucket].pop(best_index))
        if not buckets[best_bucket]:
            del buckets[best_bucket]
    return order



# ---- how many to offer: a bounded queue, most useful first ---------------------------------------------

@dataclass(frozen=True)
class Offerable:
    """An item that could be offered; ``held`` items (an expert has them on screen) are always kept."""

    key: str
    source: str
    score: float
    held: bool = False


# No source takes more than this share of the offered items while others have items waiting.
MAX_SOURCE_SHARE = 0.5


def offered_keys(items: Sequence[Offerable], *, limit: int, max_source_share: float = MAX_SOURCE_SHARE) -> set[str]:
    """The keys of at most ``limit`` items to offer (``held`` ones always, even beyond it): the best scores first,
    no source above ``max_source_share`` of ``limit`` in a first pass, the room left then filled by score alone."""
    kept = {item.key for item in items if item.held}
    per_source: dict[str, int] = defaultdict(int)
    for item in items:
        if item.held:
            per_source[item.source] += 1
    share = max(1, math.ceil(limit * max_source_share))
    ranked = sorted((item for item in items if not item.held), key=lambda item: (-item.score, item.key))
    for item in ranked:
        if len(kept) >= limit:
            return kept
        if per_source[item.source] < share:
            kept.add(item.key)
            per_source[item.source] += 1
    for item in ranked:
        if len(kept) >= limit:
            break
        kept.add(item.key)
    return kept
