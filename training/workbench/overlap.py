"""Overlap: how many experts must decide an item of each source, and what happens when they have.

An item of a source whose ``required_decisions`` is N is served to N different experts (never twice to the
same one); each decision is kept as that expert's vote, with no effect. When the N-th vote comes in:

* all votes agree (same decision, same chosen entry): the source's ``apply`` runs once, on the last vote, which
  becomes the item's final (``applied``) decision; the item is done;
* they disagree: the item is ``disputed`` and waits for an adjudicator (``training.workbench.adjudication``);
  nothing is applied, so nothing becomes training data or a real-question label meanwhile.

With N = 1 (the default) the single decision is final at once, as before overlap existed.
"""
from __future__ import annotations

from django.db import transaction
from django.db.models import QuerySet

from training.models import ReviewDecision, ReviewItem, ReviewSourceSetting
from training.workbench.sources import source_of
from training.workbench.sources.base import Decision

DEFAULT_REQUIRED = 1


def required_decisions(source: str) -> int:
    row = ReviewSourceSetting.objects.filter(source=source).values_list("required_decisions", flat=True).first()
    return max(1, row or DEFAULT_REQUIRED)


def overlap_settings() -> list[dict]:
    """Every source with its required number of decisions (no row: the default)."""
    rows = dict(ReviewSourceSetting.objects.values_list("source", "required_decisions"))
    return [{"source": value, "label": label, "required": rows.get(value, DEFAULT_REQUIRED)} for value, label in ReviewItem.Source.choices]


def answer_of(decision: str, candidate_id: int | None) -> str:
    """What two experts must both say to agree: the decision, and for "choose" the chosen entry."""
    return f"{decision}:{candidate_id}" if decision == Decision.CHOOSE else str(decision)


def standing_votes(item_id: int) -> QuerySet[ReviewDecision]:
    """The experts' standing votes on an item (skips and adjudications aside), oldest first."""
    return (
        ReviewDecision.objects.filter(item_id=item_id, undone_at__isnull=True, adjudication=False)
        .exclude(decision=Decision.SKIP)
        .select_related("user", "candidate")
        .order_by("created_at", "pk")
    )


def apply_final(*, item: ReviewItem, record: ReviewDecision, user) -> ReviewDecision:
    """Make ``record`` the item's final decision: run the source's effect on it, close the item."""
    record.effect = source_of(item).apply(item=item, decision=record.decision, candidate_id=record.candidate_id, record=record, user=user)
    record.applied = True
    record.save(update_fields=["effect", "applied"])
    ReviewItem.objects.filter(pk=item.pk).update(status=ReviewItem.Status.DONE, leased_by=None, lease_expires_at=None)
    return record


def settle_if_complete(*, item: ReviewItem, last: ReviewDecision, user) -> str:
    """After a vote: "waiting" (fewer votes than required), "agreed" (applied on ``last``) or "disputed"."""
    votes = list(standing_votes(item.pk))
    if len(votes) < required_decisions(item.source):
        ReviewItem.objects.filter(pk=item.pk).update(status=ReviewItem.Status.OPEN, leased_by=None, lease_expires_at=None)
        return "waiting"
    if len({answer_of(vote.decision, vote.candidate_id) for vote in votes}) == 1:
        apply_final(item=item, record=last, user=user)
        return "agreed"
    ReviewItem.objects.filter(pk=item.pk).update(status=ReviewItem.Status.DISPUTED, leased_by=None, lease_expires_at=None)
    return "disputed"


def review_overlap_set(*, source: str, required: int, user) -> ReviewSourceSetting:
    """Set how many experts decide each item of ``source``. Open items that already have that many votes are
    settled now (agreed: applied; otherwise disputed), rather than waiting for a vote that will never come."""
    ReviewSourceSetting(source=source, required_decisions=required).full_clean(validate_unique=False)
    with transaction.atomic():
        row, _created = ReviewSourceSetting.objects.update_or_create(source=source, defaults={"required_decisions": required, "updated_by": user})
        voted = ReviewDecision.objects.filter(undone_at__isnull=True, adjudication=False).exclude(decision=Decision.SKIP).values("item_id")
        for item in ReviewItem.objects.select_for_update().filter(source=source, status=ReviewItem.Status.OPEN, pk__in=voted):
            votes = list(standing_votes(item.pk))
            if len(votes) >= required:
                settle_if_complete(item=item, last=votes[-1], user=votes[-1].user or user)
    return row
