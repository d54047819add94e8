"""Celery tasks of the training capability (queue ``training``): thin wrappers over the services."""
from __future__ import annotations

import logging

from celery import shared_task
from celery.signals import worker_ready

from training import services, workbench
from training.models import QueueRefresh

logger = logging.getLogger("lexique.training")

# One full cycle on the Bercy train split takes minutes on CPU; a runaway run is stopped after this.
RUN_TIME_LIMIT_S = 4 * 3600


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=False, soft_time_limit=RUN_TIME_LIMIT_S, time_limit=RUN_TIME_LIMIT_S + 120)
def run_training(self, run_id: int) -> None:
    services.training_run_execute(run_id=run_id, worker=self.request.hostname or "")


@shared_task(soft_time_limit=120)
def scheduled_retrain() -> int | None:
    run = services.scheduled_retrain()
    return run.pk if run else None


@shared_task(soft_time_limit=60)
def fail_stale_runs() -> int:
    return services.training_runs_fail_stale()


@shared_task(soft_time_limit=900, time_limit=960)
def refresh_review_queue(refresh_id: int) -> str:
    return workbench.review_queue_refresh_execute(refresh_id=refresh_id).status


@shared_task(soft_time_limit=60)
def refresh_review_queue_if_due() -> int | None:
    if not workbench.review_queue_refresh_due():
        return None
    return workbench.review_queue_refresh_request(trigger=QueueRefresh.Trigger.SCHEDULE).pk


@worker_ready.connect
def _fail_runs_of_restarted_worker(sender=None, **kwargs) -> None:
    """A worker that starts again cannot still be running the runs it held: they died with it."""
    hostname = getattr(sender, "hostname", None)
    if hostname:
        count = services.training_runs_fail_stale(worker=hostname)
        if count:
            logger.warning("Marked %s training run(s) of %s as failed after its restart", count, hostname)
