"""Review queue API: list items, lease the next one, decide (first decision wins: 409 for the second), undo (403
for someone else's decision). The services' refusals are mapped to statuses by config.api."""
from __future__ import annotations

from django.db.models import Q
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from config.api import ErrorSerializer
from config.roles import EXPERT, MAINTAINER, IsExpertOrReadOnly, has_role
from training import workbench
from training.models import ReviewDecision, ReviewItem


class ReviewItemSerializer(serializers.ModelSerializer):
    domain = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    leased_by = serializers.StringRelatedField()
    decisions = serializers.SerializerMethodField(help_text="The decisions this item accepts (choose needs a candidate entry id).")

    class Meta:
        model = ReviewItem
        fields = [
            "id", "key", "source", "status", "score", "rank", "domain_rank", "domain", "signals", "payload", "entry", "other_entry",
            "flag", "question_log", "negative", "version", "leased_by", "lease_expires_at", "decisions", "refreshed_at",
        ]
        read_only_fields = fields

    def get_decisions(self, item: ReviewItem) -> list[str]:
        return list(workbench.ALLOWED_DECISIONS[item.source])


class ReviewDecisionSerializer(serializers.ModelSerializer):
    user = serializers.StringRelatedField()
    undone_by = serializers.StringRelatedField()

    class Meta:
        model = ReviewDecision
        fields = ["id", "item", "user", "decision", "candidate", "snapshot", "effect", "created_at", "undone_at", "undone_by"]
        read_only_fields = fields


class DecideSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=ReviewDecision.Decision.choices)
    candidate = serializers.IntegerField(required=False, allow_null=True, help_text="Id of the chosen entry (decision \"choose\").")


_QUEUE_FILTERS = [
    OpenApiParameter("domain", OpenApiTypes.STR, description="Domain slug."),
    OpenApiParameter("source", OpenApiTypes.STR, enum=ReviewItem.Source.values),
]


def _queue_filters(request, *names: str) -> dict[str, str | None]:
    """The queue filters of the query string; a NUL character (which PostgreSQL refuses) is a 400, not a 500."""
    values = {name: request.query_params.get(name) or None for name in names}
    invalid = {name: "Must not contain a NUL character." for name, value in values.items() if value and "\x00" in value}
    if invalid:
        raise serializers.ValidationError(invalid)
    return values


def _require_expert(request) -> None:
    if not has_role(request.user, EXPERT):
        raise PermissionDenied("This action needs the expert role.")


class ReviewItemViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = ReviewItemSerializer
    permission_classes = [IsExpertOrReadOnly]
    queryset = ReviewItem.objects.none()
    lookup_value_regex = r"\d+"
    filter_backends: list = []

    def get_queryset(self):
        params = _queue_filters(self.request, "domain", "source", "status")
        status_filter = self.request.query_params.get("status", ReviewItem.Status.OPEN)
        return workbench.review_item_list(domain=params["domain"], source=params["source"], status=status_filter or None)

    @extend_schema(parameters=[*_QUEUE_FILTERS, OpenApiParameter("status", OpenApiTypes.STR, enum=ReviewItem.Status.values, description="Default: open.")])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(
        parameters=_QUEUE_FILTERS,
        responses={200: ReviewItemSerializer, 204: OpenApiResponse(description="Nothing left to review."), 403: ErrorSerializer},
    )
    @action(detail=False, methods=["get"], url_path="next")
    def next_item(self, request):
        """Lease the next item for the caller (experts only); the item is not served to anyone else meanwhile."""
        _require_expert(request)
        filters = _queue_filters(request, "domain", "source")
        item = workbench.review_item_next(user=request.user, domain=filters["domain"], source=filters["source"])
        if item is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(ReviewItemSerializer(item).data)

    @extend_schema(request=DecideSerializer, responses={201: ReviewDecisionSerializer, 400: ErrorSerializer, 409: ErrorSerializer})
    @action(detail=True, methods=["post"])
    def decide(self, request, pk=None):
        """Decide on an item; 409 when another decision came first (or another expert holds the item)."""
        item = get_object_or_404(ReviewItem, pk=pk)
        body = DecideSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        record = workbench.review_item_decide(item=item, user=request.user, decision=body.validated_data["decision"], candidate=body.validated_data.get("candidate"))
        return Response(ReviewDecisionSerializer(record).data, status=status.HTTP_201_CREATED)


class ReviewDecisionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = ReviewDecisionSerializer
    permission_classes = [IsExpertOrReadOnly]
    queryset = ReviewDecision.objects.none()
    lookup_value_regex = r"\d+"

    def get_queryset(self):
        decisions = ReviewDecision.objects.select_related("user", "undone_by").order_by("-created_at", "-pk")
        if has_role(self.request.user, MAINTAINER):
            return decisions
        # No peeking: while an item waits for other experts' decisions (or for an adjudicator), only its
        # maintainers see who decided what; others see their own decisions and those on settled items.
        return decisions.filter(Q(user=self.request.user) | ~Q(item__status__in=[ReviewItem.Status.OPEN, ReviewItem.Status.DISPUTED]))

    @extend_schema(request=None, responses={200: ReviewDecisionSerializer, 403: ErrorSerializer, 409: ErrorSerializer})
    @action(detail=True, methods=["post"])
    def undo(self, request, pk=None):
        """Undo a decision (its author or a maintainer), reverting its effect; its item is open again."""
        decision = get_object_or_404(ReviewDecision, pk=pk)
        decision = workbench.review_decision_undo(decision=decision, user=request.user)
        return Response(ReviewDecisionSerializer(decision).data)
