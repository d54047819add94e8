"""Each model version pins its base model's prompts and encoding settings (ModelVersion.model_spec).

Existing versions get them from the catalogue as it is now (built-in models, settings.EXTRA_EMBEDDING_MODELS,
then the admin's rows): what they were served with until now.
"""
from django.conf import settings
from django.db import migrations, models

from retrieval.catalogue import BUILTIN_MODELS, ModelSpec, UnknownModelError, get_spec, pinned_spec


def catalogue_at_migration(apps) -> dict[str, ModelSpec]:
    specs = dict(BUILTIN_MODELS)
    for name, value in getattr(settings, "EXTRA_EMBEDDING_MODELS", {}).items():
        fields = {**value, "name": name}
        if "lora_target_modules" in fields:
            fields["lora_target_modules"] = tuple(fields["lora_target_modules"])
        specs[name] = ModelSpec(**fields)
    for row in apps.get_model("retrieval", "EmbeddingModel").objects.all():
        specs[row.name] = ModelSpec(
            name=row.name, path=row.path, query_prompt=row.query_prompt, document_prompt=row.document_prompt,
            max_seq_length=row.max_seq_length,
        )
    return specs


def pin_existing_versions(apps, schema_editor):
    ModelVersion = apps.get_model("retrieval", "ModelVersion")
    specs = catalogue_at_migration(apps)
    for version in ModelVersion.objects.all():
        try:
            spec = get_spec(version.base_model, extra=specs)
        except UnknownModelError:
            spec = ModelSpec(name=version.base_model, path=version.base_model)  # no prompts: what it could be served with
        ModelVersion.objects.filter(pk=version.pk).update(model_spec=pinned_spec(spec))


class Migration(migrations.Migration):

    dependencies = [
        ('retrieval', '0005_index_build_job'),
    ]

    operations = [
        migrations.AddField(
            model_name='modelversion',
            name='model_spec',
            field=models.JSONField(blank=True, default=dict, verbose_name="pinned encoding settings"),
        ),
        migrations.RunPython(pin_existing_versions, migrations.RunPython.noop),
    ]
