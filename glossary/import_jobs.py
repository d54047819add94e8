"""The worker side of imports: run a queued import or preview within a memory cap, restart a batch whose
previous attempt died, and sweep batches left running by a dead worker (like training's stale runs).

An import writes in one transaction, so an attempt that died wrote nothing: running it again is safe. Each
attempt claims the batch (``attempts`` + 1) and writes only while the batch is still its own.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from datetime import timedelta

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.files.storage import storages
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from glossary import imports
from glossary.models import ImportBatch

logger = logging.getLogger(__name__)

# A batch redelivered this many times (its worker died each time) is failed rather than tried again.
MAX_ATTEMPTS = 3


class _Superseded(Exception):
    """Another attempt took the batch over (a redelivered message): this one writes nothing."""


def stale_after() -> timedelta:
    """A running batch older than this has no live worker: the task's hard time limit would have stopped it."""
    return timedelta(seconds=settings.IMPORT_TIME_LIMIT_SECONDS + 120)


def import_batch_run(*, batch_id: int, worker: str = "") -> ImportBatch:
    """Run a queued import or preview (what the worker does); a failure is recorded on the batch."""
    batch = ImportBatch.objects.select_related("created_by").get(pk=batch_id)
    if batch.status not in (ImportBatch.Status.QUEUED, ImportBatch.Status.RUNNING):
        # A message delivered twice (late acknowledgement) must not run a finished import again.
        logger.warning("Import batch %s is %s: not run again", batch_id, batch.status)
        return batch
    if batch.status == ImportBatch.Status.RUNNING:
        logger.warning("Import batch %s was running when its message came back: its worker died; restarting it", batch_id)
    if batch.attempts >= MAX_ATTEMPTS:
        imports._finish(batch, status=ImportBatch.Status.FAILED, report=None, error=_interrupted_reason(batch.attempts))
        return batch
    claimed = ImportBatch.objects.filter(pk=batch.pk, status=batch.status, attempts=batch.attempts).update(
        status=ImportBatch.Status.RUNNING, attempts=F("attempts") + 1, started_at=timezone.now(), worker=worker[:200],
    )
    if not claimed:
        logger.warning("Import batch %s was claimed by another attempt meanwhile", batch_id)
        return batch
    batch.refresh_from_db()
    attempt = batch.attempts
    try:
        with storages["artifacts"].open(batch.stored_path, "rb") as stored:
            content = stored.read()
        imports.check_file(content=content, file_format=batch.file_format)
        options = imports.ImportOptions.from_dict(batch.options)
        with memory_cap(settings.IMPORT_WORKER_MEMORY_BYTES):
            imports.run_import(
                content=content, file_name=batch.file_name, file_format=batch.file_format, options=options,
                user=batch.created_by, batch=batch, still_mine=lambda current: _check_still_mine(current.pk, attempt),
            )
    except _Superseded:
        logger.warning("Import batch %s attempt %s gave way to a later attempt", batch_id, attempt)
    except imports.ImportRefused as refusal:
        _fail(batch, attempt, str(refusal))
    except SoftTimeLimitExceeded:
        _fail(batch, attempt, _("L'import a dépassé %(minutes)s minutes : rien n'a été importé ; découpez le fichier.")
              % {"minutes": settings.IMPORT_TIME_LIMIT_SECONDS // 60})
    except MemoryError:
        _fail(batch, attempt, _("Le fichier demande trop de mémoire pour être lu (plus de %(max)s Mo) : découpez-le.")
              % {"max": settings.IMPORT_WORKER_MEMORY_BYTES // (1024 * 1024)})
    except Exception:
        logger.exception("Import batch %s failed", batch_id)
        _fail(batch, attempt, _("Erreur inattendue pendant l'import : voir le journal du serveur."))
    batch.refresh_from_db()
    return batch


def _check_still_mine(batch_id: int, attempt: int) -> None:
    """Inside the writing transaction: lock the batch and give up when a later attempt claimed it."""
    current = ImportBatch.objects.select_for_update().only("attempts", "status").get(pk=batch_id)
    if current.attempts != attempt or current.status != ImportBatch.Status.RUNNING:
        raise _Superseded()


def _fail(batch: ImportBatch, attempt: int, error: str) -> None:
    # Only the attempt that holds the batch records its end (a later attempt may have taken it over).
    batch.refresh_from_db()
    if batch.attempts == attempt and batch.status == ImportBatch.Status.RUNNING:
        imports._finish(batch, status=ImportBatch.Status.FAILED, report=None, error=error)


def _interrupted_reason(attempts: int) -> str:
    return _("L'import a été interrompu %(count)s fois (le worker s'est arrêté) : rien n'a été importé ; relancez-le ou découpez le fichier.") % {"count": attempts}


def import_batches_fail_stale(*, worker: str | None = None) -> int:
    """Fail running batches whose worker is gone: those of ``worker`` when it starts again, else those
    running for longer than the task's time limit allows. Their transaction died with them: nothing was written."""
    stale = ImportBatch.objects.filter(status=ImportBatch.Status.RUNNING)
    if worker:
        stale = stale.filter(worker=worker)
        reason = _("Le worker %(worker)s a redémarré pendant l'import : rien n'a été importé ; relancez l'import.") % {"worker": worker}
    else:
        stale = stale.filter(started_at__lt=timezone.now() - stale_after())
        reason = _("L'import ne donne plus signe de vie depuis %(minutes)s minutes (worker arrêté) : rien n'a été importé ; relancez l'import.") % {
            "minutes": int(stale_after().total_seconds() // 60)
        }
    return stale.update(status=ImportBatch.Status.FAILED, error=reason, finished_at=timezone.now())


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
