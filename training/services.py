"""Writes of the training capability: the frozen split, runs (request, lock, cancel; executed in training.runs), screening."""
from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _, gettext_noop

from config.errors import Conflict
from config.stored_messages import message, stored
from glossary.models import Entry
from retrieval import selectors as retrieval_selectors
from training import selectors
from jobs import runner
from training.llm_questions import AskedQuestions
from training.models import Equivalence, LLMQuestionSet, NegativeCandidate, TrainingConfig, TrainingRun
from training.split import SplitConcept, assign_splits

logger = logging.getLogger("lexique.training")

DEFAULT_CONFIG_NAME = "défaut"


class TrainingAlreadyRunning(Conflict):
    def __init__(self, run: TrainingRun):
        self.run = run
        super().__init__(_("A training run is already in progress (no. %(id)s).") % {"id": run.pk}, code="already_running", run_id=run.pk)


# ---- frozen split --------------------------------------------------------------------------------------

def split_assign_all(*, test_ratio: float = 0.1, seed: int = 13) -> dict[int, str]:
    """Give every unassigned entry its side of the frozen split; existing sides never move."""
    concepts = [
        SplitConcept(
            entry_id=entry.pk,
            stable_key=f"{entry.term_key}\x1f{entry.definition_key_hash}",
            domain=entry.domain.name if entry.domain_id else None,
            kind=entry.kind,
            split=entry.split,
        )
        for entry in Entry.objects.select_related("domain").only("pk", "term_key", "definition_key_hash", "kind", "split", "domain__name")
    ]
    assignments = assign_splits(concepts, test_ratio=test_ratio, seed=seed)
    with transaction.atomic():
        for side in ("train", "test"):
            ids = [entry_id for entry_id, value in assignments.items() if value == side]
            # Only unassigned rows: a concurrent assignment (or pin) is never overwritten.
            Entry.objects.filter(pk__in=ids, split="").update(split=side)
    return assignments


# ---- LLM questions --------------------------------------------------------------------------------------

def llm_questions_store(*, asked: list[AskedQuestions], model_name: str) -> int:
    """Keep what the LLM wrote about each entry (one row per entry, replaced when asked again); entries deleted
    meanwhile are skipped. Returns the number of rows written."""
    existing = set(Entry.objects.filter(pk__in=[item.entry_id for item in asked]).values_list("pk", flat=True))
    written = 0
    for item in asked:
        if item.entry_id in existing:
            LLMQuestionSet.objects.update_or_create(
                entry_id=item.entry_id, defaults={"key": item.key, "questions": list(item.questions), "model_name": model_name},
            )
            written += 1
    return written


# ---- configs and requests ----------------------------------------------------------------------------

def training_config_default_get() -> TrainingConfig:
    config = TrainingConfig.objects.filter(is_default=True).first()
    if config:
        return config
    config, _created = TrainingConfig.objects.get_or_create(name=DEFAULT_CONFIG_NAME, defaults={"is_default": True})
    return config


def config_values(config: TrainingConfig, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    values = {
        field.name: getattr(config, field.name)
        for field in TrainingConfig._meta.concrete_fields
        if field.name not in ("id", "name", "is_default", "updated_at")
    }
    for key, value in (overrides or {}).items():
        if key not in values:
            raise ValidationError(_("Unknown training parameter: %(key)s.") % {"key": key})
        if value is not None:
            values[key] = value
    return values


def training_run_request(
    *, user=None, trigger: str = TrainingRun.Trigger.BUTTON, config: TrainingConfig | None = None, overrides: dict[str, Any] | None = None
) -> TrainingRun:
    """Queue a training run, the first step of a cycle; refuse when a cycle is going (one training at a time)."""
    from training import pipeline

    runner.jobs_sweep_stale()
    config = config or training_config_default_get()
    values = config_values(config, overrides)
    try:
        with transaction.atomic():
            job = runner.job_create(kind=pipeline.TRAIN, requested_by=user, lock=pipeline.CYCLE_LOCK)
            run = TrainingRun.objects.create(
                job=job, trigger=trigger, config=config, config_values=values,
                parent_version=retrieval_selectors.champion_version_get(),
            )
    except runner.JobLocked:
        active = selectors.active_run_get()
        if active is None:  # the lock holder is not a cycle's step: should not happen, but never loop
            raise
        raise TrainingAlreadyRunning(active) from None
    runner.job_log(job=job, message=stored(
        gettext_noop("Requested by %(user)s (%(trigger)s)."),
        user=user or message(gettext_noop("the scheduler")),
        trigger=TrainingRun.Trigger(trigger).label if trigger in TrainingRun.Trigger.values else trigger,
    ))
    runner.enqueue_on_commit(job)
    return run


def training_run_cancel(*, run: TrainingRun, user=None) -> TrainingRun:
    """Cancel the cycle's step in progress: the training itself, or its evaluation/gate."""
    from training import pipeline

    step = pipeline.active_step(run)
    if step is None:
        raise Conflict(_("This training run has already finished."), code="finished")
    runner.job_cancel(job=step, user=user)
    run.refresh_from_db()
    return run


# ---- expert screening ----------------------------------------------------------------------------------

def screening_decide(*, candidate: NegativeCandidate, decision: str, user) -> NegativeCandidate:
    """Record an expert's screening: "different" keeps the negative, "same" records an equivalence."""
    if decision not in (NegativeCandidate.Decision.DIFFERENT, NegativeCandidate.Decision.SAME):
        raise ValidationError(_("Unknown decision: %(d)s.") % {"d": decision})
    with transaction.atomic():
        current = NegativeCandidate.objects.select_for_update().get(pk=candidate.pk)
        if current.decision != NegativeCandidate.Decision.PENDING:
            raise Conflict(_("This candidate has already been reviewed (%(d)s).") % {"d": current.get_decision_display()}, code="already_decided")
        current.decision = decision
        current.decided_by = user
        current.decided_at = timezone.now()
        current.save(update_fields=["decision", "decided_by", "decided_at"])
        if decision == NegativeCandidate.Decision.SAME:
            first, second = sorted((current.anchor_entry_id, current.negative_entry_id))
            Equivalence.objects.get_or_create(entry_a_id=first, entry_b_id=second, defaults={"decided_by": user})
    return current


# ---- schedule ------------------------------------------------------------------------------------------

def scheduled_retrain() -> TrainingRun | None:
    """The nightly trigger: train only when enough new validated material arrived since the last run."""
    config = training_config_default_get()
    material = selectors.new_material_count()
    if material["total"] < config.min_new_material:
        logger.info("Scheduled retrain skipped: %s new items < threshold %s", material["total"], config.min_new_material)
        return None
    try:
        return training_run_request(trigger=TrainingRun.Trigger.SCHEDULE, config=config)
    except TrainingAlreadyRunning:
        return None
