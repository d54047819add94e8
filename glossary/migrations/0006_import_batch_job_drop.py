from django.db import migrations, models
import django.db.models.deletion


class Migration(migrations.Migration):
    dependencies = [("glossary", "0005_import_batch_job_copy")]
    operations = [
        *[migrations.RemoveField(model_name="importbatch", name=name) for name in (
            "status", "error", "finished_at", "started_at", "worker", "attempts",
        )],
        migrations.AlterField(
            model_name="importbatch", name="job",
            field=models.OneToOneField(on_delete=django.db.models.deletion.PROTECT, related_name="import_batch", to="jobs.job"),
        ),
    ]
