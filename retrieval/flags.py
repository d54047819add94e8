"""Flags on wrong answers: recorded by experts (with the right entry, or a new one created in place), then
corrected (a labelled question, retrieval.labelled), used by training, asked again to each new champion
(``flags_check_version``: answered right, or open again), or dismissed; ``flag_life`` tells those steps."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from glossary.models import Entry
from glossary.services import entry_create
from retrieval import labelled
from retrieval.models import Flag, ModelVersion, QuestionLog

logger = logging.getLogger(__name__)

FLAG_COMMENT_MAX_CHARS = 2000


def flag_create(
    *,
    question_log: QuestionLog,
    user,
    reason: str,
    correct_entry: Entry | None = None,
    new_entry: dict[str, Any] | None = None,
    comment: str = "",
) -> Flag:
    """Record that an answer was wrong; ``new_entry`` (entry_create's arguments) adds the missing entry in place."""
    if reason not in Flag.Reason.values:
        raise ValidationError({"reason": _("Unknown reason: %(reason)s.") % {"reason": reason}})
    if correct_entry is not None and new_entry:
        raise ValidationError(_("Choose the right entry or create one, not both."))
    if len(comment or "") > FLAG_COMMENT_MAX_CHARS:
        raise ValidationError({"comment": _("The comment exceeds %(limit)s characters.") % {"limit": FLAG_COMMENT_MAX_CHARS}})
    with transaction.atomic():
        if new_entry:
            correct_entry = entry_create(**{**new_entry, "created_by": user})
        hits = question_log.hits or []
        hit_entry_ids = [hit["entry_id"] for hit in hits]
        if correct_entry is not None and correct_entry.pk in hit_entry_ids:
            above = hit_entry_ids[: hit_entry_ids.index(correct_entry.pk)]
        elif correct_entry is not None:
            above = hit_entry_ids
        else:
            above = []
        domain_id = correct_entry.domain_id if correct_entry is not None else None
        if domain_id is None and hit_entry_ids:
            domain_id = Entry.objects.filter(pk=hit_entry_ids[0]).values_list("domain_id", flat=True).first()
        flag = Flag.objects.create(
            question_log=question_log,
            created_by=user,
            reason=reason,
            correct_entry=correct_entry,
            comment=(comment or "").strip(),
            retrieved=hits,
            wrongly_ranked_entry_ids=above,
            version=question_log.version,
            domain_id=domain_id,
        )
        # A flag with its right entry is a corrected question: served at once as a known question of that entry.
        labelled.labelled_question_from_flag(flag=flag, user=user)
        flag.refresh_from_db()
        return flag


def flag_set_status(*, flag: Flag, status: str, user) -> Flag:
    """Open, used (by a training run) or dismissed."""
    if status not in Flag.Status.values:
        raise ValidationError({"status": _("Unknown status: %(status)s.") % {"status": status}})
    flag.status = status
    flag.status_changed_by = user
    flag.status_changed_at = timezone.now()
    flag.save(update_fields=["status", "status_changed_by", "status_changed_at"])
    return flag


def flag_set_correct_entry(*, flag: Flag, correct_entry_id: int | None, wrongly_ranked_entry_ids: list[int], domain_id: int | None) -> Flag:
    """Say which entry answers a flagged question (an expert's decision in the workbench, or its undo)."""
    flag.correct_entry_id = correct_entry_id
    flag.wrongly_ranked_entry_ids = list(wrongly_ranked_entry_ids)
    flag.domain_id = domain_id
    flag.save(update_fields=["correct_entry", "wrongly_ranked_entry_ids", "domain"])
    return flag


# ---- the life of a flag in the loop ---------------------------------------------------------------

@dataclass
class FlagCheck:
    flag_id: int
    question: str
    entry_id: int
    rank: int | None  # of the right entry in the version's top 10; None when absent
    right: bool


@dataclass
class FlagCheckReport:
    version: int
    checks: list[FlagCheck] = field(default_factory=list)

    @property
    def right(self) -> int:
        return sum(check.right for check in self.checks)

    @property
    def wrong(self) -> int:
        return len(self.checks) - self.right


def flags_check_version(*, version: ModelVersion, top_k: int = 10) -> FlagCheckReport:
    """Ask every corrected (or used) flag's question to ``version``, known questions left out of the ranking.

    Answered right (its entry first): the flag is "answered right by version M". Still wrong: it is open again,
    back in the review queue, with the rank the version gave. The pipeline calls this after a promotion.
    """
    from retrieval.search import search

    report = FlagCheckReport(version=version.number)
    flags = Flag.objects.filter(
        status__in=[Flag.Status.CORRECTED, Flag.Status.USED], correct_entry__isnull=False
    ).select_related("question_log").order_by("id")
    for flag in flags:
        result = search(query=flag.question_log.question, version=version, top_k=top_k, exclude_known_questions=True)
        ranked = [item.entry.id for item in result.hits]
        rank = ranked.index(flag.correct_entry_id) + 1 if flag.correct_entry_id in ranked else None
        right = rank == 1
        Flag.objects.filter(pk=flag.pk).update(
            checked_version=version, checked_rank=rank, answered_right=right, checked_at=timezone.now(),
            status=Flag.Status.ANSWERED if right else Flag.Status.OPEN, status_changed_at=timezone.now(),
        )
        report.checks.append(FlagCheck(flag.pk, flag.question_log.question, flag.correct_entry_id, rank, right))
    logger.info("Flags checked against %s: %s right, %s still wrong", version, report.right, report.wrong)
    return report


def flag_life(flag: Flag) -> list[dict[str, Any]]:
    """The steps a flag went through, for the flag list and detail: what happened and when."""
    steps: list[dict[str, Any]] = [{"step": "open", "label": _("open"), "at": flag.created_at}]
    if flag.corrected_at:
        steps.append({"step": "corrected", "label": _("corrected"), "at": flag.corrected_at})
    if flag.used_by_run_id:
        steps.append({"step": "used", "label": _("used by training run %(run)s") % {"run": flag.used_by_run_id}, "at": None})
    if flag.checked_version_id and flag.answered_right is not None:
        version = flag.checked_version
        if flag.answered_right:
            label = _("answered right by version %(version)s") % {"version": version}
        else:
            label = _("still wrong with version %(version)s (rank %(rank)s): to review again") % {
                "version": version, "rank": flag.checked_rank or "> 10"
            }
        steps.append({"step": "answered" if flag.answered_right else "still_wrong", "label": label, "at": flag.checked_at})
    if flag.status == Flag.Status.DISMISSED:
        steps.append({"step": "dismissed", "label": _("dismissed"), "at": flag.status_changed_at})
    return steps
