"""Evaluation API: model versions (metrics, gate, report, promote, roll back) and evaluation runs."""
from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
import django_filters
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from config import errors
from config.api import ErrorSerializer
from config.roles import IsMaintainerOrReadOnly
from evaluation import selectors
from evaluation import runs as evaluation_runs
from evaluation.models import EvaluationRun
from evaluation.serializers import EvaluationRequestSerializer, EvaluationRunSerializer, ModelVersionSerializer, ReasonSerializer
from retrieval import selectors as retrieval_selectors
from retrieval.models import ModelVersion


class ModelVersionViewSet(viewsets.ReadOnlyModelViewSet):
    """Every model version with its metrics and the gate's decision; maintainers promote and roll back."""

    serializer_class = ModelVersionSerializer
    permission_classes = [IsMaintainerOrReadOnly]
    queryset = ModelVersion.objects.none()
    lookup_value_regex = r"[0-9]+"
    filterset_fields = ["status", "base_model"]

    def get_queryset(self):
        return retrieval_selectors.model_version_list()

    @extend_schema(responses={200: OpenApiTypes.OBJECT, 404: ErrorSerializer})
    @action(detail=True, methods=["get"])
    def report(self, request, pk=None):
        """The version's latest evaluation report (benchmark, similarity, RAGAS, gate)."""
        run = selectors.latest_evaluation(version=self.get_object())
        if run is None:
            raise errors.NotFound("This version has no successful evaluation yet.")
        return Response(selectors.report_payload(run))

    @extend_schema(request=ReasonSerializer, responses={202: ModelVersionSerializer, 400: ErrorSerializer, 403: ErrorSerializer, 409: ErrorSerializer})
    @action(detail=True, methods=["post"])
    def promote(self, request, pk=None):
        """Promote this version: its index is built first, then it serves (202: the promotion is under way)."""
        body = ReasonSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        # evaluation.runs refuses with plain ValidationErrors: any refusal here is a conflict with the versions' state.
        with errors.refusals_as(errors.Conflict, code="not_promotable"):
            version = evaluation_runs.version_promote_request(version=self.get_object(), user=request.user, reason=body.validated_data["reason"])
        return Response(ModelVersionSerializer(version).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=ReasonSerializer, responses={202: ModelVersionSerializer, 400: ErrorSerializer, 403: ErrorSerializer, 409: ErrorSerializer})
    @action(detail=False, methods=["post"])
    def rollback(self, request):
        """Serve the previous champion again (its index is rebuilt first)."""
        body = ReasonSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        with errors.refusals_as(errors.Conflict, code="no_previous_champion"):
            version = evaluation_runs.version_rollback_request(user=request.user, reason=body.validated_data["reason"])
        return Response(ModelVersionSerializer(version).data, status=status.HTTP_202_ACCEPTED)


class EvaluationRunFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(field_name="job__status", choices=EvaluationRun.Status.choices)

    class Meta:
        model = EvaluationRun
        fields = ["version", "trigger"]


class EvaluationRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Evaluations of model versions; maintainers request new ones (run by a worker)."""

    serializer_class = EvaluationRunSerializer
    permission_classes = [IsMaintainerOrReadOnly]
    queryset = EvaluationRun.objects.none()
    filterset_class = EvaluationRunFilter

    def get_queryset(self):
        return selectors.evaluation_run_list()

    @extend_schema(request=EvaluationRequestSerializer, responses={202: EvaluationRunSerializer, 400: ErrorSerializer, 403: ErrorSerializer})
    def create(self, request):
        body = EvaluationRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        try:
            version = retrieval_selectors.model_version_get(ref=data["version"])
        except ModelVersion.DoesNotExist:
            raise exceptions.ValidationError({"version": [f"Unknown model version: {data['version']!r}."]}) from None
        run = evaluation_runs.evaluation_run_request(version=version, user=request.user, modes=data["modes"], protocols=data["protocols"])
        return Response(EvaluationRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)
