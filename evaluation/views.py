"""Evaluation pages: model versions (promote, roll back, evaluate), report per version, history, leaderboard."""
from __future__ import annotations

import csv
import tempfile
from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from config.roles import MAINTAINER, has_role, role_required
from evaluation import charts, selectors
from evaluation import runs as evaluation_runs
from evaluation import leaderboard as leaderboards
from evaluation.models import EvaluationRun
from evaluation.gate_records import gate_of
from evaluation.reports import HIT_AT_1, MRR_AT_10, REPORT_METRICS, Column, EvaluationReport, metric_labels, protocol_label
from retrieval import selectors as retrieval_selectors
from retrieval import encoding
from retrieval.models import ModelVersion

# The champions' metrics over time, and the leaderboard's columns (for each mode).
HISTORY_COLUMNS = (Column("def_only", MRR_AT_10), Column("def_only", HIT_AT_1), Column("concept", HIT_AT_1))
LEADERBOARD_COLUMNS = (Column("def_only", HIT_AT_1), Column("def_only", MRR_AT_10), Column("concept", HIT_AT_1))
LEADERBOARD_PRIMARY = Column("def_only", MRR_AT_10)


def _version_or_404(version_id: int) -> ModelVersion:
    try:
        return retrieval_selectors.model_version_get(ref=f"id:{version_id}")
    except ModelVersion.DoesNotExist:
        raise Http404(_("This version does not exist.")) from None


@require_GET
def version_list(request: HttpRequest) -> HttpResponse:
    context = {
        "rows": selectors.version_rows(),
        "previous_champion": retrieval_selectors.previous_champion_get(),
        "columns": selectors.KEY_COLUMNS,
        "delta_columns": selectors.DELTA_COLUMNS,
    }
    return render(request, "evaluation/version_list.html", context)


@require_POST
@role_required(MAINTAINER)
def version_promote(request: HttpRequest, version_id: int) -> HttpResponse:
    version = _version_or_404(version_id)
    try:
        evaluation_runs.version_promote_request(version=version, user=request.user, reason=request.POST.get("reason", ""))
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, _("Promotion of %(v)s requested: it will serve as soon as its index is built.") % {"v": version})
    return redirect("evaluation:version-list")


@role_required(MAINTAINER)
def version_rollback(request: HttpRequest) -> HttpResponse:
    """GET: the confirmation (what will serve again, and why); POST: the rollback."""
    previous = retrieval_selectors.previous_champion_get()
    if request.method == "POST":
        try:
            restored = evaluation_runs.version_rollback_request(user=request.user, reason=request.POST.get("reason", ""))
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
            if previous is not None:
                return redirect("evaluation:version-rollback")
        else:
            messages.success(request, _("Rollback to %(v)s requested: it will serve as soon as its index is rebuilt.") % {"v": restored})
        return redirect("evaluation:version-list")
    context = {"champion": retrieval_selectors.champion_version_get(), "previous": previous}
    return render(request, "evaluation/rollback_confirm.html", context)


@require_POST
@role_required(MAINTAINER)
def version_evaluate(request: HttpRequest, version_id: int) -> HttpResponse:
    version = _version_or_404(version_id)
    if selectors.active_evaluation(version=version):
        messages.info(request, _("An evaluation of %(v)s is already running.") % {"v": version})
    else:
        evaluation_runs.evaluation_run_request(version=version, user=request.user)
        messages.success(request, _("Evaluation of %(v)s requested.") % {"v": version})
    return redirect("evaluation:version-list")


def _report_run(request: HttpRequest, version: ModelVersion) -> EvaluationRun:
    """The evaluation asked for (?run=ID) or the version's latest succeeded one."""
    run_id = request.GET.get("run")
    if run_id:
        run = selectors.evaluation_run_list(version=version).filter(pk=run_id if run_id.isdigit() else 0).first()
    else:
        run = selectors.latest_evaluation(version=version)
    if run is None:
        raise Http404(_("No successful evaluation of this version."))
    return run


def _metric_series(report: EvaluationReport, mode: str, breakdown: str) -> dict[str, float]:
    """Def-only MRR@10 per group of ``breakdown`` ("by_domain", "by_kind") in ``mode``."""
    protocol = report[mode].protocols.get("def_only") if mode in report else None
    return protocol.group_metric(breakdown, MRR_AT_10) if protocol else {}


def _report_charts(run: EvaluationRun, report: EvaluationReport, reference: EvaluationRun | None) -> list[str]:
    """Server-side SVG charts of the report (labels escaped by ``evaluation.charts``)."""
    mode = "dense" if "dense" in report else next(iter(report.modes))
    reference_report = EvaluationReport.from_dict(reference.report) if reference is not None else None
    this_name = run.version.display_name
    svgs = []
    for breakdown, title in (("by_domain", _("Def-only MRR@10 by domain")), ("by_kind", _("Def-only MRR@10 by kind"))):
        series = {this_name: _metric_series(report, mode, breakdown)}
        if reference_report is not None and mode in reference_report:
            series[reference.version.display_name] = _metric_series(reference_report, mode, breakdown)
        if any(series.values()):
            svgs.append(charts.bar_chart(series, f"{title} ({mode})"))
    protocols = {
        protocol_label(protocol): {metric.label: value for metric in REPORT_METRICS if (value := metric.of(data.overall)) is not None}
        for protocol, data in report[mode].protocols.items()
    }
    if protocols:
        svgs.append(charts.bar_chart(protocols, _("Concept (lenient) and Def-only (strict), %(mode)s") % {"mode": mode}))
    ragas_means = {name: summary["mean"] for name, summary in run.ragas.get("metrics", {}).items() if summary.get("mean") is not None}
    if ragas_means:
        svgs.append(charts.bar_chart({this_name: ragas_means}, _("RAGAS (%(mode)s)") % {"mode": run.ragas.get("mode", "")}))
    return svgs


@require_GET
def version_report(request: HttpRequest, version_id: int) -> HttpResponse:
    version = _version_or_404(version_id)
    run = _report_run(request, version)
    reference_version = version.parent or (retrieval_selectors.model_version_get(ref="base") if version.number else None)
    reference = selectors.comparable_run(version=reference_version, test_set_hash=run.test_set_hash)
    report = EvaluationReport.from_dict(run.report)
    reference_report = EvaluationReport.from_dict(reference.report) if reference else EvaluationReport()
    tables = [
        {
            "mode": mode,
            "protocol": protocol,
            "protocol_label": protocol_label(protocol),
            "data": data,
            "reference": reference_report[mode].protocols.get(protocol) if mode in reference_report else None,
        }
        for mode, protocol, data in report.tables()
    ]
    context = {
        "version": version,
        "run": run,
        "gate": gate_of(run.gate),
        "reference": reference,
        "reference_version": reference_version,
        "tables": tables,
        "metric_labels": metric_labels(REPORT_METRICS),
        "charts": _report_charts(run, report, reference) if report else [],
        "evaluations": selectors.evaluation_run_list(version=version)[:20],
        "served_encoder": encoding.query_encoder_variant(version),
        "query_encoder_setting": settings.QUERY_ENCODER,
    }
    return render(request, "evaluation/report.html", context)


@require_GET
def version_report_json(request: HttpRequest, version_id: int) -> JsonResponse:
    run = _report_run(request, _version_or_404(version_id))
    response = JsonResponse(selectors.report_payload(run), json_dumps_params={"ensure_ascii": False, "indent": 2})
    response["Content-Disposition"] = f'attachment; filename="rapport-v{run.version.number}-{run.pk}.json"'
    return response


@require_GET
def version_report_csv(request: HttpRequest, version_id: int) -> HttpResponse:
    run = _report_run(request, _version_or_404(version_id))
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="rapport-v{run.version.number}-{run.pk}.csv"'
    writer = csv.writer(response)
    writer.writerow(selectors.CSV_HEADER)
    writer.writerows(selectors.report_csv_rows(run))
    return response


@require_GET
def history(request: HttpRequest) -> HttpResponse:
    points = selectors.champion_history()
    labels = [f"{point.event.version.display_name} ({point.at:%d/%m/%y})" for point in points]
    metric_lines = [
        (label, {column.title: value for column in HISTORY_COLUMNS if (value := column.of(point.metrics)) is not None})
        for label, point in zip(labels, points)
    ]
    count_lines = [
        (label, {_("Validated entries"): float(point.glossary_size), _("Expert annotations"): float(point.annotations)})
        for label, point in zip(labels, points)
    ]
    context = {
        "points": points,
        "columns": HISTORY_COLUMNS,
        "metrics_chart": charts.line_chart(metric_lines, _("Successive champions (dense mode)")) if points else "",
        "counts_chart": charts.line_chart(count_lines, _("Glossary size and annotations")) if points else "",
    }
    return render(request, "evaluation/history.html", context)


@require_GET
def version_detail(request: HttpRequest, version_id: int) -> HttpResponse:
    """A version's own address (linked from logs and reports) leads to its report."""
    version = _version_or_404(version_id)
    return redirect("evaluation:version-report", version_id=version.pk)


# A queued leaderboard nobody has taken after this long: the page asks whether a worker listens.
NO_WORKER_AFTER_S = 60


def _leaderboard_progress(board) -> dict:
    """What the page says of the leaderboard being computed: its job, its latest log line, a missing worker."""
    if board is None:
        return {}
    job = board.job
    lines = job.log_text.strip().splitlines()
    waited = (timezone.now() - job.created_at).total_seconds()
    no_worker = ""
    if job.status == job.Status.QUEUED and waited >= NO_WORKER_AFTER_S:
        no_worker = _("No worker has taken this calculation (queued for %(s)s s): is a Celery worker listening on the “training” queue?") % {"s": int(waited)}
    return {"job": job, "last_line": lines[-1] if lines else "", "no_worker": no_worker}


@require_GET
def leaderboard(request: HttpRequest) -> HttpResponse:
    board = selectors.leaderboard_latest()
    active = selectors.leaderboard_active()
    if request.htmx and request.GET.get("progress"):
        if active is None:  # the calculation ended: the whole page shows its result
            response = HttpResponse(status=204)
            response["HX-Refresh"] = "true"
            return response
        return render(request, "evaluation/_leaderboard_progress.html", {"active": active, "progress": _leaderboard_progress(active)})
    rows = []
    if board is not None:
        rows = sorted(selectors.leaderboard_rows(board), key=lambda row: (row.skipped, -(row.metric("dense", LEADERBOARD_PRIMARY) or 0.0)))
    chart = ""
    scored = {row.name: value for row in rows if not row.skipped and (value := row.metric("dense", LEADERBOARD_PRIMARY)) is not None}
    if scored:
        chart = charts.bar_chart({LEADERBOARD_PRIMARY.title: scored}, _("Leaderboard (dense, Def-only MRR@10)"))
    colspan = len(LEADERBOARD_COLUMNS) * len(board.modes) if board else 0
    context = {
        "board": board, "rows": rows, "chart": chart, "colspan": colspan, "columns": LEADERBOARD_COLUMNS,
        "active": active, "progress": _leaderboard_progress(active),
        # What the button would evaluate (only maintainers see it; it reads the catalogue and the model cache).
        "plan": selectors.leaderboard_plan() if has_role(request.user, MAINTAINER) and active is None else None,
    }
    return render(request, "evaluation/leaderboard.html", context)


@require_POST
@role_required(MAINTAINER)
def leaderboard_run(request: HttpRequest) -> HttpResponse:
    """Queue a leaderboard of the base models on this machine, the champion and the ready versions, for a worker."""
    try:
        board = leaderboards.leaderboard_request(user=request.user)
    except leaderboards.LeaderboardAlreadyRunning as error:
        messages.warning(request, error.messages[0])
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        board.job.refresh_from_db()
        if board.job.status == board.job.Status.FAILED:  # the broker did not take it
            messages.error(request, _("The leaderboard calculation could not be queued: %(error)s") % {"error": board.job.error_text})
        else:
            messages.success(request, _("Leaderboard calculation requested (job no. %(id)s): a worker will evaluate the models one by one.") % {"id": board.job_id})
    return redirect("evaluation:leaderboard")


@require_GET
@role_required(MAINTAINER)
def version_export_zip(request: HttpRequest, version_id: int) -> FileResponse:
    """The version as a sentence-transformers folder, zipped and streamed from a temporary file."""
    from retrieval.encoders_export import ExportError, version_export, write_zip

    version = _version_or_404(version_id)
    archive = tempfile.TemporaryFile(prefix="lexique-export-")  # removed when the response closes it
    try:
        with tempfile.TemporaryDirectory(prefix="lexique-export-") as scratch:
            folder = version_export(version=version, path=Path(scratch) / "model")
            write_zip(folder, archive)
    except ExportError as error:
        archive.close()
        messages.error(request, str(error))
        return redirect("evaluation:version-list")
    archive.seek(0)
    return FileResponse(archive, as_attachment=True, filename=f"lexique-v{version.number}.zip", content_type="application/zip")
