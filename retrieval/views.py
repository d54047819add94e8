"""The assistant page (ask, answer, flag) and the flag list: thin views over retrieval.answering, flags and selectors."""
from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from config.htmx import is_fragment_request, render_full_or_fragment
from config.roles import EXPERT, MAINTAINER, has_role, role_required
from glossary.selectors import entry_list
from retrieval import flags as retrieval_flags
from retrieval import labelled, labelled_import, selectors
from retrieval.answering import answer_question
from retrieval.indexing import SearchUnavailableError
from retrieval.forms import (
    AskForm,
    FlagFilterForm,
    FlagForm,
    LabelledQuestionFilterForm,
    LabelledQuestionForm,
    LabelledQuestionImportForm,
    LabelledQuestionKindForm,
)
from retrieval.models import Flag, LabelledQuestion, QuestionLog

FLAGS_PER_PAGE = 50
ENTRY_SUGGESTIONS = 8


def _question_or_404(question_id: int) -> QuestionLog:
    try:
        return selectors.question_log_get(question_id=question_id)
    except QuestionLog.DoesNotExist:
        raise Http404(_("This question does not exist.")) from None


def _answer_context(request: HttpRequest, *, log: QuestionLog, flag_form: FlagForm | None = None) -> dict:
    """What the answer fragment shows, all read back from the question log (the page shows what was logged)."""
    return {
        "log": log,
        "flag_form": flag_form or FlagForm(),
        "flags": log.flags.select_related("correct_entry", "created_by"),
        "can_flag": has_role(request.user, EXPERT),
        "show_debug": has_role(request.user, MAINTAINER),
    }


@require_http_methods(["GET", "POST"])
def ask(request: HttpRequest) -> HttpResponse:
    """A question box; the answer replaces the result area in place (htmx) or the page is re-rendered."""
    form = AskForm(request.POST or None)
    context: dict = {"form": form}
    if request.method == "POST" and form.is_valid():
        try:
            _answer, log = answer_question(question=form.cleaned_data["question"], user=request.user)
        except ValidationError as error:
            form.add_error("question", error)
        except SearchUnavailableError as error:
            form.add_error(None, str(error))
        else:
            context.update(_answer_context(request, log=log))
    if request.method == "POST" and is_fragment_request(request):
        response = render(request, "retrieval/_answer.html", context)
    else:
        response = render(request, "retrieval/ask.html", context)
    patch_vary_headers(response, ("HX-Request",))
    return response


@require_GET
def question_detail(request: HttpRequest, question_id: int) -> HttpResponse:
    """A logged question with its answer, hits and flags (linked from the flag list)."""
    log = _question_or_404(question_id)
    return render(request, "retrieval/ask.html", {"form": AskForm(initial={"question": log.question}), **_answer_context(request, log=log)})


@role_required(EXPERT)
@require_POST
def flag_create(request: HttpRequest, question_id: int) -> HttpResponse:
    log = _question_or_404(question_id)
    form = FlagForm(request.POST)
    if form.is_valid():
        try:
            retrieval_flags.flag_create(
                question_log=log,
                user=request.user,
                reason=form.cleaned_data["reason"],
                correct_entry=form.cleaned_data["correct_entry"],
                new_entry=form.new_entry(),
                comment=form.cleaned_data["comment"],
            )
        except ValidationError as error:
            for message in error.messages:
                form.add_error(None, message)
        else:
            if not is_fragment_request(request):
                messages.success(request, _("Thank you: the flag has been saved."))
                return redirect("retrieval:question-detail", question_id=log.pk)
            return render(request, "retrieval/_flags.html", {**_answer_context(request, log=log), "flag_saved": True})
    template = "retrieval/_flags.html" if is_fragment_request(request) else "retrieval/ask.html"
    return render(request, template, {"form": AskForm(initial={"question": log.question}), **_answer_context(request, log=log, flag_form=form)})


@require_GET
def entry_suggestions(request: HttpRequest) -> HttpResponse:
    """Glossary entries matching what the expert types, to pick the right one for a flag."""
    query = request.GET.get("entry_search", "").strip()
    entries = list(entry_list(search=query)[:ENTRY_SUGGESTIONS]) if len(query) >= 2 else []
    return render(request, "retrieval/_entry_suggestions.html", {"entries": entries, "query": query})


@require_GET
def flag_list(request: HttpRequest) -> HttpResponse:
    filter_form = FlagFilterForm(request.GET)
    flags = selectors.flag_list(**filter_form.filters())
    page = Paginator(flags, FLAGS_PER_PAGE).get_page(request.GET.get("page"))
    context = {"filter_form": filter_form, "page": page, "can_act": has_role(request.user, EXPERT), "current_url": request.get_full_path()}
    return render_full_or_fragment(request, page="retrieval/flag_list.html", fragment="retrieval/_flag_results.html", context=context)


@role_required(EXPERT)
@require_POST
def flag_set_status(request: HttpRequest, flag_id: int) -> HttpResponse:
    """Dismiss or reopen a flag; htmx gets the updated row back, others a redirect to the list."""
    try:
        flag = selectors.flag_get(flag_id=flag_id)
    except Flag.DoesNotExist:
        raise Http404(_("This flag does not exist.")) from None
    try:
        flag = retrieval_flags.flag_set_status(flag=flag, status=request.POST.get("status", ""), user=request.user)
    except ValidationError as error:
        return HttpResponse(" ".join(error.messages), status=400)
    if is_fragment_request(request):
        return render(request, "retrieval/_flag_row.html", {"flag": flag, "can_act": True})
    messages.success(request, _("Flag updated."))
    return redirect("retrieval:flag-list")


# ---- questions with known answers (retrieval.labelled) ----------------------------------------------

LABELLED_PER_PAGE = 50


@role_required(EXPERT)
@require_POST
def answer_accept(request: HttpRequest, question_id: int) -> HttpResponse:
    """"Bonne réponse": the first result is right; the question becomes a known question of that entry."""
    log = _question_or_404(question_id)
    try:
        accepted = labelled.labelled_question_accept_answer(question_log=log, user=request.user)
    except ValidationError as error:
        return HttpResponse(" ".join(error.messages), status=400)
    if is_fragment_request(request):
        return render(request, "retrieval/_accept_answer.html", {"log": log, "accepted": accepted})
    messages.success(request, _('Thank you: this question is now a known question of "%(term)s".') % {"term": accepted.entry.term})
    return redirect("retrieval:question-detail", question_id=log.pk)


def _labelled_page(request: HttpRequest, *, form: LabelledQuestionForm | None = None, import_form: LabelledQuestionImportForm | None = None,
                   import_report=None, status: int = 200) -> HttpResponse:
    filter_form = LabelledQuestionFilterForm(request.GET)
    questions = labelled.labelled_question_list(**filter_form.filters())
    page = Paginator(questions, LABELLED_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "filter_form": filter_form, "page": page, "can_act": has_role(request.user, EXPERT),
        "form": form or LabelledQuestionForm(), "import_form": import_form or LabelledQuestionImportForm(),
        "import_report": import_report, "kind_choices": LabelledQuestion.Kind.choices,
    }
    template = "retrieval/_labelled_results.html" if request.method == "GET" and is_fragment_request(request) else "retrieval/labelled_list.html"
    response = render(request, template, context, status=status)
    patch_vary_headers(response, ("HX-Request",))
    return response


@require_GET
def labelled_question_list(request: HttpRequest) -> HttpResponse:
    """Questions with known answers: filters by kind, origin and held-out share; experts create, correct, import."""
    return _labelled_page(request)


@role_required(EXPERT)
@require_POST
def labelled_question_create(request: HttpRequest) -> HttpResponse:
    form = LabelledQuestionForm(request.POST)
    if form.is_valid():
        try:
            question = labelled.labelled_question_record(
                text=form.cleaned_data["text"], entry=form.cleaned_data["correct_entry"], source=LabelledQuestion.Source.EXAM,
                user=request.user, kind=form.cleaned_data["kind"] or None,
            )
        except ValidationError as error:
            for message in error.messages:
                form.add_error(None, message)
        else:
            messages.success(request, _('Question saved: "%(text)s" → %(term)s.') % {"text": question.text, "term": question.entry.term})
            return redirect("retrieval:labelled-list")
    return _labelled_page(request, form=form, status=400)


def _labelled_or_404(labelled_id: int) -> LabelledQuestion:
    try:
        return labelled.labelled_question_get(question_id=labelled_id)
    except LabelledQuestion.DoesNotExist:
        raise Http404(_("This question does not exist.")) from None


@role_required(EXPERT)
@require_POST
def labelled_question_set_kind(request: HttpRequest, labelled_id: int) -> HttpResponse:
    question = _labelled_or_404(labelled_id)
    form = LabelledQuestionKindForm(request.POST)
    if not form.is_valid():
        return HttpResponse(" ".join(message for errors in form.errors.values() for message in errors), status=400)
    question = labelled.labelled_question_set_kind(question=question, kind=form.cleaned_data["kind"])
    if is_fragment_request(request):
        return render(request, "retrieval/_labelled_row.html", {"question": question, "can_act": True, "kind_choices": LabelledQuestion.Kind.choices})
    messages.success(request, _("Question kind corrected."))
    return redirect("retrieval:labelled-list")


@role_required(EXPERT)
@require_POST
def labelled_question_delete(request: HttpRequest, labelled_id: int) -> HttpResponse:
    labelled.labelled_question_delete(question=_labelled_or_404(labelled_id))
    if is_fragment_request(request):
        return HttpResponse("")
    messages.success(request, _("Question deleted."))
    return redirect("retrieval:labelled-list")


@role_required(EXPERT)
@require_POST
def labelled_question_import(request: HttpRequest) -> HttpResponse:
    """A CSV or JSONL file of exam questions, all or nothing; every bad line is shown with its number."""
    import_form = LabelledQuestionImportForm(request.POST, request.FILES)
    if not import_form.is_valid():
        return _labelled_page(request, import_form=import_form, status=400)
    try:
        report = labelled_import.labelled_questions_import(
            content=import_form.cleaned_data["file"].read(), file_format=import_form.file_format(), user=request.user
        )
    except ValidationError as error:
        for message in error.messages:
            import_form.add_error("file", message)
        return _labelled_page(request, import_form=import_form, status=400)
    if report.imported:
        messages.success(request, _("%(created)s question(s) imported, %(unchanged)s already known.") % {"created": report.created, "unchanged": report.unchanged})
        return redirect("retrieval:labelled-list")
    return _labelled_page(request, import_form=import_form, import_report=report, status=400)
