"""Default schedules (editable in the admin): nightly retrain when enough new material, stale-run sweep."""
from django.db import migrations


def create_schedules(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    nightly, _ = CrontabSchedule.objects.get_or_create(minute="0", hour="2", day_of_week="*", day_of_month="*", month_of_year="*", timezone="Europe/Paris")
    PeriodicTask.objects.get_or_create(
        name="Réentraînement nocturne",
        defaults={"task": "training.tasks.scheduled_retrain", "crontab": nightly, "queue": None,
                  "description": "Entraîne une nouvelle version si assez de nouveau matériel validé est arrivé depuis le dernier entraînement."},
    )
    every_five, _ = IntervalSchedule.objects.get_or_create(every=5, period="minutes")
    PeriodicTask.objects.get_or_create(
        name="Entraînements sans worker",
        defaults={"task": "training.tasks.fail_stale_runs", "interval": every_five,
                  "description": "Marque en échec les entraînements dont le worker ne répond plus."},
    )


def remove_schedules(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(task__in=["training.tasks.scheduled_retrain", "training.tasks.fail_stale_runs"]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("training", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(create_schedules, remove_schedules)]
