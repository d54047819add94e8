"""Likely duplicates: two validated entries whose definitions say the same thing. The expert merges one into
the other, declares them equivalent (both kept), or says their meanings differ."""
from __future__ import annotations

from django.utils.translation import gettext_lazy

from glossary.models import Entry
from retrieval import serving
from training import queue, selectors
from training.models import ReviewDecision, ReviewItem
from training.workbench import effects
from training.workbench.sources.base import (
    DUPLICATE_THRESHOLD, MAX_ITEMS_PER_SOURCE, SAME_TERM_DUPLICATE_THRESHOLD, Decision, ItemCandidate, ReviewSource, ScanContext, Source, SourceScan,
    entry_candidate, indexed_definitions,
)


def duplicate_items(*, served: serving.ServedIndex) -> SourceScan:
    """Pairs of validated entries whose definition passages are near-identical: under different terms
    (cosine >= DUPLICATE_THRESHOLD) or under the same term (>= SAME_TERM_DUPLICATE_THRESHOLD)."""
    entry_ids, vectors = indexed_definitions(served)
    if len(entry_ids) < 2:
        return SourceScan([])
    pairs = queue.near_duplicate_pairs(vectors, threshold=SAME_TERM_DUPLICATE_THRESHOLD)
    equivalent = selectors.equivalent_pairs()
    entries = Entry.objects.select_related("domain").in_bulk({entry_ids[i] for i, j, _s in pairs} | {entry_ids[j] for i, j, _s in pairs})
    candidates = []
    for i, j, similarity in pairs:
        first, second = sorted((entry_ids[i], entry_ids[j]))
        if first == second or frozenset((first, second)) in equivalent or first not in entries or second not in entries:
            continue
        same_term = entries[first].term_key == entries[second].term_key
        threshold = SAME_TERM_DUPLICATE_THRESHOLD if same_term else DUPLICATE_THRESHOLD
        if similarity < threshold:
            continue
        candidates.append(
            ItemCandidate(
                key=f"duplicate:{first}-{second}",
                source=Source.DUPLICATE,
                score=queue.duplicate_score(similarity=similarity, threshold=threshold),
                signals={"similarity": round(similarity, 4), "same_term": float(same_term)},
                payload={"similarity": similarity, "same_term": same_term, "candidates": [entry_candidate(entries[first]), entry_candidate(entries[second])]},
                domain_id=entries[first].domain_id,
                entry_id=first,
                other_entry_id=second,
            )
        )
        if len(candidates) >= MAX_ITEMS_PER_SOURCE:
            break
    return SourceScan(candidates)


class DuplicateSource(ReviewSource):
    source = Source.DUPLICATE
    decisions = (Decision.CHOOSE, Decision.SAME, Decision.REJECT, Decision.SKIP)
    labels = {
        Decision.CHOOSE: gettext_lazy("Keep this one, merge the other"),
        Decision.SAME: gettext_lazy("Same meaning, keep both"),
        Decision.REJECT: gettext_lazy("Different meanings"),
    }

    def scan(self, context: ScanContext) -> SourceScan:
        return duplicate_items(served=context.served)

    def still_applies(self, item: ReviewItem) -> bool:
        wanted = {item.entry_id, item.other_entry_id}
        return Entry.objects.filter(pk__in=wanted, status=Entry.Status.VALIDATED).count() == len(wanted)

    def apply(self, *, item: ReviewItem, decision: str, candidate_id: int | None, record: ReviewDecision, user) -> dict:
        if decision == Decision.CHOOSE:
            drop = item.other_entry_id if candidate_id == item.entry_id else item.entry_id
            return effects.merge(keep_id=candidate_id, drop_id=drop, user=user)
        if decision == Decision.SAME:
            return effects.equivalence(item.entry_id, item.other_entry_id, user)
        return {}

    def revert(self, effect: dict, user) -> None:
        effects.revert_entries(effect, user)
        effects.revert_equivalence(effect)
