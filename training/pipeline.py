"""The training cycle, explicitly: train -> evaluate -> gate -> promote.

Each step is a job (``jobs.Job``) whose parent is the step before it. A step's own code ends by calling
``step_succeeded``, the one place where the cycle moves on; a step that fails or is cancelled ends the cycle.
Steps and what they run:

- ``training``  (training.runs.training_run_execute): pairs, mining, LoRA, a ready model version;
- ``evaluation`` (evaluation.services.evaluation_run_execute): the version on the frozen test split;
- ``gate``       (evaluation.gating.gate_execute): real, canary and template questions against the champion
  (evaluation.gate.decide_for_users);
- ``promotion``  (promotion_execute, only when the gate says so): index build, the switch, then the review
  queue is refreshed for the new champion and every corrected flag is asked again (answered right, or reopened).

Once training succeeded, the labelled questions (and flags) it trained on are marked "used by run N".

Training, evaluation and gate hold the cycle's lock in turn (one cycle at a time); the promotion does not.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import transaction
from django.utils.translation import gettext as _, gettext_noop

from config.stored_messages import stored
from jobs import runner, selectors as job_selectors
from jobs.models import Job
from retrieval import flags as retrieval_flags
from retrieval import labelled
from retrieval import versions as retrieval_versions
from retrieval.models import ModelVersion, PromotionEvent
from training.models import TrainingRun

logger = logging.getLogger("lexique.training")

TRAIN, EVALUATE, GATE, PROMOTE = "training", "evaluation", "gate", "promotion"
CYCLE_LOCK = "training-cycle"


def step_succeeded(*, job: Job, message: str = "") -> Job | None:
    """Mark a cycle's step done and queue the next one, in one transaction (the lock passes from step to step:
    no second cycle can start in between). Returns the next step's job, if any."""
    with transaction.atomic():
        runner.job_succeed(job=job, message=message)
        if job.kind == TRAIN:
            return _evaluate(job)
        if job.kind == EVALUATE:
            return _gate(job)
        if job.kind == GATE:
            return _promote(job)
    return None


def _evaluate(training_job: Job) -> Job:
    from evaluation import runs as evaluation_runs
    from evaluation.models import EvaluationRun

    run = TrainingRun.objects.select_related("model_version").get(job=training_job)
    # The flags and labelled questions the run trained on now read "used by training run N".
    labelled.labelled_questions_mark_used(run_id=run.pk, ids=run.stats.get("labelled_question_ids") or [])
    evaluation = evaluation_runs.evaluation_run_request(
        version=run.model_version, user=training_job.requested_by, trigger=EvaluationRun.Trigger.AUTO,
        training_run_id=run.pk, parent=training_job, lock=CYCLE_LOCK,
    )
    return evaluation.job


def _gate(evaluation_job: Job) -> Job:
    job = runner.job_create(
        kind=GATE, requested_by=evaluation_job.requested_by, parent=evaluation_job, lock=CYCLE_LOCK,
        params={"evaluation_run_id": evaluation_job.evaluation_run.pk},
    )
    runner.enqueue_on_commit(job)
    return job


def _promote(gate_job: Job) -> Job | None:
    from evaluation import gating
    from evaluation.models import EvaluationRun
    from evaluation.gate_records import gate_of

    evaluation = EvaluationRun.objects.select_related("version").get(pk=gate_job.params["evaluation_run_id"])
    gate = gate_of(evaluation.gate)
    if gate is None or not gate.promote:
        return None
    reason = stored(gettext_noop("Promotion gate: %(reasons)s"), reasons=gating.gate_messages(gate))
    return promotion_request(version=evaluation.version, user=None, reason=reason, action=PromotionEvent.Action.AUTO, parent=gate_job)


# ---- the promotion step (also a maintainer's promotion or rollback) --------------------------------------

def promotion_request(*, version: ModelVersion, user, reason: str, action: str = PromotionEvent.Action.PROMOTE, parent: Job | None = None) -> Job:
    """Mark the version as being promoted and queue its promotion (index build, then the switch)."""
    status_before = retrieval_versions.model_version_mark_promoting(version=version)
    job = runner.job_create(
        kind=PROMOTE, requested_by=user, parent=parent,
        params={"version_id": version.pk, "user_id": getattr(user, "pk", None), "reason": reason, "action": action, "status_before": status_before},
    )
    runner.job_log(job=job, message=stored(gettext_noop("%(version)s: %(reason)s"), version=version, reason=reason))
    runner.enqueue_on_commit(job)
    return job


def promotion_failed(job: Job) -> None:
    """Nothing will promote the version (broker down, worker lost): it must not stay "promoting"."""
    ModelVersion.objects.filter(pk=job.params.get("version_id"), status=ModelVersion.Status.PROMOTING).update(
        status=job.params.get("status_before") or ModelVersion.Status.READY
    )


def promotion_execute(*, job_id: int, worker: str = "") -> Job:
    """Build the version's index and make it the champion; then the review queue is refreshed for it."""
    from django.contrib.auth import get_user_model

    from training import workbench

    job = Job.objects.get(pk=job_id)
    if not runner.job_claim(job=job, worker=worker):
        return job
    params = job.params
    version = ModelVersion.objects.get(pk=params["version_id"])
    user = get_user_model().objects.filter(pk=params.get("user_id")).first() if params.get("user_id") else None
    try:
        retrieval_versions.model_version_promote(version=version, user=user, reason=params.get("reason", ""), action=params["action"])
    except Exception as error:
        # The promote service put the version back (or marked it broken); the old champion still serves.
        logger.exception("promotion job %s failed", job.pk)
        runner.job_fail(job=job, error=f"{type(error).__name__}: {error}", call_on_failed=False)
        return job
    # A new champion sees the glossary differently: its review queue is recomputed (explicitly, here).
    workbench.review_queue_refresh_request(trigger="champion")
    message = stored(gettext_noop("%(v)s now serves."), v=version)
    try:
        # Every corrected flag is asked again: "answered right by version M", or open again, back in the queue.
        checked = retrieval_flags.flags_check_version(version=version)
    except Exception as error:  # the promotion stands; the flags keep their state until the next check
        logger.exception("flag check after promoting %s failed", version)
        runner.job_log(job=job, message=f"{type(error).__name__}: {error}")
    else:
        if checked.checks:
            message = stored(gettext_noop("%(served)s Corrected flags asked again: %(right)s answered right, %(wrong)s still wrong (reopened)."),
                             served=message, right=checked.right, wrong=checked.wrong)
    runner.job_succeed(job=job, message=message)
    return job


# ---- reads: the cycle of a training run ----------------------------------------------------------------

@dataclass(frozen=True)
class CycleState:
    status: str
    error: str
    steps: list[Job]


def cycle_steps(run: TrainingRun) -> list[Job]:
    return job_selectors.job_chain(run.job)


def cycle_state(run: TrainingRun) -> CycleState:
    """The cycle's status as the run's page and API show it: the training job's, then "evaluating" while its
    evaluation and gate run, and "failed" when one of them failed (the version stays ready, never promoted)."""
    steps = cycle_steps(run)
    training = steps[0]
    if training.status == Job.Status.RUNNING:
        return CycleState(run.stage or TrainingRun.Status.MINING, "", steps)
    if training.status != Job.Status.SUCCEEDED:
        return CycleState(training.status, training.error_text, steps)
    for step in steps[1:]:
        if step.kind not in (EVALUATE, GATE):
            continue
        if step.is_active:
            return CycleState(TrainingRun.Status.EVALUATING, "", steps)
        if step.status != Job.Status.SUCCEEDED:
            return CycleState(TrainingRun.Status.FAILED, _("evaluation failed: %(e)s") % {"e": step.error_text}, steps)
    return CycleState(TrainingRun.Status.SUCCEEDED, "", steps)


def active_step(run: TrainingRun) -> Job | None:
    return next((step for step in cycle_steps(run) if step.is_active and step.kind != PROMOTE), None)


def no_worker_warning(run: TrainingRun, *, after_s: float = 60.0) -> str:
    """A cycle step queued for longer than ``after_s`` with nobody taking it: say so (the page, ``retrain --wait``)."""
    from django.utils import timezone

    step = next((step for step in cycle_steps(run) if step.status == Job.Status.QUEUED), None)
    if step is None or (timezone.now() - step.created_at).total_seconds() < after_s:
        return ""
    return _("No worker has taken this job (%(kind)s, queued for %(s)s s): is a Celery worker listening on the “training” queue?") % {
        "kind": step.kind_label, "s": int((timezone.now() - step.created_at).total_seconds()),
    }




# ---- the whole cycle in one process (``retrain --inline``, benchmarks) ---------------------------------------

def cycle_execute_inline(run: TrainingRun) -> None:
    """Run the cycle's queued steps after training (evaluation, gate, promotion) in this process, one after the
    other, each claimed as a worker claims it: a worker that also received a step's message finds it taken."""
    from evaluation import gating
    from evaluation import runs as evaluation_runs

    while True:
        run = TrainingRun.objects.select_related("job").get(pk=run.pk)  # fresh: each step moved the cycle on
        step = next((job for job in cycle_steps(run) if job.status == Job.Status.QUEUED), None)
        if step is None or step.kind == TRAIN:  # a training that never ran (it failed to start) has no cycle
            return
        if step.kind == EVALUATE:
            evaluation_runs.evaluation_run_execute(run_id=step.evaluation_run.pk)
        elif step.kind == GATE:
            gating.gate_execute(job_id=step.pk)
        elif step.kind == PROMOTE:
            promotion_execute(job_id=step.pk)
        else:
            raise RuntimeError(f"unknown cycle step {step.kind}")
