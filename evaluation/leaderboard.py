"""The leaderboard: catalogue base models and model versions evaluated on one query set, side by side.

Queued by a maintainer's button (a job of kind ``leaderboard`` a worker runs) or run inline by the ``benchmark``
command; one at a time. Each version also gets a stored evaluation (trigger benchmark).
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _, gettext_noop

from config.stored_messages import stored
from evaluation import selectors
from evaluation.models import EvaluationRun, Leaderboard
from evaluation.queries import EvalQuery
from evaluation.reports import EvaluationReport, LeaderboardRow
from evaluation.runs import evaluate_into, evaluation_run_create, run_succeed
from evaluation.services import DEFAULT_MODES, evaluate_version, query_as_dict, query_from_dict, test_set_build
from jobs import runner
from jobs.models import Job
from retrieval import selectors as retrieval_selectors
from retrieval.catalogue import UnknownModelError
from retrieval.hybrid import MODES
from retrieval.models import ModelVersion

logger = logging.getLogger("lexique.evaluation")

LEADERBOARD_KIND = "leaderboard"

# One leaderboard at a time, whoever asks (the page's button or the ``benchmark`` command): each evaluates every
# model on the whole test set, and two at once would only slow each other down.
LEADERBOARD_LOCK = "leaderboard"


class LeaderboardAlreadyRunning(ValidationError):
    def __init__(self, board: Leaderboard):
        self.board = board
        super().__init__(
            _("A leaderboard is already queued or being computed (job no. %(id)s): wait for it to end.") % {"id": board.job_id},
            code="already_running",
        )


def leaderboard_create(
    *,
    model_names: Sequence[str] = (),
    versions: Sequence[ModelVersion] = (),
    modes: Sequence[str] = DEFAULT_MODES,
    user=None,
    queries: list[EvalQuery] | None = None,
) -> Leaderboard:
    """A queued leaderboard: its job holds what to evaluate (``params``) and the single-flight lock.

    Raises ``LeaderboardAlreadyRunning`` while another one is queued or running.
    """
    if not modes or any(mode not in MODES for mode in modes):
        raise ValidationError(_("Modes expected among: %(m)s.") % {"m": ", ".join(MODES)})
    if not model_names and not versions:
        raise ValidationError(_("No model and no version to evaluate."))
    params = {
        "model_names": list(model_names),
        "version_ids": [version.pk for version in versions],
        "modes": list(modes),
        "queries": [query_as_dict(query) for query in queries or ()],
    }
    try:
        with transaction.atomic():
            job = runner.job_create(kind=LEADERBOARD_KIND, requested_by=user, lock=LEADERBOARD_LOCK, params=params)
            return Leaderboard.objects.create(job=job, modes=list(modes))
    except runner.JobLocked as locked:
        board = Leaderboard.objects.filter(job=locked.job).first()
        if board is None:
            raise
        raise LeaderboardAlreadyRunning(board) from None


def leaderboard_request(
    *,
    user=None,
    model_names: Sequence[str] | None = None,
    versions: Sequence[ModelVersion] | None = None,
    modes: Sequence[str] = DEFAULT_MODES,
) -> Leaderboard:
    """Queue a leaderboard for a worker (the page's button), sent once the transaction commits.

    By default it evaluates the catalogue's base models whose weights are on this machine (nothing is downloaded
    from a button), the champion and the ready versions (``selectors.leaderboard_plan``).
    """
    if model_names is None or versions is None:
        plan = selectors.leaderboard_plan()
        model_names = plan.model_names if model_names is None else model_names
        versions = plan.versions if versions is None else versions
    board = leaderboard_create(model_names=model_names, versions=versions, modes=modes, user=user)
    runner.job_log(job=board.job, message=stored(
        gettext_noop("Requested by %(user)s: %(models)s base model(s), %(versions)s version(s)."),
        user=user or "-", models=len(model_names), versions=len(versions),
    ))
    runner.enqueue_on_commit(board.job)
    return board


def leaderboard_send(job: Job) -> str:
    from evaluation import tasks

    return tasks.leaderboard.delay(job.pk).id


def leaderboard_execute(*, job_id: int, worker: str = "") -> Leaderboard:
    """Run a queued leaderboard (claimed atomically: a message delivered twice never runs it twice); a failure is
    recorded on its job, with the rows computed before it."""
    board = Leaderboard.objects.select_related("job").get(job_id=job_id)
    if not runner.job_claim(job=board.job, worker=worker):
        return board
    try:
        _leaderboard_compute(board, worker=worker)
    except Exception as error:
        logger.exception("leaderboard %s failed", board.pk)
        runner.job_fail(job=board.job, error=f"{type(error).__name__}: {error}")
    else:
        runner.job_succeed(job=board.job)
    board.refresh_from_db()
    return board


def leaderboard_run(
    *,
    model_names: Sequence[str] = (),
    versions: Sequence[ModelVersion] = (),
    modes: Sequence[str] = DEFAULT_MODES,
    user=None,
    queries: list[EvalQuery] | None = None,
) -> Leaderboard:
    """Evaluate catalogue base models and versions on one query set, in this process (the ``benchmark`` command).

    A model that cannot be loaded offline is listed as skipped with the reason. Each version also gets a stored
    evaluation (trigger benchmark). Raises ``LeaderboardAlreadyRunning`` while a worker computes one, and the
    error that stopped it (also recorded on its job).
    """
    board = leaderboard_create(model_names=model_names, versions=versions, modes=modes, user=user, queries=queries)
    worker = runner.current_worker()
    runner.job_claim(job=board.job, worker=worker)
    try:
        _leaderboard_compute(board, worker=worker)
    except BaseException as error:  # an interrupted command too: its job must not stay running, holding the lock
        runner.job_fail(job=board.job, error=f"{type(error).__name__}: {error}")
        raise
    runner.job_succeed(job=board.job)
    board.refresh_from_db()
    return board


def _leaderboard_compute(board: Leaderboard, *, worker: str) -> None:
    """Evaluate what the board's job names (its job claimed); the rows computed so far are stored even on failure."""
    from retrieval.embedding import ModelUnavailableError  # imports sentence-transformers: only when benchmarking

    job = board.job
    params = job.params
    model_names, modes = params.get("model_names", []), params.get("modes") or list(DEFAULT_MODES)
    queries = [query_from_dict(item) for item in params.get("queries") or ()] or None
    found = ModelVersion.objects.in_bulk(params.get("version_ids", []))
    versions = [found[pk] for pk in params.get("version_ids", []) if pk in found]
    user = job.requested_by
    total = len(model_names) + len(versions)
    rows: list[LeaderboardRow] = []

    def progress(name: str) -> None:
        runner.job_log(job=job, message=stored(gettext_noop("%(step)s/%(total)s: %(name)s."), step=len(rows) + 1, total=total, name=name))

    try:
        test_set = test_set_build(queries=queries)
        board.test_set_hash, board.query_count = test_set.test_set_hash, len(test_set.queries)
        runner.job_heartbeat(job=job, step=0, total=total)
        for name in model_names:
            progress(name)
            try:
                # An unsaved version: the base model's weights with its catalogue prompts, nothing stored.
                transient = ModelVersion(base_model=retrieval_selectors.model_spec_get(name=name).name)
                result = evaluate_version(version=transient, queries=test_set.queries, modes=modes, similarity=False, ragas=False)
                row = LeaderboardRow(name=name, kind="model", metrics=result.report.overall())
            except (ModelUnavailableError, UnknownModelError) as error:
                row = LeaderboardRow(name=name, kind="model", skipped=True, reason=str(error))
            rows.append(row)
            runner.job_heartbeat(job=job, step=len(rows))
        for version in versions:
            progress(version.display_name)
            run = evaluation_run_create(version=version, user=user, trigger=EvaluationRun.Trigger.BENCHMARK, modes=modes, queries=queries, parent=job)
            runner.job_claim(job=run.job, worker=worker)
            row = LeaderboardRow(name=version.display_name, kind="version", version_id=version.pk)
            try:
                run = evaluate_into(run)
                run_succeed(run)
                row = replace(row, metrics=EvaluationReport.from_dict(run.report).overall())
            except ModelUnavailableError as error:
                runner.job_fail(job=run.job, error=str(error))
                row = replace(row, skipped=True, reason=str(error))
            except BaseException as error:
                runner.job_fail(job=run.job, error=f"{type(error).__name__}: {error}")
                raise
            rows.append(row)
            runner.job_heartbeat(job=job, step=len(rows))
    finally:
        board.rows = [row.to_dict() for row in rows]
        board.save()
