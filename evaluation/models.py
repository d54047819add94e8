"""Judging: evaluation runs of model versions (benchmark, similarity, RAGAS, gate) and leaderboards."""
from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from jobs.models import JobStatus


class EvaluationRun(JobStatus, models.Model):
    """One evaluation of one model version on the frozen test set. A persisted job row.

    ``report`` holds, per search mode, an ``evaluation.reports.ModeReport`` (``to_dict``) without the per-query rows
    (the worst queries are kept, with what ranked above their right answer). Two reports are comparable only
    when their ``test_set_hash`` is equal.
    """

    class Trigger(models.TextChoices):
        AUTO = "auto", _("after training")
        MANUAL = "manual", _("manual")
        BENCHMARK = "benchmark", _("benchmark")

    # The lifecycle (status, log, error, worker, timestamps): the job's, kind ``evaluation``.
    job = models.OneToOneField("jobs.Job", on_delete=models.PROTECT, related_name="evaluation_run")
    version = models.ForeignKey("retrieval.ModelVersion", verbose_name=_("version"), on_delete=models.PROTECT, related_name="evaluations")
    trigger = models.CharField(_("trigger"), max_length=10, choices=Trigger.choices, default=Trigger.MANUAL)
    # A plain integer, like ModelVersion.training_run_id: the run this evaluation closes (trigger "auto").
    training_run_id = models.PositiveBigIntegerField(_("training"), null=True, blank=True)
    modes = models.JSONField(_("evaluated modes"), default=list)
    protocols = models.JSONField(_("protocols"), default=list)
    # Queries of a user's file (EvalQuery fields); empty: the queries built from the test split.
    custom_queries = models.JSONField(default=list, blank=True)
    query_source = models.CharField(_("query source"), max_length=255, blank=True)
    query_errors = models.JSONField(_("rejected rows of the query file"), default=list, blank=True)
    report = models.JSONField(_("report"), default=dict, blank=True)
    similarity = models.JSONField(_("similarity tests"), default=dict, blank=True)
    ragas = models.JSONField(_("RAGAS report"), default=dict, blank=True)
    test_set_hash = models.CharField(_("test set fingerprint"), max_length=64, blank=True, db_index=True)
    query_count = models.PositiveIntegerField(_("queries"), default=0)
    passage_count = models.PositiveIntegerField(_("passages"), default=0)
    gate = models.JSONField(_("promotion decision"), default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("evaluation")
        verbose_name_plural = _("evaluations")

    def __str__(self) -> str:
        return f"Evaluation {self.pk} of {self.version} ({self.status})"


class Leaderboard(JobStatus, models.Model):
    """A benchmark of several base models and versions on one query set, in one run (a job, kind ``leaderboard``)."""

    job = models.OneToOneField("jobs.Job", on_delete=models.PROTECT, related_name="leaderboard")
    modes = models.JSONField(_("evaluated modes"), default=list)
    # One row per model or version: name, kind ("model" | "version"), version_id, metrics per mode and protocol,
    # or skipped with the reason (a base model that cannot be loaded on this machine).
    rows = models.JSONField(default=list, blank=True)
    test_set_hash = models.CharField(_("test set fingerprint"), max_length=64, blank=True)
    query_count = models.PositiveIntegerField(_("queries"), default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("leaderboard")
        verbose_name_plural = _("leaderboards")

    def __str__(self) -> str:
        return f"Classement {self.pk} ({self.created_at:%Y-%m-%d %H:%M})"
