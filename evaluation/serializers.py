from rest_framework import serializers

from evaluation.models import EvaluationRun
from evaluation.protocols import PROTOCOLS
from retrieval.hybrid import MODES
from retrieval.models import ModelVersion


class ModelVersionSerializer(serializers.ModelSerializer):
    name = serializers.CharField(source="display_name", read_only=True)
    parent = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)
    is_champion = serializers.SerializerMethodField()
    gate = serializers.SerializerMethodField(help_text="The promotion gate's decision, reasons and deltas (after training).")

    class Meta:
        model = ModelVersion
        fields = [
            "id", "number", "name", "label", "base_model", "parent", "status", "is_champion", "data_snapshot_hash",
            "training_run_id", "created_at", "promoted_at", "metrics", "gate",
        ]
        read_only_fields = fields

    def get_is_champion(self, version: ModelVersion) -> bool:
        return version.status == ModelVersion.Status.CHAMPION

    def get_gate(self, version: ModelVersion) -> dict:
        return version.metrics.get("gate", {})


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(help_text="Why (kept in the audit log of champion changes).")


class EvaluationRunSerializer(serializers.ModelSerializer):
    version_name = serializers.CharField(source="version.display_name", read_only=True)
    # The lifecycle is the run's job's (jobs.Job), read through.
    status = serializers.ChoiceField(source="job.status", choices=EvaluationRun.Status.choices, read_only=True)
    error = serializers.CharField(source="job.error", read_only=True)
    log = serializers.CharField(source="job.log", read_only=True)
    started_at = serializers.DateTimeField(source="job.started_at", read_only=True)
    finished_at = serializers.DateTimeField(source="job.finished_at", read_only=True)

    class Meta:
        model = EvaluationRun
        fields = [
            "id", "version", "version_name", "status", "trigger", "training_run_id", "modes", "protocols", "query_source",
            "query_errors", "test_set_hash", "query_count", "passage_count", "report", "similarity", "ragas", "gate",
            "error", "log", "created_at", "started_at", "finished_at",
        ]
        read_only_fields = fields


class EvaluationRequestSerializer(serializers.Serializer):
    version = serializers.CharField(default="champion", help_text='"base", "champion", a version number ("v3" or "3") or "id:12".')
    modes = serializers.ListField(child=serializers.ChoiceField(choices=MODES), default=["dense", "hybrid"], min_length=1)
    protocols = serializers.ListField(child=serializers.ChoiceField(choices=PROTOCOLS), default=list(PROTOCOLS), min_length=1)
