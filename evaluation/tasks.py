"""Celery tasks of the evaluation capability (queue ``training``, next to the runs they judge)."""
from __future__ import annotations

from celery import shared_task

from evaluation import gating
from evaluation import runs as evaluation_runs
from evaluation import leaderboard as leaderboards

# Encoding the test set with a large model on CPU, plus the champion's re-evaluation, takes minutes.
EVALUATION_TIME_LIMIT_S = 2 * 3600
# A leaderboard evaluates every base model on this machine and every ready version, one after the other.
LEADERBOARD_TIME_LIMIT_S = 6 * 3600


@shared_task(bind=True, name="evaluation.tasks.evaluate", acks_late=True, soft_time_limit=EVALUATION_TIME_LIMIT_S, time_limit=EVALUATION_TIME_LIMIT_S + 120)
def evaluate(self, run_id: int) -> None:
    # The service records any failure on the run's job (which ends the training cycle it belongs to).
    evaluation_runs.evaluation_run_execute(run_id=run_id, worker=self.request.hostname or "")


@shared_task(bind=True, name="evaluation.tasks.gate", acks_late=True, soft_time_limit=EVALUATION_TIME_LIMIT_S, time_limit=EVALUATION_TIME_LIMIT_S + 120)
def gate(self, job_id: int) -> None:
    gating.gate_execute(job_id=job_id, worker=self.request.hostname or "")


@shared_task(bind=True, name="evaluation.tasks.leaderboard", acks_late=True, soft_time_limit=LEADERBOARD_TIME_LIMIT_S, time_limit=LEADERBOARD_TIME_LIMIT_S + 120)
def leaderboard(self, job_id: int) -> None:
    # The service records any failure on the leaderboard's job.
    leaderboards.leaderboard_execute(job_id=job_id, worker=self.request.hostname or "")
