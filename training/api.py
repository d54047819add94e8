"""Training API: request, follow and cancel runs; screen mined negatives. Refusals (409 for a run already going,
one already finished, a candidate already screened) are mapped from the services' errors by config.api."""
from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle

from config.api import ErrorSerializer
from config.roles import IsExpertOrReadOnly, IsMaintainerOrReadOnly
from training import selectors, services
from training.models import NegativeCandidate, TrainingConfig, TrainingRun
from training.serializers import NegativeCandidateSerializer, ScreeningDecisionSerializer, TrainingRunRequestSerializer, TrainingRunSerializer


class TrainingRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = TrainingRunSerializer
    lookup_value_regex = r"\d+"
    permission_classes = [IsMaintainerOrReadOnly]
    queryset = TrainingRun.objects.none()

    def get_queryset(self):
        return selectors.training_run_list()

    def get_throttles(self):
        if self.action == "create":
            self.throttle_scope = "retrain"
            return [ScopedRateThrottle()]
        return super().get_throttles()

    @extend_schema(request=TrainingRunRequestSerializer, responses={202: TrainingRunSerializer, 400: ErrorSerializer, 409: ErrorSerializer})
    def create(self, request):
        """Press the retrain button: queue a run (409, with the running one, if a run is already going)."""
        body = TrainingRunRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        config = None
        if "config" in data:
            config = get_object_or_404(TrainingConfig, name=data.pop("config"))
        run = services.training_run_request(user=request.user, trigger=TrainingRun.Trigger.API, config=config, overrides=data)
        return Response(TrainingRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={200: TrainingRunSerializer, 409: ErrorSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        run = services.training_run_cancel(run=self.get_object(), user=request.user)
        return Response(TrainingRunSerializer(run).data)


class NegativeCandidateViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = NegativeCandidateSerializer
    # Ids are numbers: anything else is a 404 from the URL, not a server error in the lookup.
    lookup_value_regex = r"\d+"
    permission_classes = [IsExpertOrReadOnly]
    queryset = NegativeCandidate.objects.none()

    def get_queryset(self):
        return selectors.screening_queue()

    @extend_schema(request=ScreeningDecisionSerializer, responses={200: NegativeCandidateSerializer, 409: ErrorSerializer})
    @action(detail=True, methods=["post"])
    def decide(self, request, pk=None):
        candidate = get_object_or_404(NegativeCandidate, pk=pk)
        body = ScreeningDecisionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        candidate = services.screening_decide(candidate=candidate, decision=body.validated_data["decision"], user=request.user)
        return Response(NegativeCandidateSerializer(candidate).data)
