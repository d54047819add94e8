"""Forms of the assistant and flag pages. They check and shape input; writes happen in retrieval.answering and retrieval.flags."""
from __future__ import annotations

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from glossary.models import Domain, Entry
from retrieval.models import Flag, LabelledQuestion, ModelVersion


class AskForm(forms.Form):
    question = forms.CharField(
        label=_("Votre question"),
        max_length=settings.QUERY_MAX_CHARS,
        widget=forms.TextInput(attrs={"placeholder": _("Par exemple : c'est quoi l'Urssaf ?"), "autocomplete": "off"}),
    )


class FlagForm(forms.Form):
    """A bad answer: why, the right entry (picked among suggestions) or a new one written in place, a comment."""

    reason = forms.ChoiceField(label=_("Motif"), choices=Flag.Reason.choices)
    correct_entry = forms.ModelChoiceField(label=_("Bonne entrée"), queryset=Entry.objects.all(), required=False, widget=forms.HiddenInput)
    new_term = forms.CharField(label=_("Terme"), max_length=255, required=False)
    new_kind = forms.ChoiceField(label=_("Type"), choices=Entry.Kind.choices, initial=Entry.Kind.TERM, required=False)
    new_definition = forms.CharField(label=_("Définition"), widget=forms.Textarea(attrs={"rows": 2}), required=False)
    new_domain = forms.ModelChoiceField(label=_("Domaine"), queryset=Domain.objects.all(), required=False, empty_label=_("Aucun"))
    comment = forms.CharField(label=_("Commentaire"), widget=forms.Textarea(attrs={"rows": 2}), required=False)

    def clean(self):
        data = super().clean()
        writes_entry = bool(data.get("new_term") or data.get("new_definition"))
        if writes_entry and not (data.get("new_term") and data.get("new_definition")):
            raise ValidationError(_("Pour créer l'entrée manquante, indiquez son terme et sa définition."))
        if writes_entry and data.get("correct_entry"):
            raise ValidationError(_("Choisissez la bonne entrée ou créez-en une, pas les deux."))
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
    status = forms.ChoiceField(label=_("Statut"), choices=[("", _("Tous les statuts")), *Flag.Status.choices], required=False)
    domain = forms.ModelChoiceField(label=_("Domaine"), queryset=Domain.objects.all(), required=False, empty_label=_("Tous les domaines"))
    version = forms.ModelChoiceField(label=_("Version"), queryset=ModelVersion.objects.all(), required=False, empty_label=_("Toutes les versions"))

    def filters(self) -> dict:
        """Arguments for selectors.flag_list; a filter with an invalid value is ignored."""
        self.is_valid()
        data = self.cleaned_data
        domain, version = data.get("domain"), data.get("version")
        return {"status": data.get("status", ""), "domain": domain.pk if domain else None, "version": version}


class LabelledQuestionFilterForm(forms.Form):
    kind = forms.ChoiceField(label=_("Type"), choices=[("", _("Tous les types")), *LabelledQuestion.Kind.choices], required=False)
    source = forms.ChoiceField(label=_("Origine"), choices=[("", _("Toutes les origines")), *LabelledQuestion.Source.choices], required=False)
    held_out = forms.ChoiceField(
        label=_("Réservée à l'évaluation"), required=False,
        choices=[("", _("Toutes")), ("yes", _("réservées à l'évaluation")), ("no", _("pour l'entraînement"))],
    )
    search = forms.CharField(label=_("Recherche"), required=False, max_length=200)

    def filters(self) -> dict:
        """Arguments for retrieval.labelled.labelled_question_list; a filter with an invalid value is ignored."""
        self.is_valid()
        data = self.cleaned_data
        held_out = {"yes": True, "no": False}.get(data.get("held_out") or "")
        return {"kind": data.get("kind", ""), "source": data.get("source", ""), "held_out": held_out, "search": data.get("search", "")}


class LabelledQuestionForm(forms.Form):
    """An exam question written by an expert: the question, its entry (picked by search), its kind if known."""

    text = forms.CharField(label=_("Question"), max_length=settings.QUERY_MAX_CHARS)
    correct_entry = forms.ModelChoiceField(label=_("Bonne entrée"), queryset=Entry.objects.all(), error_messages={"required": _("Choisissez la bonne entrée.")})
    kind = forms.ChoiceField(label=_("Type"), choices=[("", _("selon les règles")), *LabelledQuestion.Kind.choices], required=False)


class LabelledQuestionKindForm(forms.Form):
    kind = forms.ChoiceField(label=_("Type"), choices=LabelledQuestion.Kind.choices)


class LabelledQuestionImportForm(forms.Form):
    file = forms.FileField(label=_("Fichier CSV ou JSONL"))
    format = forms.ChoiceField(label=_("Format"), choices=[("", _("d'après l'extension")), ("csv", "CSV"), ("jsonl", "JSONL")], required=False)

    def file_format(self) -> str:
        chosen = self.cleaned_data.get("format")
        if chosen:
            return chosen
        name = self.cleaned_data["file"].name.lower()
        return "jsonl" if name.endswith((".jsonl", ".ndjson", ".json")) else "csv"
