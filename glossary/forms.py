"""Forms of the expert UI. They only check and shape input; the writes happen in glossary.services."""
from __future__ import annotations

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _, pgettext_lazy

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
                _("At most %(max)s lines (there are %(count)s).") % {"max": settings.ENTRY_MAX_LIST_ITEMS, "count": len(value)}, code="too_many",
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
    q = forms.CharField(label=pgettext_lazy("verb", "Search"), required=False, max_length=200)
    domain = forms.ModelChoiceField(
        label=_("Domain"), queryset=Domain.objects.all(), required=False, empty_label=_("All domains")
    )
    kind = forms.ChoiceField(label=_("Kind"), choices=[("", _("All kinds")), *Entry.Kind.choices], required=False)
    status = forms.ChoiceField(
        label=_("Status"), choices=[("", _("All statuses")), *Entry.Status.choices], required=False
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
    term = forms.CharField(label=_("Term or acronym"), max_length=255, validators=[validate_clean_text])
    kind = forms.ChoiceField(label=_("Kind"), choices=Entry.Kind.choices, initial=Entry.Kind.TERM)
    definition = forms.CharField(label=_("Definition"), widget=forms.Textarea(attrs={"rows": 4}), validators=[validate_clean_text])
    variants = LinesField(
        label=_("Variants"), help_text=_("One per line: spellings, expanded forms, aliases.")
    )
    contexts = LinesField(
        label=_("Usage contexts"), help_text=_("One sentence per line, showing the term in use.")
    )
    domain = forms.ModelChoiceField(
        label=_("Domain"), queryset=Domain.objects.all(), required=False, empty_label=_("(none)")
    )
    new_domain = forms.CharField(
        label=_("Or new domain"),
        max_length=120,
        required=False,
        validators=[validate_clean_text],
        help_text=_("Type a name to create the domain (it replaces the choice above)."),
    )
    status = forms.ChoiceField(label=_("Status"), choices=Entry.Status.choices, initial=Entry.Status.DRAFT)
    source = forms.CharField(label=_("Source"), max_length=255, required=False, validators=[validate_clean_text])
    source_url = forms.URLField(label=_("Source URL"), max_length=500, required=False, assume_scheme="https")

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
        queryset=Entry.objects.all(), error_messages={"required": _("No entry selected.")}
    )
    bulk_status = forms.ChoiceField(choices=Entry.Status.choices)


FORMAT_LABELS = {
    "csv": _("CSV (columns term, definition, domain, kind, variants, contexts)"),
    "jsonl": _("JSONL (one JSON object per line, same fields)"),
    "xlsx": _("Excel .xlsx (same columns as the CSV)"),
    "sigles": _("Dictionary of French administration acronyms (CSV)"),
    "bercy": _("Bercy dataset (JSONL, one entry per cluster_id)"),
    "baconnier": _("Baconnier definitions (JSON array of term / definition)"),
}


class ImportUploadForm(forms.Form):
    file = forms.FileField(label=_("File"))
    file_format = forms.ChoiceField(label=_("Format"), choices=[(name, FORMAT_LABELS[name]) for name in FORMATS])
    domain = forms.CharField(
        label=_("Default domain"),
        max_length=120,
        required=False,
        validators=[validate_clean_text],
        help_text=_("Applied to rows without a domain; created if it does not exist."),
    )
    status = forms.ChoiceField(
        label=_("Status of the imported entries"),
        choices=[(Entry.Status.DRAFT, Entry.Status.DRAFT.label), (Entry.Status.VALIDATED, Entry.Status.VALIDATED.label)],
        initial=Entry.Status.DRAFT,
    )
    split = forms.ChoiceField(
        label=_("Split"),
        choices=Entry.Split.choices,
        required=False,
        help_text=_("Pins the evaluation split of every imported entry."),
    )
    skip_invalid = forms.BooleanField(
        label=_("Skip invalid rows"),
        required=False,
        help_text=_("Otherwise a single invalid row stops the whole import."),
    )

    def clean_file(self):
        # Checked before the file is read into memory (the import functions check it again).
        upload = self.cleaned_data["file"]
        if upload.size > settings.IMPORT_MAX_BYTES:
            raise ValidationError(
                _("The file is too large (%(size)s): the maximum size is %(max)s.")
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
    skip_invalid = forms.BooleanField(label=_("Skip invalid rows"), required=False)
