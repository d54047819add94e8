"""Glossary import.

An import reads a file into rows (glossary.parsers, over the bounded readers of glossary.readers), validates
every row with the same rules as ``glossary.services.entry_build``, plans what to create and what already
exists, and then writes it all in one transaction through ``glossary.services``. Every import is recorded as
an ImportBatch whose run is a job (kind ``import``, jobs.runner); queued imports and previews run in a worker
(glossary.import_jobs). Export: glossary.exports.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict, dataclass, field
from pathlib import PurePath

from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.db import IntegrityError, transaction
from django.template.defaultfilters import filesizeformat
from django.utils.text import get_valid_filename
from django.utils.translation import gettext as _, gettext_noop

from config.errors import Conflict
from config.stored_messages import stored
from glossary import services
from glossary.exports import COLUMNS, EXPORT_FORMATS, LIST_SEPARATOR, export_glossary, export_record  # noqa: F401 (public here too)
from glossary.models import Domain, Entry, ImportBatch
from glossary.parsers import REQUIRED_COLUMNS, Row, parse  # noqa: F401
from glossary.planning import Plan, plan_import
from glossary.readers import ImportRefused, ImportTooLarge, RowError  # noqa: F401 (public here too)
from glossary.text import collapse_spaces, forbidden_character_message
from jobs import runner

logger = logging.getLogger(__name__)

IMPORT_KIND = "import"
FORMATS = ("csv", "jsonl", "xlsx", "sigles", "bercy", "baconnier")
IMPORT_STATUSES = (Entry.Status.DRAFT, Entry.Status.VALIDATED)
PINNED_SPLITS = (Entry.Split.TRAIN, Entry.Split.TEST)
# A term this short and mostly in capitals or digits is taken for an acronym when the file gives no kind.
ACRONYM_MAX_CHARS = 12
ACRONYM_MIN_UPPER_SHARE = 0.6
# An import that meets a concurrent write (the same entry or domain created meanwhile) is planned again.
RACE_RETRIES = 2


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
    # Of ``created``: entries whose term is already in the glossary, as another sense or as a probable duplicate
    # (definitions that read alike), with those rows and the entries they sit beside (glossary.planning).
    new_senses: int = 0
    probable_duplicates: int = 0
    same_term: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


class ImportConflict(Conflict, ImportRefused):
    """The import kept meeting concurrent writes to the same entries; nothing was written."""


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
            raise ImportRefused(_("Unknown import status: %(status)s (draft or validated).") % {"status": self.status})
        if self.split and self.split not in PINNED_SPLITS:
            raise ImportRefused(_("Unknown split: %(split)s (train or test).") % {"split": self.split})
        if self.domain and len(self.domain) > Domain._meta.get_field("name").max_length:
            raise ImportRefused(_("The domain name is too long."))
        if self.domain and (problem := forbidden_character_message(self.domain)):
            raise ImportRefused(_("Domain: %(problem)s") % {"problem": problem})

    @classmethod
    def from_dict(cls, options: dict) -> ImportOptions:
        """Options as sent by a form or the API; keys other than the option names are not options."""
        known = {name: options[name] for name in cls.__dataclass_fields__ if options.get(name) not in (None, "")}
        return cls(**known)


def _report(plan: Plan, *, imported: bool, dry_run: bool, batch_id: int | None) -> ImportReport:
    error_lines = {error.line for error in plan.errors}
    # A refused import (invalid rows, no skip) wrote nothing: its counts say so, not what it would have done.
    written = imported or dry_run
    return ImportReport(
        file_format=plan.file_format,
        total_rows=plan.total_rows,
        valid_rows=plan.total_rows - len(error_lines),
        created=len(plan.new_entries) if written else 0,
        unchanged=plan.unchanged if written else 0,
        errors=sorted(plan.errors, key=lambda error: error.line),
        imported=imported,
        dry_run=dry_run,
        batch_id=batch_id,
        preview=plan.preview,
        updated=len(plan.updates) if written else 0,
        new_senses=plan.new_senses if written else 0,
        probable_duplicates=plan.probable_duplicates if written else 0,
        same_term=plan.same_term or [],
    )


# Public API -------------------------------------------------------------------------------------


def preview_in_worker(*, size: int, file_format: str) -> bool:
    """Spreadsheets and large files are previewed by a worker (bounded in time and memory), never in a request."""
    return file_format == "xlsx" or size > settings.IMPORT_SYNC_MAX_BYTES


def import_preview(
    *, content: bytes, file_name: str, file_format: str, domain: str | None = None, status: str = "draft", split: str = ""
) -> ImportReport:
    """Parse and validate the file and say what an import would do; writes nothing."""
    check_file(content=content, file_format=file_format)
    options = ImportOptions(domain=domain, status=status, split=split, dry_run=True)
    return _report(_analyse(content=content, file_format=file_format, options=options), imported=False, dry_run=True, batch_id=None)


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
    check_file(content=content, file_format=file_format)
    options = ImportOptions(domain=domain, status=status, split=split, dry_run=dry_run, skip_invalid=skip_invalid)
    return run_import(content=content, file_name=file_name, file_format=file_format, options=options, user=user, batch=None)


def import_enqueue(*, content: bytes, file_name: str, file_format: str, options: dict, user=None) -> ImportBatch:
    """Store the file and queue its import (or its preview, with ``dry_run``) for a worker (``glossary.tasks.import_run``)."""
    check_file(content=content, file_format=file_format)
    import_options = ImportOptions.from_dict(options)
    with transaction.atomic():
        batch = _new_batch(content=content, file_name=file_name, file_format=file_format, options=import_options, user=user)
        safe_name = get_valid_filename(PurePath(file_name).name) or "import"
        batch.stored_path = storages["artifacts"].save(f"imports/{batch.pk}/{safe_name}", ContentFile(content))
        batch.save(update_fields=["stored_path"])
        runner.enqueue_on_commit(batch.job)
    return batch


def import_confirm_preview(*, batch_id: int, skip_invalid: bool) -> ImportBatch:
    """Queue the import of a file a worker previewed (the same stored file, the same options), as the batch's
    next job (the preview's job stays in the jobs' history)."""
    with transaction.atomic():
        batch = ImportBatch.objects.select_for_update(of=("self",)).select_related("job", "created_by").get(pk=batch_id)
        if batch.status != ImportBatch.Status.PREVIEWED:
            raise ImportRefused(_("This file is no longer waiting to be imported: upload it again."))
        batch.options = {**batch.options, "dry_run": False, "skip_invalid": skip_invalid}
        batch.job = runner.job_create(kind=IMPORT_KIND, requested_by=batch.created_by)
        batch.save(update_fields=["options", "job"])
        runner.enqueue_on_commit(batch.job)
    return batch


def import_retry_skipping_invalid(*, batch_id: int, user=None) -> ImportBatch:
    """Queue the stored file of a failed import again, this time skipping its invalid rows, as a new batch
    (the failed one stays in the history as it was)."""
    batch = ImportBatch.objects.select_related("job").get(pk=batch_id)
    if batch.status != ImportBatch.Status.FAILED or batch.is_preview or not batch.stored_path:
        raise ImportRefused(_("Only a failed import whose file is kept can be run again."))
    try:
        with storages["artifacts"].open(batch.stored_path, "rb") as stored_file:
            content = stored_file.read()
    except FileNotFoundError:
        raise ImportRefused(_("This import's file is no longer kept: upload it again.")) from None
    return import_enqueue(
        content=content, file_name=batch.file_name, file_format=batch.file_format,
        options={**batch.options, "dry_run": False, "skip_invalid": True}, user=user,
    )


def guess_kind(term: str) -> str:
    """Acronym when the term is short and mostly capitals or digits ('URSSAF', '3D', 'PhD'), else term ('Urssaf')."""
    compact = "".join(ch for ch in term if ch.isalnum())
    if not compact or len(compact) > ACRONYM_MAX_CHARS or " " in term.strip():
        return Entry.Kind.TERM
    upper_or_digit = sum(1 for ch in compact if ch.isupper() or ch.isdigit())
    return Entry.Kind.ACRONYM if upper_or_digit / len(compact) >= ACRONYM_MIN_UPPER_SHARE else Entry.Kind.TERM


# Import steps -----------------------------------------------------------------------------------


def check_size(*, size: int) -> None:
    """Refuse a file over the limit (before reading it, when its size is known)."""
    if size > settings.IMPORT_MAX_BYTES:
        raise ImportTooLarge(
            _("The file is too large (%(size)s): the maximum size is %(max)s.")
            % {"size": filesizeformat(size), "max": filesizeformat(settings.IMPORT_MAX_BYTES)}
        )


def check_file(*, content: bytes, file_format: str) -> None:
    if file_format not in FORMATS:
        raise ImportRefused(_("Unknown format: %(format)s (possible formats: %(formats)s).") % {"format": file_format, "formats": ", ".join(FORMATS)})
    check_size(size=len(content))
    if not content.strip():
        raise ImportRefused(_("The file is empty."))


def run_import(
    *, content: bytes, file_name: str, file_format: str, options: ImportOptions, user, batch: ImportBatch | None,
) -> ImportReport:
    """Plan and write an import: into ``batch`` when a worker claimed its job, else into a new batch whose job
    runs here. Results are written only while this attempt holds the job (``runner.JobSuperseded`` otherwise)."""
    plan = _analyse(content=content, file_format=file_format, options=options)
    if options.dry_run:
        report = _report(plan, imported=False, dry_run=True, batch_id=batch.pk if batch else None)
        if batch:
            _finish(batch, report=report)
        return report
    if plan.errors and not options.skip_invalid:
        with transaction.atomic():  # a batch run here is recorded with its outcome, never left running
            batch = batch or _new_batch(content=content, file_name=file_name, file_format=file_format, options=options, user=user, run_here=True)
            report = _report(plan, imported=False, dry_run=False, batch_id=batch.pk)
            error = stored(gettext_noop("%(count)s invalid line(s): nothing was imported."), count=len({e.line for e in plan.errors}))
            _finish(batch, report=report, error=error)
        return report
    for attempt in range(RACE_RETRIES + 1):
        try:
            with transaction.atomic():
                current = batch or _new_batch(
                    content=content, file_name=file_name, file_format=file_format, options=options, user=user, run_here=True,
                )
                runner.job_hold(job=current.job)
                _apply(plan, batch=current, user=user)
                report = _report(plan, imported=True, dry_run=False, batch_id=current.pk)
                _finish(current, report=report)
            return report
        except (services.DuplicateEntryError, IntegrityError) as error:
            # Another write created the same entry (or domain) between the plan and the import: plan again,
            # so that what exists now counts as existing.
            logger.info("Import of %s met a concurrent write (attempt %s): %s", file_name, attempt + 1, error)
            last_error = error
            plan = _analyse(content=content, file_format=file_format, options=options)
        except ValidationError as error:
            raise ImportRefused(" ".join(error.messages)) from error
    raise ImportConflict(
        _("The glossary changed during the import (the same entries were created at the same time): nothing was imported, start the import again.")
    ) from last_error


def _new_batch(*, content: bytes, file_name: str, file_format: str, options: ImportOptions, user, run_here: bool = False) -> ImportBatch:
    """A batch and its queued job; ``run_here``: the job is claimed by this process (a command, a request)."""
    job = runner.job_create(kind=IMPORT_KIND, requested_by=user)
    if run_here:
        runner.job_claim(job=job)
    return ImportBatch.objects.create(
        job=job,
        file_name=PurePath(file_name).name[:255],
        file_format=file_format,
        file_sha256=hashlib.sha256(content).hexdigest(),
        options=asdict(options),
        created_by=user,
    )


def _finish(batch: ImportBatch, *, report: ImportReport | None, error: str = "") -> None:
    """Record the outcome, if this attempt still holds the batch's job: the report on the batch, and the job's
    end (failed with ``error``, else succeeded: a preview or an import, as the options say)."""
    with transaction.atomic():
        runner.job_hold(job=batch.job)
        if report is not None:
            batch.created_count = report.created
            batch.unchanged_count = report.unchanged
            batch.invalid_count = len({e.line for e in report.errors})
            # A preview keeps its first rows: the page that waited for the worker shows them.
            batch.report = {key: value for key, value in report.as_dict().items() if key != "preview" or report.dry_run}
            batch.save(update_fields=["created_count", "unchanged_count", "invalid_count", "report"])
        if error:
            runner.job_fail(job=batch.job, error=error)
        else:
            runner.job_succeed(job=batch.job)


def _analyse(*, content: bytes, file_format: str, options: ImportOptions) -> Plan:
    parsed = parse(content, file_format)
    if parsed.total_rows == 0:
        raise ImportRefused(_("The file contains no row to import."))
    errors = list(parsed.errors)
    built: list[tuple[Row, Entry, str | None]] = []
    choices = _ChoiceReader()
    for row in parsed.rows:
        try:
            entry, domain_name = _build_entry(row, options, choices)
        except ValidationError as error:
            errors.append(RowError(row.line, _validation_reason(error)))
            continue
        built.append((row, entry, domain_name))
    return plan_import(file_format=file_format, total_rows=parsed.total_rows, errors=errors, built=built)


def _build_entry(row: Row, options: ImportOptions, choices: _ChoiceReader) -> tuple[Entry, str | None]:
    domain_name = collapse_spaces(row.domain) or options.domain
    if domain_name and len(domain_name) > Domain._meta.get_field("name").max_length:
        raise ValidationError({"domain": _("The domain name is too long.")})
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
            parts.append(_("%(field)s: %(message)s") % {"field": label[:1].upper() + label[1:], "message": text})
    return " ".join(parts)


def _apply(plan: Plan, *, batch: ImportBatch, user) -> None:
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
        change_reason=_("Import of %(file)s") % {"file": batch.file_name},
    )
    for pk, current in Entry.objects.in_bulk(list(plan.updates)).items():
        services.entry_update(entry=current, data=plan.updates[pk], user=user)


def import_batch_run(*, batch_id: int, worker: str = "") -> ImportBatch:
    """Run a queued import or preview (the worker side lives in glossary.import_jobs)."""
    from glossary.import_jobs import import_batch_run as run

    return run(batch_id=batch_id, worker=worker)
