"""REST shapes of the glossary. Serializers validate and present; writes go through glossary.services."""
from __future__ import annotations

from rest_framework import serializers

from config.api import ID_MAX, POSITIVE_INT_MAX

from django.conf import settings

from glossary.imports import EXPORT_FORMATS, FORMATS, IMPORT_STATUSES, PINNED_SPLITS
from glossary.models import Domain, Entry, ImportBatch
from glossary.text import validate_clean_text

# Every text an API client writes is refused (400, with the field) when it holds control characters or a
# lone surrogate: the same check as the forms, the importers and the services (glossary.text).
CLEAN = [validate_clean_text]


# Subsets keep the labels of the model's choices, so the schema shows them as the same enum.
PINNED_SPLIT_CHOICES = [(value, label) for value, label in Entry.Split.choices if value in PINNED_SPLITS]
IMPORT_STATUS_CHOICES = [(value, label) for value, label in Entry.Status.choices if value in IMPORT_STATUSES]


class DomainSerializer(serializers.ModelSerializer):
    entry_count = serializers.IntegerField(read_only=True, help_text="Number of entries in the domain.")

    class Meta:
        model = Domain
        fields = ["id", "name", "slug", "description", "entry_count", "created_at"]
        read_only_fields = ["slug", "created_at"]
        # Uniqueness is checked case-insensitively by the services, which answer with a field error.
        extra_kwargs = {"name": {"validators": CLEAN}, "description": {"validators": CLEAN}}


class ExampleSerializer(serializers.Serializer):
    question = serializers.CharField(validators=CLEAN)
    answer = serializers.CharField(allow_blank=True, required=False, default="", validators=CLEAN)


class EntrySerializer(serializers.ModelSerializer):
    """An entry as read: its content, status, split, provenance and the revision to send back on edit."""

    domain_name = serializers.CharField(source="domain.name", read_only=True, default=None, allow_null=True)
    domain_slug = serializers.CharField(source="domain.slug", read_only=True, default=None, allow_null=True)
    created_by = serializers.CharField(source="created_by.username", read_only=True, default=None, allow_null=True)
    # Empty when the entry has no source: a plain string, since "" is not a valid "uri" for schema validators.
    source_url = serializers.CharField(read_only=True, help_text="The source's URL, or empty.")
    variants = serializers.ListField(child=serializers.CharField())
    contexts = serializers.ListField(child=serializers.CharField())
    examples = ExampleSerializer(many=True)

    class Meta:
        model = Entry
        fields = [
            "id", "term", "kind", "definition", "variants", "contexts", "examples",
            "domain", "domain_name", "domain_slug", "status", "split", "split_pinned",
            "source", "source_url", "import_batch", "created_by", "created_at", "updated_at", "revision",
        ]
        read_only_fields = fields


class EntryInputSerializer(serializers.Serializer):
    """Fields an expert writes; the services normalise them and refuse duplicates."""

    term = serializers.CharField(max_length=255, validators=CLEAN)
    definition = serializers.CharField(validators=CLEAN)
    kind = serializers.ChoiceField(choices=Entry.Kind.choices, required=False)
    domain = serializers.PrimaryKeyRelatedField(queryset=Domain.objects.all(), allow_null=True, required=False)
    variants = serializers.ListField(
        child=serializers.CharField(allow_blank=True, validators=CLEAN), required=False, max_length=settings.ENTRY_MAX_LIST_ITEMS,
    )
    contexts = serializers.ListField(
        child=serializers.CharField(allow_blank=True, validators=CLEAN), required=False, max_length=settings.ENTRY_MAX_LIST_ITEMS,
    )
    examples = ExampleSerializer(many=True, required=False, max_length=settings.ENTRY_MAX_LIST_ITEMS)
    status = serializers.ChoiceField(choices=Entry.Status.choices, required=False)
    source = serializers.CharField(max_length=255, allow_blank=True, required=False, validators=CLEAN)
    source_url = serializers.URLField(max_length=500, allow_blank=True, required=False)


class EntryCreateSerializer(EntryInputSerializer):
    split = serializers.ChoiceField(
        choices=PINNED_SPLIT_CHOICES, required=False,
        help_text="Pin the entry to the training or the frozen test split; left out, training assigns it.",
    )


class EntryUpdateSerializer(EntryInputSerializer):
    revision = serializers.IntegerField(
        min_value=1, max_value=POSITIVE_INT_MAX, required=False, write_only=True,
        help_text="The revision the edit started from; when the entry has changed since, the API answers 409.",
    )


class HistoryChangeSerializer(serializers.Serializer):
    field = serializers.CharField()
    old = serializers.JSONField(allow_null=True)
    new = serializers.JSONField(allow_null=True)


class EntryHistorySerializer(serializers.Serializer):
    """One row of ``glossary.selectors.entry_history``: a historical record and what it changed."""

    HISTORY_TYPES = {"+": "created", "~": "changed", "-": "deleted"}

    history_id = serializers.IntegerField(source="record.history_id")
    date = serializers.DateTimeField(source="record.history_date")
    type = serializers.SerializerMethodField()
    user = serializers.CharField(source="record.history_user.username", default=None)
    revision = serializers.IntegerField(source="record.revision")
    status = serializers.CharField(source="record.status")
    changes = HistoryChangeSerializer(many=True)

    def get_type(self, row) -> str:
        return self.HISTORY_TYPES[row["record"].history_type]


class BulkStatusSerializer(serializers.Serializer):
    ids = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=ID_MAX), allow_empty=False, max_length=10_000)
    status = serializers.ChoiceField(choices=Entry.Status.choices)


class BulkStatusResultSerializer(serializers.Serializer):
    changed = serializers.IntegerField(help_text="How many entries changed status (those already in it are skipped).")


class EntryFilterSerializer(serializers.Serializer):
    """Query parameters of the entry list (the search semantics are those of the UI)."""

    SPLIT_VALUES = {"train": Entry.Split.TRAIN, "test": Entry.Split.TEST, "unassigned": Entry.Split.UNASSIGNED}

    search = serializers.CharField(required=False, help_text="Words in the term (accent- and case-insensitive) or the definition.")
    domain = serializers.CharField(required=False, help_text="Domain id or slug.")
    kind = serializers.ChoiceField(choices=Entry.Kind.choices, required=False)
    status = serializers.ChoiceField(choices=Entry.Status.choices, required=False)
    split = serializers.ChoiceField(choices=list(SPLIT_VALUES), required=False)

    def validate_split(self, value: str) -> str:
        return self.SPLIT_VALUES[value]


class _ImportOptionsSerializer(serializers.Serializer):
    file = serializers.FileField()
    format = serializers.ChoiceField(
        choices=list(FORMATS),
        help_text="csv, jsonl, xlsx (columns term, definition, domain, kind, variants, contexts...), or the "
        "layouts of known sources: sigles (acronym dictionary CSV), bercy (JSONL pairs), baconnier (JSON array).",
    )
    domain = serializers.CharField(
        allow_blank=True, default="", validators=CLEAN, help_text="Domain name for rows that name none (created when new).",
    )
    status = serializers.ChoiceField(choices=IMPORT_STATUS_CHOICES, default=Entry.Status.DRAFT, help_text="Status of the imported entries.")
    split = serializers.ChoiceField(
        choices=PINNED_SPLIT_CHOICES, allow_blank=True, default="", help_text="Pin every imported entry to this split.",
    )
    skip_invalid = serializers.BooleanField(default=False, help_text="Import the valid rows even when some are invalid.")
    dry_run = serializers.BooleanField(default=False, help_text="Check and preview the file without importing it.")


# "async" is a Python keyword, so the field that carries it is declared by name.
ImportRequestSerializer = type(
    "ImportRequestSerializer",
    (_ImportOptionsSerializer,),
    {
        "__module__": __name__,
        "__doc__": "A file to import into the glossary, with its options (multipart form).",
        "async": serializers.BooleanField(
            default=False, help_text="Queue the import for a worker and answer 202 with the batch id.",
        ),
    },
)


class RowErrorSerializer(serializers.Serializer):
    line = serializers.IntegerField(help_text="Line number in the file (1 = the header line for CSV).")
    reason = serializers.CharField()


class ImportReportSerializer(serializers.Serializer):
    """``glossary.imports.ImportReport.as_dict()``."""

    file_format = serializers.CharField()
    total_rows = serializers.IntegerField()
    valid_rows = serializers.IntegerField()
    created = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    errors = RowErrorSerializer(many=True)
    updated = serializers.IntegerField(help_text="Existing entries that received new variants, contexts or examples.")
    imported = serializers.BooleanField(help_text="Whether the import was carried out (false for a dry run or refused rows).")
    dry_run = serializers.BooleanField()
    batch_id = serializers.IntegerField(allow_null=True)
    preview = serializers.ListField(child=serializers.DictField(), help_text="The first rows as they would be imported.")


class ImportRejectedSerializer(ImportReportSerializer):
    """Rows were invalid and nothing was imported: the report, with the error fields of every API error."""

    reason = serializers.CharField()
    code = serializers.CharField()


class ImportBatchSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", read_only=True, default=None)
    # The lifecycle is the batch's job's (status in the import's words).
    status = serializers.ChoiceField(choices=ImportBatch.Status.choices, read_only=True)
    error = serializers.CharField(read_only=True)
    finished_at = serializers.DateTimeField(read_only=True, allow_null=True)

    class Meta:
        model = ImportBatch
        fields = [
            "id", "file_name", "file_format", "file_sha256", "options", "status", "created_count", "unchanged_count",
            "invalid_count", "report", "error", "created_by", "created_at", "finished_at",
        ]
        read_only_fields = fields


class ImportQueuedSerializer(serializers.Serializer):
    batch_id = serializers.IntegerField()
    status = serializers.CharField()
    url = serializers.CharField(help_text="Where to follow the import (GET).")


class ExportQuerySerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=list(EXPORT_FORMATS), default="csv")
