"""Training pages: runs with live progress, the retrain button, the configuration, and negative screening."""
from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.files.storage import storages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST
from django_celery_beat.models import PeriodicTask

from config.roles import EXPERT, MAINTAINER, role_required
from training import pipeline, selectors, services
from training import workbench
from training.forms import RetrainForm, TrainingConfigForm
from training.models import DataSnapshot, NegativeCandidate, TrainingRun


@require_GET
def run_list(request: HttpRequest) -> HttpResponse:
    config = services.training_config_default_get()
    material = selectors.new_material_count()
    context = {
        "runs": selectors.training_run_list()[:50],
        "active": selectors.active_run_get(),
        "form": RetrainForm(default_config=config),
        "material": material,
        "threshold": config.min_new_material,
        "missing": max(0, config.min_new_material - material["total"]),
        "schedules": PeriodicTask.objects.filter(task__startswith="training.tasks.").select_related("crontab", "interval"),
        "pending_screening": selectors.screening_queue().count(),
        # Experts' decisions that do not count yet: waiting for other experts, or for an adjudicator.
        "pending": workbench.pending_decision_counts(),
    }
    return render(request, "training/run_list.html", context)


@require_POST
@role_required(MAINTAINER)
def run_create(request: HttpRequest) -> HttpResponse:
    form = RetrainForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Invalid parameters: %(e)s") % {"e": form.errors.as_text()})
        return redirect("training:run-list")
    try:
        run = services.training_run_request(user=request.user, trigger=TrainingRun.Trigger.BUTTON, config=form.cleaned_data["config"], overrides=form.overrides())
    except services.TrainingAlreadyRunning as error:
        messages.warning(request, error.messages[0])
        return redirect("training:run-detail", run_id=error.run.pk)
    messages.success(request, _("Training run no. %(id)s requested.") % {"id": run.pk})
    return redirect("training:run-detail", run_id=run.pk)


def _run_or_404(run_id: int) -> TrainingRun:
    try:
        return selectors.training_run_get(run_id=run_id)
    except TrainingRun.DoesNotExist:
        raise Http404(_("This training run does not exist.")) from None


@require_GET
def run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    run = _run_or_404(run_id)
    template = "training/_run_progress.html" if request.htmx else "training/run_detail.html"
    return render(request, template, {"run": run, "no_worker": pipeline.no_worker_warning(run)})


@require_POST
@role_required(MAINTAINER)
def run_cancel(request: HttpRequest, run_id: int) -> HttpResponse:
    run = _run_or_404(run_id)
    try:
        services.training_run_cancel(run=run, user=request.user)
        messages.info(request, _("Cancellation requested."))
    except ValidationError as error:
        messages.error(request, error.messages[0])
    return redirect("training:run-detail", run_id=run.pk)


@require_GET
def snapshot_download(request: HttpRequest, snapshot_id: int) -> FileResponse:
    snapshot = get_object_or_404(DataSnapshot, pk=snapshot_id)
    if not snapshot.artifact_path:
        raise Http404(_("This snapshot has no file."))
    handle = storages["artifacts"].open(snapshot.artifact_path, "rb")
    return FileResponse(handle, as_attachment=True, filename=f"training-data-{snapshot.content_hash[:12]}.jsonl", content_type="application/x-ndjson")


@role_required(MAINTAINER)
def config_edit(request: HttpRequest) -> HttpResponse:
    config = services.training_config_default_get()
    form = TrainingConfigForm(request.POST or None, instance=config)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, _("Configuration saved."))
        return redirect("training:run-list")
    return render(request, "training/config_form.html", {"form": form})


@require_GET
def screening_list(request: HttpRequest) -> HttpResponse:
    candidates = selectors.screening_queue(domain=request.GET.get("domain") or None)[:50]
    return render(request, "training/screening_list.html", {"candidates": candidates})


@require_POST
@role_required(EXPERT)
def screening_decide(request: HttpRequest, candidate_id: int) -> HttpResponse:
    candidate = get_object_or_404(NegativeCandidate, pk=candidate_id)
    try:
        candidate = services.screening_decide(candidate=candidate, decision=request.POST.get("decision", ""), user=request.user)
        message, status = _("Decision saved: %(d)s.") % {"d": candidate.get_decision_display()}, 200
    except ValidationError as error:
        message, status = error.messages[0], 409
    if request.htmx:
        return render(request, "training/_screening_done.html", {"candidate": candidate, "message": message}, status=status)
    (messages.success if status == 200 else messages.error)(request, message)
    return redirect("training:screening")
