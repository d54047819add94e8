"""The search, answer and flag API: thin views over retrieval.search, answering, flags and selectors.

Errors are JSON with a ``reason`` (config.api, which maps the services' refusals): 400 for an empty or too long
query, an unknown version or an invalid flag; 403 when a user without the expert role flags; 503 when search is
unavailable.
"""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, generics, status
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from config import errors
from config.api import ErrorSerializer
from config.roles import IsExpertOrReadOnly
from retrieval import labelled, selectors, serving
from retrieval.answering import answer_question
from retrieval.flags import flag_create
from retrieval.indexing import SearchUnavailableError
from retrieval.search import search, search_payload
from retrieval.models import LabelledQuestion, ModelVersion
from retrieval.serializers import (
    AnswerRequestSerializer,
    AnswerSerializer,
    FlagCreateSerializer,
    FlagFilterSerializer,
    FlagSerializer,
    LabelledQuestionCreateSerializer,
    LabelledQuestionFilterSerializer,
    LabelledQuestionSerializer,
    SearchQuerySerializer,
    SearchResultSerializer,
    search_query_params,
)

ERRORS_READ = {400: ErrorSerializer, 401: ErrorSerializer, 429: ErrorSerializer, 503: ErrorSerializer}
ERRORS_WRITE = {400: ErrorSerializer, 401: ErrorSerializer, 403: ErrorSerializer, 429: ErrorSerializer}


def _version(ref: str) -> ModelVersion:
    try:
        return serving.version_for_search(ref=ref)
    except ModelVersion.DoesNotExist:
        raise exceptions.ValidationError({"version": [f"Unknown model version: {ref!r}."]}) from None


def _search_unavailable_as_refusal():
    # retrieval.indexing raises its own SearchUnavailableError (not yet a config.errors kind): Unavailable.
    return errors.refusals_as(errors.Unavailable, code="search_unavailable", of=(SearchUnavailableError,))


class SearchView(APIView):
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "search"

    @extend_schema(
        operation_id="search",
        summary="Search the validated glossary (hybrid dense + BM25, or one of them).",
        parameters=[SearchQuerySerializer],
        responses={200: SearchResultSerializer, **ERRORS_READ},
        tags=["search"],
    )
    def get(self, request):
        data = search_query_params(request.query_params)  # SearchQuerySerializer's validation, its usual case read directly
        with _search_unavailable_as_refusal():
            result = search(
                query=data["q"], top_k=data["top_k"], version=_version(data["version"]), mode=data["mode"], preprocess=data["preprocess"]
            )
        # Already the serializer's shape and types (search_payload): running it would cost more than the search's BM25.
        return Response(search_payload(result))


class AnswerView(APIView):
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "answer"

    @extend_schema(
        operation_id="answer",
        summary="Answer a question from the glossary, with numbered sources; the answer is logged (question_id).",
        request=AnswerRequestSerializer,
        responses={201: AnswerSerializer, **ERRORS_READ},
        tags=["search"],
    )
    def post(self, request):
        params = AnswerRequestSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        with _search_unavailable_as_refusal():
            _answer, log = answer_question(
                question=params.validated_data["question"], user=request.user, version=_version(params.validated_data["version"])
            )
        return Response(AnswerSerializer(log).data, status=status.HTTP_201_CREATED)


class FlagListCreateView(generics.ListCreateAPIView):
    """Flags on bad answers: anyone signed in reads them, experts create them."""

    permission_classes = [IsExpertOrReadOnly]
    serializer_class = FlagSerializer
    filter_backends: list = []

    def get_queryset(self):
        params = FlagFilterSerializer(data=self.request.query_params)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        version = _version(data["version"]) if data.get("version") else None
        return selectors.flag_list(status=data.get("status", ""), domain=data.get("domain"), version=version)

    @extend_schema(operation_id="flags_list", parameters=[FlagFilterSerializer], responses={200: FlagSerializer(many=True), **ERRORS_READ}, tags=["flags"])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        operation_id="flags_create",
        summary="Flag a bad answer (experts), with the right entry or a new one created in place.",
        request=FlagCreateSerializer,
        responses={201: FlagSerializer, **ERRORS_WRITE},
        tags=["flags"],
    )
    def post(self, request, *args, **kwargs):
        params = FlagCreateSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        flag = flag_create(
            question_log=data["question_id"],
            user=request.user,
            reason=data["reason"],
            correct_entry=data.get("correct_entry"),
            new_entry=data.get("new_entry"),
            comment=data.get("comment", ""),
        )
        return Response(FlagSerializer(selectors.flag_get(flag_id=flag.pk)).data, status=status.HTTP_201_CREATED)


class FlagDetailView(generics.RetrieveAPIView):
    serializer_class = FlagSerializer

    def get_queryset(self):
        return selectors.flag_list()

    @extend_schema(operation_id="flags_retrieve", responses={200: FlagSerializer, 401: ErrorSerializer, 404: ErrorSerializer}, tags=["flags"])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)



class LabelledQuestionListCreateView(generics.ListCreateAPIView):
    """Questions with known answers: anyone signed in reads them, experts write exam questions."""

    permission_classes = [IsExpertOrReadOnly]
    serializer_class = LabelledQuestionSerializer
    filter_backends: list = []

    def get_queryset(self):
        params = LabelledQuestionFilterSerializer(data=self.request.query_params)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        return labelled.labelled_question_list(
            kind=data.get("kind", ""), source=data.get("source", ""), held_out=data.get("held_out"), entry_id=data.get("entry"),
            search=data.get("search", ""),
        )

    @extend_schema(
        operation_id="labelled_questions_list", parameters=[LabelledQuestionFilterSerializer],
        responses={200: LabelledQuestionSerializer(many=True), **ERRORS_READ}, tags=["labelled questions"],
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        operation_id="labelled_questions_create",
        summary="Write an exam question (experts): a question and the entry that answers it; idempotent per question and entry.",
        request=LabelledQuestionCreateSerializer,
        responses={201: LabelledQuestionSerializer, **ERRORS_WRITE},
        tags=["labelled questions"],
    )
    def post(self, request, *args, **kwargs):
        params = LabelledQuestionCreateSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        question = labelled.labelled_question_record(
            text=data["text"], entry=data["entry"], source=LabelledQuestion.Source.EXAM, user=request.user, kind=data.get("kind"),
        )
        return Response(LabelledQuestionSerializer(labelled.labelled_question_get(question_id=question.pk)).data, status=status.HTTP_201_CREATED)
