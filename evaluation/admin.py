"""Django admin of the evaluation app: runs and leaderboards are written by the services only."""
from __future__ import annotations

from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from evaluation import runs as evaluation_runs
from evaluation.models import EvaluationRun, Leaderboard


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(EvaluationRun)
class EvaluationRunAdmin(ReadOnlyAdmin):
    list_display = ("id", "version", "status", "trigger", "query_count", "test_set_hash", "training_run_id", "created_at", "finished_at")
    list_filter = ("job__status", "trigger", "version")
    search_fields = ("test_set_hash", "job__error")
    actions = ["evaluate_again"]

    @admin.action(description=_("Re-evaluate these versions"))
    def evaluate_again(self, request, queryset):
        for version in {run.version for run in queryset.select_related("version")}:
            evaluation_runs.evaluation_run_request(version=version, user=request.user)
        self.message_user(request, _("Evaluations requested."), messages.SUCCESS)


@admin.register(Leaderboard)
class LeaderboardAdmin(ReadOnlyAdmin):
    list_display = ("id", "status", "query_count", "test_set_hash", "created_at", "finished_at")
    list_filter = ("job__status",)
