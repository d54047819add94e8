"""The stale sweep, on a beat schedule and when a worker starts (what it held died with its previous life)."""
from __future__ import annotations

import logging

from celery import shared_task
from celery.signals import worker_ready

from jobs import runner

logger = logging.getLogger("lexique.jobs")


@shared_task(name="jobs.tasks.sweep_stale_jobs", soft_time_limit=60)
def sweep_stale_jobs() -> int:
    return runner.jobs_sweep_stale()


@worker_ready.connect
def _sweep_jobs_of_restarted_worker(sender=None, **kwargs) -> None:
    hostname = getattr(sender, "hostname", None)
    if hostname and (count := runner.jobs_sweep_stale(worker=hostname)):
        logger.warning("Swept %s job(s) of %s after its restart", count, hostname)
