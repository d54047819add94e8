"""The one implementation of background-job plumbing: create, enqueue on commit (failing the job when the broker
is down), an atomic claim, heartbeat, log, finish, cancel, and the stale sweep. Every kind uses it."""
from __future__ import annotations

import logging
import socket
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import F, Q, TextField, Value
from django.db.models.functions import Coalesce, Concat
from django.utils import timezone
from django.utils.translation import gettext as _, gettext_noop

from config.errors import Conflict
from config.stored_messages import english, stored
from jobs import kinds
from jobs.models import Job

logger = logging.getLogger("lexique.jobs")


class JobSuperseded(Exception):
    """This attempt no longer holds its job: it was taken for dead (swept, restarted) or ended meanwhile."""


class JobLocked(Exception):
    """Another active job holds this job's single-flight key."""

    def __init__(self, job: Job):
        self.job = job
        super().__init__(f"{job.kind} {job.pk} holds the lock {job.lock}")


def job_create(*, kind: str, requested_by=None, parent: Job | None = None, lock: str | None = None, params: dict | None = None) -> Job:
    """A queued job. With ``lock``, raise ``JobLocked`` (carrying the active job) when one already holds it."""
    kinds.get(kind)  # an unknown kind is a programming error: fail here, not in a worker
    user = requested_by if getattr(requested_by, "is_authenticated", False) else None
    try:
        with transaction.atomic():
            return Job.objects.create(kind=kind, requested_by=user, parent=parent, lock=lock, params=params or {})
    except IntegrityError:
        holder = Job.objects.filter(lock=lock).first() if lock else None
        if holder is None:
            if lock is None:
                raise
            return job_create(kind=kind, requested_by=requested_by, parent=parent, lock=lock, params=params)  # it ended meanwhile
        raise JobLocked(holder) from None


def enqueue_on_commit(job: Job) -> None:
    """Send the job's message once the current transaction commits (a worker must see the rows)."""
    job_id = job.pk
    transaction.on_commit(lambda: job_send(job_id=job_id))


def job_send(*, job_id: int) -> bool:
    """Put the job on the broker now; when the broker is down, the job fails with the reason (never left queued)."""
    job = Job.objects.get(pk=job_id)
    try:
        task_id = kinds.get(job.kind).send(job)
    except Exception as error:
        logger.exception("Could not enqueue %s job %s", job.kind, job.pk)
        job_fail(job=job, error=stored(gettext_noop("Queue unavailable: %(error)s"), error=error))
        return False
    Job.objects.filter(pk=job_id).update(task_id=task_id or "")
    return True


def current_worker() -> str:
    return f"{socket.gethostname()}:{__import__('os').getpid()}"


def job_claim(*, job: Job, worker: str = "") -> bool:
    """Take a queued job for this worker, atomically: of two deliveries of the same message, one runs it.

    A message delivered again while the job is running is a duplicate (ignored, and said in the job's log)
    unless the job's heartbeat is stale: then its worker died, and the job is restarted (restartable kinds) or
    failed with the reason; never skipped in silence.
    """
    worker = worker or current_worker()
    now = timezone.now()
    claimed = Job.objects.filter(pk=job.pk, status=Job.Status.QUEUED).update(
        status=Job.Status.RUNNING, worker=worker, started_at=now, heartbeat_at=now, attempts=F("attempts") + 1
    )
    job.refresh_from_db()
    if claimed:
        return True
    if job.status == Job.Status.RUNNING and _is_stale(job, now):
        reason = stored(gettext_noop("Message received again: worker %(worker)s has stopped giving signs of life."), worker=job.worker)
        if _restart_or_fail(job, reason=reason, resend=False):
            return job_claim(job=job, worker=worker)
        return False
    job_log(job=job, message=stored(gettext_noop("Message received again while the job is %(status)s: ignored."), status=Job.Status(job.status).label))
    logger.info("%s job %s is %s: duplicate message ignored", job.kind, job.pk, job.status)
    return False


def job_hold(*, job: Job) -> None:
    """Inside the transaction that writes a job's results: lock the job's row and raise ``JobSuperseded`` unless
    this attempt (the one ``job_claim`` gave ``job``) still runs it. A worker taken for dead that comes back then
    rolls back instead of writing over the attempt that replaced it."""
    current = Job.objects.select_for_update().only("status", "attempts").get(pk=job.pk)
    if current.status != Job.Status.RUNNING or current.attempts != job.attempts:
        raise JobSuperseded(f"{job.kind} {job.pk}: attempt {job.attempts} superseded ({current.status}, attempt {current.attempts})")


def _is_stale(job: Job, now: datetime) -> bool:
    last = job.heartbeat_at or job.started_at or job.created_at
    return last < now - kinds.get(job.kind).stale_after


def job_heartbeat(*, job: Job, step: int | None = None, total: int | None = None) -> None:
    fields: dict = {"heartbeat_at": timezone.now()}
    if step is not None:
        fields["progress_step"] = job.progress_step = step
    if total is not None:
        fields["progress_total"] = job.progress_total = total
    job.heartbeat_at = fields["heartbeat_at"]
    Job.objects.filter(pk=job.pk).update(**fields)


def job_log(*, job: Job, message: str) -> None:
    """Append a timestamped line to the job's log (one UPDATE: concurrent writers never lose a line)."""
    # Local time, like every other time the pages show (one clock: settings.TIME_ZONE).
    line = f"[{timezone.localtime():%Y-%m-%d %H:%M:%S}] {message}\n"
    job.log = (job.log or "") + line
    Job.objects.filter(pk=job.pk).update(
        log=Concat(Coalesce(F("log"), Value(""), output_field=TextField()), Value(line), output_field=TextField()),
        heartbeat_at=timezone.now(),
    )
    logger.info("%s job %s: %s", job.kind, job.pk, english(message))


def _finish(job: Job, status: str, *, error: str = "", call_on_failed: bool = True) -> bool:
    """Terminal transition, once: a job already finished is never overwritten. Releases its lock."""
    now = timezone.now()
    done = Job.objects.filter(pk=job.pk, status__in=Job.ACTIVE).update(status=status, error=error, finished_at=now, heartbeat_at=now, lock=None)
    job.refresh_from_db()
    if not done:
        return False
    if error:
        job_log(job=job, message=stored(gettext_noop("Failed: %(error)s"), error=error) if status == Job.Status.FAILED else error)
    hook = kinds.get(job.kind).on_failed
    if status != Job.Status.SUCCEEDED and call_on_failed and hook is not None:
        try:
            hook(job)
        except Exception:
            logger.exception("on_failed of %s job %s failed", job.kind, job.pk)
    return True


def job_succeed(*, job: Job, message: str = "") -> bool:
    if message:
        job_log(job=job, message=message)
    return _finish(job, Job.Status.SUCCEEDED)


def job_fail(*, job: Job, error: str, call_on_failed: bool = True) -> bool:
    return _finish(job, Job.Status.FAILED, error=error, call_on_failed=call_on_failed)


def job_cancelled(*, job: Job, message: str) -> bool:
    return _finish(job, Job.Status.CANCELLED, error=message)


def job_cancel(*, job: Job, user=None) -> Job:
    """A queued job is cancelled now; a running one is asked to stop (its code checks ``cancel_requested``)."""
    job.refresh_from_db()
    if not job.is_active:
        raise Conflict(_("This job has already finished."), code="finished")
    if Job.objects.filter(pk=job.pk, status=Job.Status.QUEUED).update(cancel_requested=True):
        job_cancelled(job=job, message=stored(gettext_noop("Cancelled by %(user)s before it started."), user=user))
        return job
    Job.objects.filter(pk=job.pk).update(cancel_requested=True)
    job_log(job=job, message=stored(gettext_noop("Cancellation requested by %(user)s."), user=user))
    job.refresh_from_db()
    return job


def cancel_requested(*, job: Job) -> bool:
    return Job.objects.filter(pk=job.pk, cancel_requested=True).exists()


def _restart_or_fail(job: Job, *, reason: str, resend: bool = True) -> bool:
    """A job whose worker died: restartable kinds go back to the queue (and are sent again), others fail."""
    kind = kinds.get(job.kind)
    if kind.restartable and job.attempts < kind.max_attempts and not job.cancel_requested:
        requeued = Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING, worker=job.worker).update(
            status=Job.Status.QUEUED, worker="", heartbeat_at=None
        )
        if requeued:
            job.refresh_from_db()
            job_log(job=job, message=stored(gettext_noop("%(reason)s Restarted."), reason=reason))
            if resend:
                enqueue_on_commit(job)
            return True
        return False
    job_fail(job=job, error=reason)
    return False


def jobs_sweep_stale(*, worker: str | None = None) -> int:
    """The one stale sweep: running jobs whose heartbeat is older than their kind's limit, or (at a worker's
    start) the jobs that worker held. Each is restarted (restartable kinds) or failed with the reason."""
    now = timezone.now()
    running = Job.objects.filter(status=Job.Status.RUNNING)
    if worker:
        # Celery names a worker ``celery@host``; a job records it, or ``host:pid`` when a command ran it.
        candidates = list(running.filter(Q(worker=worker) | Q(worker__startswith=f"{worker}:")))
    else:
        candidates = [job for job in running if job.kind in {k.name for k in kinds.all_kinds()} and _is_stale(job, now)]
    count = 0
    for job in candidates:
        if worker:
            reason = stored(gettext_noop("Worker %(worker)s restarted during the job."), worker=worker)
        else:
            minutes = int(kinds.get(job.kind).stale_after.total_seconds() // 60)
            reason = stored(gettext_noop("Worker %(worker)s has given no sign of life for %(minutes)s minutes."), worker=job.worker, minutes=minutes)
        _restart_or_fail(job, reason=reason)
        count += 1
    return count
