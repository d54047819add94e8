"""Hard-negative mining with the glossary's exclusions and expert screening (pure numpy, no Django).

sentence-transformers' ``util.mine_hard_negatives`` ranks a corpus by similarity and skips the positive, but
a glossary needs more: a passage of the same entry is never a negative (it answers the same query), nor is an
entry that bears the same name (a synonym, or another meaning of the same acronym, which a bare term query
legitimately retrieves), nor a pair of entries experts declared equivalent. Candidates that look like false
negatives are not used but reported as *suspects* for the experts' screening queue:

* ``close_to_positive``: the candidate scores within ``relative_margin`` of the positive, above or below;
* ``same_acronym``: the anchor's entry is an acronym that the candidate passage or its entry's variants use;
* ``near_duplicate``: the candidate passage is a near copy of the positive (cosine >= ``duplicate_cosine``).

Screening decisions, keyed by (anchor entry id, negative entry id) in either order, are applied: "different"
keeps the candidate as a negative even when suspected, "same" excludes it and records the equivalence.

A candidate scoring clearly above its positive (beyond the margin) is neither used nor reported: with a weak
base model that is most candidates ranked above the positive, and the experts' queue would drown in them; they
are counted in ``skipped_above_positive``.

Scores are one matrix product per batch of anchors over L2-normalised embeddings (cosine = dot product).
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from glossary.text import fold
from retrieval.passages import Passage

DIFFERENT = "different"
SAME = "same"
CLOSE_TO_POSITIVE = "close_to_positive"
SAME_ACRONYM = "same_acronym"
NEAR_DUPLICATE = "near_duplicate"


@dataclass(frozen=True)
class MiningEntry:
    """The names of an entry, for the exclusions: its term, kind and variants."""

    entry_id: int
    term: str
    kind: str
    variants: tuple[str, ...] = ()

    def folded_names(self) -> set[str]:
        return {fold(name) for name in (self.term, *self.variants) if fold(name)}


@dataclass(frozen=True)
class MiningQuery:
    """One anchor to mine for: its text, the key of its positive passage in the corpus, and its entry."""

    anchor: str
    positive_key: str
    entry_id: int


@dataclass(frozen=True)
class MinedTriplet:
    anchor: str
    positive: str
    positive_key: str
    entry_id: int
    positive_score: float
    negatives: tuple[str, ...]
    negative_entry_ids: tuple[int, ...]
    negative_scores: tuple[float, ...]


@dataclass(frozen=True)
class Suspect:
    """A candidate negative that may be a false negative, for an expert to screen."""

    anchor: str
    anchor_entry_id: int
    negative_key: str
    negative_text: str
    negative_entry_id: int
    score: float
    positive_score: float
    reason: str


@dataclass
class MiningResult:
    triplets: list[MinedTriplet] = field(default_factory=list)
    suspects: list[Suspect] = field(default_factory=list)
    # Equivalences recorded from "same" decisions met during this mining.
    new_equivalences: set[frozenset[int]] = field(default_factory=set)
    skipped_above_positive: int = 0


def _decision(decisions: Mapping[tuple[int, int], str], anchor_entry: int, negative_entry: int) -> str | None:
    return decisions.get((anchor_entry, negative_entry)) or decisions.get((negative_entry, anchor_entry))


def _acronym_pattern(acronym: str) -> re.Pattern:
    return re.compile(rf"(?<![\w]){re.escape(acronym)}(?![\w])")


def excluded_entries(
    entries: Mapping[int, MiningEntry], equivalent_pairs: set[frozenset[int]]
) -> dict[int, set[int]]:
    """For each entry, the entries never used as its negatives: itself, same-named entries, equivalents."""
    by_name: dict[str, set[int]] = {}
    for entry in entries.values():
        by_name.setdefault(fold(entry.term), set()).add(entry.entry_id)
    excluded = {}
    for entry in entries.values():
        same_named = set().union(*(by_name.get(name, set()) for name in entry.folded_names()))
        excluded[entry.entry_id] = {entry.entry_id} | same_named
    for pair in equivalent_pairs:
        if len(pair) == 2:
            first, second = tuple(pair)
            excluded.setdefault(first, {first}).add(second)
            excluded.setdefault(second, {second}).add(first)
    return excluded


def mine_hard_negatives(
    *,
    queries: Sequence[MiningQuery],
    query_vectors: np.ndarray,
    passages: Sequence[Passage],
    passage_vectors: np.ndarray,
    entries: Mapping[int, MiningEntry],
    equivalent_pairs: set[frozenset[int]] = frozenset(),
    decisions: Mapping[tuple[int, int], str] | None = None,
    num_negatives: int = 1,
    range_min: int = 0,
    range_max: int = 50,
    relative_margin: float = 0.05,
    duplicate_cosine: float = 0.95,
    max_suspects_per_query: int = 3,
    batch_size: int = 512,
) -> MiningResult:
    """Mine up to ``num_negatives`` negatives per query, one passage per negative entry, best first.

    ``query_vectors`` and ``passage_vectors`` are L2-normalised (row ``i`` belongs to ``queries[i]`` /
    ``passages[i]``); the query vectors carry the query prompt, the passages the document prompt, as in
    serving. Among the allowed candidates (exclusions applied), the ``range_min`` best are skipped (likely
    unlabelled positives), then candidates are examined in rank order up to rank ``range_max``: one scoring
    clearly above the positive is skipped, a suspected one goes to ``suspects`` (unless screened "different"),
    and the others, which score at most ``positive_score * (1 - relative_margin)``, become negatives. Suspects are reported once per (anchor entry, negative
    entry) pair, the decision unit of the screening, and at most ``max_suspects_per_query`` per query (further
    suspected candidates are skipped unreported: a weak base model scores many candidates near the positive,
    and an endless queue would never be screened). Queries whose positive key is not in the corpus raise
    ``KeyError``.
    """
    decisions = decisions or {}
    if len(queries) != len(query_vectors) or len(passages) != len(passage_vectors):
        raise ValueError("each query and each passage needs exactly one vector")
    result = MiningResult()
    if not queries or not passages:
        return result
    key_to_row = {passage.key: row for row, passage in enumerate(passages)}
    passage_entries = np.array([passage.entry_id for passage in passages])
    excluded = excluded_entries(entries, set(equivalent_pairs))
    acronym_patterns = {
        entry.entry_id: _acronym_pattern(entry.term) for entry in entries.values() if entry.kind == "acronym"
    }
    window = min(len(passages), range_min + range_max)
    corpus = np.asarray(passage_vectors, dtype=np.float32)

    for start in range(0, len(queries), batch_size):
        batch = queries[start : start + batch_size]
        positive_rows = np.array([key_to_row[query.positive_key] for query in batch])
        scores = np.asarray(query_vectors[start : start + batch_size], dtype=np.float32) @ corpus.T
        positive_scores = scores[np.arange(len(batch)), positive_rows]
        for row, query in enumerate(batch):
            blocked = excluded.get(query.entry_id, {query.entry_id})
            scores[row, np.isin(passage_entries, list(blocked))] = -np.inf
        top = np.argpartition(-scores, window - 1, axis=1)[:, :window]
        for row, query in enumerate(batch):
            order = top[row][np.argsort(-scores[row, top[row]], kind="stable")]
            allowed = [column for column in order if np.isfinite(scores[row, column])][range_min:]
            _choose_negatives(
                query=query,
                positive_row=int(positive_rows[row]),
                positive_score=float(positive_scores[row]),
                candidates=allowed,
                scores=scores[row],
                passages=passages,
                corpus=corpus,
                entries=entries,
                acronym_pattern=acronym_patterns.get(query.entry_id),
                decisions=decisions,
                num_negatives=num_negatives,
                relative_margin=relative_margin,
                duplicate_cosine=duplicate_cosine,
                max_suspects=max_suspects_per_query,
                result=result,
            )
    result.suspects = _one_suspect_per_entry_pair(result.suspects)
    return result


def _one_suspect_per_entry_pair(suspects: list[Suspect]) -> list[Suspect]:
    """Screening decides per pair of entries, so show the experts each pair once, with its best-scoring anchor."""
    best: dict[tuple[int, int], Suspect] = {}
    for suspect in suspects:
        pair = (suspect.anchor_entry_id, suspect.negative_entry_id)
        if pair not in best or suspect.score > best[pair].score:
            best[pair] = suspect
    return list(best.values())


def _suspicion(
    *, candidate: Passage, score: float, positive_score: float, positive_vector: np.ndarray,
    candidate_vector: np.ndarray, entries: Mapping[int, MiningEntry], acronym_pattern: re.Pattern | None,
    relative_margin: float, duplicate_cosine: float,
) -> str | None:
    # abs() keeps the margin meaningful for a (rare) negative positive score.
    if score > positive_score - relative_margin * abs(positive_score):
        return CLOSE_TO_POSITIVE
    if acronym_pattern is not None:
        candidate_entry = entries.get(candidate.entry_id)
        names = (candidate_entry.variants if candidate_entry else ())
        if acronym_pattern.search(candidate.text) or any(acronym_pattern.fullmatch(name.strip()) for name in names):
            return SAME_ACRONYM
    if float(positive_vector @ candidate_vector) >= duplicate_cosine:
        return NEAR_DUPLICATE
    return None


def _choose_negatives(
    *, query: MiningQuery, positive_row: int, positive_score: float, candidates: list[int], scores: np.ndarray,
    passages: Sequence[Passage], corpus: np.ndarray, entries: Mapping[int, MiningEntry],
    acronym_pattern: re.Pattern | None, decisions: Mapping[tuple[int, int], str], num_negatives: int,
    relative_margin: float, duplicate_cosine: float, max_suspects: int, result: MiningResult,
) -> None:
    negatives: list[tuple[Passage, float]] = []
    suspected = 0
    used_entries: set[int] = set()
    for column in candidates:
        if len(negatives) >= num_negatives:
            break
        candidate = passages[column]
        if candidate.entry_id in used_entries:
            continue
        score = float(scores[column])
        decision = _decision(decisions, query.entry_id, candidate.entry_id)
        if decision == SAME:
            result.new_equivalences.add(frozenset((query.entry_id, candidate.entry_id)))
            used_entries.add(candidate.entry_id)
            continue
        if decision != DIFFERENT:
            if score > positive_score + relative_margin * abs(positive_score):
                result.skipped_above_positive += 1
                used_entries.add(candidate.entry_id)
                continue
            reason = _suspicion(
                candidate=candidate,
                score=score,
                positive_score=positive_score,
                positive_vector=corpus[positive_row],
                candidate_vector=corpus[column],
                entries=entries,
                acronym_pattern=acronym_pattern,
                relative_margin=relative_margin,
                duplicate_cosine=duplicate_cosine,
            )
            if reason:
                used_entries.add(candidate.entry_id)
                suspected += 1
                if suspected > max_suspects:
                    continue
                result.suspects.append(
                    Suspect(
                        anchor=query.anchor,
                        anchor_entry_id=query.entry_id,
                        negative_key=candidate.key,
                        negative_text=candidate.text,
                        negative_entry_id=candidate.entry_id,
                        score=score,
                        positive_score=positive_score,
                        reason=reason,
                    )
                )
                continue
        used_entries.add(candidate.entry_id)
        negatives.append((candidate, score))
    result.triplets.append(
        MinedTriplet(
            anchor=query.anchor,
            positive=passages[positive_row].text,
            positive_key=query.positive_key,
            entry_id=query.entry_id,
            positive_score=positive_score,
            negatives=tuple(passage.text for passage, _ in negatives),
            negative_entry_ids=tuple(passage.entry_id for passage, _ in negatives),
            negative_scores=tuple(score for _, score in negatives),
        )
    )
