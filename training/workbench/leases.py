"""Leases: an expert holds one item at a time (a conditional UPDATE, so two experts never hold the same item)."""
from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from training.models import ReviewItem
from training.workbench.selectors import review_item_list, review_items_available
from training.workbench.sources import source_of

# An item shown to an expert is kept for them this long; then another expert may get it.
LEASE = timedelta(minutes=int(getattr(settings, "REVIEW_LEASE_MINUTES", 10)))


def retire(item_id: int) -> None:
    ReviewItem.objects.filter(pk=item_id, status=ReviewItem.Status.OPEN).update(status=ReviewItem.Status.OBSOLETE, leased_by=None, lease_expires_at=None)


def lease(*, item_id: int, user, now) -> bool:
    """Take the item for ``user`` if nobody else holds it: one conditional UPDATE, so only one expert wins."""
    free = Q(leased_by__isnull=True) | Q(lease_expires_at__lte=now) | Q(leased_by=user)
    return bool(ReviewItem.objects.filter(free, pk=item_id, status=ReviewItem.Status.OPEN).update(leased_by=user, lease_expires_at=now + LEASE))


def release_others(*, user, keep_id: int | None) -> None:
    ReviewItem.objects.filter(leased_by=user).exclude(pk=keep_id).update(leased_by=None, lease_expires_at=None)


def review_item_next(*, user, domain: str | None = None, source: str | None = None, group_by_domain: bool = False) -> ReviewItem | None:
    """Lease the next item for ``user`` (the one they already hold first), or None when nothing is left.

    Items the user skipped are not served to them again (until they undo the skip); items that another page
    settled meanwhile are retired on the way.
    """
    now = timezone.now()
    held = review_item_list(domain=domain, source=source).filter(leased_by=user, lease_expires_at__gt=now).first()
    if held is not None and not source_of(held).still_applies(held):
        retire(held.pk)
    elif held is not None and lease(item_id=held.pk, user=user, now=now):
        release_others(user=user, keep_id=held.pk)
        held.refresh_from_db()
        return held
    available = review_items_available(user=user, domain=domain, source=source, now=now).order_by("domain_rank" if group_by_domain else "rank", "pk")
    while True:
        batch = list(available.values_list("pk", flat=True)[:10])
        if not batch:
            return None
        for item_id in batch:
            if not lease(item_id=item_id, user=user, now=now):
                continue  # another expert took it first
            item = ReviewItem.objects.select_related("domain", "entry", "leased_by").get(pk=item_id)
            if source_of(item).still_applies(item):
                release_others(user=user, keep_id=item.pk)
                return item
            retire(item_id)


def review_item_release(*, item: ReviewItem, user) -> None:
    """Give an item back before its lease ends (the expert closed the page or changed filters)."""
    ReviewItem.objects.filter(pk=item.pk, leased_by=user).update(leased_by=None, lease_expires_at=None)
