"""Questions with known answers (retrieval.LabelledQuestion): writes, reads, import, and their life in the loop.

Every expert decision that ties a real question to its entry is kept here: a flag's correction, a workbench
answer (the workbench calls ``labelled_question_record``), an accepted answer, an exam question written or
imported by an expert. Each one is at once a "known question" passage of its entry (the instant fix: the
entry's index update is enqueued when one is recorded), training material unless held out, and a question to
judge versions with (evaluation.real_questions, with known-question passages left out of the ranking).
"""
from __future__ import annotations

import csv
import io
import json
import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from glossary.imports import RowError
from glossary.models import Entry
from glossary.text import collapse_spaces, definition_key, term_key
from retrieval.lexical import tokenize
from retrieval.models import Flag, LabelledQuestion, ModelVersion, QuestionLog
from retrieval.passages import QUESTION, Passage
from retrieval.question_kinds import KINDS, KindEntry, is_held_out, normalise_question, question_kind

logger = logging.getLogger(__name__)

Source = LabelledQuestion.Source
IMPORT_FORMATS = ("csv", "jsonl")
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
        raise ValidationError({"text": _("La question est vide.")})
    if len(cleaned) > settings.QUERY_MAX_CHARS:
        raise ValidationError({"text": _("La question dépasse %(limit)s caractères.") % {"limit": settings.QUERY_MAX_CHARS}})
    return cleaned


def _check_kind(kind: str | None) -> None:
    if kind and kind not in KINDS:
        raise ValidationError({"kind": _("Type de question inconnu : %(kind)s.") % {"kind": kind}})


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
        raise ValidationError({"source": _("Origine inconnue : %(source)s.") % {"source": source}})
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
        raise ValidationError(_("Cette réponse n'a retrouvé aucune entrée : rien à valider."))
    entry = Entry.objects.filter(pk=hits[0]["entry_id"]).first()
    if entry is None:
        raise ValidationError(_("L'entrée de cette réponse n'existe plus."))
    return labelled_question_record(
        text=question_log.question, entry=entry, source=Source.ACCEPTED_ANSWER, user=user, question_log=question_log,
    )


def labelled_question_set_kind(*, question: LabelledQuestion, kind: str) -> LabelledQuestion:
    """An expert corrects the kind the rules gave."""
    _check_kind(kind)
    if not kind:
        raise ValidationError({"kind": _("Choisissez un type de question.")})
    question.kind, question.kind_set_by = kind, LabelledQuestion.KindSetBy.EXPERT
    question.save(update_fields=["kind", "kind_set_by", "updated_at"])
    return question


def labelled_question_delete(*, question: LabelledQuestion) -> None:
    """Forget a labelled question; its entry stops serving it as a known question."""
    entry_id = question.entry_id
    with transaction.atomic():
        question.delete()
        _serve_known_questions_of(entry_id)


# ---- import -----------------------------------------------------------------------------------------

@dataclass
class LabelledImportReport:
    total_rows: int
    created: int
    unchanged: int
    errors: list[RowError]
    imported: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "total_rows": self.total_rows, "created": self.created, "unchanged": self.unchanged, "imported": self.imported,
            "errors": [{"line": error.line, "reason": error.reason} for error in self.errors],
        }


@dataclass
class _Row:
    line: int
    text: str
    entry: Entry
    kind: str | None


class _BadRow(ValueError):
    pass


def _file_rows(content: bytes, file_format: str) -> tuple[list[tuple[int, dict]], list[RowError]]:
    """``(line, record)`` of every non-blank row, and the rows that are not records (CSV header = line 1)."""
    if b"\x00" in content:
        raise ValidationError(_("Ce fichier n'est pas un fichier texte."))
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationError(_("Encodage du fichier illisible : enregistrez-le en UTF-8.")) from None
    rows: list[tuple[int, dict]] = []
    errors: list[RowError] = []
    if file_format == "jsonl":
        for line, raw in enumerate(text.split("\n"), start=1):
            if not raw.strip():
                continue
            try:
                value = json.loads(raw)
            except json.JSONDecodeError as error:
                errors.append(RowError(line, _("JSON invalide (colonne %(column)s).") % {"column": error.colno}))
                continue
            if not isinstance(value, dict):
                errors.append(RowError(line, _("La ligne n'est pas un objet JSON.")))
                continue
            rows.append((line, value))
        return rows, errors
    sample = text[:4096]
    delimiter = ";" if sample.split("\n", 1)[0].count(";") > sample.split("\n", 1)[0].count(",") else ","
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    if not reader.fieldnames or "question" not in [name.strip().lower() for name in reader.fieldnames]:
        raise ValidationError(_("Colonne « question » absente de la première ligne."))
    line = 1
    for record in reader:
        line = reader.line_num
        values = {(key or "").strip().lower(): (value or "").strip() if isinstance(value, str) else value for key, value in record.items()}
        if not any(isinstance(value, str) and value for value in values.values()):
            continue
        rows.append((line, values))
    return rows, errors


def _resolve_entry(record: dict) -> Entry:
    """The entry a row names: ``entry_id``, or ``term`` (+ ``definition`` among homonyms)."""
    entry_id = record.get("entry_id")
    if entry_id not in (None, ""):
        try:
            number = int(entry_id)
        except (TypeError, ValueError):
            raise _BadRow(_("entry_id : nombre entier attendu.")) from None
        entry = Entry.objects.filter(pk=number).select_related("domain").first()
        if entry is None:
            raise _BadRow(_("Entrée %(id)s inconnue.") % {"id": number})
        return entry
    term = record.get("term")
    if not isinstance(term, str) or not collapse_spaces(term):
        raise _BadRow(_("Il faut « term » ou « entry_id »."))
    candidates = list(Entry.objects.filter(term_key=term_key(term)).exclude(status=Entry.Status.REJECTED).select_related("domain").order_by("id"))
    if not candidates:
        raise _BadRow(_("Terme inconnu du glossaire : « %(term)s ».") % {"term": collapse_spaces(term)})
    definition = record.get("definition")
    if isinstance(definition, str) and definition.strip():
        wanted = definition_key(definition)
        candidates = [entry for entry in candidates if definition_key(entry.definition) == wanted]
        if not candidates:
            raise _BadRow(_("Aucune définition de « %(term)s » ne correspond à celle donnée.") % {"term": collapse_spaces(term)})
    validated = [entry for entry in candidates if entry.status == Entry.Status.VALIDATED] or candidates
    if len(validated) > 1:
        raise _BadRow(
            _("« %(term)s » a %(count)s sens : donnez la définition ou entry_id (%(ids)s).")
            % {"term": collapse_spaces(term), "count": len(validated), "ids": ", ".join(str(entry.pk) for entry in validated)}
        )
    return validated[0]


def _parse_row(line: int, record: dict) -> _Row:
    text = record.get("question")
    if not isinstance(text, str) or not collapse_spaces(text):
        raise _BadRow(_("La colonne « question » est vide."))
    if len(collapse_spaces(text)) > settings.QUERY_MAX_CHARS:
        raise _BadRow(_("La question dépasse %(limit)s caractères.") % {"limit": settings.QUERY_MAX_CHARS})
    kind = record.get("kind") or None
    if kind is not None and kind not in KINDS:
        raise _BadRow(_("Type de question inconnu : %(kind)s (attendu : %(kinds)s).") % {"kind": kind, "kinds": ", ".join(KINDS)})
    return _Row(line, collapse_spaces(text), _resolve_entry(record), kind)


def labelled_questions_import(*, content: bytes, file_format: str, user=None, dry_run: bool = False) -> LabelledImportReport:
    """Exam questions from a CSV or JSONL file (question, term or entry_id, definition?, kind?), all or nothing.

    Every bad line is reported with its number (the CSV header is line 1); when there is one, nothing is written.
    """
    if file_format not in IMPORT_FORMATS:
        raise ValidationError(_("Format inconnu : %(format)s.") % {"format": file_format})
    if len(content) > settings.IMPORT_MAX_BYTES:
        raise ValidationError(_("Fichier trop volumineux."))
    records, errors = _file_rows(content, file_format)
    rows: list[_Row] = []
    for line, record in records:
        try:
            rows.append(_parse_row(line, record))
        except _BadRow as bad:
            errors.append(RowError(line, str(bad)))
    errors.sort(key=lambda error: error.line)
    total = len(records) + len({error.line for error in errors} - {line for line, _record in records})
    if errors or dry_run:
        return LabelledImportReport(total_rows=total, created=0, unchanged=0, errors=errors, imported=False)
    created = unchanged = 0
    with transaction.atomic():
        for row in rows:
            before = LabelledQuestion.objects.filter(normalised=normalise_question(row.text)[:500], entry=row.entry).exists()
            labelled_question_record(text=row.text, entry=row.entry, source=Source.IMPORT, user=user, kind=row.kind)
            unchanged += before
            created += not before
    return LabelledImportReport(total_rows=total, created=created, unchanged=unchanged, errors=[], imported=True)


# ---- the life of flags and questions in the loop ----------------------------------------------------

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
    steps: list[dict[str, Any]] = [{"step": "open", "label": _("ouvert"), "at": flag.created_at}]
    if flag.corrected_at:
        steps.append({"step": "corrected", "label": _("corrigé"), "at": flag.corrected_at})
    if flag.used_by_run_id:
        steps.append({"step": "used", "label": _("utilisé par l'entraînement n° %(run)s") % {"run": flag.used_by_run_id}, "at": None})
    if flag.checked_version_id and flag.answered_right is not None:
        version = flag.checked_version
        if flag.answered_right:
            label = _("répondu juste par la version %(version)s") % {"version": version}
        else:
            label = _("toujours faux avec la version %(version)s (rang %(rank)s) : à revoir") % {
                "version": version, "rank": flag.checked_rank or "> 10"
            }
        steps.append({"step": "answered" if flag.answered_right else "still_wrong", "label": label, "at": flag.checked_at})
    if flag.status == Flag.Status.DISMISSED:
        steps.append({"step": "dismissed", "label": _("écarté"), "at": flag.status_changed_at})
    return steps


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
