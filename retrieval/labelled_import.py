"""Exam questions imported from a CSV or JSONL file as labelled questions (retrieval.labelled), all or nothing.

Each row names its question and its entry (``entry_id``, or ``term`` with ``definition`` among homonyms) and may
give its kind; every bad line is reported with its number and, when there is one, nothing is written.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from glossary.imports import RowError
from glossary.models import Entry
from glossary.text import collapse_spaces, definition_key, term_key
from retrieval.labelled import Source, labelled_question_record
from retrieval.models import LabelledQuestion
from retrieval.question_kinds import KINDS, normalise_question

IMPORT_FORMATS = ("csv", "jsonl")


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
        raise ValidationError(_("This file is not a text file."))
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationError(_("Unreadable file encoding: save it as UTF-8.")) from None
    rows: list[tuple[int, dict]] = []
    errors: list[RowError] = []
    if file_format == "jsonl":
        for line, raw in enumerate(text.split("\n"), start=1):
            if not raw.strip():
                continue
            try:
                value = json.loads(raw)
            except json.JSONDecodeError as error:
                errors.append(RowError(line, _("Invalid JSON (column %(column)s).") % {"column": error.colno}))
                continue
            if not isinstance(value, dict):
                errors.append(RowError(line, _("The line is not a JSON object.")))
                continue
            rows.append((line, value))
        return rows, errors
    sample = text[:4096]
    delimiter = ";" if sample.split("\n", 1)[0].count(";") > sample.split("\n", 1)[0].count(",") else ","
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    if not reader.fieldnames or "question" not in [name.strip().lower() for name in reader.fieldnames]:
        raise ValidationError(_('No "question" column in the first line.'))
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
            raise _BadRow(_("entry_id: a whole number is expected.")) from None
        entry = Entry.objects.filter(pk=number).select_related("domain").first()
        if entry is None:
            raise _BadRow(_("Unknown entry %(id)s.") % {"id": number})
        return entry
    term = record.get("term")
    if not isinstance(term, str) or not collapse_spaces(term):
        raise _BadRow(_('"term" or "entry_id" is required.'))
    candidates = list(Entry.objects.filter(term_key=term_key(term)).exclude(status=Entry.Status.REJECTED).select_related("domain").order_by("id"))
    if not candidates:
        raise _BadRow(_('Term not in the glossary: "%(term)s".') % {"term": collapse_spaces(term)})
    definition = record.get("definition")
    if isinstance(definition, str) and definition.strip():
        wanted = definition_key(definition)
        candidates = [entry for entry in candidates if definition_key(entry.definition) == wanted]
        if not candidates:
            raise _BadRow(_('No definition of "%(term)s" matches the one given.') % {"term": collapse_spaces(term)})
    validated = [entry for entry in candidates if entry.status == Entry.Status.VALIDATED] or candidates
    if len(validated) > 1:
        raise _BadRow(
            _('"%(term)s" has %(count)s meanings: give the definition or entry_id (%(ids)s).')
            % {"term": collapse_spaces(term), "count": len(validated), "ids": ", ".join(str(entry.pk) for entry in validated)}
        )
    return validated[0]


def _parse_row(line: int, record: dict) -> _Row:
    text = record.get("question")
    if not isinstance(text, str) or not collapse_spaces(text):
        raise _BadRow(_('The "question" column is empty.'))
    if len(collapse_spaces(text)) > settings.QUERY_MAX_CHARS:
        raise _BadRow(_("The question exceeds %(limit)s characters.") % {"limit": settings.QUERY_MAX_CHARS})
    kind = record.get("kind") or None
    if kind is not None and kind not in KINDS:
        raise _BadRow(_("Unknown question kind: %(kind)s (expected: %(kinds)s).") % {"kind": kind, "kinds": ", ".join(KINDS)})
    return _Row(line, collapse_spaces(text), _resolve_entry(record), kind)


def labelled_questions_import(*, content: bytes, file_format: str, user=None, dry_run: bool = False) -> LabelledImportReport:
    """Exam questions from a CSV or JSONL file (question, term or entry_id, definition?, kind?), all or nothing.

    Every bad line is reported with its number (the CSV header is line 1); when there is one, nothing is written.
    """
    if file_format not in IMPORT_FORMATS:
        raise ValidationError(_("Unknown format: %(format)s.") % {"format": file_format})
    if len(content) > settings.IMPORT_MAX_BYTES:
        raise ValidationError(_("File too large."))
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
