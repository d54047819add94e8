"""Celery tasks of the training capability (queue ``training``): thin wrappers over the services."""
from __future__ import annotations

import logging

from celery import shared_task
from celery.signals import worker_ready

from training import pipeline, runs, services, workbench
from training.models import QueueRefresh

logger = logging.getLogger("lexique.training")

# One full cycle on the Bercy train split takes minutes on CPU; a runaway run is stopped after this.
RUN_TIME_LIMIT_S = 4 * 3600
PROMOTION_TIME_LIMIT_S = 3 * 3600


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=False, soft_time_limit=RUN_TIME_LIMIT_S, time_limit=RUN_TIME_LIMIT_S + 120)
def run_training(self, run_id: int) -> None:
    runs.training_run_execute(run_id=run_id, worker=self.request.hostname or "")


@shared_task(bind=True, acks_late=True, soft_time_limit=PROMOTION_TIME_LIMIT_S, time_limit=PROMOTION_TIME_LIMIT_S + 300)
def promote_version(self, job_id: int) -> None:
    pipeline.promotion_execute(job_id=job_id, worker=self.request.hostname or "")


@shared_task(soft_time_limit=120)
def scheduled_retrain() -> int | None:
    run = services.scheduled_retrain()
    return run.pk if run else None


@shared_task(bind=True, soft_time_limit=900, time_limit=960)
def refresh_review_queue(self, refresh_id: int) -> str:
    return workbench.review_queue_refresh_execute(refresh_id=refresh_id, worker=self.request.hostname or "").job.status


@shared_task(soft_time_limit=60)
def refresh_review_queue_if_due() -> int | None:
    if not workbench.review_queue_refresh_due():
        return None
    return workbench.review_queue_refresh_request(trigger=QueueRefresh.Trigger.SCHEDULE).pk


@worker_ready.connect
def _remove_orphan_workdirs(sender=None, **kwargs) -> None:
    """Work folders of runs that died with a previous life of this worker (the jobs app sweeps the jobs)."""
    if removed := runs.training_workdirs_sweep():
        logger.warning("Removed %s orphan training work folder(s)", removed)
