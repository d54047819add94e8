"""Each existing training run and queue refresh gets its job, with the lifecycle fields copied; the old
per-app stale sweep schedule gives way to the jobs app's one."""
from django.db import migrations

RUNNING_STAGES = {"mining": "mining", "training": "training"}


def copy(apps, schema_editor):
    Job = apps.get_model("jobs", "Job")
    TrainingRun = apps.get_model("training", "TrainingRun")
    QueueRefresh = apps.get_model("training", "QueueRefresh")
    for run in TrainingRun.objects.filter(job__isnull=True).order_by("pk"):
        status = run.status
        if status in ("mining", "training", "evaluating"):
            status = "running"
        job = Job.objects.create(
            kind="training", status=status, lock="training-cycle" if status in ("queued", "running") and run.lock else None,
            progress_step=run.progress_step, progress_total=run.progress_total, log=run.log, error=run.error,
            worker=run.worker, task_id=run.task_id, requested_by_id=run.requested_by_id, cancel_requested=run.cancel_requested,
            started_at=run.started_at, finished_at=run.finished_at, heartbeat_at=run.heartbeat_at, attempts=1 if run.started_at else 0,
        )
        Job.objects.filter(pk=job.pk).update(created_at=run.created_at)
        TrainingRun.objects.filter(pk=run.pk).update(job=job, stage=RUNNING_STAGES.get(run.status, ""))
    for refresh in QueueRefresh.objects.filter(job__isnull=True).order_by("pk"):
        job = Job.objects.create(
            kind="queue_refresh", status=refresh.status, error=refresh.error, requested_by_id=refresh.requested_by_id,
            started_at=refresh.started_at, finished_at=refresh.finished_at, heartbeat_at=refresh.finished_at or refresh.started_at,
        )
        Job.objects.filter(pk=job.pk).update(created_at=refresh.started_at)
        QueueRefresh.objects.filter(pk=refresh.pk).update(job=job)
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(task="training.tasks.fail_stale_runs").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("training", "0007_runs_on_jobs_add"),
        ("jobs", "0002_stale_sweep_schedule"),
    ]
    operations = [migrations.RunPython(copy, migrations.RunPython.noop)]
