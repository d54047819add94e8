from django.db import migrations, models
import django.db.models.deletion


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0002_stale_sweep_schedule"),
        ("glossary", "0003_stale_imports_schedule"),
    ]
    operations = [
        migrations.AddField(
            model_name="importbatch", name="job",
            field=models.OneToOneField(null=True, on_delete=django.db.models.deletion.PROTECT, related_name="import_batch", to="jobs.job"),
        ),
    ]
