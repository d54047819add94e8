"""Celery tasks of the evaluation capability (queue ``training``, next to the runs they judge)."""
from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from celery.signals import worker_ready

from evaluation import services

# Encoding the test set with a large model on CPU, plus the champion's re-evaluation, takes minutes.
EVALUATION_TIME_LIMIT_S = 2 * 3600


logger = logging.getLogger("lexique.evaluation")


@shared_task(bind=True, name="evaluation.tasks.evaluate", acks_late=True, soft_time_limit=EVALUATION_TIME_LIMIT_S, time_limit=EVALUATION_TIME_LIMIT_S + 120)
def evaluate(self, run_id: int) -> None:
    # The service records any failure on the run (and on the training run it closes).
    services.evaluation_run_execute(run_id=run_id, worker=self.request.hostname or "")


@shared_task(name="evaluation.tasks.fail_stale_evaluations", soft_time_limit=60)
def fail_stale_evaluations() -> int:
    return services.evaluation_runs_fail_stale(older_than=timedelta(seconds=EVALUATION_TIME_LIMIT_S + 600))


@worker_ready.connect
def _fail_evaluations_of_restarted_worker(sender=None, **kwargs) -> None:
    """A worker that starts again cannot still be running the evaluations it held: they died with it."""
    hostname = getattr(sender, "hostname", None)
    if hostname and (count := services.evaluation_runs_fail_stale(worker=hostname)):
        logger.warning("Marked %s evaluation(s) of %s as failed after its restart", count, hostname)
