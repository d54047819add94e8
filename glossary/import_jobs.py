"""The worker side of imports (a job of kind ``import``): run a queued import or preview within a memory cap
and a time limit. The job's claim, its restart when its worker died and the stale sweep are jobs.runner's.

An import writes in one transaction, so an attempt that died wrote nothing: running it again is safe (the kind
is restartable). An attempt writes only while it still holds the job (``runner.job_hold``).
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from datetime import timedelta

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.files.storage import storages
from django.urls import reverse
from django.utils.translation import gettext_noop

from config.stored_messages import stored
from glossary import imports
from glossary.models import ImportBatch
from jobs import runner
from jobs.models import Job

logger = logging.getLogger(__name__)


def stale_after() -> timedelta:
    """A running import older than this has no live worker: the task's hard time limit would have stopped it."""
    return timedelta(seconds=settings.IMPORT_TIME_LIMIT_SECONDS + 120)


def import_send(job: Job) -> str:
    from glossary.tasks import import_run

    return import_run.delay(job.import_batch.pk).id


def import_url(job: Job) -> str | None:
    """The batch's page; a worker preview's job once the user confirmed its import has none (the batch moved on)."""
    batch_id = ImportBatch.objects.filter(job=job).values_list("pk", flat=True).first()
    return reverse("glossary:import-detail", args=[batch_id]) if batch_id else None


def import_batch_run(*, batch_id: int, worker: str = "") -> ImportBatch:
    """Run a queued import or preview (what the worker does), once: the job is claimed atomically, and a failure
    is recorded on it with the reason."""
    batch = ImportBatch.objects.select_related("created_by", "job").get(pk=batch_id)
    if not runner.job_claim(job=batch.job, worker=worker):
        return batch
    try:
        with storages["artifacts"].open(batch.stored_path, "rb") as stored_file:
            content = stored_file.read()
        imports.check_file(content=content, file_format=batch.file_format)
        options = imports.ImportOptions.from_dict(batch.options)
        with memory_cap(settings.IMPORT_WORKER_MEMORY_BYTES):
            imports.run_import(
                content=content, file_name=batch.file_name, file_format=batch.file_format, options=options,
                user=batch.created_by, batch=batch,
            )
    except runner.JobSuperseded:
        logger.warning("Import batch %s: attempt %s gave way to a later one", batch_id, batch.job.attempts)
    except imports.ImportRefused as refusal:
        _fail(batch, str(refusal))
    except SoftTimeLimitExceeded:
        _fail(batch, stored(gettext_noop("The import took more than %(minutes)s minutes: nothing was imported; split the file."),
                            minutes=settings.IMPORT_TIME_LIMIT_SECONDS // 60))
    except MemoryError:
        _fail(batch, stored(gettext_noop("Reading the file needs too much memory (over %(max)s MB): split it."),
                            max=settings.IMPORT_WORKER_MEMORY_BYTES // (1024 * 1024)))
    except Exception:
        logger.exception("Import batch %s failed", batch_id)
        _fail(batch, stored(gettext_noop("Unexpected error during the import: see the server log.")))
    batch.refresh_from_db()
    return batch


def _fail(batch: ImportBatch, error: str) -> None:
    try:
        imports._finish(batch, report=None, error=error)
    except runner.JobSuperseded:
        logger.warning("Import batch %s: a later attempt holds it, its failure is not recorded: %s", batch.pk, error)


@contextmanager
def memory_cap(extra_bytes: int):
    """Lower this process's address-space limit to what it uses now plus ``extra_bytes``, for the block only:
    a hostile file then raises MemoryError in the worker instead of taking the machine's memory."""
    try:
        import resource
    except ImportError:  # not on this platform: the readers' own limits still bound the work
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    try:
        with open("/proc/self/statm") as statm:
            in_use = int(statm.read().split()[0]) * resource.getpagesize()
    except OSError:
        yield
        return
    cap = in_use + extra_bytes
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    if soft != resource.RLIM_INFINITY and soft <= cap:
        yield
        return
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
