"""The expert workbench: the review queue's sources, its refresh, leases, decisions and their undo.

Sources (each a selector returning its items with their own score in [0, 1], see ``training.queue``): open
flags, logged questions the serving version was unsure about, mined negatives suspected to be false
negatives, validated entries the serving version ranks below another entry for their own term, likely
duplicates, and drafts waiting for validation. A refresh rescans them, updates the open items in place
(decided items are never reopened), marks as obsolete what no longer applies, and orders the queue.

An expert leases one item at a time (a conditional UPDATE, so two experts never hold the same item); the
first decision on an item wins, a second one gets ``ReviewConflict``. Every decision keeps the item as it
was and what it changed, so it can be undone.
"""
from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from config.roles import MAINTAINER, has_role
from glossary import services as glossary_services
from glossary.models import Domain, Entry
from glossary.text import fold, term_key
from retrieval import selectors as retrieval_selectors
from retrieval import serving
from retrieval import services as retrieval_services
from retrieval.models import Flag, ModelVersion, QuestionLog
from retrieval.passages import DEFINITION, entry_passages
from training import queue, selectors
from training.models import Equivalence, NegativeCandidate, QuestionLabel, QueueRefresh, ReviewDecision, ReviewItem, TrainingRun
from training.services import screening_decide, training_config_default_get

logger = logging.getLogger("lexique.training")

Source = ReviewItem.Source
Decision = ReviewDecision.Decision

# An item shown to an expert is kept for them this long; then another expert may get it.
LEASE = timedelta(minutes=int(getattr(settings, "REVIEW_LEASE_MINUTES", 10)))
# Bounds that keep a refresh to seconds on a CPU, whatever the size of the glossary and of the log.
MAX_ITEMS_PER_SOURCE = 500
SELF_RETRIEVAL_CHECKS = 300
DRAFT_CHECKS = 200
QUESTION_SCAN = 2000
QUESTION_LOOKBACK = timedelta(days=60)
# Questions the serving version was this sure about are not worth an expert's time.
QUESTION_MIN_UNCERTAINTY = 0.5
# Cosine of two definition passages from which they say the same thing: under different terms, and (a lower
# bar) under the same term, where near-identical meanings are duplicates rather than homonyms.
DUPLICATE_THRESHOLD = 0.92
SAME_TERM_DUPLICATE_THRESHOLD = 0.85
SHOWN_CANDIDATES = 9
# A refresh is due after a training run finished, or when the last one is this old.
REFRESH_MAX_AGE = timedelta(hours=1)
# A queued or running refresh older than this is taken as lost (worker gone) and no longer blocks a new one.
REFRESH_STALE_AFTER = timedelta(minutes=30)

# Which decisions make sense for each source (the UI shows exactly these; the service refuses others).
ALLOWED_DECISIONS: dict[str, tuple[str, ...]] = {
    Source.FLAG: (Decision.CHOOSE, Decision.ACCEPT, Decision.REJECT, Decision.SKIP),
    Source.QUESTION: (Decision.CHOOSE, Decision.ACCEPT, Decision.REJECT, Decision.SKIP),
    Source.NEGATIVE: (Decision.ACCEPT, Decision.SAME, Decision.SKIP),
    Source.SELF_RETRIEVAL: (Decision.ACCEPT, Decision.SAME, Decision.REJECT, Decision.SKIP),
    Source.DUPLICATE: (Decision.CHOOSE, Decision.SAME, Decision.REJECT, Decision.SKIP),
    Source.DRAFT: (Decision.CHOOSE, Decision.ACCEPT, Decision.REJECT, Decision.SKIP),
}

# What each decision means for each source, as the buttons say it.
DECISION_LABELS: dict[tuple[str, str], Any] = {
    (Source.FLAG, Decision.CHOOSE): gettext_lazy("C'est la bonne entrée"),
    (Source.FLAG, Decision.ACCEPT): gettext_lazy("Confirmer la correction"),
    (Source.FLAG, Decision.REJECT): gettext_lazy("Écarter le signalement"),
    (Source.QUESTION, Decision.CHOOSE): gettext_lazy("C'est la bonne entrée"),
    (Source.QUESTION, Decision.ACCEPT): gettext_lazy("Le premier résultat est juste"),
    (Source.QUESTION, Decision.REJECT): gettext_lazy("Aucun résultat ne convient"),
    (Source.NEGATIVE, Decision.ACCEPT): gettext_lazy("Vraiment différent"),
    (Source.NEGATIVE, Decision.SAME): gettext_lazy("Même sens"),
    (Source.SELF_RETRIEVAL, Decision.ACCEPT): gettext_lazy("L'entrée est juste : l'apprendre"),
    (Source.SELF_RETRIEVAL, Decision.SAME): gettext_lazy("Même sens que le premier résultat"),
    (Source.SELF_RETRIEVAL, Decision.REJECT): gettext_lazy("Entrée à retravailler (brouillon)"),
    (Source.DUPLICATE, Decision.CHOOSE): gettext_lazy("Garder celle-ci, fusionner l'autre"),
    (Source.DUPLICATE, Decision.SAME): gettext_lazy("Même sens, garder les deux"),
    (Source.DUPLICATE, Decision.REJECT): gettext_lazy("Sens différents"),
    (Source.DRAFT, Decision.CHOOSE): gettext_lazy("Fusionner dans cette entrée"),
    (Source.DRAFT, Decision.ACCEPT): gettext_lazy("Valider le brouillon"),
    (Source.DRAFT, Decision.REJECT): gettext_lazy("Rejeter le brouillon"),
}
SKIP_LABEL = gettext_lazy("Passer")


class ReviewConflict(ValidationError):
    """The item was decided (or is held) by someone else, or a decision cannot be undone any more."""


# ---- sources ------------------------------------------------------------------------------------------------

@dataclass
class ItemCandidate:
    """What a source proposes for the queue (plain data; the refresh turns it into a ReviewItem)."""

    key: str
    source: str
    score: float
    payload: dict[str, Any]
    signals: dict[str, float] = field(default_factory=dict)
    domain_id: int | None = None
    entry_id: int | None = None
    other_entry_id: int | None = None
    flag_id: int | None = None
    question_log_id: int | None = None
    negative_id: int | None = None


@dataclass
class SourceScan:
    """A source's items; ``checked_keys`` lists what a partial scan looked at (None: the whole source)."""

    candidates: list[ItemCandidate]
    checked_keys: set[str] | None = None


def _hit_candidates(hits: list[dict]) -> list[dict]:
    return [
        {
            "entry_id": hit["entry_id"],
            "term": hit.get("term", ""),
            "domain": hit.get("domain", ""),
            "passage_type": hit.get("passage_type"),
            "text": hit.get("passage_text", ""),
            "score": hit.get("dense_score"),
            "lexical_score": hit.get("lexical_score"),
        }
        for hit in hits[:SHOWN_CANDIDATES]
    ]


def _entry_candidate(entry: Entry, *, score: float | None = None) -> dict:
    return {
        "entry_id": entry.pk,
        "term": entry.term,
        "domain": entry.domain.name if entry.domain_id else "",
        "passage_type": DEFINITION,
        "text": entry.definition,
        "score": score,
        "lexical_score": None,
        "status": entry.status,
    }


def flag_items() -> SourceScan:
    """Open flags on bad answers: the expert says which logged candidate was right, or dismisses the flag."""
    flags = Flag.objects.filter(status=Flag.Status.OPEN).select_related("question_log").order_by("-created_at")[:MAX_ITEMS_PER_SOURCE]
    candidates = []
    for flag in flags:
        hits = flag.retrieved or flag.question_log.hits or []
        candidates.append(
            ItemCandidate(
                key=f"flag:{flag.pk}",
                source=Source.FLAG,
                score=queue.flag_score(has_correct_entry=flag.correct_entry_id is not None, about_retrieval=flag.reason != Flag.Reason.BAD_WORDING),
                payload={
                    "question": flag.question_log.question,
                    "candidates": _hit_candidates(hits),
                    "reason": flag.get_reason_display(),
                    "comment": flag.comment,
                    "correct_entry_id": flag.correct_entry_id,
                },
                domain_id=flag.domain_id,
                entry_id=flag.correct_entry_id or (hits[0]["entry_id"] if hits else None),
                flag_id=flag.pk,
                question_log_id=flag.question_log_id,
            )
        )
    return SourceScan(candidates)


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
            payload={"question": log.question, "candidates": _hit_candidates(hits), "all_entry_ids": [hit["entry_id"] for hit in hits]},
            domain_id=domain_ids.get(hits[0].get("domain") or ""),
            entry_id=hits[0]["entry_id"],
            question_log_id=log.pk,
        )
    return SourceScan(sorted(by_key.values(), key=lambda item: -item.score)[:MAX_ITEMS_PER_SOURCE])


def negative_items() -> SourceScan:
    """Mined negatives waiting for screening, most suspect (closest to the positive) first."""
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
                "reason": candidate.reason,
                "candidates": [
                    _entry_candidate(candidate.anchor_entry, score=candidate.positive_score),
                    {**_entry_candidate(candidate.negative_entry, score=candidate.score), "text": candidate.negative_text},
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


def _indexed_definitions(served: serving.ServedIndex) -> tuple[list[int], np.ndarray]:
    rows = [row for row, passage in enumerate(served.vectors.passages) if passage.passage_type == DEFINITION]
    return [served.vectors.passages[row].entry_id for row in rows], served.vectors.matrix[rows]


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
        query_vectors=serving.encode_queries_with(version, [entries[entry_id].term for entry_id in sample]),
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
            _entry_candidate(above_entries[other], score=score)
            for other, score in zip(result.above, result.above_scores)
            if other in above_entries
        ]
        candidates.append(
            ItemCandidate(
                key=f"self_retrieval:{entry_id}",
                source=Source.SELF_RETRIEVAL,
                score=queue.self_retrieval_score(result.rank),
                signals={"rank": result.rank},
                payload={"question": entry.term, "rank": result.rank, "candidates": [*shown, _entry_candidate(entry)]},
                domain_id=entry.domain_id,
                entry_id=entry_id,
                other_entry_id=result.above[0] if result.above else None,
            )
        )
    return SourceScan(candidates, checked_keys={f"self_retrieval:{entry_id}" for entry_id in sample})


def duplicate_items(*, served: serving.ServedIndex) -> SourceScan:
    """Pairs of validated entries whose definition passages are near-identical: under different terms
    (cosine >= DUPLICATE_THRESHOLD) or under the same term (>= SAME_TERM_DUPLICATE_THRESHOLD)."""
    entry_ids, vectors = _indexed_definitions(served)
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
                payload={"similarity": similarity, "same_term": same_term, "candidates": [_entry_candidate(entries[first]), _entry_candidate(entries[second])]},
                domain_id=entries[first].domain_id,
                entry_id=first,
                other_entry_id=second,
            )
        )
        if len(candidates) >= MAX_ITEMS_PER_SOURCE:
            break
    return SourceScan(candidates)


def draft_items(*, version: ModelVersion, served: serving.ServedIndex) -> SourceScan:
    """Drafts waiting for validation, oldest first, with the validated entries whose definitions are closest
    (a draft that repeats one of them should be merged into it rather than validated)."""
    drafts = list(Entry.objects.filter(status=Entry.Status.DRAFT).select_related("domain").order_by("created_at", "pk")[:DRAFT_CHECKS])
    if not drafts:
        return SourceScan([])
    entry_ids, vectors = _indexed_definitions(served)
    similar: list[list[tuple[int, float]]] = [[] for _draft in drafts]
    if entry_ids:
        texts = [entry_passages(entry_id=d.pk, term=d.term, definition=d.definition, contexts=())[0].text for d in drafts]
        scores = serving.encode_documents_with(version, texts) @ vectors.T
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
                payload={"question": draft.term, "draft": _entry_candidate(draft), "candidates": [_entry_candidate(entry, score=score) for entry, score in shown]},
                domain_id=draft.domain_id,
                entry_id=draft.pk,
                other_entry_id=shown[0][0].pk if shown else None,
            )
        )
    return SourceScan(candidates)


# ---- refresh ------------------------------------------------------------------------------------------------

_ITEM_FIELDS = ("score", "signals", "payload", "domain_id", "entry_id", "other_entry_id", "flag_id", "question_log_id", "negative_id", "version_id")


def review_items_upsert(*, source: str, scan: SourceScan, version: ModelVersion) -> dict[str, int]:
    """A refresh step for one source: create new items, update open ones in place (decided ones stay as they
    are), retire the open ones the scan looked at and no longer finds. Call ``review_queue_reorder`` after."""
    existing = {item.key: item for item in ReviewItem.objects.filter(source=source)}
    now = timezone.now()
    found = {candidate.key for candidate in scan.candidates}
    created, updated = [], []
    for candidate in scan.candidates:
        values = {
            "score": candidate.score, "signals": candidate.signals, "payload": candidate.payload, "domain_id": candidate.domain_id,
            "entry_id": candidate.entry_id, "other_entry_id": candidate.other_entry_id, "flag_id": candidate.flag_id,
            "question_log_id": candidate.question_log_id, "negative_id": candidate.negative_id, "version_id": version.pk,
        }
        item = existing.get(candidate.key)
        if item is None:
            created.append(ReviewItem(key=candidate.key, source=source, **values))
        elif item.status == ReviewItem.Status.OPEN:
            for name, value in values.items():
                setattr(item, name, value)
            item.refreshed_at = now
            updated.append(item)
    looked_at = scan.checked_keys if scan.checked_keys is not None else set(existing)
    retired = [key for key in looked_at - found if key in existing and existing[key].status == ReviewItem.Status.OPEN]
    ReviewItem.objects.bulk_create(created, batch_size=500, ignore_conflicts=True)
    ReviewItem.objects.bulk_update(updated, [*_ITEM_FIELDS, "refreshed_at"], batch_size=500)
    ReviewItem.objects.filter(key__in=retired, status=ReviewItem.Status.OPEN).update(status=ReviewItem.Status.OBSOLETE, leased_by=None, lease_expires_at=None)
    return {"found": len(found), "created": len(created), "updated": len(updated), "retired": len(retired)}


def review_queue_reorder() -> int:
    """Give every open item its place: uncertainty with diversity (``rank``), and grouped by domain (``domain_rank``)."""
    items = list(ReviewItem.objects.filter(status=ReviewItem.Status.OPEN).select_related("domain").only("pk", "score", "source", "domain__name", "entry_id", "other_entry_id"))
    rankables = [
        queue.Rankable(
            key=str(item.pk), score=item.score, source=item.source, domain=item.domain.name if item.domain_id else None,
            entry_ids=frozenset(entry_id for entry_id in (item.entry_id, item.other_entry_id) if entry_id),
        )
        for item in items
    ]
    by_pk = {item.pk: item for item in items}
    for position, rankable in enumerate(queue.diverse_order(rankables), start=1):
        by_pk[int(rankable.key)].rank = position
    for position, rankable in enumerate(queue.diverse_order(rankables, group_by_domain=True), start=1):
        by_pk[int(rankable.key)].domain_rank = position
    ReviewItem.objects.bulk_update(items, ["rank", "domain_rank"], batch_size=500)
    return len(items)


def _source_scans(version: ModelVersion) -> dict[str, Callable[[], SourceScan]]:
    served_cache: list[serving.ServedIndex] = []

    def served() -> serving.ServedIndex:
        if not served_cache:
            served_cache.append(retrieval_services.served_index_get(version=version))
        return served_cache[0]

    return {
        Source.FLAG: flag_items,
        Source.QUESTION: uncertain_question_items,
        Source.NEGATIVE: negative_items,
        Source.SELF_RETRIEVAL: lambda: self_retrieval_items(version=version, served=served()),
        Source.DUPLICATE: lambda: duplicate_items(served=served()),
        Source.DRAFT: lambda: draft_items(version=version, served=served()),
    }


def review_queue_refresh_request(*, trigger: str = QueueRefresh.Trigger.REQUEST, user=None) -> QueueRefresh:
    """Queue a refresh (after commit); a refresh already waiting or running is returned instead of a second one."""
    recent = timezone.now() - REFRESH_STALE_AFTER
    pending = QueueRefresh.objects.filter(status__in=(QueueRefresh.Status.QUEUED, QueueRefresh.Status.RUNNING), started_at__gte=recent).first()
    if pending is not None:
        return pending
    refresh = QueueRefresh.objects.create(trigger=trigger, requested_by=user if getattr(user, "is_authenticated", False) else None)
    transaction.on_commit(lambda: _enqueue_refresh(refresh.pk))
    return refresh


def _enqueue_refresh(refresh_id: int) -> None:
    from celery import current_app

    from training.tasks import refresh_review_queue

    try:
        # The default queue, not the training one: a refresh encodes a few hundred short texts and must not
        # wait behind a training run.
        refresh_review_queue.apply_async((refresh_id,), queue=current_app.conf.task_default_queue)
    except Exception as error:  # the broker is down: say so on the row rather than leave it queued forever
        logger.exception("Could not enqueue review queue refresh %s", refresh_id)
        QueueRefresh.objects.filter(pk=refresh_id).update(status=QueueRefresh.Status.FAILED, error=f"File d'attente indisponible : {error}", finished_at=timezone.now())


def review_queue_refresh_execute(*, refresh_id: int) -> QueueRefresh:
    """Rescan every source with the serving version and reorder the queue.

    A source that fails (e.g. the model cannot be loaded) leaves its items as they were; the others still
    refresh, and the row says which source failed and why.
    """
    refresh = QueueRefresh.objects.get(pk=refresh_id)
    version = retrieval_selectors.champion_version_get()
    QueueRefresh.objects.filter(pk=refresh.pk).update(status=QueueRefresh.Status.RUNNING, version=version)
    counts: dict[str, Any] = {}
    errors = []
    for source, scan in _source_scans(version).items():
        try:
            with transaction.atomic():
                counts[source] = review_items_upsert(source=source, scan=scan(), version=version)
        except Exception as error:
            logger.exception("Review queue source %s failed", source)
            errors.append(f"{source}: {type(error).__name__}: {error}")
    counts["open"] = review_queue_reorder()
    refresh.counts = counts
    refresh.version = version
    refresh.error = "\n".join(errors)
    refresh.status = QueueRefresh.Status.FAILED if errors else QueueRefresh.Status.SUCCEEDED
    refresh.finished_at = timezone.now()
    refresh.save(update_fields=["counts", "version", "error", "status", "finished_at"])
    return refresh


def review_queue_refresh_due() -> bool:
    """Never refreshed, a training run finished since the last refresh began, or the last one is too old."""
    last = QueueRefresh.objects.exclude(status=QueueRefresh.Status.FAILED).order_by("-started_at").first()
    if last is None:
        return True
    if last.started_at < timezone.now() - REFRESH_MAX_AGE:
        return True
    return TrainingRun.objects.filter(finished_at__gt=last.started_at).exists()


def refresh_on_new_champion(sender, instance, created: bool = False, raw: bool = False, **kwargs) -> None:
    """post_save receiver of retrieval's PromotionEvent: a new champion sees the glossary differently."""
    if created and not raw:
        review_queue_refresh_request(trigger=QueueRefresh.Trigger.CHAMPION)


# ---- reads --------------------------------------------------------------------------------------------------

def review_item_list(*, domain: str | None = None, source: str | None = None, status: str | None = ReviewItem.Status.OPEN) -> QuerySet[ReviewItem]:
    """Items in review order; ``domain`` is a domain slug."""
    items = ReviewItem.objects.select_related("domain", "leased_by")
    if status:
        items = items.filter(status=status)
    if domain:
        items = items.filter(domain__slug=domain)
    if source:
        items = items.filter(source=source)
    return items.order_by("rank", "pk")


def last_undoable_decision(*, user) -> ReviewDecision | None:
    return ReviewDecision.objects.filter(user=user, undone_at__isnull=True).select_related("item").order_by("-created_at", "-pk").first()


def last_refresh() -> QueueRefresh | None:
    return QueueRefresh.objects.order_by("-started_at", "-pk").first()


def workbench_counters() -> dict[str, Any]:
    """What the experts contributed since the last training run, and how much more triggers the next one."""
    material = selectors.new_material_count()
    threshold = training_config_default_get().min_new_material
    open_by_source = dict(ReviewItem.objects.filter(status=ReviewItem.Status.OPEN).values_list("source").annotate(n=Count("pk")))
    last_run = selectors.last_finished_run()
    decisions = ReviewDecision.objects.filter(undone_at__isnull=True).exclude(decision=Decision.SKIP)
    if last_run is not None:
        decisions = decisions.filter(created_at__gt=last_run.started_at)
    return {
        "material": material,
        "threshold": threshold,
        "missing": max(0, threshold - material["total"]),
        "decisions": decisions.count(),
        "open": sum(open_by_source.values()),
        "open_by_source": open_by_source,
    }


def item_actions(item: ReviewItem) -> list[dict[str, Any]]:
    """The decisions offered on ``item`` with their keys and labels: one per candidate for "choose"."""
    actions = []
    for decision in ALLOWED_DECISIONS[item.source]:
        if decision == Decision.CHOOSE:
            for position, candidate in enumerate(_choosable(item)[:9], start=1):
                actions.append({"decision": decision, "key": str(position), "candidate": candidate["entry_id"], "label": DECISION_LABELS[(item.source, decision)], "term": candidate["term"]})
            continue
        key = {Decision.ACCEPT: "a", Decision.REJECT: "r", Decision.SAME: "m", Decision.SKIP: "s"}[decision]
        label = SKIP_LABEL if decision == Decision.SKIP else DECISION_LABELS[(item.source, decision)]
        actions.append({"decision": decision, "key": key, "candidate": None, "label": label, "term": ""})
    return actions


def _choosable(item: ReviewItem) -> list[dict]:
    return list(item.payload.get("candidates") or [])


# ---- leases -------------------------------------------------------------------------------------------------

def _still_applies(item: ReviewItem) -> bool:
    """Whether what the item asks about is still undecided elsewhere (another page may have settled it)."""
    if item.source == Source.FLAG:
        return Flag.objects.filter(pk=item.flag_id, status=Flag.Status.OPEN).exists()
    if item.source == Source.NEGATIVE:
        return NegativeCandidate.objects.filter(pk=item.negative_id, decision=NegativeCandidate.Decision.PENDING).exists()
    if item.source == Source.DRAFT:
        return Entry.objects.filter(pk=item.entry_id, status=Entry.Status.DRAFT).exists()
    if item.source in (Source.SELF_RETRIEVAL, Source.DUPLICATE):
        wanted = {item.entry_id, item.other_entry_id} if item.source == Source.DUPLICATE else {item.entry_id}
        return Entry.objects.filter(pk__in=wanted, status=Entry.Status.VALIDATED).count() == len(wanted)
    return True


def _retire(item_id: int) -> None:
    ReviewItem.objects.filter(pk=item_id, status=ReviewItem.Status.OPEN).update(status=ReviewItem.Status.OBSOLETE, leased_by=None, lease_expires_at=None)


def _lease(*, item_id: int, user, now) -> bool:
    """Take the item for ``user`` if nobody else holds it: one conditional UPDATE, so only one expert wins."""
    free = Q(leased_by__isnull=True) | Q(lease_expires_at__lte=now) | Q(leased_by=user)
    return bool(ReviewItem.objects.filter(free, pk=item_id, status=ReviewItem.Status.OPEN).update(leased_by=user, lease_expires_at=now + LEASE))


def _release_others(*, user, keep_id: int | None) -> None:
    ReviewItem.objects.filter(leased_by=user).exclude(pk=keep_id).update(leased_by=None, lease_expires_at=None)


def review_item_next(*, user, domain: str | None = None, source: str | None = None, group_by_domain: bool = False) -> ReviewItem | None:
    """Lease the next item for ``user`` (the one they already hold first), or None when nothing is left.

    Items the user skipped are not served to them again (until they undo the skip); items that another page
    settled meanwhile are retired on the way.
    """
    now = timezone.now()
    held = review_item_list(domain=domain, source=source).filter(leased_by=user, lease_expires_at__gt=now).first()
    if held is not None and not _still_applies(held):
        _retire(held.pk)
    elif held is not None and _lease(item_id=held.pk, user=user, now=now):
        _release_others(user=user, keep_id=held.pk)
        held.refresh_from_db()
        return held
    skipped = ReviewDecision.objects.filter(user=user, decision=Decision.SKIP, undone_at__isnull=True).values("item_id")
    available = (
        review_item_list(domain=domain, source=source)
        .filter(Q(leased_by__isnull=True) | Q(lease_expires_at__lte=now))
        .exclude(pk__in=skipped)
        .order_by("domain_rank" if group_by_domain else "rank", "pk")
    )
    while True:
        batch = list(available.values_list("pk", flat=True)[:10])
        if not batch:
            return None
        for item_id in batch:
            if not _lease(item_id=item_id, user=user, now=now):
                continue  # another expert took it first
            item = ReviewItem.objects.select_related("domain", "entry", "leased_by").get(pk=item_id)
            if _still_applies(item):
                _release_others(user=user, keep_id=item.pk)
                return item
            _retire(item_id)


def review_item_release(*, item: ReviewItem, user) -> None:
    """Give an item back before its lease ends (the expert closed the page or changed filters)."""
    ReviewItem.objects.filter(pk=item.pk, leased_by=user).update(leased_by=None, lease_expires_at=None)


# ---- decisions ----------------------------------------------------------------------------------------------

def _entry_state(entry_id: int | None) -> dict | None:
    if not entry_id:
        return None
    row = Entry.objects.filter(pk=entry_id).values("status", "revision", "variants", "term", "definition").first()
    return row and dict(row)


def _snapshot(item: ReviewItem) -> dict[str, Any]:
    """The item, and what it was about, as they were when the expert decided."""
    snapshot: dict[str, Any] = {
        "key": item.key, "source": item.source, "score": item.score, "rank": item.rank, "signals": item.signals, "payload": item.payload,
        "version_id": item.version_id, "entry": _entry_state(item.entry_id), "other_entry": _entry_state(item.other_entry_id),
    }
    if item.flag_id:
        snapshot["flag"] = Flag.objects.filter(pk=item.flag_id).values("status", "correct_entry_id", "wrongly_ranked_entry_ids").first()
    if item.negative_id:
        snapshot["negative"] = NegativeCandidate.objects.filter(pk=item.negative_id).values("decision").first()
    return snapshot


def _entries_changed(*changes: tuple[Entry, dict]) -> dict:
    """The undo record of entry edits: each entry's fields before, and the revision our edit left it at."""
    return {"entries": [{"id": entry.pk, "before": before, "revision": entry.revision} for entry, before in changes]}


def _set_entry_status(entry_id: int, status: str, user) -> dict:
    entry = Entry.objects.get(pk=entry_id)
    before = {"status": entry.status}
    entry = glossary_services.entry_set_status(entry=entry, status=status, user=user)
    return _entries_changed((entry, before))


def _merge(*, keep_id: int, drop_id: int, user) -> dict:
    """Merge ``drop`` into ``keep``: its term and variants become variants of ``keep``, and it is rejected."""
    keep, drop = Entry.objects.get(pk=keep_id), Entry.objects.get(pk=drop_id)
    seen = {term_key(keep.term)} | {term_key(variant) for variant in keep.variants}
    added = []
    for name in (drop.term, *drop.variants):
        if term_key(name) not in seen:
            seen.add(term_key(name))
            added.append(name)
    changes = []
    if added:
        before = {"variants": list(keep.variants)}
        keep = glossary_services.entry_update(entry=keep, data={"variants": [*keep.variants, *added]}, user=user)
        changes.append((keep, before))
    before = {"status": drop.status}
    drop = glossary_services.entry_set_status(entry=drop, status=Entry.Status.REJECTED, user=user)
    changes.append((drop, before))
    return _entries_changed(*changes)


def _equivalence(first_id: int, second_id: int, user) -> dict:
    first, second = sorted((first_id, second_id))
    equivalence, created = Equivalence.objects.get_or_create(entry_a_id=first, entry_b_id=second, defaults={"decided_by": user})
    return {"equivalence_id": equivalence.pk} if created else {}


def _label(*, item: ReviewItem, entry_id: int, record: ReviewDecision, user) -> dict:
    """A confirmed question -> entry pair; the entries the serving version ranked above it become negatives."""
    ranked = item.payload.get("all_entry_ids") or [candidate["entry_id"] for candidate in _choosable(item)]
    above = ranked[: ranked.index(entry_id)] if entry_id in ranked else ranked
    label = QuestionLabel.objects.create(
        question=item.payload["question"], entry_id=entry_id, wrong_entry_ids=[other for other in above if other != entry_id],
        question_log_id=item.question_log_id, decision=record, created_by=user,
    )
    return {"label_id": label.pk}


def _flag_correct_entry(*, item: ReviewItem, entry_id: int) -> dict:
    flag = Flag.objects.select_for_update().get(pk=item.flag_id)
    before = {"correct_entry_id": flag.correct_entry_id, "wrongly_ranked_entry_ids": flag.wrongly_ranked_entry_ids, "domain_id": flag.domain_id}
    ranked = [hit["entry_id"] for hit in (flag.retrieved or flag.question_log.hits or [])]
    flag.correct_entry_id = entry_id
    flag.wrongly_ranked_entry_ids = ranked[: ranked.index(entry_id)] if entry_id in ranked else ranked
    flag.domain_id = Entry.objects.filter(pk=entry_id).values_list("domain_id", flat=True).first() or flag.domain_id
    flag.save(update_fields=["correct_entry", "wrongly_ranked_entry_ids", "domain"])
    return {"flag": {"id": flag.pk, "before": before}}


def _screen(*, item: ReviewItem, decision: str, user) -> dict:
    candidate = NegativeCandidate.objects.get(pk=item.negative_id)
    pair = sorted((candidate.anchor_entry_id, candidate.negative_entry_id))
    existed = Equivalence.objects.filter(entry_a_id=pair[0], entry_b_id=pair[1]).exists()
    screening_decide(candidate=candidate, decision=decision, user=user)
    effect: dict[str, Any] = {"negative_id": candidate.pk}
    if decision == NegativeCandidate.Decision.SAME and not existed:
        effect["equivalence_id"] = Equivalence.objects.get(entry_a_id=pair[0], entry_b_id=pair[1]).pk
    return effect


def _apply(*, item: ReviewItem, decision: str, candidate_id: int | None, record: ReviewDecision, user) -> dict:
    """Make the decision training material (or a glossary change); returns what to revert on undo."""
    source = item.source
    if source == Source.FLAG:
        if decision == Decision.CHOOSE:
            return _flag_correct_entry(item=item, entry_id=candidate_id)
        if decision == Decision.ACCEPT:
            if not Flag.objects.filter(pk=item.flag_id, correct_entry__isnull=False).exists():
                raise ValidationError(_("Ce signalement n'a pas encore de bonne entrée : choisissez-la (1-9)."), code="no_correct_entry")
            return {}
        flag = Flag.objects.get(pk=item.flag_id)
        before = {"status": flag.status}
        retrieval_services.flag_set_status(flag=flag, status=Flag.Status.DISMISSED, user=user)
        return {"flag": {"id": flag.pk, "before": before}}
    if source == Source.QUESTION:
        if decision == Decision.REJECT:
            return {}
        entry_id = candidate_id if decision == Decision.CHOOSE else _choosable(item)[0]["entry_id"]
        return _label(item=item, entry_id=entry_id, record=record, user=user)
    if source == Source.NEGATIVE:
        screening = NegativeCandidate.Decision.DIFFERENT if decision == Decision.ACCEPT else NegativeCandidate.Decision.SAME
        return _screen(item=item, decision=screening, user=user)
    if source == Source.SELF_RETRIEVAL:
        if decision == Decision.ACCEPT:
            return _label(item=item, entry_id=item.entry_id, record=record, user=user)
        if decision == Decision.SAME:
            if not item.other_entry_id:
                raise ValidationError(_("Aucun résultat n'est classé avant cette entrée."), code="no_candidate")
            return _equivalence(item.entry_id, item.other_entry_id, user)
        return _set_entry_status(item.entry_id, Entry.Status.DRAFT, user)
    if source == Source.DUPLICATE:
        if decision == Decision.CHOOSE:
            drop = item.other_entry_id if candidate_id == item.entry_id else item.entry_id
            return _merge(keep_id=candidate_id, drop_id=drop, user=user)
        if decision == Decision.SAME:
            return _equivalence(item.entry_id, item.other_entry_id, user)
        return {}
    # Source.DRAFT
    if decision == Decision.CHOOSE:
        return _merge(keep_id=candidate_id, drop_id=item.entry_id, user=user)
    status = Entry.Status.VALIDATED if decision == Decision.ACCEPT else Entry.Status.REJECTED
    return _set_entry_status(item.entry_id, status, user)


def _check_decision(item: ReviewItem, decision: str, candidate_id: int | None) -> None:
    if decision not in ALLOWED_DECISIONS[item.source]:
        raise ValidationError(
            _("La décision « %(decision)s » ne s'applique pas à un élément « %(source)s ».") % {"decision": decision, "source": item.get_source_display()},
            code="invalid_decision",
        )
    if decision == Decision.CHOOSE:
        if candidate_id not in {candidate["entry_id"] for candidate in _choosable(item)}:
            raise ValidationError(_("Choisissez l'une des entrées proposées."), code="invalid_candidate")


def _taken_message(item: ReviewItem) -> str:
    last = item.decisions.filter(undone_at__isnull=True).exclude(decision=Decision.SKIP).select_related("user").first()
    if last is not None:
        return _("Cet élément a déjà été traité par %(user)s (%(decision)s).") % {"user": last.user or "?", "decision": last.get_decision_display()}
    return _("Cet élément n'est plus à examiner.")


def review_item_decide(*, item: ReviewItem, user, decision: str, candidate: int | None = None) -> ReviewDecision:
    """Record ``user``'s decision on ``item`` and apply its effect; the first decision wins.

    ``candidate`` is the chosen entry's id (for "choose"). Raises ``ReviewConflict`` when the item was
    already decided, or is held by another expert, and ``ValidationError`` when the decision does not fit.
    """
    _check_decision(item, decision, candidate)
    now = timezone.now()
    try:
        with transaction.atomic():
            current = ReviewItem.objects.select_for_update().get(pk=item.pk)
            if current.status != ReviewItem.Status.OPEN:
                raise ReviewConflict(_taken_message(current), code="already_decided")
            if current.leased_by_id not in (None, user.pk) and current.lease_expires_at and current.lease_expires_at > now:
                raise ReviewConflict(_("Un autre expert examine cet élément en ce moment (%(user)s).") % {"user": current.leased_by}, code="leased")
            snapshot = _snapshot(current)
            if decision == Decision.SKIP:
                record = ReviewDecision.objects.create(item=current, user=user, decision=decision, snapshot=snapshot)
                review_item_release(item=current, user=user)
                return record
            closed = ReviewItem.objects.filter(pk=current.pk, status=ReviewItem.Status.OPEN).update(
                status=ReviewItem.Status.DONE, leased_by=None, lease_expires_at=None
            )
            if not closed:
                raise ReviewConflict(_taken_message(current), code="already_decided")
            record = ReviewDecision.objects.create(item=current, user=user, decision=decision, candidate_id=candidate, snapshot=snapshot)
            record.effect = _apply(item=current, decision=decision, candidate_id=candidate, record=record, user=user)
            record.save(update_fields=["effect"])
    except IntegrityError:
        # The one-standing-decision constraint: another expert's decision committed first.
        raise ReviewConflict(_taken_message(ReviewItem.objects.get(pk=item.pk)), code="already_decided") from None
    return record


def _revert(effect: dict, user) -> None:
    for change in reversed(effect.get("entries", [])):
        entry = Entry.objects.filter(pk=change["id"]).first()
        if entry is None:
            raise ReviewConflict(_("L'entrée n° %(id)s a été supprimée : la décision ne peut plus être annulée.") % {"id": change["id"]}, code="gone")
        try:
            glossary_services.entry_update(entry=entry, data=change["before"], user=user, expected_revision=change["revision"])
        except glossary_services.StaleEntryError:
            raise ReviewConflict(
                _("« %(term)s » a été modifiée depuis cette décision : annulez à la main depuis sa fiche.") % {"term": entry.term}, code="stale"
            ) from None
    if "label_id" in effect:
        QuestionLabel.objects.filter(pk=effect["label_id"]).delete()
    if "equivalence_id" in effect:
        Equivalence.objects.filter(pk=effect["equivalence_id"]).delete()
    if "negative_id" in effect:
        NegativeCandidate.objects.filter(pk=effect["negative_id"]).update(decision=NegativeCandidate.Decision.PENDING, decided_by=None, decided_at=None)
    if "flag" in effect:
        before = effect["flag"]["before"]
        flag = Flag.objects.filter(pk=effect["flag"]["id"]).first()
        if flag is not None and "status" in before:
            retrieval_services.flag_set_status(flag=flag, status=before["status"], user=user)
        elif flag is not None:
            Flag.objects.filter(pk=flag.pk).update(**before)


def review_decision_undo(*, decision: ReviewDecision, user) -> ReviewDecision:
    """Undo a decision, reverting its effect (validation back to draft, screening back to pending, label
    removed...); the item comes back to ``user``, leased, to decide again. Only its author or a maintainer."""
    if decision.user_id != user.pk and not has_role(user, MAINTAINER):
        raise ValidationError(_("Seul l'auteur d'une décision (ou un mainteneur) peut l'annuler."), code="not_yours")
    now = timezone.now()
    with transaction.atomic():
        current = ReviewDecision.objects.select_for_update().select_related("item").get(pk=decision.pk)
        undone = ReviewDecision.objects.filter(pk=current.pk, undone_at__isnull=True).update(undone_at=now, undone_by=user)
        if not undone:
            raise ReviewConflict(_("Cette décision a déjà été annulée."), code="already_undone")
        _revert(current.effect, user)
        item = current.item
        if current.decision != Decision.SKIP:
            ReviewItem.objects.filter(pk=item.pk).update(status=ReviewItem.Status.OPEN, leased_by=user, lease_expires_at=now + LEASE)
            _release_others(user=user, keep_id=item.pk)
        elif _lease(item_id=item.pk, user=user, now=now):
            _release_others(user=user, keep_id=item.pk)
    current.refresh_from_db()
    return current
