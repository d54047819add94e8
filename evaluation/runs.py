"""Evaluation runs: a version evaluated on the frozen test set (or a query file) as a job, by a worker or inline;
and maintainers' promotions and rollbacks (each a promotion job of the training pipeline).

What an evaluation computes is in ``evaluation.services`` (``evaluate_version``); this module is its lifecycle:
request (deduplicated while one is active), create, send, claim, run, record.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _, gettext_noop

from config.stored_messages import stored
from evaluation import services
from evaluation.gate import GATE_MODE
from evaluation.models import EvaluationRun
from evaluation.protocols import PROTOCOLS
from evaluation.queries import EvalQuery, QueryFileError
from evaluation.reports import EvaluationReport, EvaluationSummary
from evaluation.services import DEFAULT_MODES, query_as_dict, query_from_dict
from jobs import runner
from jobs.models import Job
from retrieval import selectors as retrieval_selectors
from retrieval import versions as retrieval_versions
from retrieval.hybrid import MODES
from retrieval.models import ModelVersion, PromotionEvent

logger = logging.getLogger("lexique.evaluation")

EVALUATION_KIND = "evaluation"


def evaluation_run_request(
    *,
    version: ModelVersion,
    user=None,
    trigger: str = EvaluationRun.Trigger.MANUAL,
    training_run_id: int | None = None,
    modes: Sequence[str] = DEFAULT_MODES,
    protocols: Sequence[str] = PROTOCOLS,
    queries: list[EvalQuery] | None = None,
    query_errors: Sequence[QueryFileError] = (),
    query_source: str = "",
    parent: Job | None = None,
    lock: str | None = None,
) -> EvaluationRun:
    """Record an evaluation to run and have a worker run it once the transaction commits.

    An identical request (same version, trigger, modes, protocols and queries) already queued or running is
    returned instead of a second one. ``lock``: a cycle's step holds the cycle's lock instead.
    """
    key = lock or _request_key(version=version, trigger=trigger, modes=modes, protocols=protocols, queries=queries)
    try:
        with transaction.atomic():
            run = evaluation_run_create(
                version=version, user=user, trigger=trigger, training_run_id=training_run_id, modes=modes, protocols=protocols,
                queries=queries, query_errors=query_errors, query_source=query_source, parent=parent, lock=key,
            )
    except runner.JobLocked as locked:
        existing = EvaluationRun.objects.filter(job=locked.job).first()
        if existing is None or lock:
            raise
        return existing
    runner.enqueue_on_commit(run.job)
    return run


def _request_key(*, version: ModelVersion, trigger: str, modes: Sequence[str], protocols: Sequence[str], queries) -> str:
    import hashlib
    import json

    identity = [version.pk, trigger, list(modes), list(protocols), [query_as_dict(query) for query in queries or ()]]
    return f"evaluation:{hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:40]}"


def evaluation_run_create(
    *,
    version: ModelVersion,
    user=None,
    trigger: str = EvaluationRun.Trigger.MANUAL,
    training_run_id: int | None = None,
    modes: Sequence[str] = DEFAULT_MODES,
    protocols: Sequence[str] = PROTOCOLS,
    queries: list[EvalQuery] | None = None,
    query_errors: Sequence[QueryFileError] = (),
    query_source: str = "",
    parent: Job | None = None,
    lock: str | None = None,
) -> EvaluationRun:
    """Record an evaluation to run in this process (commands) or through ``evaluation_run_request``."""
    if any(mode not in MODES for mode in modes) or not modes:
        raise ValidationError(_("Modes expected among: %(m)s.") % {"m": ", ".join(MODES)})
    if any(protocol not in PROTOCOLS for protocol in protocols) or not protocols:
        raise ValidationError(_("Protocols expected among: %(p)s.") % {"p": ", ".join(PROTOCOLS)})
    if trigger == EvaluationRun.Trigger.AUTO and GATE_MODE not in modes:
        modes = [GATE_MODE, *modes]
    job = runner.job_create(kind=EVALUATION_KIND, requested_by=user, parent=parent, lock=lock)
    return EvaluationRun.objects.create(
        job=job,
        version=version,
        trigger=trigger,
        training_run_id=training_run_id,
        modes=list(modes),
        protocols=list(protocols),
        custom_queries=[query_as_dict(query) for query in queries or ()],
        query_errors=[{"line": error.line, "message": error.message} for error in query_errors],
        query_source=query_source or stored(gettext_noop("file") if queries else gettext_noop("test split")),
    )


def evaluation_run_send(job: Job) -> str:
    from evaluation import tasks

    return tasks.evaluate.delay(job.evaluation_run.pk).id


def run_log(run: EvaluationRun, message: str) -> None:
    runner.job_log(job=run.job, message=message)


def evaluate_into(run: EvaluationRun) -> EvaluationRun:
    """Run the evaluation the row describes (its job claimed) and store its results."""
    run_log(run, stored(gettext_noop("Evaluation of %(version)s (%(modes)s)."), version=run.version, modes=", ".join(run.modes)))
    queries = [query_from_dict(item) for item in run.custom_queries] or None
    result = services.evaluate_version(
        version=run.version, queries=queries, modes=run.modes, protocols=run.protocols, log=lambda message: run_log(run, message)
    )
    run.report, run.similarity, run.ragas = result.report.to_dict(), result.similarity, result.ragas
    run.test_set_hash, run.query_count, run.passage_count = result.test_set_hash, result.query_count, result.passage_count
    run.save()
    return run


def run_succeed(run: EvaluationRun) -> None:
    """Results stored: the job ends, and the version keeps a summary; a cycle's evaluation goes on to the gate."""
    from training import pipeline

    if run.trigger == EvaluationRun.Trigger.AUTO and run.job.parent_id:
        pipeline.step_succeeded(job=run.job)
    else:
        runner.job_succeed(job=run.job)
    run.refresh_from_db()
    retrieval_versions.model_version_set_metrics(version=run.version, metrics={"evaluation": evaluation_summary(run).to_dict()})


def evaluation_summary(run: EvaluationRun) -> EvaluationSummary:
    """What a version keeps of its latest evaluation: overall metrics per mode and protocol, and the test set."""
    return EvaluationSummary(
        run_id=run.pk,
        finished_at=run.finished_at.isoformat() if run.finished_at else None,
        test_set_hash=run.test_set_hash,
        queries=run.query_count,
        overall=EvaluationReport.from_dict(run.report).overall(),
    )


def evaluation_run_execute(*, run_id: int, worker: str = "") -> EvaluationRun:
    """Run a queued evaluation (claimed atomically: a message delivered twice never runs it twice)."""
    run = EvaluationRun.objects.select_related("version", "job").get(pk=run_id)
    if not runner.job_claim(job=run.job, worker=worker):
        return run
    try:
        run = evaluate_into(run)
    except Exception as error:
        logger.exception("evaluation %s failed", run.pk)
        runner.job_fail(job=run.job, error=f"{type(error).__name__}: {error}")
    else:
        run_succeed(run)
    run.refresh_from_db()
    return run


# ---- promotion and rollback by hand -------------------------------------------------------------------

def version_promote_request(*, version: ModelVersion, user, reason: str) -> ModelVersion:
    """A maintainer's promotion (index built first by a worker); the reason goes to the audit log."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": [_("Give the reason for the promotion.")]})
    from training import pipeline

    pipeline.promotion_request(version=version, user=user, reason=reason, action=PromotionEvent.Action.PROMOTE)
    version.refresh_from_db()
    return version


def version_rollback_request(*, user, reason: str) -> ModelVersion:
    """A maintainer's return to the previous champion (index rebuilt first by a worker)."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": [_("Give the reason for the rollback.")]})
    from training import pipeline

    previous = retrieval_selectors.previous_champion_get()
    if previous is None:
        raise ValidationError(_("No previous champion: nothing to restore."))
    pipeline.promotion_request(version=previous, user=user, reason=reason, action=PromotionEvent.Action.ROLLBACK)
    previous.refresh_from_db()
    return previous
