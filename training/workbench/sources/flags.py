"""Open flags on bad answers: the expert says which logged candidate was right, confirms the flagger's
correction, or dismisses the flag. Flags belong to retrieval: every change goes through its services."""
from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from glossary.models import Entry
from retrieval import labelled
from retrieval import flags as retrieval_flags
from retrieval.models import Flag, LabelledQuestion
from training import queue
from training.models import ReviewDecision, ReviewItem
from training.workbench import effects
from training.workbench.sources.base import MAX_ITEMS_PER_SOURCE, Decision, ItemCandidate, ReviewSource, ScanContext, Source, SourceScan, entry_candidate, hit_candidates


def flag_items() -> SourceScan:
    """Open flags, scored by ``queue.flag_score``."""
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
                    "candidates": hit_candidates(hits),
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


class FlagSource(ReviewSource):
    source = Source.FLAG
    decisions = (Decision.CHOOSE, Decision.ACCEPT, Decision.REJECT, Decision.SKIP)
    labels = {
        Decision.CHOOSE: gettext_lazy("This is the right entry"),
        Decision.ACCEPT: gettext_lazy("Confirm the correction"),
        Decision.REJECT: gettext_lazy("Dismiss the flag"),
    }

    def scan(self, context: ScanContext) -> SourceScan:
        return flag_items()

    def still_applies(self, item: ReviewItem) -> bool:
        return Flag.objects.filter(pk=item.flag_id, status=Flag.Status.OPEN).exists()

    def display(self, item: ReviewItem) -> dict[str, Any]:
        # The flag as it is now (its correction may postdate the last refresh): the entry "a" confirms.
        correct_id = Flag.objects.filter(pk=item.flag_id).values_list("correct_entry_id", flat=True).first()
        entry = Entry.objects.select_related("domain").filter(pk=correct_id).first() if correct_id else None
        return {"confirming": entry_candidate(entry)} if entry else {}

    def apply(self, *, item: ReviewItem, decision: str, candidate_id: int | None, record: ReviewDecision, user) -> dict:
        flag = Flag.objects.select_for_update().select_related("question_log").get(pk=item.flag_id)
        if decision == Decision.CHOOSE:
            before = {"correct_entry_id": flag.correct_entry_id, "wrongly_ranked_entry_ids": flag.wrongly_ranked_entry_ids, "domain_id": flag.domain_id}
            ranked = [hit["entry_id"] for hit in (flag.retrieved or flag.question_log.hits or [])]
            retrieval_flags.flag_set_correct_entry(
                flag=flag,
                correct_entry_id=candidate_id,
                wrongly_ranked_entry_ids=ranked[: ranked.index(candidate_id)] if candidate_id in ranked else ranked,
                domain_id=Entry.objects.filter(pk=candidate_id).values_list("domain_id", flat=True).first() or flag.domain_id,
            )
            return {"flag": {"id": flag.pk, "before": {**before, "status": flag.status}}, **_known_question(flag, user)}
        if decision == Decision.ACCEPT:
            if flag.correct_entry_id is None:
                raise ValidationError(_("This flag has no right entry yet: choose it (1-9)."), code="no_correct_entry")
            return {"flag": {"id": flag.pk, "before": {"status": flag.status}}, **_known_question(flag, user)}
        before = {"status": flag.status}
        retrieval_flags.flag_set_status(flag=flag, status=Flag.Status.DISMISSED, user=user)
        return {"flag": {"id": flag.pk, "before": before}}

    def revert(self, effect: dict, user) -> None:
        if "flag" not in effect:
            return
        before = effect["flag"]["before"]
        flag = Flag.objects.filter(pk=effect["flag"]["id"]).first()
        if flag is None:
            return
        effects.revert_known_question(effect)
        if "correct_entry_id" in before:
            retrieval_flags.flag_set_correct_entry(
                flag=flag, correct_entry_id=before["correct_entry_id"], wrongly_ranked_entry_ids=before["wrongly_ranked_entry_ids"], domain_id=before["domain_id"],
            )
        if "status" in before and flag.status != before["status"]:
            retrieval_flags.flag_set_status(flag=flag, status=before["status"], user=user)


def _known_question(flag: Flag, user) -> dict:
    """The flag's question tied to its right entry: served at once (the instant fix), the flag "corrected"."""
    existed = LabelledQuestion.objects.filter(flag=flag).exists() or LabelledQuestion.objects.filter(
        normalised=labelled.normalise_question(flag.question_log.question)[:500], entry_id=flag.correct_entry_id
    ).exists()
    question = labelled.labelled_question_from_flag(flag=flag, user=user, source=LabelledQuestion.Source.WORKBENCH)
    return {} if existed or question is None else {"labelled_question_id": question.pk}
