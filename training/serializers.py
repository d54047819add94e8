from rest_framework import serializers

from config.api import POSITIVE_INT_MAX
from training.models import NegativeCandidate, TrainingRun


class TrainingRunSerializer(serializers.ModelSerializer):
    model_version = serializers.StringRelatedField()
    snapshot_hash = serializers.CharField(source="snapshot.content_hash", default=None, read_only=True)
    progress_percent = serializers.IntegerField(read_only=True)
    # The cycle's status and error (training.pipeline.cycle_state); the rest is the training job's, read through.
    status = serializers.ChoiceField(choices=TrainingRun.Status.choices, read_only=True)
    error = serializers.CharField(read_only=True)
    started_at = serializers.DateTimeField(source="job.started_at", read_only=True)
    finished_at = serializers.DateTimeField(source="job.finished_at", read_only=True)
    progress_step = serializers.IntegerField(source="job.progress_step", read_only=True)
    progress_total = serializers.IntegerField(source="job.progress_total", read_only=True)
    log = serializers.CharField(read_only=True)

    class Meta:
        model = TrainingRun
        fields = [
            "id", "status", "trigger", "created_at", "started_at", "finished_at", "progress_step", "progress_total",
            "progress_percent", "current_loss", "model_version", "snapshot_hash", "config_values", "timings", "stats", "error", "log",
        ]
        read_only_fields = fields


class TrainingRunRequestSerializer(serializers.Serializer):
    config = serializers.CharField(required=False, help_text="Name of a training config (default: the default one).")
    epochs = serializers.FloatField(required=False, min_value=0.01, max_value=50)
    max_pairs = serializers.IntegerField(required=False, min_value=1, max_value=POSITIVE_INT_MAX)
    max_steps = serializers.IntegerField(required=False, min_value=1, max_value=POSITIVE_INT_MAX)


class NegativeCandidateSerializer(serializers.ModelSerializer):
    class Meta:
        model = NegativeCandidate
        fields = ["id", "anchor", "anchor_entry", "negative_entry", "negative_text", "score", "positive_score", "reason", "decision", "decided_at"]
        read_only_fields = fields


class ScreeningDecisionSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=["different", "same"])
