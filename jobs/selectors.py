"""Reads of background jobs."""
from __future__ import annotations

from django.db.models import QuerySet

from jobs import kinds
from jobs.models import Job


def job_list(*, kind: str = "", status: str = "") -> QuerySet[Job]:
    jobs = Job.objects.select_related("requested_by").order_by("-created_at", "-pk")
    if kind:
        jobs = jobs.filter(kind=kind)
    if status:
        jobs = jobs.filter(status=status)
    return jobs


def job_url(job: Job) -> str | None:
    """The page of the job's own kind (a training run, an evaluation...), when it has one."""
    try:
        url = kinds.get(job.kind).url
    except KeyError:
        return None
    return url(job) if url else None


def job_chain(job: Job) -> list[Job]:
    """The job and the steps it started, in order (a pipeline: train -> evaluate -> gate -> promote)."""
    chain = [job]
    seen = {job.pk}
    while True:
        following = Job.objects.filter(parent=chain[-1]).order_by("created_at", "pk").first()
        if following is None or following.pk in seen:
            return chain
        seen.add(following.pk)
        chain.append(following)
