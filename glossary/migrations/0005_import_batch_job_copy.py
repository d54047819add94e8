"""Each existing import batch gets its job, with its lifecycle copied; the jobs app's sweep replaces the imports'
one, whose schedule now only deletes the uploads previewed and never confirmed."""
from django.db import migrations

JOB_STATUS = {"previewed": "succeeded", "imported": "succeeded", "queued": "queued", "running": "running", "failed": "failed"}


def copy(apps, schema_editor):
    Job = apps.get_model("jobs", "Job")
    ImportBatch = apps.get_model("glossary", "ImportBatch")
    for batch in ImportBatch.objects.filter(job__isnull=True).order_by("pk"):
        job = Job.objects.create(
            kind="import", status=JOB_STATUS.get(batch.status, "failed"), error=batch.error, worker=batch.worker,
            requested_by_id=batch.created_by_id, started_at=batch.started_at, finished_at=batch.finished_at,
            heartbeat_at=batch.finished_at or batch.started_at, attempts=batch.attempts,
        )
        Job.objects.filter(pk=job.pk).update(created_at=batch.created_at)
        ImportBatch.objects.filter(pk=batch.pk).update(job=job)
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    hourly, _ = IntervalSchedule.objects.get_or_create(every=1, period="hours")
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(task="glossary.tasks.fail_stale_imports").update(
        name="Aperçus d'import oubliés", task="glossary.tasks.delete_forgotten_uploads", interval=hourly,
        description="Supprime les fichiers prévisualisés puis jamais importés (après un jour).",
    )


def uncopy(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(task="glossary.tasks.delete_forgotten_uploads").update(
        name="Imports sans worker", task="glossary.tasks.fail_stale_imports",
    )


class Migration(migrations.Migration):
    dependencies = [
        ("glossary", "0004_import_batch_job_add"),
        ("jobs", "0002_stale_sweep_schedule"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(copy, uncopy)]
