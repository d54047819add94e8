"""Flags on wrong answers: recorded by experts (with the right entry, or a new one created in place), then
corrected, used by training, answered right, or dismissed (retrieval.labelled follows their life)."""
from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from glossary.models import Entry
from glossary.services import entry_create
from retrieval import labelled
from retrieval.models import Flag, QuestionLog

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
        raise ValidationError({"reason": _("Motif inconnu : %(reason)s.") % {"reason": reason}})
    if correct_entry is not None and new_entry:
        raise ValidationError(_("Choisissez la bonne entrée ou créez-en une, pas les deux."))
    if len(comment or "") > FLAG_COMMENT_MAX_CHARS:
        raise ValidationError({"comment": _("Le commentaire dépasse %(limit)s caractères.") % {"limit": FLAG_COMMENT_MAX_CHARS}})
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
        raise ValidationError({"status": _("Statut inconnu : %(status)s.") % {"status": status}})
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
