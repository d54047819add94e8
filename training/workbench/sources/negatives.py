"""Mined negatives suspected to be false negatives: the expert says whether the two entries really differ.

The screening itself is training's service (``screening_decide``). Many anchors are queries the training-set
builder generated from an entry ("Exemple d'usage de DGFiP"), not questions a person asked: the item says so.
"""
from __future__ import annotations

from django.utils.translation import gettext_lazy

from glossary.text import fold
from training import queue, selectors
from training.builder import contextual_query, definitional_queries
from training.models import Equivalence, NegativeCandidate, ReviewDecision, ReviewItem
from training.services import screening_decide
from training.workbench import effects
from training.workbench.sources.base import MAX_ITEMS_PER_SOURCE, Decision, ItemCandidate, ReviewSource, ScanContext, Source, SourceScan, entry_candidate


def is_generated_query(anchor: str, candidate: NegativeCandidate) -> bool:
    """Whether ``anchor`` is one of the queries the builder writes for the anchor entry (its term, a variant,
    "C'est quoi … ?", "Exemple d'usage de …"), rather than a logged or expert-written question."""
    concept = selectors.concept_of(candidate.anchor_entry)
    generated = {fold(query) for query in (*definitional_queries(concept), contextual_query(concept))}
    return fold(anchor) in generated


def negative_items() -> SourceScan:
    """Mined negatives waiting for screening (never those of a cancelled run), most suspect (closest to the positive) first."""
    # Ordered by the negative's own score; suspicion also weighs the positive's: read more, keep the most suspect.
    pending = selectors.screening_queue().select_related("negative_entry__domain")[: MAX_ITEMS_PER_SOURCE * 4]
    candidates = [
        ItemCandidate(
            key=f"negative:{candidate.pk}",
            source=Source.NEGATIVE,
            score=queue.negative_suspicion(score=candidate.score, positive_score=candidate.positive_score),
            signals={"score": candidate.score, "positive_score": candidate.positive_score},
            payload={
                "question": candidate.anchor,
                "generated": is_generated_query(candidate.anchor, candidate),
                "reason": candidate.reason,
                "candidates": [
                    entry_candidate(candidate.anchor_entry, score=candidate.positive_score),
                    {**entry_candidate(candidate.negative_entry, score=candidate.score), "text": candidate.negative_text},
                ],
            },
            domain_id=candidate.anchor_entry.domain_id,
            entry_id=candidate.anchor_entry_id,
            other_entry_id=candidate.negative_entry_id,
            negative_id=candidate.pk,
        )
        for candidate in pending
    ]
    return SourceScan(sorted(candidates, key=lambda item: -item.score)[:MAX_ITEMS_PER_SOURCE])


class NegativeSource(ReviewSource):
    source = Source.NEGATIVE
    decisions = (Decision.ACCEPT, Decision.SAME, Decision.SKIP)
    labels = {
        Decision.ACCEPT: gettext_lazy("Really different"),
        Decision.SAME: gettext_lazy("Same meaning"),
    }

    def scan(self, context: ScanContext) -> SourceScan:
        return negative_items()

    def still_applies(self, item: ReviewItem) -> bool:
        return NegativeCandidate.objects.filter(pk=item.negative_id, decision=NegativeCandidate.Decision.PENDING).exists()

    def apply(self, *, item: ReviewItem, decision: str, candidate_id: int | None, record: ReviewDecision, user) -> dict:
        screening = NegativeCandidate.Decision.DIFFERENT if decision == Decision.ACCEPT else NegativeCandidate.Decision.SAME
        candidate = NegativeCandidate.objects.get(pk=item.negative_id)
        pair = sorted((candidate.anchor_entry_id, candidate.negative_entry_id))
        existed = Equivalence.objects.filter(entry_a_id=pair[0], entry_b_id=pair[1]).exists()
        screening_decide(candidate=candidate, decision=screening, user=user)
        effect: dict = {"negative_id": candidate.pk}
        if screening == NegativeCandidate.Decision.SAME and not existed:
            effect["equivalence_id"] = Equivalence.objects.get(entry_a_id=pair[0], entry_b_id=pair[1]).pk
        return effect

    def revert(self, effect: dict, user) -> None:
        effects.revert_equivalence(effect)
        if "negative_id" in effect:
            # training.services has no "undo a screening" yet (its owner is asked for one): the only write of
            # a NegativeCandidate outside that module, kept here, in the one place that needs it.
            NegativeCandidate.objects.filter(pk=effect["negative_id"]).update(decision=NegativeCandidate.Decision.PENDING, decided_by=None, decided_at=None)
