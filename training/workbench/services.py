"""Writes of the workbench: decide, skip and undo, each dispatched to the item's source strategy.

The first decision on an item wins, a second one gets ``ReviewConflict``. Every decision keeps the item as it
was and what it changed (the strategy's undo record), so it can be undone.
"""
from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from config.errors import Forbidden
from config.roles import MAINTAINER, has_role
from glossary.models import Entry
from retrieval.models import Flag
from training.models import NegativeCandidate, ReviewDecision, ReviewItem
from training.workbench import overlap
from training.workbench.effects import ReviewConflict
from training.workbench.leases import LEASE, lease, release_others, review_item_release
from training.workbench.refresh import review_queue_refresh_request
from training.workbench.sources import source_of
from training.workbench.sources.base import Decision

__all__ = ["ReviewConflict", "review_decision_undo", "review_item_decide", "review_queue_refresh_request"]


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


def _taken_message(item: ReviewItem) -> str:
    # Only a final decision is named: the votes on an item still open or disputed stay unseen (no peeking).
    if item.status == ReviewItem.Status.DISPUTED:
        return _("This item is waiting for adjudication.")
    last = item.decisions.filter(undone_at__isnull=True, applied=True).exclude(decision=Decision.SKIP).select_related("user").first()
    if last is not None:
        return _("This item has already been handled by %(user)s (%(decision)s).") % {"user": last.user or "?", "decision": last.get_decision_display()}
    return _("This item no longer needs review.")


def review_item_decide(*, item: ReviewItem, user, decision: str, candidate: int | None = None) -> ReviewDecision:
    """Record ``user``'s decision on ``item``; apply its effect once the item has all its decisions and they agree.

    ``candidate`` is the chosen entry's id (for "choose"). With one required decision (the default) the first
    decision wins and is applied at once. With more (``overlap``), each expert's decision is a vote: see
    ``overlap.settle_if_complete``. Raises ``ReviewConflict`` when the item was already decided (or this expert
    already voted on it), or is held by another expert, and ``ValidationError`` when the decision does not fit.
    """
    strategy = source_of(item)
    strategy.check(item, decision, candidate)
    now = timezone.now()
    try:
        with transaction.atomic():
            current = ReviewItem.objects.select_for_update().get(pk=item.pk)
            if current.status != ReviewItem.Status.OPEN:
                raise ReviewConflict(_taken_message(current), code="already_decided")
            if current.leased_by_id not in (None, user.pk) and current.lease_expires_at and current.lease_expires_at > now:
                raise ReviewConflict(_("Another expert is reviewing this item right now (%(user)s).") % {"user": current.leased_by}, code="leased")
            if overlap.standing_votes(current.pk).filter(user=user).exists():
                raise ReviewConflict(_("You have already decided this item: other experts must decide it in turn."), code="already_voted")
            snapshot = _snapshot(current)
            if decision == Decision.SKIP:
                record = ReviewDecision.objects.create(item=current, user=user, decision=decision, snapshot=snapshot, applied=False)
                review_item_release(item=current, user=user)
                return record
            record = ReviewDecision.objects.create(item=current, user=user, decision=decision, candidate_id=candidate, snapshot=snapshot, applied=False)
            overlap.settle_if_complete(item=current, last=record, user=user)
    except IntegrityError:
        # A uniqueness constraint: another decision (or this expert's own, from another tab) committed first.
        raise ReviewConflict(_taken_message(ReviewItem.objects.get(pk=item.pk)), code="already_decided") from None
    record.refresh_from_db()
    return record


def review_decision_undo(*, decision: ReviewDecision, user) -> ReviewDecision:
    """Undo a decision, reverting its effect (validation back to draft, screening back to pending, label
    removed...); the item comes back to ``user``, leased, to decide again. Only its author or a maintainer."""
    if decision.user_id != user.pk and not has_role(user, MAINTAINER):
        raise Forbidden(_("Only the author of a decision (or a maintainer) can undo it."), code="not_yours")
    now = timezone.now()
    with transaction.atomic():
        current = ReviewDecision.objects.select_for_update().select_related("item").get(pk=decision.pk)
        undone = ReviewDecision.objects.filter(pk=current.pk, undone_at__isnull=True).update(undone_at=now, undone_by=user)
        if not undone:
            raise ReviewConflict(_("This decision has already been undone."), code="already_undone")
        item = ReviewItem.objects.select_for_update().get(pk=current.item_id)
        if current.decision == Decision.SKIP:
            if lease(item_id=item.pk, user=user, now=now):
                release_others(user=user, keep_id=item.pk)
        else:
            _unsettle(item=item, withdrawn=current, user=user, now=now)
            if current.adjudication:
                # The experts' votes still disagree: back to the adjudicators.
                ReviewItem.objects.filter(pk=item.pk).update(status=ReviewItem.Status.DISPUTED, leased_by=None, lease_expires_at=None)
            else:
                ReviewItem.objects.filter(pk=item.pk).update(status=ReviewItem.Status.OPEN, leased_by=user, lease_expires_at=now + LEASE)
                release_others(user=user, keep_id=item.pk)
    current.refresh_from_db()
    return current


def _unsettle(*, item: ReviewItem, withdrawn: ReviewDecision, user, now) -> None:
    """A decision is withdrawn: revert the item's final effect (wherever it is stored: the last agreeing vote or
    an adjudication), and withdraw an adjudication that settled votes which no longer stand."""
    final = ReviewDecision.objects.filter(item=item, applied=True).exclude(decision=Decision.SKIP).filter(Q(undone_at__isnull=True) | Q(pk=withdrawn.pk)).first()
    if final is not None:
        if final.effect:
            source_of(item).revert(final.effect, user)
        ReviewDecision.objects.filter(pk=final.pk).update(applied=False)
    if not withdrawn.adjudication:
        ReviewDecision.objects.filter(item=item, adjudication=True, undone_at__isnull=True).update(undone_at=now, undone_by=user)
