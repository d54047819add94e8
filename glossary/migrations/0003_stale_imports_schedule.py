"""Default schedule (editable in the admin): the sweep of imports left running by a dead worker."""
from django.db import migrations


def create_schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every_five, _ = IntervalSchedule.objects.get_or_create(every=5, period="minutes")
    PeriodicTask.objects.get_or_create(
        name="Imports sans worker",
        defaults={"task": "glossary.tasks.fail_stale_imports", "interval": every_five,
                  "description": "Marque en échec les imports restés en cours après l'arrêt de leur worker."},
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(task="glossary.tasks.fail_stale_imports").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("glossary", "0002_import_batch_attempts"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(create_schedule, remove_schedule)]
