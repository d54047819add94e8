"""Questions with known answers (retrieval.LabelledQuestion): writes, reads, and known questions in search.

Every expert decision that ties a real question to its entry is kept here: a flag's correction, a workbench
answer (the workbench calls ``labelled_question_record``), an accepted answer, an exam question written or
imported by an expert. Each one is at once a "known question" passage of its entry (the instant fix: the
entry's index update is enqueued when one is recorded), training material unless held out, and a question to
judge versions with (evaluation.real_questions, with known-question passages left out of the ranking).

Imported from a file: retrieval.labelled_import; a flag's life in the loop: retrieval.flags.
"""
from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from glossary.models import Entry
from glossary.text import collapse_spaces
from retrieval.lexical import tokenize
from retrieval.models import Flag, LabelledQuestion, QuestionLog
from retrieval.passages import QUESTION, Passage
from retrieval.question_kinds import KINDS, KindEntry, is_held_out, normalise_question, question_kind

Source = LabelledQuestion.Source
# A query whose content words are at least this similar (Jaccard) to a known question's ranks that question's
# entry first lexically: the same question and close rewordings ("que veut dire CAF ?" / "CAF, ça veut dire quoi").
KNOWN_QUESTION_MIN_SIMILARITY = 0.5
# At this similarity the query is the answered question itself, up to about a word: the expert's answer comes
# first, before entries whose term the query merely names (retrieval.hybrid.fuse).
KNOWN_QUESTION_ANSWERED_SIMILARITY = 0.8


# ---- kinds ------------------------------------------------------------------------------------------

def kind_entry(entry: Entry) -> KindEntry:
    """What the kind rules need of ``entry``, with the other validated senses of its term."""
    homonyms = (
        Entry.objects.filter(term_key=entry.term_key, status=Entry.Status.VALIDATED)
        .exclude(pk=entry.pk)
        .select_related("domain")
        .order_by("id")
    )
    return KindEntry(
        term=entry.term,
        definition=entry.definition,
        variants=tuple(entry.variants or ()),
        domain=entry.domain.name if entry.domain_id else "",
        homonyms=tuple((other.definition, other.domain.name if other.domain_id else "") for other in homonyms),
    )


def kind_by_rules(*, text: str, entry: Entry) -> str:
    return question_kind(text, kind_entry(entry))


# ---- writes -----------------------------------------------------------------------------------------

def _clean_text(text: str) -> str:
    cleaned = collapse_spaces(text or "")
    if not cleaned:
        raise ValidationError({"text": _("The question is empty.")})
    if len(cleaned) > settings.QUERY_MAX_CHARS:
        raise ValidationError({"text": _("The question exceeds %(limit)s characters.") % {"limit": settings.QUERY_MAX_CHARS}})
    return cleaned


def _check_kind(kind: str | None) -> None:
    if kind and kind not in KINDS:
        raise ValidationError({"kind": _("Unknown question kind: %(kind)s.") % {"kind": kind}})


def _serve_known_questions_of(entry_id: int) -> None:
    """Have the serving indexes re-read this entry's passages (its known questions changed), within seconds.

    ``updated_at`` is what tells the index update (and a full build in progress) that the entry changed since it
    was read; a queryset update moves it without a new glossary revision or history row: the entry's own text
    did not change, only what the index serves for it.
    """
    from retrieval.indexing import index_entry_enqueue

    Entry.objects.filter(pk=entry_id).update(updated_at=timezone.now())
    index_entry_enqueue(entry_id=entry_id)


def labelled_question_record(
    *,
    text: str,
    entry: Entry,
    source: str,
    user=None,
    kind: str | None = None,
    wrong_entry_ids: Sequence[int] = (),
    flag: Flag | None = None,
    question_log: QuestionLog | None = None,
) -> LabelledQuestion:
    """Keep ``text`` as a question whose answer is ``entry`` (idempotent per normalised question and entry).

    ``kind`` given means an expert chose it; otherwise the rules decide. Recording the same question again adds
    the new wrongly ranked entries and keeps the first origin. The entry's index update is enqueued on commit.
    """
    if source not in Source.values:
        raise ValidationError({"source": _("Unknown origin: %(source)s.") % {"source": source}})
    _check_kind(kind)
    cleaned = _clean_text(text)
    normalised = normalise_question(cleaned)[:500]
    wrong = [int(other) for other in dict.fromkeys(wrong_entry_ids) if int(other) != entry.pk]
    with transaction.atomic():
        existing = LabelledQuestion.objects.select_for_update().filter(normalised=normalised, entry=entry).first()
        if existing is not None:
            changed = []
            merged = list(dict.fromkeys([*existing.wrong_entry_ids, *wrong]))
            if merged != existing.wrong_entry_ids:
                existing.wrong_entry_ids = merged
                changed.append("wrong_entry_ids")
            if kind and (kind != existing.kind or existing.kind_set_by != LabelledQuestion.KindSetBy.EXPERT):
                existing.kind, existing.kind_set_by = kind, LabelledQuestion.KindSetBy.EXPERT
                changed += ["kind", "kind_set_by"]
            if flag is not None and existing.flag_id is None:
                existing.flag = flag
                changed.append("flag")
            if changed:
                existing.save(update_fields=[*changed, "updated_at"])
            return existing
        question = LabelledQuestion.objects.create(
            text=cleaned,
            normalised=normalised,
            entry=entry,
            kind=kind or kind_by_rules(text=cleaned, entry=entry),
            kind_set_by=LabelledQuestion.KindSetBy.EXPERT if kind else LabelledQuestion.KindSetBy.RULES,
            source=source,
            held_out=is_held_out(normalised),
            wrong_entry_ids=wrong,
            created_by=user if getattr(user, "is_authenticated", False) else None,
            flag=flag,
            question_log=question_log or (flag.question_log if flag is not None else None),
        )
        _serve_known_questions_of(entry.pk)
    return question


def labelled_question_from_flag(*, flag: Flag, user=None, source: str = Source.FLAG) -> LabelledQuestion | None:
    """The flag's question, tied to its corrected entry; the flag becomes "corrected" (None: no right entry)."""
    if flag.correct_entry_id is None:
        return None
    with transaction.atomic():
        question = labelled_question_record(
            text=flag.question_log.question, entry=flag.correct_entry, source=source, user=user,
            wrong_entry_ids=flag.wrongly_ranked_entry_ids or [], flag=flag, question_log=flag.question_log,
        )
        if flag.status == Flag.Status.OPEN:
            Flag.objects.filter(pk=flag.pk).update(status=Flag.Status.CORRECTED, corrected_at=timezone.now())
            flag.status = Flag.Status.CORRECTED
        elif flag.corrected_at is None:
            Flag.objects.filter(pk=flag.pk).update(corrected_at=timezone.now())
    return question


def labelled_question_accept_answer(*, question_log: QuestionLog, user) -> LabelledQuestion:
    """An expert says the first result of this answer is right: keep the question with that entry."""
    hits = question_log.hits or []
    if not hits:
        raise ValidationError(_("This answer retrieved no entry: nothing to accept."))
    entry = Entry.objects.filter(pk=hits[0]["entry_id"]).first()
    if entry is None:
        raise ValidationError(_("This answer's entry no longer exists."))
    return labelled_question_record(
        text=question_log.question, entry=entry, source=Source.ACCEPTED_ANSWER, user=user, question_log=question_log,
    )


def labelled_question_set_kind(*, question: LabelledQuestion, kind: str) -> LabelledQuestion:
    """An expert corrects the kind the rules gave."""
    _check_kind(kind)
    if not kind:
        raise ValidationError({"kind": _("Choose a question kind.")})
    question.kind, question.kind_set_by = kind, LabelledQuestion.KindSetBy.EXPERT
    question.save(update_fields=["kind", "kind_set_by", "updated_at"])
    return question


def labelled_question_delete(*, question: LabelledQuestion) -> None:
    """Forget a labelled question; its entry stops serving it as a known question."""
    entry_id = question.entry_id
    with transaction.atomic():
        question.delete()
        _serve_known_questions_of(entry_id)


# ---- used by training ------------------------------------------------------------------------------

def labelled_questions_mark_used(*, run_id: int, ids: Iterable[int]) -> int:
    """Training run ``run_id`` trained on these labelled questions: record it on them and on their flags.

    The pipeline calls this once the run's training data is fixed (held-out questions are never passed).
    Returns the number of questions marked.
    """
    ids = list(ids)
    with transaction.atomic():
        marked = LabelledQuestion.objects.filter(pk__in=ids, held_out=False).update(used_by_run_id=run_id)
        flag_ids = LabelledQuestion.objects.filter(pk__in=ids, held_out=False, flag__isnull=False).values_list("flag_id", flat=True)
        Flag.objects.filter(pk__in=list(flag_ids)).exclude(status=Flag.Status.DISMISSED).update(
            used_by_run_id=run_id, status=Flag.Status.USED, status_changed_at=timezone.now()
        )
    return marked


# ---- reads ------------------------------------------------------------------------------------------

def labelled_question_list(
    *, kind: str = "", source: str = "", held_out: bool | None = None, entry_id: int | None = None, search: str = ""
) -> QuerySet[LabelledQuestion]:
    qs = LabelledQuestion.objects.select_related("entry", "entry__domain", "created_by", "flag")
    if kind:
        qs = qs.filter(kind=kind)
    if source:
        qs = qs.filter(source=source)
    if held_out is not None:
        qs = qs.filter(held_out=held_out)
    if entry_id:
        qs = qs.filter(entry_id=entry_id)
    if search:
        qs = qs.filter(Q(text__icontains=search) | Q(entry__term__icontains=search))
    return qs.order_by("-created_at", "-id")


def labelled_question_get(*, question_id: int) -> LabelledQuestion:
    return LabelledQuestion.objects.select_related("entry", "entry__domain", "created_by", "flag").get(pk=question_id)


def known_question_texts(*, entry_id: int) -> list[str]:
    """The known questions an entry serves as passages, oldest first (their positions stay stable)."""
    return list(LabelledQuestion.objects.filter(entry_id=entry_id).order_by("id").values_list("text", flat=True))


# ---- known questions in search ----------------------------------------------------------------------

@dataclass(frozen=True)
class KnownQuestions:
    """The known-question passages of a served index, ready for a lexical comparison with a query."""

    questions: tuple[tuple[int, frozenset[str]], ...]  # (entry id, content tokens)
    count: int

    @classmethod
    def from_passages(cls, passages: Sequence[Passage]) -> KnownQuestions:
        questions = tuple((p.entry_id, frozenset(tokenize(p.text))) for p in passages if p.passage_type == QUESTION)
        return cls(questions=tuple(q for q in questions if q[1]), count=len(questions))

    def matches(self, *texts: str, min_similarity: float = KNOWN_QUESTION_MIN_SIMILARITY) -> list[tuple[int, float]]:
        """Entries whose known question is close to one of ``texts`` (Jaccard of content words), best first."""
        best: dict[int, float] = {}
        for text in texts:
            tokens = frozenset(tokenize(text))
            if not tokens:
                continue
            for entry_id, question in self.questions:
                similarity = len(tokens & question) / len(tokens | question)
                if similarity >= min_similarity and similarity > best.get(entry_id, 0.0):
                    best[entry_id] = similarity
        return sorted(best.items(), key=lambda item: (-item[1], item[0]))


_known_lock = threading.Lock()
_known_cache: dict[int, tuple[int, int, KnownQuestions]] = {}


def known_questions_of(*, version_id: int, revision: int, passages: list[Passage]) -> KnownQuestions:
    """``KnownQuestions`` of a served index revision, computed once per revision and process."""
    with _known_lock:
        cached = _known_cache.get(version_id)
        if cached is not None and cached[0] == revision and cached[1] == id(passages):
            return cached[2]
    known = KnownQuestions.from_passages(passages)
    with _known_lock:
        _known_cache[version_id] = (revision, id(passages), known)
    return known


def answered_entries(matches: list[tuple[int, float]]) -> list[int]:
    """The entries an expert gave as the answer to this very question (``matches`` of ``KnownQuestions``)."""
    return [entry_id for entry_id, similarity in matches if similarity >= KNOWN_QUESTION_ANSWERED_SIMILARITY]


def with_known_questions(lexical: list[tuple[int, float]], matches: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """The lexical ranking with the entries of matching known questions first (best match first), then the rest.

    Their score is raised above every BM25 score (fusion sorts the lexical ranking by score): a question an expert
    already answered is the strongest lexical evidence there is.
    """
    if not matches:
        return lexical
    top = max((score for _entry, score in lexical), default=0.0)
    raised = [(entry_id, top + 1.0 + similarity) for entry_id, similarity in matches]
    matched = {entry_id for entry_id, _similarity in matches}
    return raised + [(entry_id, score) for entry_id, score in lexical if entry_id not in matched]
