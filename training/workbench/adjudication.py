"""Adjudication: items whose experts disagree are settled by a maintainer or a senior expert (config.roles).

The adjudicator sees the item and each expert's decision, and decides with the workbench's keys; that decision
is the one applied (the source's ``apply``), and only then does the item become training data or a label.
"""
from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils.translation import gettext as _

from config.roles import can_adjudicate
from training.models import ReviewDecision, ReviewItem
from training.workbench import overlap
from training.workbench.effects import ReviewConflict
from training.workbench.sources import source_of
from training.workbench.sources.base import Decision


def disputed_items(*, domain: str | None = None) -> QuerySet[ReviewItem]:
    """Items waiting for an adjudicator, the oldest disagreement first."""
    items = ReviewItem.objects.filter(status=ReviewItem.Status.DISPUTED).select_related("domain", "entry")
    if domain:
        items = items.filter(domain__slug=domain)
    return items.order_by("refreshed_at", "pk")


def votes_shown(item: ReviewItem) -> list[dict]:
    """Each expert's decision on the item, as the adjudicator sees it (the action's key, its label, the entry chosen)."""
    strategy = source_of(item)
    shown = []
    for vote in overlap.standing_votes(item.pk):
        label = strategy.labels.get(vote.decision, vote.get_decision_display())
        shown.append({"vote": vote, "user": vote.user, "label": label, "term": vote.candidate.term if vote.candidate_id and vote.candidate else ""})
    return shown


def review_item_adjudicate(*, item: ReviewItem, user, decision: str, candidate: int | None = None) -> ReviewDecision:
    """Settle a disputed item with ``decision``: it becomes the item's final decision and is applied.

    Only maintainers and senior experts (``PermissionDenied`` otherwise); ``ReviewConflict`` when the item is no
    longer disputed (another adjudicator was first, or a vote was withdrawn).
    """
    if not can_adjudicate(user):
        raise PermissionDenied(_("Only maintainers and senior experts adjudicate."))
    if decision == Decision.SKIP:
        raise ValidationError(_("An adjudication settles: choose a decision."), code="invalid_decision")
    source_of(item).check(item, decision, candidate)
    if not source_of(item).still_applies(item):
        # Settled on another page meanwhile (a flag dismissed from its own page...): nothing left to adjudicate.
        ReviewItem.objects.filter(pk=item.pk, status=ReviewItem.Status.DISPUTED).update(status=ReviewItem.Status.OBSOLETE)
        raise ReviewConflict(_("This item was settled elsewhere meanwhile."), code="gone")
    try:
        with transaction.atomic():
            current = ReviewItem.objects.select_for_update().get(pk=item.pk)
            if current.status != ReviewItem.Status.DISPUTED:
                raise ReviewConflict(_("This item no longer needs adjudication."), code="not_disputed")
            record = ReviewDecision.objects.create(
                item=current, user=user, decision=decision, candidate_id=candidate, adjudication=True, applied=False,
                snapshot={"key": current.key, "source": current.source, "payload": current.payload,
                          "votes": [{"user_id": vote.user_id, "decision": vote.decision, "candidate_id": vote.candidate_id} for vote in overlap.standing_votes(current.pk)]},
            )
            overlap.apply_final(item=current, record=record, user=user)
    except IntegrityError:
        raise ReviewConflict(_("This item no longer needs adjudication."), code="not_disputed") from None
    record.refresh_from_db()
    return record
