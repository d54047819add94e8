"""Background jobs of the glossary: each loads its row and calls one service."""
from __future__ import annotations

from celery import shared_task
from django.conf import settings

from glossary import pending_uploads
from glossary.import_jobs import import_batch_run


# Soft limit: the import fails cleanly with a reason on its job (its transaction rolled back); hard limit
# a minute later if it does not stop. The reader also runs under a memory cap (glossary.import_jobs).
@shared_task(bind=True, acks_late=True, soft_time_limit=settings.IMPORT_TIME_LIMIT_SECONDS, time_limit=settings.IMPORT_TIME_LIMIT_SECONDS + 60)
def import_run(self, batch_id: int) -> None:
    """Run a queued import or preview; ``import_batch_run`` records success or failure on the batch's job."""
    import_batch_run(batch_id=batch_id, worker=self.request.hostname or "")


@shared_task(name="glossary.tasks.delete_forgotten_uploads", soft_time_limit=60)
def delete_forgotten_uploads() -> int:
    return pending_uploads.delete_forgotten()
