"""Validated train-side entries the serving version does not rank first for their own term: the expert teaches
it (a label), declares the entry above it equivalent, or sends the entry back to draft."""
from __future__ import annotations

import random

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from glossary.models import Entry
from retrieval import encoding, serving
from retrieval.models import ModelVersion
from training import queue, selectors
from training.models import ReviewDecision, ReviewItem
from training.workbench import effects
from training.workbench.sources.base import SHOWN_CANDIDATES, Decision, ItemCandidate, ReviewSource, ScanContext, Source, SourceScan, entry_candidate

SELF_RETRIEVAL_CHECKS = 300


def self_retrieval_items(*, version: ModelVersion, served: serving.ServedIndex, checks: int = SELF_RETRIEVAL_CHECKS) -> SourceScan:
    """Train-side validated entries that the serving version does not rank first for their own term.

    At most ``checks`` entries (a random sample: successive refreshes cover the glossary) are encoded in one
    batch and ranked against the served index in one matrix product. Homonyms (same term) do not count
    against each other.
    """
    indexed = {passage.entry_id for passage in served.vectors.passages}
    eligible = sorted(set(selectors.train_side_entries().values_list("pk", flat=True)) & indexed)
    sample = sorted(random.sample(eligible, min(checks, len(eligible))))
    if not sample:
        return SourceScan([], checked_keys=set())
    entries = {entry.pk: entry for entry in Entry.objects.filter(pk__in=sample).select_related("domain")}
    sample = [entry_id for entry_id in sample if entry_id in entries]
    homonyms: dict[str, set[int]] = {}
    for entry_id, key in Entry.objects.filter(pk__in=indexed).values_list("pk", "term_key"):
        homonyms.setdefault(key, set()).add(entry_id)
    ranks = queue.self_retrieval_ranks(
        query_vectors=encoding.encode_queries_with(version, [entries[entry_id].term for entry_id in sample]),
        passage_vectors=served.vectors.matrix,
        passage_entry_ids=[passage.entry_id for passage in served.vectors.passages],
        target_entry_ids=sample,
        ignored_entry_ids=[homonyms.get(entries[entry_id].term_key, set()) for entry_id in sample],
        show_above=SHOWN_CANDIDATES - 1,
    )
    above_entries = Entry.objects.in_bulk({entry_id for result in ranks for entry_id in result.above})
    candidates = []
    for entry_id, result in zip(sample, ranks):
        if result.rank <= 1:
            continue
        entry = entries[entry_id]
        shown = [
            entry_candidate(above_entries[other], score=score)
            for other, score in zip(result.above, result.above_scores)
            if other in above_entries
        ]
        candidates.append(
            ItemCandidate(
                key=f"self_retrieval:{entry_id}",
                source=Source.SELF_RETRIEVAL,
                score=queue.self_retrieval_score(result.rank),
                signals={"rank": result.rank},
                payload={"question": entry.term, "rank": result.rank, "candidates": [*shown, entry_candidate(entry)]},
                domain_id=entry.domain_id,
                entry_id=entry_id,
                other_entry_id=result.above[0] if result.above else None,
            )
        )
    return SourceScan(candidates, checked_keys={f"self_retrieval:{entry_id}" for entry_id in sample})


class SelfRetrievalSource(ReviewSource):
    source = Source.SELF_RETRIEVAL
    decisions = (Decision.ACCEPT, Decision.SAME, Decision.REJECT, Decision.SKIP)
    labels = {
        Decision.ACCEPT: gettext_lazy("The entry is right: learn it"),
        Decision.SAME: gettext_lazy("Same meaning as the first result"),
        Decision.REJECT: gettext_lazy("Entry to rework (draft)"),
    }

    def scan(self, context: ScanContext) -> SourceScan:
        return self_retrieval_items(version=context.version, served=context.served)

    def still_applies(self, item: ReviewItem) -> bool:
        return Entry.objects.filter(pk=item.entry_id, status=Entry.Status.VALIDATED).exists()

    def apply(self, *, item: ReviewItem, decision: str, candidate_id: int | None, record: ReviewDecision, user) -> dict:
        if decision == Decision.ACCEPT:
            ranked = item.payload.get("all_entry_ids") or [candidate["entry_id"] for candidate in self.choosable(item)]
            return effects.label(item=item, entry_id=item.entry_id, ranked=ranked, record=record, user=user)
        if decision == Decision.SAME:
            if not item.other_entry_id:
                raise ValidationError(_("No result is ranked above this entry."), code="no_candidate")
            return effects.equivalence(item.entry_id, item.other_entry_id, user)
        return effects.set_entry_status(item.entry_id, Entry.Status.DRAFT, user)

    def revert(self, effect: dict, user) -> None:
        effects.revert_entries(effect, user)
        effects.revert_label(effect)
        effects.revert_equivalence(effect)
