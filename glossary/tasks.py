"""Background jobs of the glossary: each loads its row and calls one service."""
from __future__ import annotations

from celery import shared_task

from glossary.imports import import_batch_run

# An import of the largest allowed file takes well under a minute; the limit catches a stuck worker.
IMPORT_TIME_LIMIT_SECONDS = 15 * 60


@shared_task(time_limit=IMPORT_TIME_LIMIT_SECONDS)
def import_run(batch_id: int) -> None:
    """Run a queued import; ``import_batch_run`` records success or failure on the ImportBatch."""
    import_batch_run(batch_id=batch_id)
