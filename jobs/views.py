"""The maintainers' page of background jobs: every kind in one list, filtered by kind and status."""
from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from config.roles import MAINTAINER, role_required
from jobs import kinds, selectors
from jobs.models import Job

PAGE_SIZE = 200


@require_GET
@role_required(MAINTAINER)
def job_list(request: HttpRequest) -> HttpResponse:
    kind = request.GET.get("kind", "")
    status = request.GET.get("status", "")
    known = {item.name for item in kinds.all_kinds()}
    kind = kind if kind in known else ""
    status = status if status in Job.Status.values else ""
    jobs = list(selectors.job_list(kind=kind, status=status)[:PAGE_SIZE])
    rows = [{"job": job, "url": selectors.job_url(job)} for job in jobs]
    context = {
        "rows": rows,
        "kind": kind,
        "status": status,
        "kinds": sorted(((item.name, str(item.label)) for item in kinds.all_kinds()), key=lambda pair: pair[1]),
        "statuses": Job.Status.choices,
    }
    return render(request, "jobs/job_list.html", context)
