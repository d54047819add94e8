"""Glossary import and export.

An import reads a file into rows (one parser per format), validates every row with the same rules as
``glossary.services.entry_build``, plans what to create and what already exists, and then writes it
all in one transaction through ``glossary.services``. Every import is recorded as an ImportBatch.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import PurePath

import pandas as pd
from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.db import transaction
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.utils.text import get_valid_filename
from django.utils.translation import gettext as _

from glossary import selectors, services
from glossary.models import Domain, Entry, ImportBatch
from glossary.text import collapse_spaces

logger = logging.getLogger(__name__)

FORMATS = ("csv", "jsonl", "xlsx", "sigles", "bercy", "baconnier")
EXPORT_FORMATS = ("csv", "jsonl", "xlsx")
# Columns of the plain formats, in export order; only term and definition are required on import.
COLUMNS = ("term", "definition", "domain", "kind", "variants", "contexts", "examples", "status", "source", "source_url", "split")
REQUIRED_COLUMNS = ("term", "definition")
# Separates the items of a list column (variants, contexts) in CSV and XLSX cells.
LIST_SEPARATOR = " | "
PREVIEW_ROWS = 20
IMPORT_STATUSES = (Entry.Status.DRAFT, Entry.Status.VALIDATED)
PINNED_SPLITS = (Entry.Split.TRAIN, Entry.Split.TEST)
BERCY_PAIR_TYPES = ("def", "context", "qa")
# A term this short and mostly in capitals or digits is taken for an acronym when the file gives no kind.
ACRONYM_MAX_CHARS = 12
ACRONYM_MIN_UPPER_SHARE = 0.6


@dataclass
class RowError:
    """A row that cannot be imported. ``line`` is what the user sees: the CSV line (header = 1), the
    JSONL line, the spreadsheet row, or the 1-based item of a JSON array."""

    line: int
    reason: str


@dataclass
class ImportReport:
    file_format: str
    total_rows: int
    valid_rows: int
    created: int
    unchanged: int
    errors: list[RowError]
    imported: bool
    dry_run: bool
    batch_id: int | None
    preview: list[dict]
    # Existing entries that received new variants, contexts or examples from the file.
    updated: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


class ImportRefused(Exception):
    """The whole file cannot be imported (too large, unknown format, unreadable, missing columns),
    or an export was asked in an unknown format.

    The message is meant for the user.
    """


class _BadRow(Exception):
    """One row cannot be read; the message is the reason shown to the user."""


@dataclass
class ImportOptions:
    domain: str | None = None
    status: str = Entry.Status.DRAFT
    split: str = ""
    dry_run: bool = False
    skip_invalid: bool = False

    def __post_init__(self) -> None:
        self.domain = collapse_spaces(self.domain or "") or None
        self.split = self.split or ""
        if self.status not in IMPORT_STATUSES:
            raise ImportRefused(_("Statut d'import inconnu : %(status)s (brouillon ou validé).") % {"status": self.status})
        if self.split and self.split not in PINNED_SPLITS:
            raise ImportRefused(_("Partition inconnue : %(split)s (train ou test).") % {"split": self.split})
        if self.domain and len(self.domain) > Domain._meta.get_field("name").max_length:
            raise ImportRefused(_("Le nom du domaine est trop long."))

    @classmethod
    def from_dict(cls, options: dict) -> ImportOptions:
        """Options as sent by a form or the API; keys other than the option names are not options."""
        known = {name: options[name] for name in cls.__dataclass_fields__ if options.get(name) not in (None, "")}
        return cls(**known)


@dataclass
class _Row:
    """One glossary entry as read from a file, before validation."""

    line: int
    term: str = ""
    definition: str = ""
    kind: str = ""
    domain: str = ""
    variants: list[str] = field(default_factory=list)
    contexts: list[str] = field(default_factory=list)
    examples: list[dict] = field(default_factory=list)
    status: str = ""
    source: str = ""
    source_url: str = ""
    split: str = ""


@dataclass
class _Parsed:
    rows: list[_Row]
    errors: list[RowError]
    total_rows: int


@dataclass
class _Plan:
    """What an import would do, computed without writing anything."""

    file_format: str
    total_rows: int
    errors: list[RowError]
    # New entries (validated, unsaved) with the name of their domain.
    new_entries: list[tuple[Entry, str | None]]
    # Existing entry id -> the list fields it gains.
    updates: dict[int, dict[str, list]]
    unchanged: int
    preview: list[dict]

    def report(self, *, imported: bool, dry_run: bool, batch_id: int | None) -> ImportReport:
        error_lines = {error.line for error in self.errors}
        return ImportReport(
            file_format=self.file_format,
            total_rows=self.total_rows,
            valid_rows=self.total_rows - len(error_lines),
            created=len(self.new_entries),
            unchanged=self.unchanged,
            errors=sorted(self.errors, key=lambda error: error.line),
            imported=imported,
            dry_run=dry_run,
            batch_id=batch_id,
            preview=self.preview,
            updated=len(self.updates),
        )


# Public API -------------------------------------------------------------------------------------


def import_preview(
    *, content: bytes, file_name: str, file_format: str, domain: str | None = None, status: str = "draft", split: str = ""
) -> ImportReport:
    """Parse and validate the file and say what an import would do; writes nothing."""
    _check_file(content=content, file_format=file_format)
    options = ImportOptions(domain=domain, status=status, split=split, dry_run=True)
    return _analyse(content=content, file_format=file_format, options=options).report(imported=False, dry_run=True, batch_id=None)


def import_file(
    *,
    content: bytes,
    file_name: str,
    file_format: str,
    domain: str | None = None,
    status: str = "draft",
    split: str = "",
    dry_run: bool = False,
    skip_invalid: bool = False,
    user=None,
) -> ImportReport:
    """Import the file now, in one transaction, and record it as an ImportBatch (except for a dry run).

    Nothing is imported when a row is invalid, unless ``skip_invalid``.
    """
    _check_file(content=content, file_format=file_format)
    options = ImportOptions(domain=domain, status=status, split=split, dry_run=dry_run, skip_invalid=skip_invalid)
    return _import(content=content, file_name=file_name, file_format=file_format, options=options, user=user, batch=None)


def import_enqueue(*, content: bytes, file_name: str, file_format: str, options: dict, user=None) -> ImportBatch:
    """Store the file and queue its import for a worker (``glossary.tasks.import_run``)."""
    _check_file(content=content, file_format=file_format)
    import_options = ImportOptions.from_dict(options)
    with transaction.atomic():
        batch = _new_batch(
            content=content, file_name=file_name, file_format=file_format, options=import_options,
            user=user, status=ImportBatch.Status.QUEUED,
        )
        safe_name = get_valid_filename(PurePath(file_name).name) or "import"
        batch.stored_path = storages["artifacts"].save(f"imports/{batch.pk}/{safe_name}", ContentFile(content))
        batch.save(update_fields=["stored_path"])
        transaction.on_commit(lambda: _send_to_worker(batch.pk))
    return batch


def _send_to_worker(batch_id: int) -> None:
    from glossary.tasks import import_run

    try:
        import_run.delay(batch_id)
    except Exception as error:  # the broker is down: say so on the batch rather than leave it queued forever
        logger.exception("Could not enqueue import batch %s", batch_id)
        ImportBatch.objects.filter(pk=batch_id, status=ImportBatch.Status.QUEUED).update(
            status=ImportBatch.Status.FAILED, finished_at=timezone.now(),
            error=_("File d'attente indisponible : %(error)s. Le fichier est conservé ; relancez l'import plus tard.") % {"error": error},
        )


def import_batch_run(*, batch_id: int) -> ImportBatch:
    """Run a queued import (what the worker does); a failure is recorded on the batch."""
    batch = ImportBatch.objects.select_related("created_by").get(pk=batch_id)
    if batch.status != ImportBatch.Status.QUEUED:
        # A message delivered twice (late acknowledgement) must not run the import again.
        logger.warning("Import batch %s is %s, not queued: not run again", batch_id, batch.status)
        return batch
    batch.status = ImportBatch.Status.RUNNING
    batch.save(update_fields=["status"])
    try:
        with storages["artifacts"].open(batch.stored_path, "rb") as stored:
            content = stored.read()
        _check_file(content=content, file_format=batch.file_format)
        options = ImportOptions.from_dict(batch.options)
        _import(content=content, file_name=batch.file_name, file_format=batch.file_format, options=options, user=batch.created_by, batch=batch)
    except ImportRefused as refusal:
        _finish(batch, status=ImportBatch.Status.FAILED, report=None, error=str(refusal))
    except Exception:
        logger.exception("Import batch %s failed", batch_id)
        _finish(batch, status=ImportBatch.Status.FAILED, report=None, error=_("Erreur inattendue pendant l'import : voir le journal du serveur."))
    batch.refresh_from_db()
    return batch


def export_glossary(*, file_format: str) -> bytes:
    """Every entry, in a file that import_file reads back into the same glossary."""
    if file_format not in EXPORT_FORMATS:
        raise ImportRefused(_("Format d'export inconnu : %(format)s (formats possibles : %(formats)s).") % {"format": file_format, "formats": ", ".join(EXPORT_FORMATS)})
    records = [_export_record(entry) for entry in selectors.entries_for_export().iterator(chunk_size=2000)]
    if file_format == "jsonl":
        return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records).encode("utf-8")
    table = pd.DataFrame(
        [
            {
                **record,
                "variants": LIST_SEPARATOR.join(record["variants"]),
                "contexts": LIST_SEPARATOR.join(record["contexts"]),
                "examples": json.dumps(record["examples"], ensure_ascii=False) if record["examples"] else "",
            }
            for record in records
        ],
        columns=list(COLUMNS),
    )
    if file_format == "csv":
        # The byte order mark lets spreadsheet software recognise UTF-8 (accents).
        return table.to_csv(index=False).encode("utf-8-sig")
    buffer = io.BytesIO()
    table.to_excel(buffer, index=False, sheet_name="glossaire", engine="openpyxl")
    return buffer.getvalue()


def guess_kind(term: str) -> str:
    """Acronym when the term is short and mostly capitals or digits ('URSSAF', '3D', 'PhD'), else term ('Urssaf')."""
    compact = "".join(ch for ch in term if ch.isalnum())
    if not compact or len(compact) > ACRONYM_MAX_CHARS or " " in term.strip():
        return Entry.Kind.TERM
    upper_or_digit = sum(1 for ch in compact if ch.isupper() or ch.isdigit())
    return Entry.Kind.ACRONYM if upper_or_digit / len(compact) >= ACRONYM_MIN_UPPER_SHARE else Entry.Kind.TERM


# Import steps -----------------------------------------------------------------------------------


def _check_file(*, content: bytes, file_format: str) -> None:
    if file_format not in FORMATS:
        raise ImportRefused(_("Format inconnu : %(format)s (formats possibles : %(formats)s).") % {"format": file_format, "formats": ", ".join(FORMATS)})
    if len(content) > settings.IMPORT_MAX_BYTES:
        raise ImportRefused(
            _("Le fichier est trop volumineux (%(size)s) : la taille maximale est %(max)s.")
            % {"size": filesizeformat(len(content)), "max": filesizeformat(settings.IMPORT_MAX_BYTES)}
        )
    if not content.strip():
        raise ImportRefused(_("Le fichier est vide."))


def _import(*, content: bytes, file_name: str, file_format: str, options: ImportOptions, user, batch: ImportBatch | None) -> ImportReport:
    plan = _analyse(content=content, file_format=file_format, options=options)
    if options.dry_run:
        report = plan.report(imported=False, dry_run=True, batch_id=batch.pk if batch else None)
        if batch:
            _finish(batch, status=ImportBatch.Status.PREVIEWED, report=report)
        return report
    if plan.errors and not options.skip_invalid:
        batch = batch or _new_batch(content=content, file_name=file_name, file_format=file_format, options=options, user=user)
        report = plan.report(imported=False, dry_run=False, batch_id=batch.pk)
        error = _("%(count)s ligne(s) invalide(s) : rien n'a été importé.") % {"count": len({e.line for e in plan.errors})}
        _finish(batch, status=ImportBatch.Status.FAILED, report=report, error=error)
        return report
    try:
        with transaction.atomic():
            batch = batch or _new_batch(content=content, file_name=file_name, file_format=file_format, options=options, user=user)
            _apply(plan, batch=batch, user=user)
            report = plan.report(imported=True, dry_run=False, batch_id=batch.pk)
            _finish(batch, status=ImportBatch.Status.IMPORTED, report=report)
    except ValidationError as error:
        # Another write changed the glossary between the plan and the import (e.g. the same entry created meanwhile).
        raise ImportRefused(" ".join(error.messages)) from error
    return report


def _new_batch(*, content: bytes, file_name: str, file_format: str, options: ImportOptions, user, status: str = ImportBatch.Status.RUNNING) -> ImportBatch:
    return ImportBatch.objects.create(
        file_name=PurePath(file_name).name[:255],
        file_format=file_format,
        file_sha256=hashlib.sha256(content).hexdigest(),
        options=asdict(options),
        status=status,
        created_by=user,
    )


def _finish(batch: ImportBatch, *, status: str, report: ImportReport | None, error: str = "") -> None:
    batch.status = status
    batch.error = error
    batch.finished_at = timezone.now()
    if report is not None:
        batch.created_count = report.created
        batch.unchanged_count = report.unchanged
        batch.invalid_count = len({e.line for e in report.errors})
        batch.report = {key: value for key, value in report.as_dict().items() if key != "preview"}
    batch.save()


def _analyse(*, content: bytes, file_format: str, options: ImportOptions) -> _Plan:
    parsed = _PARSERS[file_format](content)
    if parsed.total_rows == 0:
        raise ImportRefused(_("Le fichier ne contient aucune ligne à importer."))
    errors = list(parsed.errors)
    built: list[tuple[_Row, Entry, str | None]] = []
    choices = _ChoiceReader()
    for row in parsed.rows:
        try:
            entry, domain_name = _build_entry(row, options, choices)
        except ValidationError as error:
            errors.append(RowError(row.line, _validation_reason(error)))
            continue
        built.append((row, entry, domain_name))
    return _plan(file_format=file_format, total_rows=parsed.total_rows, errors=errors, built=built)


def _build_entry(row: _Row, options: ImportOptions, choices: _ChoiceReader) -> tuple[Entry, str | None]:
    domain_name = collapse_spaces(row.domain) or options.domain
    if domain_name and len(domain_name) > Domain._meta.get_field("name").max_length:
        raise ValidationError({"domain": _("Le nom du domaine est trop long.")})
    source_url = row.source_url.strip()
    if source_url and "://" not in source_url:
        # Sources often omit the scheme ('pole-emploi.fr/...'), as browsers allow.
        source_url = f"https://{source_url}"
    entry = services.entry_build(
        term=row.term,
        definition=row.definition,
        kind=choices.kind(row.kind) or guess_kind(row.term),
        variants=row.variants,
        contexts=row.contexts,
        examples=row.examples,
        status=choices.status(row.status) or options.status,
        source=collapse_spaces(row.source),
        source_url=source_url,
        split=options.split or row.split.strip(),
    )
    return entry, domain_name


class _ChoiceReader:
    """Reads a kind or status given by its value or by its label ('sigle' -> 'acronym')."""

    def __init__(self) -> None:
        self._kinds = {str(label).casefold(): value for value, label in Entry.Kind.choices}
        self._statuses = {str(label).casefold(): value for value, label in Entry.Status.choices}

    def kind(self, text: str) -> str:
        text = collapse_spaces(text)
        return self._kinds.get(text.casefold(), text)

    def status(self, text: str) -> str:
        text = collapse_spaces(text)
        return self._statuses.get(text.casefold(), text)


def _validation_reason(error: ValidationError) -> str:
    if not hasattr(error, "error_dict"):
        return " ".join(error.messages)
    parts = []
    for field_name, messages in error.message_dict.items():
        text = " ".join(messages)
        if field_name == NON_FIELD_ERRORS:
            parts.append(text)
        else:
            label = str(Entry._meta.get_field(field_name).verbose_name)
            parts.append(f"{label[:1].upper()}{label[1:]} : {text}")
    return " ".join(parts)


_LIST_FIELDS = ("variants", "contexts", "examples")


def _merge_lists(target: dict[str, list], source: Entry) -> bool:
    """Add the items of ``source``'s list fields missing from ``target``; True when something was added."""
    added = False
    for name in _LIST_FIELDS:
        for item in getattr(source, name):
            if item not in target[name]:
                target[name].append(item)
                added = True
    return added


def _plan(*, file_format: str, total_rows: int, errors: list[RowError], built: list[tuple[_Row, Entry, str | None]]) -> _Plan:
    existing = {
        (term_key, digest): pk
        for pk, term_key, digest in Entry.objects.values_list("pk", "term_key", "definition_key_hash")
    }
    new: dict[tuple[str, str], tuple[Entry, str | None]] = {}
    matched_existing: dict[int, list[Entry]] = {}
    actions: list[tuple[_Row, Entry, str | None, tuple[str, str]]] = []
    unchanged = 0
    for row, entry, domain_name in built:
        key = (entry.term_key, entry.definition_key_hash)
        actions.append((row, entry, domain_name, key))
        if key in new:
            # The same entry twice in the file: one entry, with the lists of both rows.
            first = new[key][0]
            _merge_lists({name: getattr(first, name) for name in _LIST_FIELDS}, entry)
            unchanged += 1
        elif key in existing:
            matched_existing.setdefault(existing[key], []).append(entry)
        else:
            new[key] = (entry, domain_name)
    updates: dict[int, dict[str, list]] = {}
    for pk, current in Entry.objects.only("pk", *_LIST_FIELDS).in_bulk(list(matched_existing)).items():
        lists = {name: list(getattr(current, name)) for name in _LIST_FIELDS}
        # Merge every matching row (a list, not a short-circuiting generator).
        if any([_merge_lists(lists, incoming) for incoming in matched_existing[pk]]):
            updates[pk] = lists
    unchanged += sum(len(rows) for rows in matched_existing.values()) - len(updates)
    preview = []
    for row, entry, domain_name, key in actions[:PREVIEW_ROWS]:
        if key in existing:
            action = "update" if existing[key] in updates else "unchanged"
        else:
            action = "create" if new[key][0] is entry else "unchanged"
        preview.append({"line": row.line, **_export_record(entry, domain_name=domain_name), "action": action})
    return _Plan(
        file_format=file_format,
        total_rows=total_rows,
        errors=errors,
        new_entries=list(new.values()),
        updates=updates,
        unchanged=unchanged,
        preview=preview,
    )


def _apply(plan: _Plan, *, batch: ImportBatch, user) -> None:
    domains: dict[str, Domain] = {}
    for entry, domain_name in plan.new_entries:
        if domain_name:
            if domain_name.casefold() not in domains:
                domains[domain_name.casefold()] = services.domain_get_or_create(name=domain_name)
            entry.domain = domains[domain_name.casefold()]
        entry.import_batch = batch
        entry.created_by = user
    services.entries_bulk_create(
        entries=[entry for entry, _domain in plan.new_entries], user=user,
        change_reason=_("Import de %(file)s") % {"file": batch.file_name},
    )
    for pk, current in Entry.objects.in_bulk(list(plan.updates)).items():
        services.entry_update(entry=current, data=plan.updates[pk], user=user)


def _export_record(entry: Entry, *, domain_name: str | None = None) -> dict:
    if domain_name is None and entry.domain_id:
        domain_name = entry.domain.name
    return {
        "term": entry.term,
        "definition": entry.definition,
        "domain": domain_name or "",
        "kind": entry.kind,
        "variants": list(entry.variants),
        "contexts": list(entry.contexts),
        "examples": list(entry.examples),
        "status": entry.status,
        "source": entry.source,
        "source_url": entry.source_url,
        "split": entry.split,
    }


# Parsers: bytes -> rows and row errors -------------------------------------------------------------


def _decode(content: bytes, encodings: tuple[str, ...]) -> str:
    if b"\x00" in content:
        raise ImportRefused(_("Ce fichier n'est pas un fichier texte."))
    for encoding in encodings:
        try:
            return content.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ImportRefused(_("Encodage du fichier illisible : enregistrez-le en UTF-8."))


def _text(value, label: str) -> str:
    if value is None:
        return ""
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    raise _BadRow(_("%(field)s : texte attendu.") % {"field": label})


def _text_list(value, label: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _BadRow(_("%(field)s : liste attendue.") % {"field": label})
    return [_text(item, label) for item in value]


def _examples(value) -> list[dict]:
    label = _("Exemples")
    if value is None or value == "":
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise _BadRow(_("%(field)s : JSON invalide.") % {"field": label}) from None
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise _BadRow(_("%(field)s : liste d'objets {question, answer} attendue.") % {"field": label})
    return value


def _split_cell(cell: str) -> list[str]:
    return [item.strip() for item in cell.split(LIST_SEPARATOR.strip()) if item.strip()]


def _read_table(content: bytes, *, file_format: str, required: tuple[str, ...]) -> pd.DataFrame:
    """A CSV or XLSX file as a table of strings with normalised column names."""
    try:
        if file_format == "xlsx":
            table = pd.read_excel(io.BytesIO(content), dtype=str, keep_default_na=False, engine="openpyxl")
        else:
            text = _decode(content, ("utf-8-sig", "cp1252"))
            header = text.split("\n", 1)[0]
            # Spreadsheets set to French export CSV with semicolons.
            separator = ";" if header.count(";") > header.count(",") else ","
            table = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, sep=separator, skip_blank_lines=False)
    except ImportRefused:
        raise
    except Exception as error:
        logger.info("Unreadable %s file: %s", file_format, error)
        if file_format == "xlsx":
            raise ImportRefused(_("Fichier Excel illisible : enregistrez-le au format .xlsx.")) from error
        raise ImportRefused(_("Fichier CSV mal formé : %(detail)s") % {"detail": str(error).strip()}) from error
    table.columns = [str(column).strip().casefold() for column in table.columns]
    missing = [column for column in required if column not in table.columns]
    if missing:
        raise ImportRefused(
            _("Colonnes manquantes : %(missing)s. Colonnes attendues : %(expected)s.")
            % {"missing": ", ".join(missing), "expected": ", ".join(required)}
        )
    return table.fillna("")


def _table_rows(table: pd.DataFrame, make_row: Callable[[int, dict], _Row]) -> _Parsed:
    rows, errors, total = [], [], 0
    for index, record in enumerate(table.to_dict("records")):
        # The header is line 1, so the first data row is line 2 (also the spreadsheet row number).
        line = index + 2
        values = {key: collapse_spaces(str(value)) for key, value in record.items()}
        if not any(values.values()):
            continue
        total += 1
        try:
            rows.append(make_row(line, values))
        except _BadRow as bad:
            errors.append(RowError(line, str(bad)))
    return _Parsed(rows=rows, errors=errors, total_rows=total)


def _plain_table_row(line: int, values: dict) -> _Row:
    return _Row(
        line=line,
        term=values.get("term", ""),
        definition=values.get("definition", ""),
        kind=values.get("kind", ""),
        domain=values.get("domain", ""),
        variants=_split_cell(values.get("variants", "")),
        contexts=_split_cell(values.get("contexts", "")),
        examples=_examples(values.get("examples", "")),
        status=values.get("status", ""),
        source=values.get("source", ""),
        source_url=values.get("source_url", ""),
        split=values.get("split", ""),
    )


def _sigles_row(line: int, values: dict) -> _Row:
    explanation = values.get("explanation", "")
    return _Row(
        line=line,
        term=values["term"],
        definition=values["definition"],
        kind=Entry.Kind.ACRONYM,
        contexts=[explanation] if explanation else [],
        source=values.get("source", ""),
        source_url=values.get("url_source", ""),
    )


def _parse_csv(content: bytes) -> _Parsed:
    return _table_rows(_read_table(content, file_format="csv", required=REQUIRED_COLUMNS), _plain_table_row)


def _parse_xlsx(content: bytes) -> _Parsed:
    return _table_rows(_read_table(content, file_format="xlsx", required=REQUIRED_COLUMNS), _plain_table_row)


def _parse_sigles(content: bytes) -> _Parsed:
    return _table_rows(_read_table(content, file_format="sigles", required=REQUIRED_COLUMNS), _sigles_row)


def _json_lines(content: bytes) -> tuple[list[tuple[int, dict]], list[RowError], int]:
    """The objects of a JSONL file with their line numbers, and the lines that are not JSON objects."""
    objects, errors, total = [], [], 0
    # Split on newlines only: JSON strings may hold other Unicode line separators.
    for line, text in enumerate(_decode(content, ("utf-8-sig",)).split("\n"), start=1):
        if not text.strip():
            continue
        total += 1
        try:
            value = json.loads(text)
        except json.JSONDecodeError as error:
            errors.append(RowError(line, _("JSON invalide (colonne %(column)s).") % {"column": error.colno}))
            continue
        if not isinstance(value, dict):
            errors.append(RowError(line, _("La ligne n'est pas un objet JSON.")))
            continue
        objects.append((line, value))
    return objects, errors, total


def _parse_jsonl(content: bytes) -> _Parsed:
    objects, errors, total = _json_lines(content)
    rows = []
    for line, item in objects:
        try:
            rows.append(
                _Row(
                    line=line,
                    term=_text(item.get("term"), "term"),
                    definition=_text(item.get("definition"), "definition"),
                    kind=_text(item.get("kind"), "kind"),
                    domain=_text(item.get("domain"), "domain"),
                    variants=_text_list(item.get("variants"), "variants"),
                    contexts=_text_list(item.get("contexts"), "contexts"),
                    examples=_examples(item.get("examples")),
                    status=_text(item.get("status"), "status"),
                    source=_text(item.get("source"), "source"),
                    source_url=_text(item.get("source_url"), "source_url"),
                    split=_text(item.get("split"), "split"),
                )
            )
        except _BadRow as bad:
            errors.append(RowError(line, str(bad)))
    return _Parsed(rows=rows, errors=errors, total_rows=total)


def _parse_bercy(content: bytes) -> _Parsed:
    """One entry per concept (cluster_id): the def row gives the term and definition, context rows
    the usage contexts, qa rows the example questions."""
    objects, errors, total = _json_lines(content)
    concepts: dict[str, _Row] = {}
    definition_lines: dict[str, int] = {}
    for line, item in objects:
        try:
            cluster = collapse_spaces(_text(item.get("cluster_id"), "cluster_id"))
            pair_type = _text(item.get("pair_type"), "pair_type")
            anchor = collapse_spaces(_text(item.get("anchor"), "anchor"))
            positive = collapse_spaces(_text(item.get("positive"), "positive"))
            if not cluster:
                raise _BadRow(_("cluster_id manquant."))
            if pair_type not in BERCY_PAIR_TYPES:
                raise _BadRow(_("pair_type inconnu : %(value)s (def, context ou qa).") % {"value": pair_type})
            if not anchor or not positive:
                raise _BadRow(_("anchor ou positive manquant."))
        except _BadRow as bad:
            errors.append(RowError(line, str(bad)))
            continue
        concept = concepts.setdefault(
            cluster,
            _Row(line=line, term=cluster, kind=_text(item.get("anchor_type"), "anchor_type"), domain=_text(item.get("domain"), "domain")),
        )
        if pair_type == "def":
            if cluster in definition_lines:
                errors.append(RowError(line, _("Deuxième définition pour « %(cluster)s » (voir la ligne %(first)s).") % {"cluster": cluster, "first": definition_lines[cluster]}))
                continue
            definition_lines[cluster] = line
            # The def row's anchor is the term as written ('sécurité des systèmes d’information'),
            # where cluster_id may be an identifier ('securite_des_systemes_d_information').
            concept.term = anchor
            concept.definition = positive
        elif pair_type == "context":
            concept.contexts.append(positive)
        else:
            concept.examples.append({"question": anchor, "answer": positive})
    return _Parsed(rows=list(concepts.values()), errors=errors, total_rows=total)


def _parse_baconnier(content: bytes) -> _Parsed:
    try:
        items = json.loads(_decode(content, ("utf-8-sig",)))
    except json.JSONDecodeError as error:
        raise ImportRefused(_("JSON invalide (ligne %(line)s, colonne %(column)s).") % {"line": error.lineno, "column": error.colno}) from error
    if not isinstance(items, list):
        raise ImportRefused(_("Le fichier doit contenir une liste JSON d'objets {term, definition}."))
    rows, errors = [], []
    for index, item in enumerate(items, start=1):
        try:
            if not isinstance(item, dict):
                raise _BadRow(_("L'élément n'est pas un objet JSON."))
            rows.append(
                _Row(line=index, term=_text(item.get("term"), "term"), definition=_text(item.get("definition"), "definition"), kind=Entry.Kind.TERM)
            )
        except _BadRow as bad:
            errors.append(RowError(index, str(bad)))
    return _Parsed(rows=rows, errors=errors, total_rows=len(items))


_PARSERS: dict[str, Callable[[bytes], _Parsed]] = {
    "csv": _parse_csv,
    "jsonl": _parse_jsonl,
    "xlsx": _parse_xlsx,
    "sigles": _parse_sigles,
    "bercy": _parse_bercy,
    "baconnier": _parse_baconnier,
}
