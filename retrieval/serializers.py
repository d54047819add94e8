"""REST shapes of search, answers and flags. Serializers validate and present; services do the work."""
from __future__ import annotations

import re

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from config.api import ID_MAX

from glossary.models import Domain, Entry
from retrieval.models import Flag, LabelledQuestion, QuestionLog
from retrieval.hybrid import MODES as SEARCH_MODES


class SearchQuerySerializer(serializers.Serializer):
    q = serializers.CharField(max_length=settings.QUERY_MAX_CHARS, trim_whitespace=True, help_text="The query (a term, an acronym or a question).")
    top_k = serializers.IntegerField(min_value=1, max_value=100, default=10, required=False)
    mode = serializers.ChoiceField(choices=SEARCH_MODES, default="hybrid", required=False)
    version = serializers.CharField(
        required=False, default="champion", help_text='"champion" (default), "base", a version number ("3" or "v3") or "id:<pk>".'
    )
    preprocess = serializers.BooleanField(default=True, required=False, help_text="Spelling correction, acronym expansion, translation.")


_NOT_PLAIN_TEXT = re.compile("[\x00\ud800-\udfff]")  # what CharField's validators refuse besides blanks and length
_SEARCH_DEFAULTS = {"top_k": 10, "mode": "hybrid", "version": "champion", "preprocess": True}


def search_query_params(query_params) -> dict:
    """SearchQuerySerializer's validated data for these query parameters; its errors (ValidationError) otherwise.

    A search's usual parameters (a question, and top_k, mode, version, preprocess each given once, in their plain
    form) are read here as the serializer reads them; anything else goes through the serializer itself. Building
    the serializer (a deep copy of its fields on every request) and running its fields cost about 0.5 ms of a warm
    search's CPU through the API, a sixth of what the search costs besides encoding the question. A test checks
    that the two agree on every value the shortcut takes."""
    plain = _plain_search_params(query_params)
    if plain is not None:
        return plain
    params = SearchQuerySerializer(data=query_params)
    params.is_valid(raise_exception=True)
    return dict(params.validated_data)


def _plain_search_params(query_params) -> dict | None:
    """The validated data when each parameter is given at most once and in a form the serializer takes as it is
    (after stripping the texts); None to let the serializer decide (errors, and every unusual form)."""
    data = {}
    for name in ("q", "top_k", "mode", "version", "preprocess"):
        values = query_params.getlist(name)
        if not values:
            if name == "q":
                return None
            data[name] = _SEARCH_DEFAULTS[name]
            continue
        if len(values) != 1:
            return None
        value = values[0]
        if name in ("q", "version"):
            value = value.strip()
            if not value or _NOT_PLAIN_TEXT.search(value) or (name == "q" and len(value) > settings.QUERY_MAX_CHARS):
                return None
        elif name == "top_k":
            if not (value.isascii() and value.isdigit() and len(value) <= 3 and 1 <= int(value) <= 100):
                return None
            value = int(value)
        elif name == "mode":
            if value not in SEARCH_MODES:
                return None
        elif value.lower() in _BOOLEAN_TRUE:
            value = True
        elif value.lower() in _BOOLEAN_FALSE:
            value = False
        else:
            return None
        data[name] = value
    return data


_BOOLEAN_TRUE = {value for value in serializers.BooleanField.TRUE_VALUES if isinstance(value, str)}
_BOOLEAN_FALSE = {value for value in serializers.BooleanField.FALSE_VALUES if isinstance(value, str)}


class HitSerializer(serializers.Serializer):
    entry_id = serializers.IntegerField()
    term = serializers.CharField()
    domain = serializers.CharField(allow_blank=True)
    definition = serializers.CharField(required=False, allow_blank=True, help_text="The entry's definition (tells homonyms apart).")
    passage_type = serializers.CharField(allow_null=True, help_text='"definition", "context" or "question" (a known question); null when only BM25 or an exact match found the entry.')
    passage_position = serializers.IntegerField(allow_null=True)
    passage_text = serializers.CharField()
    dense_score = serializers.FloatField(allow_null=True)
    lexical_score = serializers.FloatField(allow_null=True)
    dense_rank = serializers.IntegerField(allow_null=True)
    lexical_rank = serializers.IntegerField(allow_null=True)
    fused_score = serializers.FloatField()
    rank = serializers.IntegerField()
    exact_match = serializers.BooleanField()
    answered = serializers.BooleanField(required=False, help_text="An expert answered this very question with this entry (a known question): it comes first.")


class ProcessedQuerySerializer(serializers.Serializer):
    original = serializers.CharField()
    language = serializers.CharField(allow_null=True)
    corrected = serializers.CharField()
    corrections = serializers.ListField(child=serializers.ListField(child=serializers.CharField()))
    expansions = serializers.ListField(child=serializers.CharField())
    translation = serializers.CharField(allow_null=True)
    translation_skipped_reason = serializers.CharField(allow_null=True)
    final = serializers.CharField()
    steps = serializers.DictField(child=serializers.BooleanField())


class SearchResultSerializer(serializers.Serializer):
    query = serializers.CharField()
    processed = ProcessedQuerySerializer(allow_null=True)
    version = serializers.CharField(help_text="The model version that searched.")
    version_number = serializers.IntegerField()
    mode = serializers.CharField()
    index_revision = serializers.IntegerField()
    hits = HitSerializer(many=True)
    timings_ms = serializers.DictField(child=serializers.FloatField())


class AnswerRequestSerializer(serializers.Serializer):
    question = serializers.CharField(max_length=settings.QUERY_MAX_CHARS, trim_whitespace=True)
    version = serializers.CharField(required=False, default="champion", help_text="As for search.")


class SourceSerializer(serializers.Serializer):
    number = serializers.IntegerField(help_text="n of the [Sn] marker in the answer.")
    entry_id = serializers.IntegerField()
    term = serializers.CharField()
    text = serializers.CharField()
    passage_type = serializers.CharField()
    score = serializers.FloatField()


class AmbiguousSenseSerializer(serializers.Serializer):
    entry_id = serializers.IntegerField()
    term = serializers.CharField()
    definition = serializers.CharField()
    domain = serializers.CharField(allow_blank=True)


class AnswerSerializer(serializers.ModelSerializer):
    """A logged answer: its id is what a flag refers to."""

    question_id = serializers.IntegerField(source="pk")
    answer = serializers.CharField(source="answer_text")
    sources = SourceSerializer(many=True)
    hits = HitSerializer(many=True)
    version = serializers.CharField(source="version.display_name", default=None)
    ambiguous_senses = serializers.SerializerMethodField(help_text="The senses of the asked acronym when the question does not say which (else empty).")

    class Meta:
        model = QuestionLog
        fields = [
            "question_id", "question", "answer", "answer_mode", "no_answer", "fallback_reason", "sources", "hits", "ambiguous_senses",
            "version", "latency_ms", "created_at",
        ]

    @extend_schema_field(AmbiguousSenseSerializer(many=True))
    def get_ambiguous_senses(self, log: QuestionLog) -> list[dict]:
        return AmbiguousSenseSerializer(log.ambiguous_senses or [], many=True).data


class NewEntrySerializer(serializers.Serializer):
    """The missing entry, created in place (as a draft unless a status is given)."""

    term = serializers.CharField(max_length=255)
    definition = serializers.CharField()
    kind = serializers.ChoiceField(choices=Entry.Kind.choices, required=False)
    domain = serializers.PrimaryKeyRelatedField(queryset=Domain.objects.all(), allow_null=True, required=False)
    variants = serializers.ListField(child=serializers.CharField(), required=False)
    contexts = serializers.ListField(child=serializers.CharField(), required=False)
    status = serializers.ChoiceField(choices=Entry.Status.choices, required=False)


class FlagCreateSerializer(serializers.Serializer):
    question_id = serializers.PrimaryKeyRelatedField(queryset=QuestionLog.objects.all(), help_text="question_id of the answer.")
    reason = serializers.ChoiceField(choices=Flag.Reason.choices)
    correct_entry = serializers.PrimaryKeyRelatedField(queryset=Entry.objects.all(), allow_null=True, required=False)
    new_entry = NewEntrySerializer(required=False, allow_null=True)
    comment = serializers.CharField(allow_blank=True, required=False, default="")

    def validate(self, data):
        if data.get("correct_entry") and data.get("new_entry"):
            raise serializers.ValidationError("Give correct_entry or new_entry, not both.")
        return data


class FlagSerializer(serializers.ModelSerializer):
    question_id = serializers.IntegerField(source="question_log_id")
    question = serializers.CharField(source="question_log.question")
    created_by = serializers.CharField(source="created_by.username", default=None)
    correct_entry_term = serializers.CharField(source="correct_entry.term", default=None)
    version = serializers.CharField(source="version.display_name", default=None)
    domain = serializers.CharField(source="domain.name", default=None)
    retrieved = HitSerializer(many=True)
    wrongly_ranked_entry_ids = serializers.ListField(child=serializers.IntegerField())
    checked_version = serializers.CharField(source="checked_version.display_name", default=None, help_text="The last version the corrected question was asked to.")

    class Meta:
        model = Flag
        fields = [
            "id", "question_id", "question", "reason", "status", "correct_entry", "correct_entry_term", "comment",
            "retrieved", "wrongly_ranked_entry_ids", "version", "domain", "created_by", "created_at",
            "corrected_at", "used_by_run_id", "checked_version", "checked_rank", "answered_right", "checked_at",
        ]
        read_only_fields = fields


class FlagFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Flag.Status.choices, required=False)
    domain = serializers.CharField(required=False, help_text="Domain id or slug.")
    version = serializers.CharField(required=False, help_text="As for search.")


class LabelledQuestionSerializer(serializers.ModelSerializer):
    entry_term = serializers.CharField(source="entry.term", read_only=True)
    entry_domain = serializers.CharField(source="entry.domain.name", default=None, read_only=True)
    created_by = serializers.CharField(source="created_by.username", default=None, read_only=True)
    wrong_entry_ids = serializers.ListField(child=serializers.IntegerField(), read_only=True)

    class Meta:
        model = LabelledQuestion
        fields = [
            "id", "text", "entry", "entry_term", "entry_domain", "kind", "kind_set_by", "source", "held_out",
            "wrong_entry_ids", "flag", "used_by_run_id", "created_by", "created_at",
        ]
        read_only_fields = fields


class LabelledQuestionCreateSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=settings.QUERY_MAX_CHARS, help_text="The question, as a user would ask it.")
    entry = serializers.PrimaryKeyRelatedField(queryset=Entry.objects.all(), help_text="The entry that answers it.")
    kind = serializers.ChoiceField(choices=LabelledQuestion.Kind.choices, required=False, help_text="Left out: set by the rules.")


class LabelledQuestionFilterSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=LabelledQuestion.Kind.choices, required=False)
    source = serializers.ChoiceField(choices=LabelledQuestion.Source.choices, required=False)
    held_out = serializers.BooleanField(required=False, allow_null=True, default=None)
    entry = serializers.IntegerField(required=False, min_value=1, max_value=ID_MAX, help_text="Entry id.")
    search = serializers.CharField(required=False, help_text="Words of the question or the entry's term.")
