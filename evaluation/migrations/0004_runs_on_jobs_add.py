from django.db import migrations, models
import django.db.models.deletion


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0001_job"),
        ("evaluation", "0003_stale_evaluations_schedule"),
    ]
    operations = [
        migrations.AddField(
            model_name="evaluationrun", name="job",
            field=models.OneToOneField(null=True, on_delete=django.db.models.deletion.PROTECT, related_name="evaluation_run", to="jobs.job"),
        ),
        migrations.AddField(
            model_name="leaderboard", name="job",
            field=models.OneToOneField(null=True, on_delete=django.db.models.deletion.PROTECT, related_name="leaderboard", to="jobs.job"),
        ),
    ]
