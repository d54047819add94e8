from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from jobs.models import Job


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ("id", "kind", "status", "worker", "created_at", "started_at", "finished_at")
    list_filter = ("kind", "status")
    search_fields = ("error", "worker", "task_id")
    # The log and the error hold stored messages: shown in the reader's language.
    exclude = ("log", "error")
    readonly_fields = [field.name for field in Job._meta.fields if field.name not in ("log", "error")] + ["log_shown", "error_shown"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description=_("log"))
    def log_shown(self, job: Job) -> str:
        return job.log_text

    @admin.display(description=_("error"))
    def error_shown(self, job: Job) -> str:
        return job.error_text
