"""Reads of the workbench: the queue in review order, what one expert may be served, counters, the actions an
item offers. Nothing here writes (leases and retirements are in ``leases``)."""
from __future__ import annotations

from typing import Any

from django.db.models import Count, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy

from training import selectors as training_selectors
from training.models import QueueRefresh, ReviewDecision, ReviewItem
from training.workbench.refresh import pending_refresh
from training.workbench.sources import source_of
from training.workbench.sources.base import DECISION_KEYS, Decision

SKIP_LABEL = gettext_lazy("Skip")


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


def review_items_available(*, user, domain: str | None = None, source: str | None = None, now=None) -> QuerySet[ReviewItem]:
    """The open items ``user`` may be served with these filters: not held by another expert, not skipped by them.

    The workbench serves from this and counts this, so "À examiner" and "Rien à examiner" never disagree.
    """
    now = now or timezone.now()
    # Skipped by them, or already decided by them (an item needing several experts' decisions stays open for
    # the others, never for the same expert twice).
    seen = ReviewDecision.objects.filter(user=user, undone_at__isnull=True, adjudication=False).values("item_id")
    return (
        review_item_list(domain=domain, source=source)
        .filter(Q(leased_by__isnull=True) | Q(lease_expires_at__lte=now) | Q(leased_by=user))
        .exclude(pk__in=seen)
    )


def pending_decision_counts() -> dict[str, int]:
    """Decisions that do not take effect yet: items waiting for more experts' decisions (and their votes so
    far), and disputed items waiting for an adjudicator. None of them is training data until settled."""
    votes = ReviewDecision.objects.filter(undone_at__isnull=True, adjudication=False, applied=False).exclude(decision=Decision.SKIP)
    waiting = votes.filter(item__status=ReviewItem.Status.OPEN)
    disputed = votes.filter(item__status=ReviewItem.Status.DISPUTED)
    return {
        "waiting_items": waiting.values("item_id").distinct().count(),
        "waiting_votes": waiting.count(),
        "disputed_items": disputed.values("item_id").distinct().count(),
        "disputed_votes": disputed.count(),
    }


def last_undoable_decision(*, user) -> ReviewDecision | None:
    return ReviewDecision.objects.filter(user=user, undone_at__isnull=True).select_related("item").order_by("-created_at", "-pk").first()


def last_refresh() -> QueueRefresh | None:
    return QueueRefresh.objects.select_related("job").order_by("-started_at", "-pk").first()


def refresh_in_progress() -> QueueRefresh | None:
    return pending_refresh()


def workbench_counters(*, user=None, domain: str | None = None, source: str | None = None) -> dict[str, Any]:
    """What the experts contributed since the last training run, and how much more triggers the next one.

    ``open`` counts what ``user`` may still be served under the filters (every open item without a user);
    ``elsewhere`` the open items other experts hold or this one skipped.
    """
    material = training_selectors.new_material_count()
    threshold = training_selectors.training_config_default().min_new_material
    open_items = review_item_list(domain=domain, source=source)
    open_by_source = dict(open_items.order_by().values_list("source").annotate(n=Count("pk")))
    total_open = sum(open_by_source.values())
    available = review_items_available(user=user, domain=domain, source=source).count() if user is not None else total_open
    last_run = training_selectors.last_finished_run()
    decisions = ReviewDecision.objects.filter(undone_at__isnull=True, applied=True).exclude(decision=Decision.SKIP)
    if last_run is not None:
        decisions = decisions.filter(created_at__gt=last_run.started_at)
    return {
        "material": material,
        "threshold": threshold,
        "missing": max(0, threshold - material["total"]),
        "decisions": decisions.count(),
        "open": available,
        "elsewhere": total_open - available,
        "deferred": ReviewItem.objects.filter(status=ReviewItem.Status.DEFERRED).count(),
        "open_by_source": open_by_source,
    }


def item_display(item: ReviewItem) -> dict[str, Any]:
    """What the item panel shows beyond the item's payload (the source decides, e.g. the entry a flag's correction names)."""
    return source_of(item).display(item)


def item_actions(item: ReviewItem, display: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The decisions offered on ``item`` with their keys and labels: one per candidate for "choose"."""
    strategy = source_of(item)
    confirming = (display or {}).get("confirming")
    actions = []
    for decision in strategy.decisions:
        if decision == Decision.CHOOSE:
            for position, candidate in enumerate(strategy.choosable(item)[:9], start=1):
                actions.append({"decision": decision, "key": str(position), "candidate": candidate["entry_id"], "label": strategy.labels[decision], "term": candidate["term"]})
            continue
        label = SKIP_LABEL if decision == Decision.SKIP else strategy.labels[decision]
        term = confirming["term"] if confirming and decision == Decision.ACCEPT else ""
        actions.append({"decision": decision, "key": DECISION_KEYS[decision], "candidate": None, "label": label, "term": term})
    return actions
