"""Background jobs of the glossary: each loads its row and calls one service."""
from __future__ import annotations

import logging

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings

from glossary.import_jobs import import_batch_run, import_batches_fail_stale

logger = logging.getLogger(__name__)


# Soft limit: the import fails cleanly with a reason on its batch (its transaction rolled back); hard limit
# a minute later if it does not stop. The reader also runs under a memory cap (glossary.import_jobs).
@shared_task(bind=True, acks_late=True, soft_time_limit=settings.IMPORT_TIME_LIMIT_SECONDS, time_limit=settings.IMPORT_TIME_LIMIT_SECONDS + 60)
def import_run(self, batch_id: int) -> None:
    """Run a queued import or preview; ``import_batch_run`` records success or failure on the ImportBatch."""
    import_batch_run(batch_id=batch_id, worker=self.request.hostname or "")


@shared_task(name="glossary.tasks.fail_stale_imports", soft_time_limit=60)
def fail_stale_imports() -> int:
    from glossary import pending_uploads

    pending_uploads.delete_forgotten()
    return import_batches_fail_stale()


@worker_ready.connect
def _fail_imports_of_restarted_worker(sender=None, **kwargs) -> None:
    """A worker that starts again cannot still be running the imports it held: they died with it."""
    hostname = getattr(sender, "hostname", None)
    if hostname and (count := import_batches_fail_stale(worker=hostname)):
        logger.warning("Marked %s import batch(es) of %s as failed after its restart", count, hostname)
