"""The one stale-job sweep, every five minutes (editable in the admin)."""
from django.db import migrations


def create_schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every_five, _ = IntervalSchedule.objects.get_or_create(every=5, period="minutes")
    PeriodicTask.objects.get_or_create(
        name="Tâches sans worker",
        defaults={"task": "jobs.tasks.sweep_stale_jobs", "interval": every_five,
                  "description": "Relance ou marque en échec les tâches de fond dont le worker ne répond plus."},
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(task="jobs.tasks.sweep_stale_jobs").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0001_job"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(create_schedule, remove_schedule)]
