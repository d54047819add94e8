"""What serves search and answers: model catalogue rows, model versions, their indexes, the question log, flags."""
from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _, pgettext_lazy

from config.stored_messages import render


def default_lora_target_modules() -> list[str]:
    return ["query", "key", "value"]


class EmbeddingModel(models.Model):
    """A base model added to the built-in catalogue (a hub id or a local directory) with its pinned prompts."""

    name = models.CharField(_("name"), max_length=255, unique=True)
    path = models.CharField(_("path or identifier"), max_length=500, help_text=_("Hugging Face hub identifier or local folder."))
    query_prompt = models.TextField(_("query prefix"), blank=True)
    document_prompt = models.TextField(_("document prefix"), blank=True)
    trust_remote_code = models.BooleanField(_("run the model's code"), default=False)
    lora_target_modules = models.JSONField(_("modules targeted by LoRA"), default=default_lora_target_modules, blank=True)
    max_seq_length = models.PositiveIntegerField(_("maximum length"), null=True, blank=True)
    description = models.TextField(_("description"), blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("embedding model")
        verbose_name_plural = _("embedding models")

    def __str__(self) -> str:
        return self.name


class ModelVersion(models.Model):
    """One immutable set of weights that can serve: the base model (number 0) or a fine-tuned version."""

    class Status(models.TextChoices):
        READY = "ready", pgettext_lazy("feminine", "ready")
        PROMOTING = "promoting", _("promoting")
        CHAMPION = "champion", _("champion")
        ARCHIVED = "archived", _("archived")
        FAILED = "failed", pgettext_lazy("feminine", "failed")
        BROKEN = "broken", _("broken")

    # Once created, a version only changes its status (and when it was promoted) and its metrics:
    # every number reported for it must keep meaning the same weights and data.
    # ``encoder_check`` too: the base version gets its ONNX query encoders (and their check) after creation.
    MUTABLE_FIELDS = frozenset({"status", "metrics", "promoted_at", "encoder_check"})

    number = models.PositiveIntegerField(_("number"), unique=True)
    label = models.CharField(_("label"), max_length=120, blank=True)
    base_model = models.CharField(_("base model"), max_length=255)
    parent = models.ForeignKey("self", verbose_name=_("parent version"), null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.READY, db_index=True)
    adapter_path = models.CharField(_("LoRA adapter"), max_length=500, blank=True)
    merged_path = models.CharField(_("merged model"), max_length=500, blank=True)
    artifact_checksums = models.JSONField(_("file checksums"), default=dict, blank=True)
    # A plain integer: retrieval must not depend on the training app.
    training_run_id = models.PositiveBigIntegerField(_("training"), null=True, blank=True)
    data_snapshot_hash = models.CharField(_("data fingerprint"), max_length=64, blank=True)
    metrics = models.JSONField(_("metrics"), default=dict, blank=True)
    model_card = models.JSONField(_("model card"), default=dict, blank=True)
    # The base model's prompts and encoding settings as the catalogue gave them when the version was created
    # (retrieval.catalogue.pinned_spec): serving, evaluation and further training encode with these, never with the
    # editable catalogue, so editing a prompt there only affects the versions created afterwards.
    model_spec = models.JSONField(_("pinned encoding settings"), default=dict, blank=True)
    # The ONNX query encoders of this version and how each compared with torch on the frozen test queries
    # (retrieval.encoder_check): {"folder", "checksums", "variants": {name: check}, "served", "checked_at"}.
    encoder_check = models.JSONField(_("query encoder check"), default=dict, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    promoted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-number"]
        verbose_name = _("model version")
        verbose_name_plural = _("model versions")
        constraints = [
            models.UniqueConstraint(fields=["status"], condition=Q(status="champion"), name="model_version_single_champion"),
        ]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        name = "base" if self.number == 0 else f"v{self.number}"
        return f"{name} ({self.label})" if self.label else name

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        instance._loaded_values = dict(zip(field_names, values))
        return instance

    def save(self, *args, **kwargs):
        loaded = getattr(self, "_loaded_values", None)
        if loaded is not None:
            changed = {
                field.attname
                for field in self._meta.concrete_fields
                if field.attname in loaded and loaded[field.attname] != getattr(self, field.attname)
            }
            frozen = changed - self.MUTABLE_FIELDS
            if frozen:
                raise ValidationError(_("A model version is immutable (changed fields: %(fields)s).") % {"fields": ", ".join(sorted(frozen))})
        super().save(*args, **kwargs)
        self._loaded_values = {field.attname: getattr(self, field.attname) for field in self._meta.concrete_fields}


class PromotionEvent(models.Model):
    """Audit log of every change of champion."""

    class Action(models.TextChoices):
        PROMOTE = "promote", _("promotion")
        ROLLBACK = "rollback", _("rollback")
        AUTO = "auto", _("automatic promotion")

    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="promotion_events")
    previous_champion = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    action = models.CharField(max_length=10, choices=Action.choices)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    reason = models.TextField(blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = _("champion change")
        verbose_name_plural = _("champion changes")

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.version} ({self.at:%Y-%m-%d %H:%M})"

    @property
    def reason_text(self) -> str:
        """The reason in the reader's language: a maintainer's words as typed, an automatic one is a stored
        message (config.stored_messages)."""
        return render(self.reason)


class IndexState(models.Model):
    """The vector index of one model version: which artifact holds it and which revision it is at.

    Full builds are jobs (kind ``index_build``); ``build_job`` is the latest. ``error`` is the failure of the
    latest change (a build, or one entry's update), cleared by the next revision published.
    """

    class Status(models.TextChoices):
        BUILDING = "building", _("building")
        READY = "ready", _("ready")
        FAILED = "failed", _("failed")

    version = models.OneToOneField(ModelVersion, on_delete=models.CASCADE, related_name="index_state")
    # Bumped by every change of the index; serving processes catch up when it moves.
    revision = models.PositiveIntegerField(default=0)
    passage_count = models.PositiveIntegerField(default=0)
    entry_count = models.PositiveIntegerField(default=0)
    # The full index as of ``base_revision``; each later revision k is one entry's change, stored next to it as
    # ``d{k}.npz`` (retrieval.vector_index.EntryDelta), until enough of them are folded into a new full artifact.
    artifact_path = models.CharField(max_length=500, blank=True)
    base_revision = models.PositiveIntegerField(default=0)
    # Passages written as deltas since the base: what decides when to fold them in (vector_index.compaction_due).
    delta_passages = models.PositiveIntegerField(default=0)
    build_job = models.OneToOneField("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="index_state")
    # When the last full build read the glossary: entries saved before that are already in the index.
    entries_read_at = models.DateTimeField(null=True, blank=True)
    built_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    error = models.TextField(blank=True)

    class Meta:
        verbose_name = _("vector index")
        verbose_name_plural = _("vector indexes")

    def __str__(self) -> str:
        return f"{self.version} r{self.revision} ({self.get_status_display()})"

    @property
    def has_artifact(self) -> bool:
        return bool(self.artifact_path)

    @property
    def status(self) -> str:
        """Building while a build job is queued or running, failed when the latest change failed, else ready."""
        job = self.build_job
        if job is not None and job.is_active:
            return self.Status.BUILDING
        if self.error:
            return self.Status.FAILED
        return self.Status.READY if self.has_artifact else self.Status.BUILDING

    def get_status_display(self) -> str:
        return str(self.Status(self.status).label)


class QuestionLog(models.Model):
    """Every question asked to the assistant, with what was retrieved and answered (active learning reads it)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    question = models.TextField()
    processed_query = models.JSONField(default=dict, blank=True)
    version = models.ForeignKey(ModelVersion, null=True, on_delete=models.SET_NULL, related_name="questions")
    mode = models.CharField(max_length=10, default="hybrid")
    hits = models.JSONField(default=list, blank=True)
    answer_text = models.TextField(blank=True)
    answer_mode = models.CharField(max_length=12, blank=True)
    fallback_reason = models.TextField(blank=True)
    sources = models.JSONField(default=list, blank=True)
    latency_ms = models.FloatField(default=0)
    no_answer = models.BooleanField(default=False, db_index=True)
    # Uncertainty signals for the active-learning queue: the best dense score and its lead over the second entry.
    top_score = models.FloatField(null=True, blank=True)
    score_margin = models.FloatField(null=True, blank=True)
    # When the question names an acronym several entries share and does not say which: those senses
    # ({entry_id, term, definition, domain}), listed by the answer (retrieval.answers.ambiguous_senses).
    ambiguous_senses = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("asked question")
        verbose_name_plural = _("asked questions")

    def __str__(self) -> str:
        return self.question[:80]


class Flag(models.Model):
    """An expert's report that an answer was wrong, ideally with the entry that should have come first."""

    class Reason(models.TextChoices):
        WRONG_ENTRY = "wrong_entry", _("wrong entry retrieved")
        MISSING_ENTRY = "missing_entry", _("entry missing from the glossary")
        WRONG_DEFINITION = "wrong_definition", _("wrong definition")
        BAD_WORDING = "bad_wording", _("poorly worded answer")

    class Status(models.TextChoices):
        # The life of a flag: open -> corrected (it has its right entry) -> used by a training run -> answered
        # right by a version; still answered wrong by that version, it is open again (back in the review queue).
        OPEN = "open", _("open")
        CORRECTED = "corrected", _("corrected")
        USED = "used", _("used for training")
        ANSWERED = "answered", _("answered right")
        DISMISSED = "dismissed", _("dismissed")

    question_log = models.ForeignKey(QuestionLog, on_delete=models.CASCADE, related_name="flags")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    reason = models.CharField(_("reason"), max_length=20, choices=Reason.choices)
    correct_entry = models.ForeignKey("glossary.Entry", verbose_name=_("right entry"), null=True, blank=True, on_delete=models.SET_NULL, related_name="flags")
    comment = models.TextField(_("comment"), blank=True)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.OPEN, db_index=True)
    status_changed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status_changed_at = models.DateTimeField(null=True, blank=True)
    # What the assistant retrieved when the question was asked (kept even if the log is pruned of details).
    retrieved = models.JSONField(default=list, blank=True)
    # Entries ranked above the correct one: hard-negative candidates for training.
    wrongly_ranked_entry_ids = models.JSONField(default=list, blank=True)
    version = models.ForeignKey(ModelVersion, null=True, on_delete=models.SET_NULL, related_name="flags")
    # The domain the flag is about (the correct entry's, else the top retrieved entry's), for filtering.
    domain = models.ForeignKey("glossary.Domain", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # Its life after the correction (retrieval.labelled): when it got its right entry, which training run used
    # it (a plain integer: retrieval must not depend on training), and what the last version checked answered.
    corrected_at = models.DateTimeField(_("corrected at"), null=True, blank=True)
    used_by_run_id = models.PositiveBigIntegerField(_("used by training run"), null=True, blank=True)
    checked_version = models.ForeignKey(ModelVersion, verbose_name=_("checked with version"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    checked_rank = models.PositiveIntegerField(_("rank of the right entry"), null=True, blank=True)
    answered_right = models.BooleanField(_("answered right"), null=True, blank=True)
    checked_at = models.DateTimeField(_("checked at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("flag")
        verbose_name_plural = _("flags")

    def __str__(self) -> str:
        return f"{self.get_reason_display()} – {self.question_log}"


class LabelledQuestion(models.Model):
    """A real question with its known answer (an entry), kept from an expert's decision or written as an exam.

    Each one is served at once as a "known question" passage of its entry (retrieval.passages), trained on
    unless held out, and used to judge versions (evaluation.real_questions), with known-question passages
    left out of the ranking then.
    """

    class Kind(models.TextChoices):
        ACRONYM = "acronym", _("acronym or term look-up")
        REVERSE = "reverse", _("reverse look-up (description)")
        PARAPHRASE = "paraphrase", _("paraphrase")
        TYPO = "typo", _("typo")
        ENGLISH = "english", pgettext_lazy("question kind", "English")
        AMBIGUOUS = "ambiguous", _("ambiguous")

    class KindSetBy(models.TextChoices):
        RULES = "rules", _("rules")
        EXPERT = "expert", _("expert")

    class Source(models.TextChoices):
        FLAG = "flag", _("corrected flag")
        WORKBENCH = "workbench", _("annotation workbench")
        ACCEPTED_ANSWER = "accepted_answer", _("accepted answer")
        EXAM = "exam", _("exam question")
        IMPORT = "import", _("import")

    text = models.TextField(_("question"))
    normalised = models.CharField(_("normalised question"), max_length=500, db_index=True, editable=False)
    entry = models.ForeignKey("glossary.Entry", verbose_name=_("right entry"), on_delete=models.CASCADE, related_name="labelled_questions")
    kind = models.CharField(_("question kind"), max_length=12, choices=Kind.choices, db_index=True)
    kind_set_by = models.CharField(_("kind set by"), max_length=8, choices=KindSetBy.choices, default=KindSetBy.RULES)
    source = models.CharField(_("origin"), max_length=16, choices=Source.choices, db_index=True)
    # Decided by a hash of the normalised question (retrieval.question_kinds.is_held_out): never trained on.
    held_out = models.BooleanField(_("held out for evaluation"), db_index=True)
    # The entries the serving version ranked above the right one: hard negatives for training.
    wrong_entry_ids = models.JSONField(_("entries ranked above"), default=list, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    flag = models.ForeignKey(Flag, null=True, blank=True, on_delete=models.SET_NULL, related_name="labelled_questions")
    question_log = models.ForeignKey(QuestionLog, null=True, blank=True, on_delete=models.SET_NULL, related_name="labelled_questions")
    # The last training run that trained on it (a plain integer: retrieval must not depend on training).
    used_by_run_id = models.PositiveBigIntegerField(pgettext_lazy("feminine", "used by training run"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("labelled question")
        verbose_name_plural = _("labelled questions")
        constraints = [
            models.UniqueConstraint(fields=["normalised", "entry"], name="labelled_question_unique_per_entry"),
        ]

    def __str__(self) -> str:
        return f"{self.text[:80]} -> {self.entry_id}"
