"""Forms of the expert UI. They only check and shape input; the writes happen in glossary.services."""
from __future__ import annotations

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _

from glossary.imports import FORMATS
from glossary.models import Domain, Entry
from glossary.text import validate_clean_text


class LinesField(forms.CharField):
    """A textarea holding one value per line, cleaned to a list without blank lines."""

    widget = forms.Textarea(attrs={"rows": 3})

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def prepare_value(self, value):
        if isinstance(value, (list, tuple)):
            return "\n".join(value)
        return value

    def to_python(self, value) -> list[str]:
        text = super().to_python(value)
        return [line.strip() for line in text.splitlines() if line.strip()]

    def validate(self, value) -> None:
        super().validate(value)
        if len(value) > settings.ENTRY_MAX_LIST_ITEMS:
            raise ValidationError(
                _("Au plus %(max)s lignes (il y en a %(count)s).") % {"max": settings.ENTRY_MAX_LIST_ITEMS, "count": len(value)}, code="too_many",
            )

    def run_validators(self, value) -> None:
        for line in value or []:
            validate_clean_text(line)


class ServiceErrorsMixin:
    """Shows a ValidationError raised by a service next to the fields it names, or at the top."""

    def add_service_error(self, error: ValidationError) -> None:
        if not hasattr(error, "error_dict"):
            self.add_error(None, error)
            return
        for field, errors in error.error_dict.items():
            self.add_error(field if field in self.fields else None, errors)


class EntryFilterForm(forms.Form):
    q = forms.CharField(label=_("Rechercher"), required=False, max_length=200)
    domain = forms.ModelChoiceField(
        label=_("Domaine"), queryset=Domain.objects.all(), required=False, empty_label=_("Tous les domaines")
    )
    kind = forms.ChoiceField(label=_("Type"), choices=[("", _("Tous les types")), *Entry.Kind.choices], required=False)
    status = forms.ChoiceField(
        label=_("Statut"), choices=[("", _("Tous les statuts")), *Entry.Status.choices], required=False
    )

    def filters(self) -> dict:
        """Arguments for selectors.entry_list; a filter with an invalid value is ignored."""
        self.is_valid()
        data = self.cleaned_data
        domain = data.get("domain")
        return {
            "search": data.get("q", ""),
            "domain": domain.pk if domain else None,
            "kind": data.get("kind", ""),
            "status": data.get("status", ""),
        }


class EntryForm(ServiceErrorsMixin, forms.Form):
    term = forms.CharField(label=_("Terme ou sigle"), max_length=255, validators=[validate_clean_text])
    kind = forms.ChoiceField(label=_("Type"), choices=Entry.Kind.choices, initial=Entry.Kind.TERM)
    definition = forms.CharField(label=_("Définition"), widget=forms.Textarea(attrs={"rows": 4}), validators=[validate_clean_text])
    variants = LinesField(
        label=_("Variantes"), help_text=_("Une par ligne : orthographes, formes développées, alias.")
    )
    contexts = LinesField(
        label=_("Contextes d'usage"), help_text=_("Une phrase par ligne, montrant le terme en situation.")
    )
    domain = forms.ModelChoiceField(
        label=_("Domaine"), queryset=Domain.objects.all(), required=False, empty_label=_("(aucun)")
    )
    new_domain = forms.CharField(
        label=_("Ou nouveau domaine"),
        max_length=120,
        required=False,
        validators=[validate_clean_text],
        help_text=_("Saisissez un nom pour créer le domaine (il remplace le choix ci-dessus)."),
    )
    status = forms.ChoiceField(label=_("Statut"), choices=Entry.Status.choices, initial=Entry.Status.DRAFT)
    source = forms.CharField(label=_("Source"), max_length=255, required=False, validators=[validate_clean_text])
    source_url = forms.URLField(label=_("URL de la source"), max_length=500, required=False, assume_scheme="https")

    @staticmethod
    def initial_for(entry: Entry) -> dict:
        return {
            "term": entry.term,
            "kind": entry.kind,
            "definition": entry.definition,
            "variants": entry.variants,
            "contexts": entry.contexts,
            "domain": entry.domain_id,
            "status": entry.status,
            "source": entry.source,
            "source_url": entry.source_url,
            "revision": entry.revision,
        }


class EntryEditForm(EntryForm):
    # The revision the editor started from: the service refuses the edit if the entry moved on since.
    revision = forms.IntegerField(widget=forms.HiddenInput, min_value=1)


class BulkStatusForm(forms.Form):
    entry_ids = forms.ModelMultipleChoiceField(
        queryset=Entry.objects.all(), error_messages={"required": _("Aucune entrée sélectionnée.")}
    )
    bulk_status = forms.ChoiceField(choices=Entry.Status.choices)


FORMAT_LABELS = {
    "csv": _("CSV (colonnes term, definition, domain, kind, variants, contexts)"),
    "jsonl": _("JSONL (un objet JSON par ligne, mêmes champs)"),
    "xlsx": _("Excel .xlsx (mêmes colonnes que le CSV)"),
    "sigles": _("Dictionnaire des sigles de l'administration (CSV)"),
    "bercy": _("Jeu Bercy (JSONL, une entrée par cluster_id)"),
    "baconnier": _("Définitions Baconnier (tableau JSON term / definition)"),
}


class ImportUploadForm(forms.Form):
    file = forms.FileField(label=_("Fichier"))
    file_format = forms.ChoiceField(label=_("Format"), choices=[(name, FORMAT_LABELS[name]) for name in FORMATS])
    domain = forms.CharField(
        label=_("Domaine par défaut"),
        max_length=120,
        required=False,
        validators=[validate_clean_text],
        help_text=_("Appliqué aux lignes sans domaine ; créé s'il n'existe pas."),
    )
    status = forms.ChoiceField(
        label=_("Statut des entrées importées"),
        choices=[(Entry.Status.DRAFT, Entry.Status.DRAFT.label), (Entry.Status.VALIDATED, Entry.Status.VALIDATED.label)],
        initial=Entry.Status.DRAFT,
    )
    split = forms.ChoiceField(
        label=_("Partition"),
        choices=Entry.Split.choices,
        required=False,
        help_text=_("Fixe la partition d'évaluation de toutes les entrées importées."),
    )
    skip_invalid = forms.BooleanField(
        label=_("Ignorer les lignes invalides"),
        required=False,
        help_text=_("Sinon, une seule ligne invalide empêche tout l'import."),
    )

    def clean_file(self):
        # Checked before the file is read into memory (the import functions check it again).
        upload = self.cleaned_data["file"]
        if upload.size > settings.IMPORT_MAX_BYTES:
            raise ValidationError(
                _("Le fichier est trop volumineux (%(size)s) : la taille maximale est %(max)s.")
                % {"size": filesizeformat(upload.size), "max": filesizeformat(settings.IMPORT_MAX_BYTES)},
                code="too_large",
            )
        return upload

    def import_options(self) -> dict:
        data = self.cleaned_data
        return {
            "domain": data["domain"] or None,
            "status": data["status"],
            "split": data["split"],
            "skip_invalid": data["skip_invalid"],
        }


class ImportConfirmForm(forms.Form):
    # Names the upload being confirmed, so that a preview open in another tab cannot confirm a different file.
    token = forms.CharField(widget=forms.HiddenInput)
    skip_invalid = forms.BooleanField(label=_("Ignorer les lignes invalides"), required=False)
