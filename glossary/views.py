"""The expert web UI of the glossary's entries and domains: thin views over glossary.selectors and glossary.services.

Imports and exports: glossary.import_views."""
from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from config.htmx import render_full_or_fragment
from config.roles import EXPERT, role_required
from glossary import imports, selectors, services
from glossary.forms import BulkStatusForm, EntryEditForm, EntryFilterForm, EntryForm
from glossary.models import Domain, Entry
from glossary.text import definition_key, term_key

ENTRIES_PER_PAGE = 50
ENTRY_FORM_FIELDS = ("term", "kind", "definition", "variants", "contexts", "status", "source", "source_url")
# Changed by every save: the history shows what people changed, not these.
BOOKKEEPING_FIELDS = {"revision", "updated_at"}
HISTORY_TYPE_LABELS = {"+": gettext_lazy("Created"), "~": gettext_lazy("Changed"), "-": gettext_lazy("Deleted")}


def _safe_next(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return default


def _entry_or_404(pk: int) -> Entry:
    try:
        return selectors.entry_get(entry_id=pk)
    except Entry.DoesNotExist:
        raise Http404(_("This entry does not exist.")) from None


@require_GET
def entry_list(request: HttpRequest) -> HttpResponse:
    filter_form = EntryFilterForm(request.GET)
    entries = selectors.entry_list(**filter_form.filters())
    page = Paginator(entries, ENTRIES_PER_PAGE).get_page(request.GET.get("page"))
    status_counts = selectors.entry_status_counts(entries=entries)
    context = {
        "filter_form": filter_form,
        "page": page,
        "status_counts": [(Entry.Status(status).label, status, count) for status, count in status_counts.items()],
        "current_url": request.get_full_path(),
        "export_formats": imports.EXPORT_FORMATS,
    }
    return render_full_or_fragment(
        request, page="glossary/entry_list.html", fragment="glossary/_entry_results.html", context=context
    )


def kind_label(kind: str) -> str:
    """An entry kind's label in the reader's language (the value itself when it is not a kind)."""
    return str(Entry.Kind(kind).label) if kind in Entry.Kind.values else kind


def _display_value(field: str, value, domain_names: dict[int, str]) -> str:
    if value in (None, "", []):
        return "—"
    if field == "domain":
        return domain_names.get(value, str(value))
    if field == "status":
        return str(Entry.Status(value).label)
    if field == "kind":
        return kind_label(value)
    if field == "split":
        return str(Entry.Split(value).label)
    if field == "examples":
        return " | ".join(f"{item.get('question', '')} → {item.get('answer', '')}" for item in value)
    if isinstance(value, list):
        return " | ".join(str(item) for item in value)
    return str(value)


def _history_for_display(entry: Entry) -> list[dict]:
    rows = selectors.entry_history(entry=entry)
    field_labels = {field.name: field.verbose_name for field in Entry._meta.fields}
    domain_ids = {change[key] for row in rows for change in row["changes"] if change["field"] == "domain" for key in ("old", "new")}
    domain_names = dict(Domain.objects.filter(pk__in=[pk for pk in domain_ids if pk]).values_list("pk", "name"))
    return [
        {
            "record": row["record"],
            "action": HISTORY_TYPE_LABELS.get(row["record"].history_type, row["record"].history_type),
            "changes": [
                {
                    "label": field_labels.get(change["field"], change["field"]),
                    "old": _display_value(change["field"], change["old"], domain_names),
                    "new": _display_value(change["field"], change["new"], domain_names),
                }
                for change in row["changes"]
                if change["field"] not in BOOKKEEPING_FIELDS
            ],
        }
        for row in rows
    ]


@require_GET
def entry_detail(request: HttpRequest, pk: int) -> HttpResponse:
    entry = _entry_or_404(pk)
    return render(request, "glossary/entry_detail.html", {"entry": entry, "history": _history_for_display(entry)})


def _entry_fields(form: EntryForm) -> dict:
    """The service arguments of a valid entry form; a typed domain name is created (inside the caller's transaction)."""
    data = form.cleaned_data
    fields = {name: data[name] for name in ENTRY_FORM_FIELDS}
    fields["domain"] = services.domain_get_or_create(name=data["new_domain"]) if data["new_domain"] else data["domain"]
    return fields


# The button of the same-term warning by which the expert says the entry is another sense of the term.
SAME_TERM_CONFIRMATION = "new_sense"


def _unconfirmed_same_term(request: HttpRequest, form: EntryForm, *, entry: Entry | None) -> list[dict]:
    """Entries already filed under the form's term that the expert has not yet seen and accepted.

    Not a refusal: acronyms have several senses. The form is shown again with these entries (links, and
    whether the definition reads as the same sense) until the expert confirms a new sense or goes to the
    existing entry. An edit that keeps the entry's term asks nothing.
    """
    if request.POST.get("same_term") == SAME_TERM_CONFIRMATION:
        return []
    term = form.cleaned_data["term"]
    if entry is not None and term_key(term) == entry.term_key:
        return []
    definition = form.cleaned_data["definition"]
    same_term = selectors.same_term_entries(term=term, definition=definition, exclude_id=entry.pk if entry else None)
    if any(item["entry"].definition_key == definition_key(definition) for item in same_term):
        return []  # the very same entry: the service refuses it, with its own message
    return same_term


@role_required(EXPERT)
@require_http_methods(["GET", "POST"])
def entry_create(request: HttpRequest) -> HttpResponse:
    form = EntryForm(request.POST or None)
    same_term = []
    if request.method == "POST" and form.is_valid():
        same_term = _unconfirmed_same_term(request, form, entry=None)
    if request.method == "POST" and form.is_valid() and not same_term:
        try:
            with transaction.atomic():
                entry = services.entry_create(**_entry_fields(form), created_by=request.user)
        except ValidationError as error:
            form.add_service_error(error)
        else:
            messages.success(request, _("Entry “%(term)s” created.") % {"term": entry.term})
            return redirect("glossary:entry-detail", pk=entry.pk)
    return render(request, "glossary/entry_form.html", {"form": form, "entry": None, "same_term": same_term})


@role_required(EXPERT)
@require_http_methods(["GET", "POST"])
def entry_edit(request: HttpRequest, pk: int) -> HttpResponse:
    entry = _entry_or_404(pk)
    current_version = None
    same_term = []
    if request.method == "POST":
        form = EntryEditForm(request.POST)
        if form.is_valid():
            same_term = _unconfirmed_same_term(request, form, entry=entry)
        if form.is_valid() and not same_term:
            try:
                with transaction.atomic():
                    entry = services.entry_update(
                        entry=entry,
                        data=_entry_fields(form),
                        user=request.user,
                        expected_revision=form.cleaned_data["revision"],
                    )
            except services.EntryGoneError as error:
                form.add_service_error(error)
            except services.StaleEntryError as error:
                form.add_service_error(error)
                # Shown beside the user's own text (kept in the form) so they can merge by hand.
                current_version = selectors.entry_get(entry_id=pk)
            except ValidationError as error:
                form.add_service_error(error)
            else:
                messages.success(request, _("Entry “%(term)s” saved.") % {"term": entry.term})
                return redirect("glossary:entry-detail", pk=entry.pk)
    else:
        form = EntryEditForm(initial=EntryEditForm.initial_for(entry))
    context = {"form": form, "entry": entry, "current_version": current_version, "same_term": same_term}
    return render(request, "glossary/entry_form.html", context)


@role_required(EXPERT)
@require_http_methods(["GET", "POST"])
def entry_delete(request: HttpRequest, pk: int) -> HttpResponse:
    entry = _entry_or_404(pk)
    if request.method == "POST":
        term = entry.term
        services.entry_delete(entry=entry, user=request.user)
        messages.success(request, _("Entry “%(term)s” deleted.") % {"term": term})
        return redirect("glossary:entry-list")
    return render(request, "glossary/entry_confirm_delete.html", {"entry": entry})


@role_required(EXPERT)
@require_POST
def entry_set_status(request: HttpRequest, pk: int) -> HttpResponse:
    """Validate or reject one entry; htmx gets back the updated list row or detail badge, others a redirect."""
    entry = _entry_or_404(pk)
    try:
        services.entry_set_status(entry=entry, status=request.POST.get("status", ""), user=request.user)
    except ValidationError as error:
        return HttpResponseBadRequest(" ".join(error.messages))
    entry = _entry_or_404(pk)
    if request.htmx:
        fragment = "glossary/_entry_row.html" if request.POST.get("fragment") == "row" else "glossary/_entry_status.html"
        return render(request, fragment, {"entry": entry})
    messages.success(
        request, _("“%(term)s”: %(status)s.") % {"term": entry.term, "status": entry.get_status_display()}
    )
    return redirect(_safe_next(request, reverse("glossary:entry-detail", args=[pk])))


@role_required(EXPERT)
@require_POST
def entries_bulk_status(request: HttpRequest) -> HttpResponse:
    form = BulkStatusForm(request.POST)
    if form.is_valid():
        status = form.cleaned_data["bulk_status"]
        changed = services.entries_bulk_set_status(
            entry_ids=[entry.pk for entry in form.cleaned_data["entry_ids"]], status=status, user=request.user
        )
        messages.success(
            request,
            ngettext(
                "%(count)d entry set to “%(status)s”.",
                "%(count)d entries set to “%(status)s”.",
                changed,
            )
            % {"count": changed, "status": Entry.Status(status).label},
        )
    else:
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
    return redirect(_safe_next(request, reverse("glossary:entry-list")))


@require_GET
def domain_list(request: HttpRequest) -> HttpResponse:
    return render(request, "glossary/domain_list.html", {"domains": selectors.domain_list()})
