"""The expert workbench page: one leased item at a time, a decision per key press, the next item swapped in."""
from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from config.roles import EXPERT, role_required
from glossary.models import Domain
from glossary.selectors import domain_list, entry_history
from training import workbench
from training.models import QueueRefresh, ReviewItem

HISTORY_SHOWN = 5


def _filters(data) -> dict:
    """The queue filters a request carries (query string for pages, hidden fields for decisions).

    A value with a NUL character matches nothing and PostgreSQL refuses it in a query: it is ignored like any
    unknown filter.
    """
    source = data.get("source") or None
    domain = data.get("domain") or None
    if domain and "\x00" in domain:
        domain = None
    return {
        "domain": domain if domain and Domain.objects.filter(slug=domain).exists() else None,
        "source": source if source in ReviewItem.Source.values else None,
        "group_by_domain": data.get("group") in ("1", "on", "true"),
    }


def _filter_query(filters: dict) -> str:
    pairs = (("domain", filters["domain"]), ("source", filters["source"]), ("group", "1" if filters["group_by_domain"] else ""))
    return urlencode({key: value for key, value in pairs if value})


def _panel_context(request: HttpRequest, item: ReviewItem | None, filters: dict, *, notice: str = "", notice_level: str = "info") -> dict:
    display = workbench.item_display(item) if item else {}
    actions = workbench.item_actions(item, display) if item else []
    choose_keys = {action["candidate"]: action["key"] for action in actions if action["candidate"]}
    candidates = [{**candidate, "key": choose_keys.get(candidate["entry_id"], "")} for candidate in (item.payload.get("candidates") or [])] if item else []
    return {
        "item": item,
        "display": display,
        "actions": actions,
        "candidates": candidates,
        "history": entry_history(entry=item.entry)[:HISTORY_SHOWN] if item and item.entry_id else [],
        "filters": filters,
        "filter_query": _filter_query(filters),
        "undoable": workbench.last_undoable_decision(user=request.user),
        "counters": workbench.workbench_counters(user=request.user, domain=filters["domain"], source=filters["source"]),
        # Nothing to show while the queue is being computed: say so, and poll, rather than "nothing to review".
        "computing": workbench.refresh_in_progress() if item is None else None,
        "notice": notice,
        "notice_level": notice_level,
    }


def _panel(request: HttpRequest, item: ReviewItem | None, filters: dict, *, notice: str = "", notice_level: str = "info") -> HttpResponse:
    """The item panel (with the counters, out of band) for htmx; the whole page otherwise."""
    if request.htmx:
        return render(request, "training/_workbench_panel.html", _panel_context(request, item, filters, notice=notice, notice_level=notice_level))
    if notice:
        getattr(messages, notice_level if notice_level in ("success", "warning", "error") else "info")(request, notice)
    return redirect(f"{reverse('training:workbench')}?{_filter_query(filters)}")


@require_GET
@role_required(EXPERT)
def workbench_page(request: HttpRequest) -> HttpResponse:
    filters = _filters(request.GET)
    item = workbench.review_item_next(user=request.user, **filters)
    if item is None:
        workbench.review_queue_first_use(user=request.user)
    context = _panel_context(request, item, filters)
    context.update(
        domains=domain_list(),
        sources=ReviewItem.Source.choices,
        last_refresh=workbench.last_refresh(),
    )
    return render(request, "training/workbench.html", context)


@require_GET
@role_required(EXPERT)
def workbench_next(request: HttpRequest) -> HttpResponse:
    filters = _filters(request.GET)
    return _panel(request, workbench.review_item_next(user=request.user, **filters), filters)


def _parse_action(value: str) -> tuple[str, int | None]:
    """A button's value: "accept", "skip"... or "choose:<entry id>"."""
    decision, _sep, candidate = (value or "").partition(":")
    return decision, int(candidate) if candidate.isdigit() else None


@require_POST
@role_required(EXPERT)
def workbench_decide(request: HttpRequest, item_id: int) -> HttpResponse:
    filters = _filters(request.POST)
    item = get_object_or_404(ReviewItem, pk=item_id)
    decision, candidate = _parse_action(request.POST.get("action", ""))
    try:
        record = workbench.review_item_decide(item=item, user=request.user, decision=decision, candidate=candidate)
    except workbench.ReviewConflict as error:
        # First decision wins: say so, and move on to the next item.
        notice, level = error.messages[0], "warning"
    except ValidationError as error:
        # A decision that does not fit this item: the expert stays on it.
        return _panel(request, workbench.review_item_next(user=request.user, **filters), filters, notice=error.messages[0], notice_level="error")
    else:
        notice, level = _("Décision enregistrée : %(decision)s.") % {"decision": record.get_decision_display()}, "success"
    return _panel(request, workbench.review_item_next(user=request.user, **filters), filters, notice=notice, notice_level=level)


@require_POST
@role_required(EXPERT)
def workbench_undo(request: HttpRequest) -> HttpResponse:
    """Undo the expert's last decision; its item comes back on screen to decide again."""
    filters = _filters(request.POST)
    last = workbench.last_undoable_decision(user=request.user)
    if last is None:
        return _panel(request, workbench.review_item_next(user=request.user, **filters), filters, notice=_("Aucune décision à annuler."), notice_level="warning")
    try:
        workbench.review_decision_undo(decision=last, user=request.user)
    except ValidationError as error:
        return _panel(request, workbench.review_item_next(user=request.user, **filters), filters, notice=error.messages[0], notice_level="error")
    item = ReviewItem.objects.select_related("domain", "entry").get(pk=last.item_id)
    notice = _("Décision annulée : %(decision)s.") % {"decision": last.get_decision_display()}
    if item.leased_by_id != request.user.pk:
        item = workbench.review_item_next(user=request.user, **filters)
    return _panel(request, item, filters, notice=notice, notice_level="success")


@require_POST
@role_required(EXPERT)
def workbench_refresh(request: HttpRequest) -> HttpResponse:
    refresh = workbench.review_queue_refresh_request(trigger=QueueRefresh.Trigger.REQUEST, user=request.user)
    messages.info(request, _("Recalcul de la file demandé (%(status)s).") % {"status": refresh.get_status_display()})
    return redirect("training:workbench")

