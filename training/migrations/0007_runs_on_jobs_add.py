from django.db import migrations, models
import django.db.models.deletion


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0001_job"),
        ("training", "0006_guideline"),
    ]
    operations = [
        migrations.AddField(
            model_name="trainingrun", name="job",
            field=models.OneToOneField(null=True, on_delete=django.db.models.deletion.PROTECT, related_name="training_run", to="jobs.job"),
        ),
        migrations.AddField(
            model_name="trainingrun", name="stage",
            field=models.CharField(blank=True, choices=[("mining", "mining"), ("training", "training")], max_length=10),
        ),
        migrations.AddField(
            model_name="queuerefresh", name="job",
            field=models.OneToOneField(null=True, on_delete=django.db.models.deletion.PROTECT, related_name="queue_refresh", to="jobs.job"),
        ),
    ]
