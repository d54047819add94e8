"""Forms of the assistant and flag pages. They check and shape input; writes happen in retrieval.answering and retrieval.flags."""
from __future__ import annotations

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _, pgettext_lazy

from glossary.models import Domain, Entry
from retrieval.models import Flag, LabelledQuestion, ModelVersion


class AskForm(forms.Form):
    question = forms.CharField(
        label=_("Your question"),
        max_length=settings.QUERY_MAX_CHARS,
        widget=forms.TextInput(attrs={"placeholder": _("For example: what is the Urssaf?"), "autocomplete": "off"}),
    )


class FlagForm(forms.Form):
    """A bad answer: why, the right entry (picked among suggestions) or a new one written in place, a comment."""

    reason = forms.ChoiceField(label=_("Reason"), choices=Flag.Reason.choices)
    correct_entry = forms.ModelChoiceField(label=_("Right entry"), queryset=Entry.objects.all(), required=False, widget=forms.HiddenInput)
    new_term = forms.CharField(label=_("Term"), max_length=255, required=False)
    new_kind = forms.ChoiceField(label=_("Kind"), choices=Entry.Kind.choices, initial=Entry.Kind.TERM, required=False)
    new_definition = forms.CharField(label=_("Definition"), widget=forms.Textarea(attrs={"rows": 2}), required=False)
    new_domain = forms.ModelChoiceField(label=_("Domain"), queryset=Domain.objects.all(), required=False, empty_label=_("None"))
    comment = forms.CharField(label=_("Comment"), widget=forms.Textarea(attrs={"rows": 2}), required=False)

    def clean(self):
        data = super().clean()
        writes_entry = bool(data.get("new_term") or data.get("new_definition"))
        if writes_entry and not (data.get("new_term") and data.get("new_definition")):
            raise ValidationError(_("To create the missing entry, give its term and its definition."))
        if writes_entry and data.get("correct_entry"):
            raise ValidationError(_("Choose the right entry or create one, not both."))
        return data

    def new_entry(self) -> dict | None:
        """entry_create's arguments for the entry written in the form, or None."""
        data = self.cleaned_data
        if not data.get("new_term"):
            return None
        return {
            "term": data["new_term"],
            "definition": data["new_definition"],
            "kind": data.get("new_kind") or Entry.Kind.TERM,
            "domain": data.get("new_domain"),
        }


class FlagFilterForm(forms.Form):
    status = forms.ChoiceField(label=_("Status"), choices=[("", _("All statuses")), *Flag.Status.choices], required=False)
    domain = forms.ModelChoiceField(label=_("Domain"), queryset=Domain.objects.all(), required=False, empty_label=_("All domains"))
    version = forms.ModelChoiceField(label=_("Version"), queryset=ModelVersion.objects.all(), required=False, empty_label=_("All versions"))

    def filters(self) -> dict:
        """Arguments for selectors.flag_list; a filter with an invalid value is ignored."""
        self.is_valid()
        data = self.cleaned_data
        domain, version = data.get("domain"), data.get("version")
        return {"status": data.get("status", ""), "domain": domain.pk if domain else None, "version": version}


class LabelledQuestionFilterForm(forms.Form):
    kind = forms.ChoiceField(label=_("Kind"), choices=[("", _("All kinds")), *LabelledQuestion.Kind.choices], required=False)
    source = forms.ChoiceField(label=pgettext_lazy("question origin", "Source"), choices=[("", _("All origins")), *LabelledQuestion.Source.choices], required=False)
    held_out = forms.ChoiceField(
        label=_("Held out for evaluation"), required=False,
        choices=[("", pgettext_lazy("feminine", "All")), ("yes", pgettext_lazy("plural", "held out for evaluation")), ("no", _("for training"))],
    )
    search = forms.CharField(label=_("Search"), required=False, max_length=200)

    def filters(self) -> dict:
        """Arguments for retrieval.labelled.labelled_question_list; a filter with an invalid value is ignored."""
        self.is_valid()
        data = self.cleaned_data
        held_out = {"yes": True, "no": False}.get(data.get("held_out") or "")
        return {"kind": data.get("kind", ""), "source": data.get("source", ""), "held_out": held_out, "search": data.get("search", "")}


class LabelledQuestionForm(forms.Form):
    """An exam question written by an expert: the question, its entry (picked by search), its kind if known."""

    text = forms.CharField(label=_("Question"), max_length=settings.QUERY_MAX_CHARS)
    correct_entry = forms.ModelChoiceField(label=_("Right entry"), queryset=Entry.objects.all(), error_messages={"required": _("Choose the right entry.")})
    kind = forms.ChoiceField(label=_("Kind"), choices=[("", _("by the rules")), *LabelledQuestion.Kind.choices], required=False)


class LabelledQuestionKindForm(forms.Form):
    kind = forms.ChoiceField(label=_("Kind"), choices=LabelledQuestion.Kind.choices)


class LabelledQuestionImportForm(forms.Form):
    file = forms.FileField(label=_("CSV or JSONL file"))
    format = forms.ChoiceField(label=_("Format"), choices=[("", _("from the file extension")), ("csv", "CSV"), ("jsonl", "JSONL")], required=False)

    def file_format(self) -> str:
        chosen = self.cleaned_data.get("format")
        if chosen:
            return chosen
        name = self.cleaned_data["file"].name.lower()
        return "jsonl" if name.endswith((".jsonl", ".ndjson", ".json")) else "csv"
