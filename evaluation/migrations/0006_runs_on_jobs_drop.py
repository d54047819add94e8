from django.db import migrations, models
import django.db.models.deletion


class Migration(migrations.Migration):
    dependencies = [("evaluation", "0005_runs_on_jobs_copy")]
    operations = [
        *[migrations.RemoveField(model_name="evaluationrun", name=name) for name in (
            "status", "error", "log", "requested_by", "started_at", "finished_at", "worker",
        )],
        *[migrations.RemoveField(model_name="leaderboard", name=name) for name in ("status", "error", "requested_by", "finished_at")],
        migrations.AlterField(
            model_name="evaluationrun", name="job",
            field=models.OneToOneField(on_delete=django.db.models.deletion.PROTECT, related_name="evaluation_run", to="jobs.job"),
        ),
        migrations.AlterField(
            model_name="leaderboard", name="job",
            field=models.OneToOneField(on_delete=django.db.models.deletion.PROTECT, related_name="leaderboard", to="jobs.job"),
        ),
    ]
