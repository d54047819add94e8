"""Logged questions the serving version was unsure about: the expert confirms which entry answers them, which
becomes a question -> entry training pair (a ``QuestionLabel``)."""
from __future__ import annotations

import hashlib
from datetime import timedelta

from django.utils import timezone
from django.utils.translation import gettext_lazy

from glossary.models import Domain, Entry
from glossary.text import fold
from retrieval.models import QuestionLog
from training import queue
from training.models import ReviewDecision, ReviewItem
from training.workbench import effects
from training.workbench.sources.base import MAX_ITEMS_PER_SOURCE, Decision, ItemCandidate, ReviewSource, ScanContext, Source, SourceScan, hit_candidates

QUESTION_SCAN = 2000
QUESTION_LOOKBACK = timedelta(days=60)
# Questions the serving version was this sure about are not worth an expert's time.
QUESTION_MIN_UNCERTAINTY = 0.5


def _question_key(question: str) -> str:
    # The same question asked again is one item (the latest asking), not a run of identical items.
    return "question:" + hashlib.sha1(fold(question).encode()).hexdigest()[:20]


def uncertain_question_items() -> SourceScan:
    """Recent unflagged questions the serving version was unsure about (small margin, low score, dense and
    lexical disagreeing, no answer), scored by ``queue.question_uncertainty``."""
    since = timezone.now() - QUESTION_LOOKBACK
    logs = QuestionLog.objects.filter(created_at__gte=since, flags__isnull=True).order_by("-created_at")[:QUESTION_SCAN]
    domain_ids = dict(Domain.objects.values_list("name", "pk"))
    existing_entries = set(Entry.objects.filter(status=Entry.Status.VALIDATED).values_list("pk", flat=True))
    by_key: dict[str, ItemCandidate] = {}
    for log in logs:
        key = _question_key(log.question)
        if key in by_key:
            continue
        hits = [hit for hit in log.hits or [] if hit.get("entry_id") in existing_entries]
        dense_top, lexical_top = queue.top_entries_by_ranking(hits)
        signals = queue.question_signals(
            top_score=log.top_score, margin=log.score_margin, dense_top_entry=dense_top, lexical_top_entry=lexical_top, no_answer=log.no_answer
        )
        score = queue.question_uncertainty(signals)
        if score < QUESTION_MIN_UNCERTAINTY or not hits:
            continue
        by_key[key] = ItemCandidate(
            key=key,
            source=Source.QUESTION,
            score=score,
            signals=signals,
            payload={"question": log.question, "candidates": hit_candidates(hits), "all_entry_ids": [hit["entry_id"] for hit in hits]},
            domain_id=domain_ids.get(hits[0].get("domain") or ""),
            entry_id=hits[0]["entry_id"],
            question_log_id=log.pk,
        )
    return SourceScan(sorted(by_key.values(), key=lambda item: -item.score)[:MAX_ITEMS_PER_SOURCE])


class QuestionSource(ReviewSource):
    source = Source.QUESTION
    decisions = (Decision.CHOOSE, Decision.ACCEPT, Decision.REJECT, Decision.SKIP)
    labels = {
        Decision.CHOOSE: gettext_lazy("This is the right entry"),
        Decision.ACCEPT: gettext_lazy("The first result is right"),
        Decision.REJECT: gettext_lazy("No result fits"),
    }

    def scan(self, context: ScanContext) -> SourceScan:
        return uncertain_question_items()

    def apply(self, *, item: ReviewItem, decision: str, candidate_id: int | None, record: ReviewDecision, user) -> dict:
        if decision == Decision.REJECT:
            return {}
        entry_id = candidate_id if decision == Decision.CHOOSE else self.choosable(item)[0]["entry_id"]
        ranked = item.payload.get("all_entry_ids") or [candidate["entry_id"] for candidate in self.choosable(item)]
        return effects.label(item=item, entry_id=entry_id, ranked=ranked, record=record, user=user)

    def revert(self, effect: dict, user) -> None:
        effects.revert_label(effect)
