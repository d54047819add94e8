from django.utils.text import capfirst
from rest_framework import serializers

from config.stored_messages import render_all
from evaluation.models import EvaluationRun
from evaluation.protocols import PROTOCOLS
from evaluation.gate_records import gate_of
from evaluation.reports import EvaluationReport, EvaluationSummary
from retrieval.hybrid import MODES
from retrieval.models import ModelVersion


def _model_label(model, name: str):
    """The label a model serializer gives the field (its verbose name), for the fields declared here."""
    return capfirst(model._meta.get_field(name).verbose_name)


def gate_as_stored(data: dict) -> dict:
    """A stored gate decision, read and written back through its type (``{}``: none)."""
    gate = gate_of(data)
    return gate.to_dict() if gate else {}


class ReportField(serializers.JSONField):
    """An evaluation run's report (``evaluation.reports.EvaluationReport``), in its stored shape."""

    def to_representation(self, value):
        return EvaluationReport.from_dict(value).to_dict()


class GateField(serializers.JSONField):
    """A promotion gate's decision (``evaluation.gate_records.GateRecord``), in its stored shape; ``{}`` when none."""

    def to_representation(self, value):
        return gate_as_stored(value)


class VersionMetricsField(serializers.JSONField):
    """A version's metrics: its latest evaluation's summary and its gate decision, each read through its type."""

    def to_representation(self, value):
        metrics = dict(value or {})
        if "evaluation" in metrics:
            metrics["evaluation"] = EvaluationSummary.from_dict(metrics["evaluation"]).to_dict()
        if "gate" in metrics:
            metrics["gate"] = gate_as_stored(metrics["gate"])
        return render_all(metrics)  # stored messages in the reader's language


class ModelVersionSerializer(serializers.ModelSerializer):
    name = serializers.CharField(source="display_name", read_only=True)
    parent = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)
    is_champion = serializers.SerializerMethodField()
    metrics = VersionMetricsField(read_only=True, label=_model_label(ModelVersion, "metrics"))
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
        return render_all(gate_as_stored(version.metrics.get("gate")))


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(help_text="Why (kept in the audit log of champion changes).")


class EvaluationRunSerializer(serializers.ModelSerializer):
    version_name = serializers.CharField(source="version.display_name", read_only=True)
    # The lifecycle is the run's job's (jobs.Job), read through.
    status = serializers.ChoiceField(source="job.status", choices=EvaluationRun.Status.choices, read_only=True)
    error = serializers.CharField(source="job.error_text", read_only=True)
    log = serializers.CharField(source="job.log_text", read_only=True)
    started_at = serializers.DateTimeField(source="job.started_at", read_only=True)
    finished_at = serializers.DateTimeField(source="job.finished_at", read_only=True)
    report = ReportField(read_only=True, label=_model_label(EvaluationRun, "report"))
    gate = GateField(read_only=True, label=_model_label(EvaluationRun, "gate"))

    class Meta:
        model = EvaluationRun
        fields = [
            "id", "version", "version_name", "status", "trigger", "training_run_id", "modes", "protocols", "query_source",
            "query_errors", "test_set_hash", "query_count", "passage_count", "report", "similarity", "ragas", "gate",
            "error", "log", "created_at", "started_at", "finished_at",
        ]
        read_only_fields = fields

    def to_representation(self, instance):
        # The query source, the query-file errors and the report's labels and notes are stored messages.
        return render_all(super().to_representation(instance))


class EvaluationRequestSerializer(serializers.Serializer):
    version = serializers.CharField(default="champion", help_text='"base", "champion", a version number ("v3" or "3") or "id:12".')
    modes = serializers.ListField(child=serializers.ChoiceField(choices=MODES), default=["dense", "hybrid"], min_length=1)
    protocols = serializers.ListField(child=serializers.ChoiceField(choices=PROTOCOLS), default=list(PROTOCOLS), min_length=1)
