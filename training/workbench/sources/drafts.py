"""Drafts waiting for validation: the expert validates, rejects, or merges the draft into a close entry."""
from __future__ import annotations

import numpy as np
from django.utils import timezone
from django.utils.translation import gettext_lazy

from glossary.models import Entry
from retrieval import encoding, serving
from retrieval.models import ModelVersion
from retrieval.passages import entry_passages
from training import queue
from training.models import ReviewDecision, ReviewItem
from training.workbench import effects
from training.workbench.sources.base import (
    DUPLICATE_THRESHOLD, SAME_TERM_DUPLICATE_THRESHOLD, Decision, ItemCandidate, ReviewSource, ScanContext, Source, SourceScan, entry_candidate,
    indexed_definitions,
)

DRAFT_CHECKS = 200


def draft_items(*, version: ModelVersion, served: serving.ServedIndex) -> SourceScan:
    """Drafts waiting for validation, oldest first, with the validated entries whose definitions are closest
    (a draft that repeats one of them should be merged into it rather than validated)."""
    drafts = list(Entry.objects.filter(status=Entry.Status.DRAFT).select_related("domain").order_by("created_at", "pk")[:DRAFT_CHECKS])
    if not drafts:
        return SourceScan([])
    entry_ids, vectors = indexed_definitions(served)
    similar: list[list[tuple[int, float]]] = [[] for _draft in drafts]
    if entry_ids:
        texts = [entry_passages(entry_id=d.pk, term=d.term, definition=d.definition, contexts=())[0].text for d in drafts]
        scores = encoding.encode_documents_with(version, texts) @ vectors.T
        for row in range(len(drafts)):
            best = np.argsort(-scores[row], kind="stable")[:3]
            similar[row] = [(entry_ids[column], float(scores[row, column])) for column in best]
    neighbours = Entry.objects.select_related("domain").in_bulk({entry_id for row in similar for entry_id, _score in row})
    now = timezone.now()
    candidates = []
    for draft, row in zip(drafts, similar):
        shown = [(neighbours[entry_id], score) for entry_id, score in row if entry_id in neighbours]
        duplicate = max(
            (
                score
                for entry, score in shown
                if score >= (SAME_TERM_DUPLICATE_THRESHOLD if entry.term_key == draft.term_key else DUPLICATE_THRESHOLD)
            ),
            default=None,
        )
        signals = {"age_days": round((now - draft.created_at).total_seconds() / 86400, 1)}
        if duplicate is not None:
            signals["duplicate_similarity"] = round(duplicate, 4)
        candidates.append(
            ItemCandidate(
                key=f"draft:{draft.pk}",
                source=Source.DRAFT,
                score=queue.draft_score(age_days=signals["age_days"], duplicate_similarity=duplicate),
                signals=signals,
                payload={"question": draft.term, "draft": entry_candidate(draft), "candidates": [entry_candidate(entry, score=score) for entry, score in shown]},
                domain_id=draft.domain_id,
                entry_id=draft.pk,
                other_entry_id=shown[0][0].pk if shown else None,
            )
        )
    return SourceScan(candidates)


class DraftSource(ReviewSource):
    source = Source.DRAFT
    decisions = (Decision.CHOOSE, Decision.ACCEPT, Decision.REJECT, Decision.SKIP)
    labels = {
        Decision.CHOOSE: gettext_lazy("Merge into this entry"),
        Decision.ACCEPT: gettext_lazy("Validate the draft"),
        Decision.REJECT: gettext_lazy("Reject the draft"),
    }

    def scan(self, context: ScanContext) -> SourceScan:
        return draft_items(version=context.version, served=context.served)

    def still_applies(self, item: ReviewItem) -> bool:
        return Entry.objects.filter(pk=item.entry_id, status=Entry.Status.DRAFT).exists()

    def apply(self, *, item: ReviewItem, decision: str, candidate_id: int | None, record: ReviewDecision, user) -> dict:
        if decision == Decision.CHOOSE:
            return effects.merge(keep_id=candidate_id, drop_id=item.entry_id, user=user)
        status = Entry.Status.VALIDATED if decision == Decision.ACCEPT else Entry.Status.REJECTED
        return effects.set_entry_status(item.entry_id, status, user)

    def revert(self, effect: dict, user) -> None:
        effects.revert_entries(effect, user)
