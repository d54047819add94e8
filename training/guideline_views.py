"""Annotation guideline pages: list, read, history (anyone signed in), create and edit (maintainers)."""
from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from config.roles import MAINTAINER, role_required
from glossary.models import Domain
from training import guidelines
from training.models import Guideline, ReviewItem


class GuidelineForm(forms.ModelForm):
    class Meta:
        model = Guideline
        fields = ["domain", "source", "title", "body"]
        widgets = {"body": forms.Textarea(attrs={"rows": 18})}


@require_GET
def guideline_list(request: HttpRequest) -> HttpResponse:
    return render(request, "training/guidelines/list.html", {"guidelines": guidelines.guideline_list()})


@require_GET
def guideline_detail(request: HttpRequest, guideline_id: int) -> HttpResponse:
    guideline = get_object_or_404(guidelines.guideline_list(), pk=guideline_id)
    return render(request, "training/guidelines/detail.html", {"guideline": guideline})


@require_GET
def guideline_show(request: HttpRequest) -> HttpResponse:
    """The guide that applies to ``?domain=<slug or id>&source=<review source>`` (links from flags and items)."""
    value = request.GET.get("domain", "")
    domain = Domain.objects.filter(pk=int(value) if value.isdigit() else None).first() or Domain.objects.filter(slug=value).first()
    source = request.GET.get("source", "")
    guideline = guidelines.guideline_for(domain=domain, source=source if source in ReviewItem.Source.values else None)
    if guideline is None:
        messages.info(request, _("No annotation guide applies here yet."))
        return redirect("training:guideline-list")
    return redirect("training:guideline-detail", guideline_id=guideline.pk)


@require_GET
def guideline_history(request: HttpRequest, guideline_id: int) -> HttpResponse:
    guideline = get_object_or_404(Guideline, pk=guideline_id)
    return render(request, "training/guidelines/history.html", {"guideline": guideline, "rows": guidelines.guideline_history(guideline=guideline)})


def _edit(request: HttpRequest, guideline: Guideline | None) -> HttpResponse:
    form = GuidelineForm(request.POST or None, instance=guideline)
    if request.method == "POST" and form.is_valid():
        saved = guidelines.guideline_save(guideline=form.instance, user=request.user)
        messages.success(request, _("Guide saved."))
        return redirect(reverse("training:guideline-detail", args=[saved.pk]))
    return render(request, "training/guidelines/form.html", {"form": form, "guideline": guideline})


@require_http_methods(["GET", "POST"])
@role_required(MAINTAINER)
def guideline_create(request: HttpRequest) -> HttpResponse:
    return _edit(request, None)


@require_http_methods(["GET", "POST"])
@role_required(MAINTAINER)
def guideline_edit(request: HttpRequest, guideline_id: int) -> HttpResponse:
    return _edit(request, get_object_or_404(Guideline, pk=guideline_id))
