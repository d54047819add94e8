"""What serves search and answers: model catalogue rows, model versions, their indexes, the question log, flags."""
from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


def default_lora_target_modules() -> list[str]:
    return ["query", "key", "value"]


class EmbeddingModel(models.Model):
    """A base model added to the built-in catalogue (a hub id or a local directory) with its pinned prompts."""

    name = models.CharField(_("nom"), max_length=255, unique=True)
    path = models.CharField(_("chemin ou identifiant"), max_length=500, help_text=_("Identifiant du hub Hugging Face ou dossier local."))
    query_prompt = models.TextField(_("préfixe des requêtes"), blank=True)
    document_prompt = models.TextField(_("préfixe des documents"), blank=True)
    trust_remote_code = models.BooleanField(_("exécuter le code du modèle"), default=False)
    lora_target_modules = models.JSONField(_("modules ciblés par LoRA"), default=default_lora_target_modules, blank=True)
    max_seq_length = models.PositiveIntegerField(_("longueur maximale"), null=True, blank=True)
    description = models.TextField(_("description"), blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("modèle d'embedding")
        verbose_name_plural = _("modèles d'embedding")

    def __str__(self) -> str:
        return self.name


class ModelVersion(models.Model):
    """One immutable set of weights that can serve: the base model (number 0) or a fine-tuned version."""

    class Status(models.TextChoices):
        READY = "ready", _("prête")
        PROMOTING = "promoting", _("promotion en cours")
        CHAMPION = "champion", _("championne")
        ARCHIVED = "archived", _("archivée")
        FAILED = "failed", _("échouée")
        BROKEN = "broken", _("inutilisable")

    # Once created, a version only changes its status (and when it was promoted) and its metrics:
    # every number reported for it must keep meaning the same weights and data.
    # ``encoder_check`` too: the base version gets its ONNX query encoders (and their check) after creation.
    MUTABLE_FIELDS = frozenset({"status", "metrics", "promoted_at", "encoder_check"})

    number = models.PositiveIntegerField(_("numéro"), unique=True)
    label = models.CharField(_("libellé"), max_length=120, blank=True)
    base_model = models.CharField(_("modèle de base"), max_length=255)
    parent = models.ForeignKey("self", verbose_name=_("version parente"), null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    status = models.CharField(_("statut"), max_length=12, choices=Status.choices, default=Status.READY, db_index=True)
    adapter_path = models.CharField(_("adaptateur LoRA"), max_length=500, blank=True)
    merged_path = models.CharField(_("modèle fusionné"), max_length=500, blank=True)
    artifact_checksums = models.JSONField(_("empreintes des fichiers"), default=dict, blank=True)
    # A plain integer: retrieval must not depend on the training app.
    training_run_id = models.PositiveBigIntegerField(_("entraînement"), null=True, blank=True)
    data_snapshot_hash = models.CharField(_("empreinte des données"), max_length=64, blank=True)
    metrics = models.JSONField(_("métriques"), default=dict, blank=True)
    model_card = models.JSONField(_("fiche du modèle"), default=dict, blank=True)
    # The base model's prompts and encoding settings as the catalogue gave them when the version was created
    # (retrieval.catalogue.pinned_spec): serving, evaluation and further training encode with these, never with the
    # editable catalogue, so editing a prompt there only affects the versions created afterwards.
    model_spec = models.JSONField(_("réglages d'encodage figés"), default=dict, blank=True)
    # The ONNX query encoders of this version and how each compared with torch on the frozen test queries
    # (retrieval.encoder_check): {"folder", "checksums", "variants": {name: check}, "served", "checked_at"}.
    encoder_check = models.JSONField(_("contrôle des encodeurs de requêtes"), default=dict, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    promoted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-number"]
        verbose_name = _("version de modèle")
        verbose_name_plural = _("versions de modèle")
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
                raise ValidationError(_("Une version de modèle est immuable (champs modifiés : %(fields)s).") % {"fields": ", ".join(sorted(frozen))})
        super().save(*args, **kwargs)
        self._loaded_values = {field.attname: getattr(self, field.attname) for field in self._meta.concrete_fields}


class PromotionEvent(models.Model):
    """Audit log of every change of champion."""

    class Action(models.TextChoices):
        PROMOTE = "promote", _("promotion")
        ROLLBACK = "rollback", _("retour arrière")
        AUTO = "auto", _("promotion automatique")

    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="promotion_events")
    previous_champion = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    action = models.CharField(max_length=10, choices=Action.choices)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    reason = models.TextField(blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = _("changement de championne")
        verbose_name_plural = _("changements de championne")

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.version} ({self.at:%Y-%m-%d %H:%M})"


class IndexState(models.Model):
    """The vector index of one model version: which artifact holds it and which revision it is at.

    Full builds are jobs (kind ``index_build``); ``build_job`` is the latest. ``error`` is the failure of the
    latest change (a build, or one entry's update), cleared by the next revision published.
    """

    class Status(models.TextChoices):
        BUILDING = "building", _("en construction")
        READY = "ready", _("prêt")
        FAILED = "failed", _("échoué")

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
        verbose_name = _("index vectoriel")
        verbose_name_plural = _("index vectoriels")

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
        verbose_name = _("question posée")
        verbose_name_plural = _("questions posées")

    def __str__(self) -> str:
        return self.question[:80]


class Flag(models.Model):
    """An expert's report that an answer was wrong, ideally with the entry that should have come first."""

    class Reason(models.TextChoices):
        WRONG_ENTRY = "wrong_entry", _("mauvaise entrée retrouvée")
        MISSING_ENTRY = "missing_entry", _("entrée absente du glossaire")
        WRONG_DEFINITION = "wrong_definition", _("définition erronée")
        BAD_WORDING = "bad_wording", _("réponse mal formulée")

    class Status(models.TextChoices):
        # The life of a flag: open -> corrected (it has its right entry) -> used by a training run -> answered
        # right by a version; still answered wrong by that version, it is open again (back in the review queue).
        OPEN = "open", _("ouvert")
        CORRECTED = "corrected", _("corrigé")
        USED = "used", _("utilisé pour l'entraînement")
        ANSWERED = "answered", _("répondu juste")
        DISMISSED = "dismissed", _("écarté")

    question_log = models.ForeignKey(QuestionLog, on_delete=models.CASCADE, related_name="flags")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    reason = models.CharField(_("motif"), max_length=20, choices=Reason.choices)
    correct_entry = models.ForeignKey("glossary.Entry", verbose_name=_("bonne entrée"), null=True, blank=True, on_delete=models.SET_NULL, related_name="flags")
    comment = models.TextField(_("commentaire"), blank=True)
    status = models.CharField(_("statut"), max_length=10, choices=Status.choices, default=Status.OPEN, db_index=True)
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
    corrected_at = models.DateTimeField(_("corrigé le"), null=True, blank=True)
    used_by_run_id = models.PositiveBigIntegerField(_("utilisé par l'entraînement"), null=True, blank=True)
    checked_version = models.ForeignKey(ModelVersion, verbose_name=_("vérifié avec la version"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    checked_rank = models.PositiveIntegerField(_("rang de la bonne entrée"), null=True, blank=True)
    answered_right = models.BooleanField(_("répondu juste"), null=True, blank=True)
    checked_at = models.DateTimeField(_("vérifié le"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("signalement")
        verbose_name_plural = _("signalements")

    def __str__(self) -> str:
        return f"{self.get_reason_display()} – {self.question_log}"


class LabelledQuestion(models.Model):
    """A real question with its known answer (an entry), kept from an expert's decision or written as an exam.

    Each one is served at once as a "known question" passage of its entry (retrieval.passages), trained on
    unless held out, and used to judge versions (evaluation.real_questions), with known-question passages
    left out of the ranking then.
    """

    class Kind(models.TextChoices):
        ACRONYM = "acronym", _("sigle ou terme cité")
        REVERSE = "reverse", _("recherche inverse (description)")
        PARAPHRASE = "paraphrase", _("paraphrase")
        TYPO = "typo", _("faute de frappe")
        ENGLISH = "english", _("anglais")
        AMBIGUOUS = "ambiguous", _("ambiguë")

    class KindSetBy(models.TextChoices):
        RULES = "rules", _("règles")
        EXPERT = "expert", _("expert")

    class Source(models.TextChoices):
        FLAG = "flag", _("signalement corrigé")
        WORKBENCH = "workbench", _("atelier d'annotation")
        ACCEPTED_ANSWER = "accepted_answer", _("réponse validée")
        EXAM = "exam", _("question d'examen")
        IMPORT = "import", _("import")

    text = models.TextField(_("question"))
    normalised = models.CharField(_("question normalisée"), max_length=500, db_index=True, editable=False)
    entry = models.ForeignKey("glossary.Entry", verbose_name=_("bonne entrée"), on_delete=models.CASCADE, related_name="labelled_questions")
    kind = models.CharField(_("type de question"), max_length=12, choices=Kind.choices, db_index=True)
    kind_set_by = models.CharField(_("type fixé par"), max_length=8, choices=KindSetBy.choices, default=KindSetBy.RULES)
    source = models.CharField(_("origine"), max_length=16, choices=Source.choices, db_index=True)
    # Decided by a hash of the normalised question (retrieval.question_kinds.is_held_out): never trained on.
    held_out = models.BooleanField(_("réservée à l'évaluation"), db_index=True)
    # The entries the serving version ranked above the right one: hard negatives for training.
    wrong_entry_ids = models.JSONField(_("entrées classées au-dessus"), default=list, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    flag = models.ForeignKey(Flag, null=True, blank=True, on_delete=models.SET_NULL, related_name="labelled_questions")
    question_log = models.ForeignKey(QuestionLog, null=True, blank=True, on_delete=models.SET_NULL, related_name="labelled_questions")
    # The last training run that trained on it (a plain integer: retrieval must not depend on training).
    used_by_run_id = models.PositiveBigIntegerField(_("utilisée par l'entraînement"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("question étiquetée")
        verbose_name_plural = _("questions étiquetées")
        constraints = [
            models.UniqueConstraint(fields=["normalised", "entry"], name="labelled_question_unique_per_entry"),
        ]

    def __str__(self) -> str:
        return f"{self.text[:80]} -> {self.entry_id}"
