"""One expert's work in the workbench: decisions, speed, agreement, and what the model learnt from them.

Speed is read from the decisions themselves (no timer in the page): the seconds between an expert's
successive decisions, leaving out pauses longer than ``PAUSE`` (a new sitting, not a slow decision).
"""
from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Q

from retrieval.models import Flag, LabelledQuestion
from training.models import QuestionLabel, ReviewDecision, ReviewItem
from training.workbench.agreement import agreement_with_final, expert_alpha, votes_and_finals
from training.workbench.overlap import answer_of
from training.workbench.sources.base import Decision

PAUSE = timedelta(minutes=10)


def median_seconds_per_decision(moments: Sequence[datetime], *, pause: timedelta = PAUSE) -> float | None:
    """Median of the gaps between successive decisions, gaps longer than ``pause`` left out (None: no gap)."""
    ordered = sorted(moments)
    gaps = [(later - earlier).total_seconds() for earlier, later in zip(ordered, ordered[1:]) if later - earlier <= pause]
    return round(statistics.median(gaps), 1) if gaps else None


def expert_list() -> list[Any]:
    """Users with at least one decision in the workbench, by name."""
    ids = ReviewDecision.objects.filter(user__isnull=False).values("user_id")
    return list(get_user_model().objects.filter(pk__in=ids).order_by("username"))


def expert_stats(*, user) -> dict[str, Any]:
    """Everything the per-expert page shows for ``user``."""
    decisions = list(ReviewDecision.objects.filter(user=user).select_related("item").order_by("created_at", "pk"))
    standing = [decision for decision in decisions if decision.undone_at is None]
    votes = [decision for decision in standing if decision.decision != Decision.SKIP and not decision.adjudication]
    all_votes, finals = votes_and_finals()
    agreed, compared = agreement_with_final(all_votes, finals).get(user.pk, (0, 0))
    # The items whose final decision this expert made or agreed with: what the model learns from them.
    theirs = {
        decision.item_id for decision in standing
        if decision.decision != Decision.SKIP and (decision.applied or finals.get(decision.item_id) == answer_of(decision.decision, decision.candidate_id))
    }
    flag_ids = set(ReviewItem.objects.filter(pk__in=theirs, flag__isnull=False).values_list("flag_id", flat=True))
    labelled = LabelledQuestion.objects.filter(created_by=user)
    flag_ids |= set(labelled.filter(flag__isnull=False).values_list("flag_id", flat=True))
    flags = Flag.objects.filter(pk__in=flag_ids, correct_entry__isnull=False)
    return {
        "user": user,
        "decisions": len(votes),
        "by_source": dict(Counter(decision.item.get_source_display() for decision in votes)),
        "by_decision": dict(Counter(decision.get_decision_display() for decision in votes)),
        "skips": sum(1 for decision in standing if decision.decision == Decision.SKIP),
        "adjudications": sum(1 for decision in standing if decision.adjudication),
        "undone": sum(1 for decision in decisions if decision.undone_at is not None),
        "pending": sum(1 for decision in votes if decision.item.status in (ReviewItem.Status.OPEN, ReviewItem.Status.DISPUTED) and not decision.applied),
        "median_seconds": median_seconds_per_decision([decision.created_at for decision in decisions]),
        "alpha": expert_alpha(all_votes, user.pk),
        "agreed": agreed,
        "compared": compared,
        "agreement": round(agreed / compared, 3) if compared else None,
        "labels": QuestionLabel.objects.filter(Q(created_by=user) | Q(decision__item_id__in=theirs)).distinct().count(),
        "labelled_questions": labelled.count(),
        "labelled_trained": labelled.filter(used_by_run_id__isnull=False).count(),
        "flags_corrected": flags.count(),
        "flags_checked": flags.filter(checked_version__isnull=False).count(),
        "questions_fixed": flags.filter(answered_right=True).count(),
        "fixed": list(flags.filter(answered_right=True).select_related("question_log", "correct_entry", "checked_version").order_by("-checked_at")[:20]),
        "recent": [decision for decision in reversed(decisions)][:20],
    }
