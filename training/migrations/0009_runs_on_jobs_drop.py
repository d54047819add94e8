from django.db import migrations, models
import django.db.models.deletion


class Migration(migrations.Migration):
    dependencies = [("training", "0008_runs_on_jobs_copy")]
    operations = [
        *[migrations.RemoveField(model_name="trainingrun", name=name) for name in (
            "status", "lock", "requested_by", "started_at", "finished_at", "heartbeat_at", "progress_step", "progress_total",
            "cancel_requested", "task_id", "worker", "log", "error",
        )],
        *[migrations.RemoveField(model_name="queuerefresh", name=name) for name in ("status", "requested_by", "finished_at", "error")],
        migrations.AlterField(
            model_name="trainingrun", name="job",
            field=models.OneToOneField(on_delete=django.db.models.deletion.PROTECT, related_name="training_run", to="jobs.job"),
        ),
        migrations.AlterField(
            model_name="queuerefresh", name="job",
            field=models.OneToOneField(on_delete=django.db.models.deletion.PROTECT, related_name="queue_refresh", to="jobs.job"),
        ),
    ]
