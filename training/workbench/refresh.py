"""The review queue's refresh: request it (once), run it (every source rescanned with the serving version),
bound what is offered, and order the queue (uncertainty with diversity, ``training.queue``).

A refresh updates the open items in place (decided items are never reopened), marks as obsolete what no longer
applies, offers at most ``REVIEW_QUEUE_MAX_OPEN`` items (the most useful; the others wait, deferred, for a later
refresh), and gives each offered item its rank.

``review_queue_refresh_request`` is the one entry point for anything that changes what the queue should hold:
the button, the schedule, a new champion, an import, the first visit of the workbench.
"""
from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from retrieval import selectors as retrieval_selectors
from retrieval.models import ModelVersion
from jobs import runner
from training import queue
from training.models import QueueRefresh, ReviewItem, TrainingRun
from training.workbench.sources import SOURCES, ScanContext, SourceScan

logger = logging.getLogger("lexique.training")

# A refresh is due after a training run finished, or when the last one is this old.
REFRESH_MAX_AGE = timedelta(hours=1)
# A running refresh silent for this long is taken as lost (worker gone): the jobs sweep fails it.
REFRESH_STALE_AFTER = timedelta(minutes=30)
# The statuses a refresh keeps up to date (the others are decided or gone).
_LIVE = (ReviewItem.Status.OPEN, ReviewItem.Status.DEFERRED)
_ITEM_FIELDS = ("score", "signals", "payload", "domain_id", "entry_id", "other_entry_id", "flag_id", "question_log_id", "negative_id", "version_id")


def max_open_items() -> int:
    return max(1, int(getattr(settings, "REVIEW_QUEUE_MAX_OPEN", 100)))


def review_items_upsert(*, source: str, scan: SourceScan, version: ModelVersion) -> dict[str, int]:
    """A refresh step for one source: create new items, update open (or deferred) ones in place (decided ones stay
    as they are), retire the live ones the scan looked at and no longer finds. Call ``review_queue_reorder`` after."""
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
        elif item.status in _LIVE:
            for name, value in values.items():
                setattr(item, name, value)
            item.refreshed_at = now
            updated.append(item)
    looked_at = scan.checked_keys if scan.checked_keys is not None else set(existing)
    retired = [key for key in looked_at - found if key in existing and existing[key].status in _LIVE]
    ReviewItem.objects.bulk_create(created, batch_size=500, ignore_conflicts=True)
    ReviewItem.objects.bulk_update(updated, [*_ITEM_FIELDS, "refreshed_at"], batch_size=500)
    ReviewItem.objects.filter(key__in=retired, status__in=_LIVE).update(status=ReviewItem.Status.OBSOLETE, leased_by=None, lease_expires_at=None)
    return {"found": len(found), "created": len(created), "updated": len(updated), "retired": len(retired)}


def review_queue_bound(*, limit: int | None = None) -> dict[str, int]:
    """Offer at most ``limit`` (default ``REVIEW_QUEUE_MAX_OPEN``) items, the most useful (``queue.offered_keys``);
    the others are deferred until a later refresh finds room. An item an expert holds stays offered."""
    limit = limit or max_open_items()
    now = timezone.now()
    rows = list(ReviewItem.objects.filter(status__in=_LIVE).values_list("key", "source", "score", "status", "lease_expires_at"))
    offerable = [
        queue.Offerable(key=key, source=source, score=score, held=status == ReviewItem.Status.OPEN and bool(expires and expires > now))
        for key, source, score, status, expires in rows
    ]
    offered = queue.offered_keys(offerable, limit=limit)
    deferred = [key for key, _source, _score, status, _expires in rows if key not in offered and status == ReviewItem.Status.OPEN]
    promoted = [key for key, _source, _score, status, _expires in rows if key in offered and status == ReviewItem.Status.DEFERRED]
    ReviewItem.objects.filter(key__in=deferred, status=ReviewItem.Status.OPEN).update(status=ReviewItem.Status.DEFERRED, leased_by=None, lease_expires_at=None)
    ReviewItem.objects.filter(key__in=promoted, status=ReviewItem.Status.DEFERRED).update(status=ReviewItem.Status.OPEN)
    return {"offered": len(offered), "deferred": len(rows) - len(offered)}


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


QUEUE_REFRESH_LOCK = "queue_refresh"


def pending_refresh() -> QueueRefresh | None:
    """The refresh waiting or running now (the jobs sweep fails one whose worker stopped reporting)."""
    return QueueRefresh.objects.select_related("job").filter(job__lock=QUEUE_REFRESH_LOCK).first()


def review_queue_refresh_request(*, trigger: str = QueueRefresh.Trigger.REQUEST, user=None) -> QueueRefresh:
    """Queue a refresh (after commit); a refresh already waiting or running is returned instead of a second one.

    The one function to call when what the queue should hold changed (an import, a training run, a new champion).
    """
    try:
        with transaction.atomic():
            job = runner.job_create(kind="queue_refresh", requested_by=user, lock=QUEUE_REFRESH_LOCK)
            refresh = QueueRefresh.objects.create(job=job, trigger=trigger)
    except runner.JobLocked as locked:
        return QueueRefresh.objects.get(job=locked.job)
    runner.enqueue_on_commit(job)
    return refresh


def review_queue_first_use(*, user) -> QueueRefresh | None:
    """The queue was never computed (a fresh installation): compute it now rather than show an empty workbench."""
    if QueueRefresh.objects.exists():
        return None
    return review_queue_refresh_request(trigger=QueueRefresh.Trigger.FIRST_USE, user=user)


def review_queue_refresh_send(job) -> str:
    from celery import current_app

    from training.tasks import refresh_review_queue

    # The default queue, not the training one: a refresh encodes a few hundred short texts and must not
    # wait behind a training run.
    return refresh_review_queue.apply_async((job.queue_refresh.pk,), queue=current_app.conf.task_default_queue).id


def review_queue_refresh_execute(*, refresh_id: int, worker: str = "") -> QueueRefresh:
    """Rescan every source with the serving version, bound what is offered and reorder the queue.

    A source that fails (e.g. the model cannot be loaded) leaves its items as they were; the others still
    refresh, and the job says which source failed and why.
    """
    refresh = QueueRefresh.objects.select_related("job").get(pk=refresh_id)
    if not runner.job_claim(job=refresh.job, worker=worker):
        return refresh
    version = retrieval_selectors.champion_version_get()
    QueueRefresh.objects.filter(pk=refresh.pk).update(version=version)
    context = ScanContext(version=version)
    counts: dict[str, Any] = {}
    errors = []
    for source, strategy in SOURCES.items():
        try:
            with transaction.atomic():
                counts[source] = review_items_upsert(source=source, scan=strategy.scan(context), version=version)
        except Exception as error:
            logger.exception("Review queue source %s failed", source)
            errors.append(f"{source}: {type(error).__name__}: {error}")
        runner.job_heartbeat(job=refresh.job)
    counts["deferred"] = review_queue_bound()["deferred"]
    counts["open"] = review_queue_reorder()
    refresh.counts = counts
    refresh.version = version
    refresh.save(update_fields=["counts", "version"])
    if errors:
        runner.job_fail(job=refresh.job, error="\n".join(errors))
    else:
        runner.job_succeed(job=refresh.job)
    refresh.refresh_from_db()
    return refresh


def review_queue_refresh_due() -> bool:
    """Never refreshed, a training run finished since the last refresh began, or the last one is too old."""
    last = QueueRefresh.objects.exclude(job__status=QueueRefresh.Status.FAILED).order_by("-started_at").first()
    if last is None:
        return True
    if last.started_at < timezone.now() - REFRESH_MAX_AGE:
        return True
    return TrainingRun.objects.filter(job__finished_at__gt=last.started_at).exists()


def refresh_after_import(sender, entry_ids: list[int], **kwargs) -> None:
    """Receiver of glossary's ``entries_bulk_created`` (sent after an import commits): new drafts and entries to review."""
    if entry_ids:
        review_queue_refresh_request(trigger=QueueRefresh.Trigger.IMPORT)
