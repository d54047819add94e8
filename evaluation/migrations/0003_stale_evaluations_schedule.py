"""Sweep for evaluations whose worker disappeared (editable in the admin)."""
from django.db import migrations


def create_schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every_ten, _ = IntervalSchedule.objects.get_or_create(every=10, period="minutes")
    PeriodicTask.objects.get_or_create(
        name="Évaluations sans worker",
        defaults={"task": "evaluation.tasks.fail_stale_evaluations", "interval": every_ten,
                  "description": "Marque en échec les évaluations dont le worker a disparu."},
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(task="evaluation.tasks.fail_stale_evaluations").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("evaluation", "0002_evaluation_worker"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(create_schedule, remove_schedule)]
