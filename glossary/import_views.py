"""The glossary's imports and exports in the expert web UI: upload, preview (here or by a worker), confirm, follow,
retry; and the export. Thin views over glossary.imports."""
from __future__ import annotations

import secrets

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from config.htmx import render_full_or_fragment
from config.roles import EXPERT, role_required
from glossary import imports, pending_uploads, selectors
from glossary.forms import ImportConfirmForm, ImportUploadForm
from glossary.models import ImportBatch
from glossary.views import kind_label

IMPORTS_PER_PAGE = 50
# Between its preview and the user's confirmation, the session names the uploaded file (kept in the artifact
# store, or on the batch a worker previewed); the file itself never goes into the session.
PENDING_IMPORT_SESSION_KEY = "glossary_pending_import"
EXPORT_CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/jsonl; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


@require_GET
def import_list(request: HttpRequest) -> HttpResponse:
    page = Paginator(selectors.import_batch_list(), IMPORTS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "glossary/import_list.html", {"page": page})


@role_required(EXPERT)
@require_http_methods(["GET", "POST"])
def import_upload(request: HttpRequest) -> HttpResponse:
    """Upload a file and see what its import would do; nothing is written before the confirmation.

    Small text files are previewed here; spreadsheets and large files by a worker, whose preview page polls.
    """
    form = ImportUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        file_format = form.cleaned_data["file_format"]
        options = form.import_options()
        content = upload.read()
        token = secrets.token_urlsafe(16)
        try:
            if imports.preview_in_worker(size=len(content), file_format=file_format):
                batch = imports.import_enqueue(
                    content=content, file_name=upload.name, file_format=file_format,
                    options={**options, "dry_run": True}, user=request.user,
                )
                request.session[PENDING_IMPORT_SESSION_KEY] = {"token": token, "batch_id": batch.pk}
                return redirect("glossary:import-preview", pk=batch.pk)
            report = imports.import_preview(
                content=content, file_name=upload.name, file_format=file_format,
                domain=options["domain"], status=options["status"], split=options["split"],
            )
        except imports.ImportRefused as refusal:
            form.add_error("file", str(refusal))
        else:
            request.session[PENDING_IMPORT_SESSION_KEY] = {
                "token": token,
                "file_name": upload.name,
                "file_format": file_format,
                "options": options,
                "stored_path": pending_uploads.save(content=content, file_name=upload.name),
            }
            return _render_preview(
                request, report=report, rows=report.preview, file_name=upload.name, token=token, skip_invalid=options["skip_invalid"],
            )
    return render(request, "glossary/import_upload.html", {"form": form})


def _render_preview(request, *, report, rows: list[dict], file_name: str, token: str, skip_invalid: bool, batch=None) -> HttpResponse:
    """``report``: an ImportReport, or its dict as a worker stored it on the batch."""
    confirm_form = ImportConfirmForm(initial={"token": token, "skip_invalid": skip_invalid})
    preview = [{**row, "kind_label": kind_label(row["kind"])} for row in rows]
    context = {"report": report, "preview": preview, "file_name": file_name, "confirm_form": confirm_form, "batch": batch}
    return render(request, "glossary/import_preview.html", context)


@role_required(EXPERT)
@require_GET
def import_preview(request: HttpRequest, pk: int) -> HttpResponse:
    """The preview a worker is making of an uploaded file: polls until it is ready, then the same page as a
    preview made in the request (every bad row with its line, the confirmation)."""
    batch = ImportBatch.objects.select_related("job").filter(pk=pk, created_by=request.user).first()
    pending = request.session.get(PENDING_IMPORT_SESSION_KEY) or {}
    if batch is None or not batch.is_preview or pending.get("batch_id") != batch.pk:
        raise Http404(_("This preview does not exist or is no longer pending."))
    if batch.is_active:
        return render(request, "glossary/import_preview_wait.html", {"batch": batch})
    if batch.status != ImportBatch.Status.PREVIEWED:
        return render(request, "glossary/import_preview_wait.html", {"batch": batch, "failed": True})
    return _render_preview(
        request, report=batch.report, rows=batch.report.get("preview", []), file_name=batch.file_name, token=pending["token"],
        skip_invalid=bool(batch.options.get("skip_invalid")), batch=batch,
    )


@role_required(EXPERT)
@require_POST
def import_confirm(request: HttpRequest) -> HttpResponse:
    form = ImportConfirmForm(request.POST)
    pending = request.session.get(PENDING_IMPORT_SESSION_KEY)
    if not form.is_valid() or not pending or not secrets.compare_digest(pending["token"], form.cleaned_data["token"]):
        messages.error(request, _("This file is no longer waiting to be imported: upload it again."))
        return redirect("glossary:import-upload")
    del request.session[PENDING_IMPORT_SESSION_KEY]
    skip_invalid = form.cleaned_data["skip_invalid"]
    try:
        if "batch_id" in pending:
            batch = imports.import_confirm_preview(batch_id=pending["batch_id"], skip_invalid=skip_invalid)
        else:
            batch = imports.import_enqueue(
                content=pending_uploads.read(pending["stored_path"]),
                file_name=pending["file_name"],
                file_format=pending["file_format"],
                options={**pending["options"], "skip_invalid": skip_invalid},
                user=request.user,
            )
            pending_uploads.delete(pending["stored_path"])
    except (imports.ImportRefused, FileNotFoundError) as refusal:
        messages.error(request, str(refusal) if isinstance(refusal, imports.ImportRefused) else _("This file is no longer waiting to be imported: upload it again."))
        return redirect("glossary:import-upload")
    # No flash here: the import has not succeeded yet. Its page shows it running, then its real outcome.
    return redirect("glossary:import-detail", pk=batch.pk)


@role_required(EXPERT)
@require_POST
def import_retry(request: HttpRequest, pk: int) -> HttpResponse:
    """Run a failed import's stored file again, skipping the invalid rows (a new batch)."""
    try:
        batch = imports.import_retry_skipping_invalid(batch_id=pk, user=request.user)
    except ImportBatch.DoesNotExist:
        raise Http404(_("This import does not exist.")) from None
    except imports.ImportRefused as refusal:
        messages.error(request, str(refusal))
        return redirect("glossary:import-detail", pk=pk)
    return redirect("glossary:import-detail", pk=batch.pk)


@require_GET
def import_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The batch's status and report; htmx polls the status fragment until the import is over."""
    try:
        batch = selectors.import_batch_get(batch_id=pk)
    except ImportBatch.DoesNotExist:
        raise Http404(_("This import does not exist.")) from None
    context = {"batch": batch, "is_over": not batch.is_active}
    return render_full_or_fragment(
        request, page="glossary/import_detail.html", fragment="glossary/_import_batch.html", context=context
    )


@require_GET
def export(request: HttpRequest) -> HttpResponse:
    file_format = request.GET.get("format", "csv")
    if file_format not in imports.EXPORT_FORMATS:
        return HttpResponseBadRequest(_("Unknown export format: %(format)s.") % {"format": file_format})
    file_name = f"lexique-glossaire-{timezone.localdate():%Y-%m-%d}.{file_format}"
    return HttpResponse(
        imports.export_glossary(file_format=file_format),
        content_type=EXPORT_CONTENT_TYPES[file_format],
        headers={"Content-Disposition": content_disposition_header(True, file_name)},
    )
