"""Django admin of the retrieval app. Versions are immutable: the admin reads them and requests promotions."""
from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from retrieval import flags, indexing, versions
from retrieval.models import EmbeddingModel, Flag, IndexState, ModelVersion, PromotionEvent, QuestionLog


@admin.register(EmbeddingModel)
class EmbeddingModelAdmin(admin.ModelAdmin):
    list_display = ("name", "path", "query_prompt", "document_prompt", "trust_remote_code", "created_at")
    search_fields = ("name", "path", "description")


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by the services only (audit logs, versions, indexes)."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ModelVersion)
class ModelVersionAdmin(ReadOnlyAdmin):
    list_display = ("number", "label", "base_model", "status", "parent", "training_run_id", "created_at", "promoted_at")
    list_filter = ("status", "base_model")
    search_fields = ("label", "base_model", "data_snapshot_hash")
    actions = ["promote", "rebuild_index"]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # every reported number must keep pointing at its version

    @admin.action(description=_("Promote the chosen version (once its index is built)"))
    def promote(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, _("Choose a single version."), messages.ERROR)
            return
        try:
            version = versions.model_version_request_promotion(version=queryset.get(), user=request.user, reason=str(_("Promotion from the admin site")))
        except ValidationError as error:
            self.message_user(request, " ".join(error.messages), messages.ERROR)
        else:
            self.message_user(request, _("Promotion of %(version)s requested.") % {"version": version}, messages.SUCCESS)

    @admin.action(description=_("Rebuild the index"))
    def rebuild_index(self, request, queryset):
        for version in queryset:
            indexing.index_rebuild_enqueue(version=version)
        self.message_user(request, _("Rebuild requested."), messages.SUCCESS)


@admin.register(PromotionEvent)
class PromotionEventAdmin(ReadOnlyAdmin):
    list_display = ("at", "action", "version", "previous_champion", "user", "reason_shown")
    list_filter = ("action",)

    @admin.display(description=_("reason"))
    def reason_shown(self, event: PromotionEvent) -> str:
        return event.reason_text


@admin.register(IndexState)
class IndexStateAdmin(ReadOnlyAdmin):
    list_display = ("version", "revision", "status", "passage_count", "entry_count", "built_at", "updated_at", "error")


@admin.register(QuestionLog)
class QuestionLogAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "question", "user", "version", "answer_mode", "no_answer", "top_score", "score_margin", "latency_ms")
    list_filter = ("answer_mode", "no_answer", "version")
    search_fields = ("question", "answer_text")
    date_hierarchy = "created_at"


@admin.register(Flag)
class FlagAdmin(admin.ModelAdmin):
    list_display = ("created_at", "reason", "status", "correct_entry", "domain", "version", "created_by")
    list_filter = ("status", "reason", "domain", "version")
    search_fields = ("question_log__question", "comment")
    fields = ("question_log", "reason", "correct_entry", "comment", "status", "domain", "version", "wrongly_ranked_entry_ids", "retrieved", "created_by")
    readonly_fields = ("question_log", "reason", "correct_entry", "comment", "domain", "version", "wrongly_ranked_entry_ids", "retrieved", "created_by")

    def has_add_permission(self, request) -> bool:
        return False  # flags come from the assistant page and the API

    def save_model(self, request, obj, form, change):
        flags.flag_set_status(flag=obj, status=form.cleaned_data["status"], user=request.user)
