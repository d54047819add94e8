"""The reversible effects several sources share: entry status changes and merges (through the glossary's
services), question -> entry labels and equivalences (training's own rows). Each ``apply`` helper returns the
part of the undo record its ``revert_*`` counterpart reads; the record's keys are stored with the decision, so
they stay as they are ("entries", "label_id", "equivalence_id").
"""
from __future__ import annotations

from django.utils.translation import gettext as _

from config.errors import Conflict
from glossary import services as glossary_services
from glossary.models import Entry
from glossary.text import term_key
from retrieval import labelled
from retrieval.models import LabelledQuestion
from training.models import Equivalence, QuestionLabel, ReviewDecision, ReviewItem


class ReviewConflict(Conflict):
    """The item was decided (or is held) by someone else, or a decision cannot be undone any more."""


def _entries_changed(*changes: tuple[Entry, dict]) -> dict:
    """The undo record of entry edits: each entry's fields before, and the revision our edit left it at."""
    return {"entries": [{"id": entry.pk, "before": before, "revision": entry.revision} for entry, before in changes]}


def set_entry_status(entry_id: int, status: str, user) -> dict:
    entry = Entry.objects.get(pk=entry_id)
    before = {"status": entry.status}
    entry = glossary_services.entry_set_status(entry=entry, status=status, user=user)
    return _entries_changed((entry, before))


def merge(*, keep_id: int, drop_id: int, user) -> dict:
    """Merge ``drop`` into ``keep``: its term and variants become variants of ``keep``, and it is rejected."""
    keep, drop = Entry.objects.get(pk=keep_id), Entry.objects.get(pk=drop_id)
    seen = {term_key(keep.term)} | {term_key(variant) for variant in keep.variants}
    added = []
    for name in (drop.term, *drop.variants):
        if term_key(name) not in seen:
            seen.add(term_key(name))
            added.append(name)
    changes = []
    if added:
        before = {"variants": list(keep.variants)}
        keep = glossary_services.entry_update(entry=keep, data={"variants": [*keep.variants, *added]}, user=user)
        changes.append((keep, before))
    before = {"status": drop.status}
    drop = glossary_services.entry_set_status(entry=drop, status=Entry.Status.REJECTED, user=user)
    changes.append((drop, before))
    return _entries_changed(*changes)


def revert_entries(effect: dict, user) -> None:
    """Put edited entries back, unless someone edited them since (then the expert undoes by hand)."""
    for change in reversed(effect.get("entries", [])):
        entry = Entry.objects.filter(pk=change["id"]).first()
        if entry is None:
            raise ReviewConflict(_("Entry no. %(id)s has been deleted: the decision can no longer be undone.") % {"id": change["id"]}, code="gone")
        try:
            glossary_services.entry_update(entry=entry, data=change["before"], user=user, expected_revision=change["revision"])
        except glossary_services.StaleEntryError:
            raise ReviewConflict(
                _("“%(term)s” has been changed since this decision: undo it by hand from its page.") % {"term": entry.term}, code="stale"
            ) from None


def equivalence(first_id: int, second_id: int, user) -> dict:
    first, second = sorted((first_id, second_id))
    row, created = Equivalence.objects.get_or_create(entry_a_id=first, entry_b_id=second, defaults={"decided_by": user})
    return {"equivalence_id": row.pk} if created else {}


def revert_equivalence(effect: dict) -> None:
    if "equivalence_id" in effect:
        Equivalence.objects.filter(pk=effect["equivalence_id"]).delete()


def label(*, item: ReviewItem, entry_id: int, ranked: list[int], record: ReviewDecision, user) -> dict:
    """A confirmed question -> entry pair; the entries ``ranked`` above it become negatives."""
    above = ranked[: ranked.index(entry_id)] if entry_id in ranked else ranked
    wrong = [other for other in above if other != entry_id]
    row = QuestionLabel.objects.create(
        question=item.payload["question"], entry_id=entry_id, wrong_entry_ids=wrong,
        question_log_id=item.question_log_id, decision=record, created_by=user,
    )
    return {"label_id": row.pk, **known_question(text=item.payload["question"], entry_id=entry_id, wrong=wrong, item=item, user=user)}


def known_question(*, text: str, entry_id: int, wrong: list[int], item: ReviewItem, user) -> dict:
    """The expert's answer is also a labelled question of the installation (retrieval's): served at once by the
    search index (the instant fix), a training pair or a held-out judge of versions. Undo forgets it only when
    this decision created it."""
    entry = Entry.objects.get(pk=entry_id)
    existed = LabelledQuestion.objects.filter(normalised=labelled.normalise_question(text)[:500], entry=entry).exists()
    question = labelled.labelled_question_record(
        text=text, entry=entry, source=LabelledQuestion.Source.WORKBENCH, user=user, wrong_entry_ids=wrong,
        question_log=item.question_log if item.question_log_id else None,
    )
    return {} if existed else {"labelled_question_id": question.pk}


def revert_known_question(effect: dict) -> None:
    question = LabelledQuestion.objects.filter(pk=effect.get("labelled_question_id") or 0).first()
    if question is not None:
        labelled.labelled_question_delete(question=question)


def revert_label(effect: dict) -> None:
    if "label_id" in effect:
        QuestionLabel.objects.filter(pk=effect["label_id"]).delete()
    revert_known_question(effect)
