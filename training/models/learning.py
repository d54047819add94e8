"""Learning: training configs, runs, data snapshots, hard-negative screening and equivalences."""
from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from jobs.models import JobFields


class TrainingConfig(models.Model):
    """Hyperparameters of a training cycle, editable by maintainers. One row is the default."""

    class Loss(models.TextChoices):
        MNRL = "mnrl", "MultipleNegativesRankingLoss"
        CACHED_MNRL = "cached_mnrl", "CachedMultipleNegativesRankingLoss"

    name = models.CharField(_("name"), max_length=80, unique=True)
    is_default = models.BooleanField(_("default"), default=False)
    base_model = models.CharField(_("base model"), max_length=200, blank=True, help_text=_("Empty: the base model of the champion version."))
    epochs = models.FloatField(_("epochs"), default=1.0)
    batch_size = models.PositiveIntegerField(_("batch size"), default=32)
    learning_rate = models.FloatField(_("learning rate"), default=1e-3)
    warmup_ratio = models.FloatField(_("warmup ratio"), default=0.1)
    lora_r = models.PositiveIntegerField(_("LoRA rank (r)"), default=16)
    lora_alpha = models.PositiveIntegerField(_("LoRA alpha"), default=32)
    lora_dropout = models.FloatField(_("LoRA dropout"), default=0.05)
    target_modules = models.JSONField(_("target modules"), default=list, blank=True, help_text=_("Empty: chosen from the architecture."))
    loss = models.CharField(_("loss function"), max_length=20, choices=Loss.choices, default=Loss.MNRL)
    num_negatives = models.PositiveIntegerField(_("negatives per example"), default=1)
    mining_range_min = models.PositiveIntegerField(_("mining minimum rank"), default=3, help_text=_("Top ranks skipped during mining."))
    mining_relative_margin = models.FloatField(_("mining relative margin"), default=0.05)
    replay_ratio = models.FloatField(_("replay ratio"), default=1.0, help_text=_("Share of earlier examples replayed per new example."))
    max_pairs = models.PositiveIntegerField(_("maximum pairs"),
        null=True, blank=True, default=1280,
        help_text=_("At most this many pairs per cycle (bounds the training time); empty: all."),
    )
    max_steps = models.PositiveIntegerField(_("maximum steps"), null=True, blank=True, help_text=_("Step limit (tests, quick trials)."))
    seed = models.PositiveIntegerField(_("random seed"), default=13)
    llm_questions_per_entry = models.PositiveIntegerField(_("LLM questions per entry"),
        default=3, validators=[MaxValueValidator(20)],
        help_text=_("With an LLM configured, questions it writes per train-side entry for training; 0: none."),
    )
    min_new_material = models.PositiveIntegerField(_("minimum new material"),
        default=20, help_text=_("Scheduled training: minimum number of new validated items since the last training run.")
    )
    updated_at = models.DateTimeField(_("updated on"), auto_now=True)

    class Meta:
        ordering = ["-is_default", "name"]
        verbose_name = _("training configuration")
        verbose_name_plural = _("training configurations")

    def __str__(self) -> str:
        return self.name


class DataSnapshot(models.Model):
    """The exact training data of a run: content hash, counts, and the JSONL in the artifact store."""

    content_hash = models.CharField(max_length=64, db_index=True)
    total = models.PositiveIntegerField(default=0)
    counts = models.JSONField(default=dict, blank=True)
    artifact_path = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("data snapshot")
        verbose_name_plural = _("data snapshots")

    def __str__(self) -> str:
        return f"{self.content_hash[:12]} ({self.total})"


class TrainingRun(JobFields, models.Model):
    """One training cycle's results: its data, its model version, its timings. The lifecycle is its job's
    (``jobs.Job`` of kind ``training``); the cycle goes on as a chain of jobs (training.pipeline)."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("pending")
        MINING = "mining", _("mining")
        TRAINING = "training", _("training")
        EVALUATING = "evaluating", _("evaluation")
        SUCCEEDED = "succeeded", _("succeeded")
        FAILED = "failed", _("failed")
        CANCELLED = "cancelled", _("cancelled")

    ACTIVE = (Status.QUEUED, Status.MINING, Status.TRAINING, Status.EVALUATING)

    class Stage(models.TextChoices):
        MINING = "mining", _("mining")
        TRAINING = "training", _("training")

    class Trigger(models.TextChoices):
        BUTTON = "button", _("button")
        API = "api", _("API")
        COMMAND = "command", _("command")
        SCHEDULE = "schedule", _("schedule")

    job = models.OneToOneField("jobs.Job", on_delete=models.PROTECT, related_name="training_run")
    # What the running job is doing now (the job only knows it is running).
    stage = models.CharField(max_length=10, choices=Stage.choices, blank=True)
    trigger = models.CharField(max_length=10, choices=Trigger.choices, default=Trigger.BUTTON)
    config = models.ForeignKey(TrainingConfig, null=True, on_delete=models.SET_NULL, related_name="runs")
    config_values = models.JSONField(default=dict, blank=True)
    parent_version = models.ForeignKey("retrieval.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    model_version = models.ForeignKey("retrieval.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    snapshot = models.ForeignKey(DataSnapshot, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs")
    created_at = models.DateTimeField(auto_now_add=True)
    current_loss = models.FloatField(null=True, blank=True)
    timings = models.JSONField(default=dict, blank=True)
    stats = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("training")
        verbose_name_plural = _("training runs")

    def __str__(self) -> str:
        return f"Run {self.pk} ({self.status})"

    def _cycle(self):
        from training import pipeline

        if "_cycle_state" not in self.__dict__:
            self.__dict__["_cycle_state"] = pipeline.cycle_state(self)
        return self.__dict__["_cycle_state"]

    def refresh_from_db(self, *args, **kwargs) -> None:
        self.__dict__.pop("_cycle_state", None)
        super().refresh_from_db(*args, **kwargs)

    @property
    def steps(self):
        """The cycle's jobs in order (train, evaluate, gate, promote), for the run's page."""
        return self._cycle().steps

    @property
    def status(self) -> str:
        """The cycle's status: the training job's, then "evaluating" while its evaluation and gate run, and
        "failed" when one of them failed (the version stays ready, never promoted)."""
        return self._cycle().status

    def get_status_display(self) -> str:
        return str(self.Status(self.status).label)

    @property
    def error(self) -> str:
        return self._cycle().error

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE

    @property
    def log(self) -> str:
        """The whole cycle's log: training, then its evaluation, gate and promotion."""
        return "".join(step.log_text for step in self.steps)


class NegativeCandidate(models.Model):
    """A mined negative suspected to be a false negative, waiting for an expert's screening."""

    class Decision(models.TextChoices):
        PENDING = "pending", _("to review")
        DIFFERENT = "different", _("really different")
        SAME = "same", _("same meaning")

    anchor = models.TextField()
    anchor_entry = models.ForeignKey("glossary.Entry", on_delete=models.CASCADE, related_name="+")
    negative_entry = models.ForeignKey("glossary.Entry", on_delete=models.CASCADE, related_name="+")
    negative_text = models.TextField()
    score = models.FloatField()
    positive_score = models.FloatField()
    reason = models.CharField(max_length=200)
    decision = models.CharField(max_length=10, choices=Decision.choices, default=Decision.PENDING, db_index=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    run = models.ForeignKey(TrainingRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="negative_candidates")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-score"]
        constraints = [models.UniqueConstraint(fields=["anchor_entry", "negative_entry"], name="negative_candidate_unique_pair")]
        verbose_name = _("negative to review")
        verbose_name_plural = _("negatives to review")


class Equivalence(models.Model):
    """Two entries experts declared to mean the same thing: never used as negatives of each other."""

    entry_a = models.ForeignKey("glossary.Entry", on_delete=models.CASCADE, related_name="+")
    entry_b = models.ForeignKey("glossary.Entry", on_delete=models.CASCADE, related_name="+")
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["entry_a", "entry_b"], name="equivalence_unique_pair")]
        verbose_name = _("equivalence")
        verbose_name_plural = _("equivalences")


class LLMQuestionSet(models.Model):
    """The questions the LLM wrote about an entry for training (training.llm_questions), kept so that a cycle
    asks again only about new or changed entries: ``key`` is the hash of the request (prompt, entry text,
    number asked) and of the model; a row whose key no longer matches is replaced."""

    entry = models.OneToOneField("glossary.Entry", on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=64)
    questions = models.JSONField(default=list, blank=True)
    model_name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("LLM question set")
        verbose_name_plural = _("LLM question sets")

    def __str__(self) -> str:
        return f"{self.entry_id}: {len(self.questions)}"
