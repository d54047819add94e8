"""The curated knowledge: domains, entries and import batches."""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from glossary.text import definition_key, term_key
from jobs.models import Job, JobFields


class Domain(models.Model):
    name = models.CharField(_("name"), max_length=120, unique=True)
    slug = models.SlugField(max_length=120, unique=True)
    description = models.TextField(_("description"), blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]
        verbose_name = _("domain")
        verbose_name_plural = _("domains")

    def __str__(self) -> str:
        return self.name


class ImportBatchQuerySet(models.QuerySet):
    def with_status(self, *statuses: str) -> ImportBatchQuerySet:
        """Batches in any of these statuses (``ImportBatch.status``, read from the job and the options)."""
        condition = models.Q(pk__in=[])
        for status in statuses:
            if status == ImportBatch.Status.PREVIEWED:
                condition |= models.Q(job__status=Job.Status.SUCCEEDED, options__dry_run=True)
            elif status == ImportBatch.Status.IMPORTED:
                not_preview = models.Q(options__dry_run=False) | models.Q(options__dry_run__isnull=True)
                condition |= models.Q(job__status=Job.Status.SUCCEEDED) & not_preview
            elif status == ImportBatch.Status.FAILED:
                condition |= models.Q(job__status__in=[Job.Status.FAILED, Job.Status.CANCELLED])
            else:
                condition |= models.Q(job__status=status)
        return self.filter(condition)


class ImportBatch(JobFields, models.Model):
    """One import (or worker preview) of a file: who, which file and options, and what it did (counts, report).

    Its run is a job (``jobs.Job`` of kind ``import``): queued, running, failed and why are the job's. A preview
    a worker made and the import the user then confirmed are two jobs of the same batch; ``job`` is the latest.
    """

    class Status(models.TextChoices):
        PREVIEWED = "previewed", _("previewed")
        QUEUED = "queued", _("queued")
        RUNNING = "running", _("running")
        IMPORTED = "imported", _("imported")
        FAILED = "failed", _("failed")

    job = models.OneToOneField("jobs.Job", on_delete=models.PROTECT, related_name="import_batch")
    file_name = models.CharField(max_length=255)
    file_format = models.CharField(max_length=20)
    file_sha256 = models.CharField(max_length=64, blank=True)
    # The uploaded file, kept in the artifact store so a queued import can run in the worker.
    stored_path = models.CharField(max_length=500, blank=True)
    options = models.JSONField(default=dict, blank=True)
    created_count = models.PositiveIntegerField(default=0)
    unchanged_count = models.PositiveIntegerField(default=0)
    invalid_count = models.PositiveIntegerField(default=0)
    report = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ImportBatchQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("import")
        verbose_name_plural = _("imports")

    def __str__(self) -> str:
        # Local time, as on every page (a UTC time beside a local one reads as two different moments).
        created = timezone.localtime(self.created_at) if self.created_at else None
        return f"{self.file_name} ({self.file_format}, {created:%Y-%m-%d %H:%M})" if created else f"{self.file_name} ({self.file_format})"

    @property
    def is_preview(self) -> bool:
        return bool(self.options.get("dry_run"))

    @property
    def status(self) -> str:
        """The job's status, in the import's words: a job that succeeded made a preview or an import."""
        job_status = self.job.status
        if job_status == Job.Status.SUCCEEDED:
            return self.Status.PREVIEWED if self.is_preview else self.Status.IMPORTED
        if job_status in (Job.Status.FAILED, Job.Status.CANCELLED):
            return self.Status.FAILED
        return self.Status(job_status)

    def get_status_display(self) -> str:
        return str(self.Status(self.status).label)


class Entry(models.Model):
    """One meaning of one term or acronym. A term with several meanings has several entries."""

    class Kind(models.TextChoices):
        ACRONYM = "acronym", _("acronym")
        TERM = "term", _("term")

    class Status(models.TextChoices):
        DRAFT = "draft", _("draft")
        VALIDATED = "validated", _("validated")
        REJECTED = "rejected", _("rejected")

    class Split(models.TextChoices):
        UNASSIGNED = "", _("unassigned")
        TRAIN = "train", _("training")
        TEST = "test", _("test")

    term = models.CharField(_("term"), max_length=255)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, default=Kind.TERM)
    definition = models.TextField(_("definition"))
    # Spellings, expansions and aliases, e.g. ["Union de recouvrement des cotisations ...", "Urssaf"].
    variants = models.JSONField(_("variants"), default=list, blank=True)
    # Usage contexts: sentences showing the term in use. Each becomes a searchable passage.
    contexts = models.JSONField(_("usage contexts"), default=list, blank=True)
    # Example questions with their answers: [{"question": ..., "answer": ...}].
    examples = models.JSONField(_("example questions"), default=list, blank=True)
    domain = models.ForeignKey(Domain, verbose_name=_("domain"), null=True, blank=True, on_delete=models.PROTECT, related_name="entries")
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.DRAFT, db_index=True)
    # Provenance.
    source = models.CharField(_("source"), max_length=255, blank=True)
    source_url = models.URLField(_("Source URL"), max_length=500, blank=True)
    import_batch = models.ForeignKey(ImportBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="entries")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Frozen evaluation split: pinned by import (--split) or assigned once by the training capability.
    split = models.CharField(_("split"), max_length=5, choices=Split.choices, blank=True, default="", db_index=True)
    split_pinned = models.BooleanField(default=False)
    # Keys for duplicate detection and case-insensitive lookups, kept in sync by save().
    term_key = models.CharField(max_length=255, db_index=True, editable=False)
    definition_key = models.TextField(editable=False)
    definition_key_hash = models.CharField(max_length=64, editable=False, db_index=True)
    # Optimistic concurrency: an edit carries the revision it started from.
    revision = models.PositiveIntegerField(default=1)
    history = HistoricalRecords(excluded_fields=["definition_key", "definition_key_hash", "term_key"])

    class Meta:
        ordering = ["term_key", "id"]
        verbose_name = _("entry")
        verbose_name_plural = _("entries")
        constraints = [
            models.UniqueConstraint(fields=["term_key", "definition_key_hash"], name="entry_unique_term_definition"),
        ]
        indexes = [models.Index(fields=["domain", "status"]), models.Index(fields=["kind", "status"])]

    def __str__(self) -> str:
        return self.term

    def refresh_keys(self) -> None:
        import hashlib

        self.term_key = term_key(self.term)
        self.definition_key = definition_key(self.definition)
        self.definition_key_hash = hashlib.sha256(self.definition_key.encode()).hexdigest()

    def save(self, *args, **kwargs):
        self.refresh_keys()
        super().save(*args, **kwargs)
