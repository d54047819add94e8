from django.contrib import admin

from jobs.models import Job


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ("id", "kind", "status", "worker", "created_at", "started_at", "finished_at")
    list_filter = ("kind", "status")
    search_fields = ("error", "worker", "task_id")
    readonly_fields = [field.name for field in Job._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False
