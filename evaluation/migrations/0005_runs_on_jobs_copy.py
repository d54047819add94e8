"""Each existing evaluation and leaderboard gets its job; the jobs app's sweep replaces the evaluations' one."""
from django.db import migrations


def copy(apps, schema_editor):
    Job = apps.get_model("jobs", "Job")
    EvaluationRun = apps.get_model("evaluation", "EvaluationRun")
    Leaderboard = apps.get_model("evaluation", "Leaderboard")
    for run in EvaluationRun.objects.filter(job__isnull=True).order_by("pk"):
        job = Job.objects.create(
            kind="evaluation", status=run.status, log=run.log, error=run.error, worker=run.worker,
            requested_by_id=run.requested_by_id, started_at=run.started_at, finished_at=run.finished_at,
            heartbeat_at=run.finished_at or run.started_at, attempts=1 if run.started_at else 0,
        )
        Job.objects.filter(pk=job.pk).update(created_at=run.created_at)
        EvaluationRun.objects.filter(pk=run.pk).update(job=job)
    for board in Leaderboard.objects.filter(job__isnull=True).order_by("pk"):
        job = Job.objects.create(
            kind="leaderboard", status=board.status, error=board.error, requested_by_id=board.requested_by_id,
            started_at=board.created_at, finished_at=board.finished_at, heartbeat_at=board.finished_at or board.created_at,
        )
        Job.objects.filter(pk=job.pk).update(created_at=board.created_at)
        Leaderboard.objects.filter(pk=board.pk).update(job=job)
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(task="evaluation.tasks.fail_stale_evaluations").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("evaluation", "0004_runs_on_jobs_add"),
        ("jobs", "0002_stale_sweep_schedule"),
    ]
    operations = [migrations.RunPython(copy, migrations.RunPython.noop)]
