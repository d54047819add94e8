"""The expert workbench: review queue refreshes, review items and decisions, question labels, annotation guides
and the overlap required per source."""
from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from jobs.models import JobStatus
from training.models.learning import NegativeCandidate


class QueueRefresh(JobStatus, models.Model):
    """One recomputation of the review queue: what it found (its lifecycle is its job's, kind ``queue_refresh``)."""

    class Trigger(models.TextChoices):
        CHAMPION = "champion", _("new champion")
        SCHEDULE = "schedule", _("schedule")
        REQUEST = "request", _("request")
        IMPORT = "import", _("import")
        FIRST_USE = "first_use", _("first visit")

    job = models.OneToOneField("jobs.Job", on_delete=models.PROTECT, related_name="queue_refresh")
    trigger = models.CharField(max_length=10, choices=Trigger.choices, default=Trigger.REQUEST)
    version = models.ForeignKey("retrieval.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    started_at = models.DateTimeField(auto_now_add=True)
    counts = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        verbose_name = _("review queue recomputation")
        verbose_name_plural = _("review queue recomputations")

    def __str__(self) -> str:
        return f"{self.get_trigger_display()} {self.started_at:%Y-%m-%d %H:%M} ({self.job.get_status_display()})"


class ReviewItem(models.Model):
    """One thing for an expert to look at in the workbench, from one source, with its usefulness score.

    ``key`` names what the item is about (e.g. ``flag:12``, ``duplicate:3-9``), so a refresh updates an open item
    in place and never reopens one an expert already decided. ``rank`` is the review order (uncertainty with
    diversity), ``domain_rank`` the same order grouped by domain. An expert holds the item while ``leased_by``
    and ``lease_expires_at`` say so.
    """

    class Source(models.TextChoices):
        FLAG = "flag", _("open flag")
        QUESTION = "question", _("uncertain question")
        NEGATIVE = "negative", _("suspect negative")
        SELF_RETRIEVAL = "self_retrieval", _("poorly retrieved entry")
        DUPLICATE = "duplicate", _("likely duplicate")
        DRAFT = "draft", _("draft to validate")

    class Status(models.TextChoices):
        OPEN = "open", _("to review")
        # Beyond the number of items offered per cycle (REVIEW_QUEUE_MAX_OPEN): kept up to date, offered when
        # it is among the most useful at a later refresh.
        DEFERRED = "deferred", _("in reserve")
        DONE = "done", _("done")
        # Its experts' decisions disagree (overlap above one): waiting for an adjudicator; nothing applied yet.
        DISPUTED = "disputed", _("to adjudicate")
        OBSOLETE = "obsolete", _("stale")

    key = models.CharField(max_length=120, unique=True)
    source = models.CharField(_("source"), max_length=20, choices=Source.choices, db_index=True)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.OPEN)
    score = models.FloatField(_("uncertainty score"), default=0.0)
    rank = models.PositiveIntegerField(default=0)
    domain_rank = models.PositiveIntegerField(default=0)
    # The uncertainty signals behind the score, and what the expert needs to see (question, candidates...).
    signals = models.JSONField(default=dict, blank=True)
    payload = models.JSONField(default=dict, blank=True)
    domain = models.ForeignKey("glossary.Domain", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    entry = models.ForeignKey("glossary.Entry", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    other_entry = models.ForeignKey("glossary.Entry", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    flag = models.ForeignKey("retrieval.Flag", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    question_log = models.ForeignKey("retrieval.QuestionLog", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    negative = models.ForeignKey(NegativeCandidate, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    version = models.ForeignKey("retrieval.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    leased_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    refreshed_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["rank", "id"]
        indexes = [models.Index(fields=["status", "rank"]), models.Index(fields=["status", "domain_rank"])]
        verbose_name = _("item to review")
        verbose_name_plural = _("items to review")

    def __str__(self) -> str:
        return f"{self.get_source_display()} {self.key}"


class ReviewDecision(models.Model):
    """An expert's decision on a review item: who, when, the item as it was, and what it changed (for undo)."""

    class Decision(models.TextChoices):
        ACCEPT = "accept", _("accept")
        REJECT = "reject", _("reject")
        CHOOSE = "choose", _("choose a candidate")
        SAME = "same", _("same meaning")
        SKIP = "skip", _("skip")

    item = models.ForeignKey(ReviewItem, on_delete=models.CASCADE, related_name="decisions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    decision = models.CharField(_("decision"), max_length=10, choices=Decision.choices)
    candidate = models.ForeignKey("glossary.Entry", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    snapshot = models.JSONField(default=dict, blank=True)
    effect = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    undone_at = models.DateTimeField(null=True, blank=True)
    undone_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # Several experts may decide one item (ReviewSourceSetting.required_decisions): each keeps their own row.
    # ``applied``: this row carries the item's final decision (the source's effect ran on it: training data,
    # labels); the other experts' rows are votes. ``adjudication``: a maintainer or senior expert settled a
    # disagreement with it.
    applied = models.BooleanField(_("applied"), default=True)
    adjudication = models.BooleanField(_("adjudication"), default=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # One standing vote (skips aside) per expert and item; one standing adjudication per item.
            models.UniqueConstraint(
                fields=["item", "user"],
                condition=models.Q(undone_at__isnull=True) & ~models.Q(decision="skip") & models.Q(adjudication=False),
                name="review_decision_one_standing_vote_per_expert",
            ),
            models.UniqueConstraint(
                fields=["item"],
                condition=models.Q(undone_at__isnull=True) & models.Q(adjudication=True),
                name="review_decision_one_standing_adjudication",
            ),
            # At most one final (applied) decision per item.
            models.UniqueConstraint(
                fields=["item"],
                condition=models.Q(undone_at__isnull=True) & models.Q(applied=True) & ~models.Q(decision="skip"),
                name="review_decision_one_applied_per_item",
            ),
        ]
        verbose_name = _("review decision")
        verbose_name_plural = _("review decisions")

    def __str__(self) -> str:
        return f"{self.get_decision_display()} – {self.item}"


class QuestionLabel(models.Model):
    """An expert-confirmed training pair: this question is answered by this entry; ``wrong_entry_ids`` were
    ranked above it by the serving version and become its negatives."""

    question = models.TextField()
    entry = models.ForeignKey("glossary.Entry", on_delete=models.CASCADE, related_name="+")
    wrong_entry_ids = models.JSONField(default=list, blank=True)
    question_log = models.ForeignKey("retrieval.QuestionLog", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    decision = models.ForeignKey(ReviewDecision, null=True, blank=True, on_delete=models.SET_NULL, related_name="labels")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("labelled question")
        verbose_name_plural = _("labelled questions")

    def __str__(self) -> str:
        return f"{self.question[:60]} → {self.entry_id}"


class Guideline(models.Model):
    """A short annotation guide (markdown) for one domain and/or one source of the review queue.

    No domain: for every domain; no source: for every source. The workbench shows the most specific guide for
    an item (training.guidelines.guideline_for). Maintainers edit guides; every change is kept in the history.
    """

    domain = models.ForeignKey(
        "glossary.Domain", null=True, blank=True, on_delete=models.CASCADE, related_name="+", verbose_name=_("domain"),
        help_text=_("Empty: every domain."),
    )
    source = models.CharField(
        _("source"), max_length=20, choices=ReviewItem.Source.choices, blank=True, help_text=_("Empty: every source."),
    )
    title = models.CharField(_("title"), max_length=200)
    body = models.TextField(_("text (markdown)"), max_length=20000)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    history = HistoricalRecords()

    class Meta:
        ordering = ["domain__name", "source", "id"]
        constraints = [
            # One guide per (domain, source); NULL domains are not equal in SQL, hence the second constraint.
            models.UniqueConstraint(
                fields=["domain", "source"], condition=models.Q(domain__isnull=False), name="guideline_one_per_domain_source",
                violation_error_message=_("A guide already exists for this domain and this source."),
            ),
            models.UniqueConstraint(
                fields=["source"], condition=models.Q(domain__isnull=True), name="guideline_one_per_source_all_domains",
                violation_error_message=_("A guide already exists for this domain and this source."),
            ),
        ]
        verbose_name = _("annotation guide")
        verbose_name_plural = _("annotation guides")

    def __str__(self) -> str:
        return self.title


class ReviewSourceSetting(models.Model):
    """How many experts must decide an item of one source of the review queue (overlap); no row: one."""

    source = models.CharField(_("source"), max_length=20, choices=ReviewItem.Source.choices, unique=True)
    required_decisions = models.PositiveSmallIntegerField(
        _("required decisions"), default=1, validators=[MinValueValidator(1), MaxValueValidator(5)],
        help_text=_("How many experts must decide each item; if they disagree, an adjudicator settles it."),
    )
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["source"]
        verbose_name = _("source overlap")
        verbose_name_plural = _("source overlaps")

    def __str__(self) -> str:
        return f"{self.get_source_display()} × {self.required_decisions}"
