from django.contrib import admin

from training.models import (
    DataSnapshot,
    Equivalence,
    LLMQuestionSet,
    NegativeCandidate,
    QuestionLabel,
    QueueRefresh,
    ReviewDecision,
    ReviewItem,
    ReviewSourceSetting,
    TrainingConfig,
    TrainingRun,
)


@admin.register(TrainingConfig)
class TrainingConfigAdmin(admin.ModelAdmin):
    list_display = ["name", "is_default", "base_model", "epochs", "batch_size", "learning_rate", "lora_r", "min_new_material"]


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = ["id", "status", "trigger", "requested_by", "created_at", "model_version"]
    list_filter = ["job__status", "trigger"]
    readonly_fields = [field.name for field in TrainingRun._meta.fields]

    def has_add_permission(self, request):
        return False  # runs are requested through the retrain button, the API or the command


@admin.register(DataSnapshot)
class DataSnapshotAdmin(admin.ModelAdmin):
    list_display = ["content_hash", "total", "created_at"]
    readonly_fields = ["content_hash", "total", "counts", "artifact_path", "created_at"]


@admin.register(LLMQuestionSet)
class LLMQuestionSetAdmin(admin.ModelAdmin):
    list_display = ["entry", "model_name", "created_at"]
    readonly_fields = ["entry", "key", "questions", "model_name", "created_at"]

    def has_add_permission(self, request):
        return False  # a cache the training cycle writes (training.llm_questions); deleting a row makes it ask again


@admin.register(NegativeCandidate)
class NegativeCandidateAdmin(admin.ModelAdmin):
    list_display = ["anchor", "anchor_entry", "negative_entry", "score", "decision", "decided_by"]
    list_filter = ["decision"]


@admin.register(Equivalence)
class EquivalenceAdmin(admin.ModelAdmin):
    list_display = ["entry_a", "entry_b", "decided_by", "created_at"]


@admin.register(ReviewItem)
class ReviewItemAdmin(admin.ModelAdmin):
    list_display = ["key", "source", "status", "score", "rank", "domain", "leased_by", "lease_expires_at"]
    list_filter = ["source", "status"]
    search_fields = ["key"]


@admin.register(ReviewDecision)
class ReviewDecisionAdmin(admin.ModelAdmin):
    list_display = ["item", "decision", "user", "created_at"]
    list_filter = ["decision"]


@admin.register(QuestionLabel)
class QuestionLabelAdmin(admin.ModelAdmin):
    list_display = ["question_log", "entry"]


@admin.register(QueueRefresh)
class QueueRefreshAdmin(admin.ModelAdmin):
    list_display = ["started_at", "trigger", "status", "finished_at"]


@admin.register(ReviewSourceSetting)
class ReviewSourceSettingAdmin(admin.ModelAdmin):
    list_display = ["source", "required_decisions", "updated_at", "updated_by"]
    readonly_fields = ["updated_at", "updated_by"]

    def save_model(self, request, obj, form, change):
        # Through the service: open items that already have enough votes are settled at once.
        from training.workbench import review_overlap_set

        obj.pk = review_overlap_set(source=obj.source, required=obj.required_decisions, user=request.user).pk
