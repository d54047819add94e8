"""The expert workbench page: one leased item at a time, a decision per key press, the next item swapped in."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from config.roles import EXPERT, MAINTAINER, can_adjudicate, has_role, role_required
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
        notice, level = _("Decision saved: %(decision)s.") % {"decision": record.get_decision_display()}, "success"
        if not record.applied and record.decision != "skip":
            # Several experts decide this item: the decision takes effect once they have all decided and agree.
            notice += " " + _("It will count once the other experts have decided.")
    return _panel(request, workbench.review_item_next(user=request.user, **filters), filters, notice=notice, notice_level=level)


@require_POST
@role_required(EXPERT)
def workbench_undo(request: HttpRequest) -> HttpResponse:
    """Undo the expert's last decision; its item comes back on screen to decide again."""
    filters = _filters(request.POST)
    last = workbench.last_undoable_decision(user=request.user)
    if last is None:
        return _panel(request, workbench.review_item_next(user=request.user, **filters), filters, notice=_("No decision to undo."), notice_level="warning")
    try:
        workbench.review_decision_undo(decision=last, user=request.user)
    except ValidationError as error:
        return _panel(request, workbench.review_item_next(user=request.user, **filters), filters, notice=error.messages[0], notice_level="error")
    item = ReviewItem.objects.select_related("domain", "entry").get(pk=last.item_id)
    notice = _("Decision undone: %(decision)s.") % {"decision": last.get_decision_display()}
    if item.leased_by_id != request.user.pk:
        item = workbench.review_item_next(user=request.user, **filters)
    return _panel(request, item, filters, notice=notice, notice_level="success")


@require_POST
@role_required(EXPERT)
def workbench_refresh(request: HttpRequest) -> HttpResponse:
    refresh = workbench.review_queue_refresh_request(trigger=QueueRefresh.Trigger.REQUEST, user=request.user)
    messages.info(request, _("Queue recomputation requested (%(status)s).") % {"status": refresh.get_status_display()})
    return redirect("training:workbench")



# ---- several experts: overlap settings, adjudication, agreement, per-expert pages ------------------------------


def adjudicator_required(view):
    """Maintainers and senior experts (config.roles.can_adjudicate); 403 for anyone else."""
    from functools import wraps

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not can_adjudicate(request.user):
            raise PermissionDenied("This page needs the maintainer role or the senior_expert group.")
        return view(request, *args, **kwargs)

    return wrapped


@role_required(MAINTAINER)
def overlap_page(request: HttpRequest) -> HttpResponse:
    """How many experts decide each item, per source of the queue (maintainers)."""
    if request.method == "POST":
        errors = []
        for row in workbench.overlap_settings():
            value = request.POST.get(f"required-{row['source']}", "")
            if not value.isdigit() or int(value) == row["required"]:
                continue
            try:
                workbench.review_overlap_set(source=row["source"], required=int(value), user=request.user)
            except ValidationError as error:
                errors.append(_("%(field)s: %(message)s") % {"field": row["label"], "message": " ".join(error.messages)})
        for error in errors:
            messages.error(request, error)
        if not errors:
            messages.success(request, _("Overlap saved."))
        return redirect("training:workbench-overlap")
    return render(request, "training/workbench_overlap.html", {"rows": workbench.overlap_settings(), "pending": workbench.pending_decision_counts()})


def _adjudication_context(request: HttpRequest, *, after: int | None = None, notice: str = "", notice_level: str = "info") -> dict:
    items = workbench.disputed_items()
    # "s" goes on to the next disputed item (round the list), leaving this one for later.
    item = (items.filter(pk__gt=after).order_by("pk").first() or items.first()) if after else items.first()
    actions = [action for action in workbench.item_actions(item) if action["decision"] != "skip"] if item else []
    choose_keys = {action["candidate"]: action["key"] for action in actions if action["candidate"]}
    return {
        "item": item,
        "votes": workbench.votes_shown(item) if item else [],
        "actions": actions,
        "candidates": [{**candidate, "key": choose_keys.get(candidate["entry_id"], "")} for candidate in (item.payload.get("candidates") or [])] if item else [],
        "remaining": items.count(),
        "notice": notice,
        "notice_level": notice_level,
    }


@require_GET
@adjudicator_required
def adjudication_page(request: HttpRequest) -> HttpResponse:
    after = request.GET.get("after", "")
    context = _adjudication_context(request, after=int(after) if after.isdigit() else None)
    if request.htmx:
        return render(request, "training/_adjudication_item.html", context)
    return render(request, "training/adjudication.html", context)


@require_POST
@adjudicator_required
def adjudication_settle(request: HttpRequest, item_id: int) -> HttpResponse:
    item = get_object_or_404(ReviewItem, pk=item_id)
    decision, candidate = _parse_action(request.POST.get("action", ""))
    try:
        record = workbench.review_item_adjudicate(item=item, user=request.user, decision=decision, candidate=candidate)
    except workbench.ReviewConflict as error:
        notice, level = error.messages[0], "warning"
    except ValidationError as error:
        notice, level = error.messages[0], "error"
    else:
        notice, level = _("Adjudication saved: %(decision)s.") % {"decision": record.get_decision_display()}, "success"
    if request.htmx:
        return render(request, "training/_adjudication_item.html", _adjudication_context(request, notice=notice, notice_level=level))
    getattr(messages, level)(request, notice)
    return redirect("training:workbench-adjudication")


@require_GET
@role_required(MAINTAINER)
def agreement_page(request: HttpRequest) -> HttpResponse:
    report = workbench.agreement_report()
    return render(request, "training/agreement.html", {"report": report, "chart": workbench.agreement_chart(report)})


@require_GET
@role_required(MAINTAINER)
def expert_list_page(request: HttpRequest) -> HttpResponse:
    return render(request, "training/expert_list.html", {"experts": workbench.expert_list()})


@require_GET
@role_required(EXPERT)
def expert_page(request: HttpRequest, user_id: int | None = None) -> HttpResponse:
    """An expert's own page (``/workbench/me/``), or any expert's for maintainers."""
    if user_id is None or user_id == request.user.pk:
        user = request.user
    elif has_role(request.user, MAINTAINER):
        user = get_object_or_404(get_user_model(), pk=user_id)
    else:
        raise PermissionDenied("Only maintainers see other experts' pages.")
    return render(request, "training/expert_detail.html", {"stats": workbench.expert_stats(user=user), "own": user.pk == request.user.pk})
