"""Background work: one row per job, whatever its kind (training, evaluation, index build...).

Each kind keeps its results in its own table (TrainingRun, EvaluationRun, IndexState...) linked to its job; the
job holds the lifecycle: status, progress, log, error, worker, heartbeat, timestamps, who asked, cancellation.
This app imports no other app of the project: kinds register themselves (``jobs.kinds``).
"""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from config.stored_messages import render, render_log


class Job(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", _("pending")
        RUNNING = "running", _("running")
        SUCCEEDED = "succeeded", _("succeeded")
        FAILED = "failed", _("failed")
        CANCELLED = "cancelled", _("cancelled")

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    kind = models.CharField(_("kind"), max_length=30, db_index=True)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    # Single-flight key: an active job holds it, a finished one NULL (unique allows many NULLs). Two requests
    # for the same work (one training at a time, the same evaluation twice) cannot both be queued.
    lock = models.CharField(max_length=100, null=True, blank=True, unique=True)
    # The step before this one in a chain (train -> evaluate -> gate -> promote).
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="next_steps")
    progress_step = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    log = models.TextField(blank=True)
    error = models.TextField(blank=True)
    worker = models.CharField(max_length=200, blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    # Arguments of a kind without a result table of its own (a promotion: version, reason...).
    params = models.JSONField(default=dict, blank=True)
    # How many times a worker took it (a restartable kind is sent again after its worker died).
    attempts = models.PositiveSmallIntegerField(default=0)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    cancel_requested = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["kind", "status"])]
        verbose_name = _("background job")
        verbose_name_plural = _("background jobs")

    def __str__(self) -> str:
        return f"{self.kind} {self.pk} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE

    @property
    def progress_percent(self) -> int:
        return int(100 * self.progress_step / self.progress_total) if self.progress_total else 0

    @property
    def log_text(self) -> str:
        """The log in the reader's language (its lines are stored messages: config.stored_messages)."""
        return render_log(self.log)

    @property
    def error_text(self) -> str:
        """The error in the reader's language."""
        return render(self.error)

    @property
    def kind_label(self) -> str:
        from jobs import kinds

        return kinds.label(self.kind)


class JobFields:
    """Read-through of the lifecycle a result row's job holds (status, progress, log...), for pages and the API."""

    job_id: int | None

    @property
    def requested_by(self):
        return self.job.requested_by

    @property
    def started_at(self):
        return self.job.started_at

    @property
    def finished_at(self):
        return self.job.finished_at

    @property
    def heartbeat_at(self):
        return self.job.heartbeat_at

    @property
    def worker(self) -> str:
        return self.job.worker

    @property
    def task_id(self) -> str:
        return self.job.task_id

    @property
    def log(self) -> str:
        return self.job.log_text

    @property
    def error(self) -> str:
        return self.job.error_text

    @property
    def is_active(self) -> bool:
        return self.job.is_active

    @property
    def cancel_requested(self) -> bool:
        return self.job.cancel_requested

    @property
    def progress_step(self) -> int:
        return self.job.progress_step

    @property
    def progress_total(self) -> int:
        return self.job.progress_total

    @property
    def progress_percent(self) -> int:
        return self.job.progress_percent


class JobStatus(JobFields):
    """The read-through of a result row whose status is its job's, as it is (a row with a status of its own, such
    as a training run's cycle, reads through ``JobFields`` and says its status itself)."""

    Status = Job.Status

    @property
    def status(self) -> str:
        return self.job.status

    def get_status_display(self) -> str:
        return self.job.get_status_display()
