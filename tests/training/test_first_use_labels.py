"""Issue #17, items 7 and 8: codes shown as translated labels, one wording for the default configuration,
retrain defaults shown, local times on an entry."""
import datetime

import pytest
from django.template import Context, Template
from django.urls import reverse
from django.utils import timezone, translation

from glossary.models import ImportBatch
from tests.factories import EntryFactory, import_batch
from training import services
from training.forms import RetrainForm
from training.models import TrainingConfig

pytestmark = pytest.mark.django_db


def test_codes_render_as_translated_labels():
    template = Template("{% load code_labels %}{{ a|code_label }} / {{ b|code_label }} / {{ c|code_label }} / {{ d|code_label }}")
    context = Context({"a": "no_answer", "b": "small_margin", "c": "context", "d": "unknown_code"})
    assert template.render(context) == "sans réponse / faible écart entre les deux premières entrées / contexte d&#x27;usage / unknown_code"
    with translation.override("en"):
        assert template.render(context).startswith("no answer / small margin between the first two entries / usage context")


def test_retrain_form_shows_the_default_values_and_one_default_wording(maintainer_client):
    config = services.training_config_default_get()
    body = maintainer_client.get(reverse("training:run-list")).content.decode()
    assert f'placeholder="{config.epochs}"' in body
    assert "Configuration par défaut" in body and ">défaut<" not in body and ">par défaut<" not in body
    form = RetrainForm(data={"config": config.pk}, default_config=config)
    assert form.is_valid() and form.overrides() == {}  # placeholders are not overrides


def test_training_config_labels_are_french_with_an_english_translation():
    field = TrainingConfig._meta.get_field("learning_rate")
    assert str(field.verbose_name) == "taux d'apprentissage"
    with translation.override("en"):
        assert str(field.verbose_name) == "learning rate"


def test_an_entry_shows_its_creation_and_its_import_on_one_clock(expert_client, settings):
    settings.TIME_ZONE = "Europe/Paris"
    at = datetime.datetime(2025, 1, 15, 21, 43, tzinfo=datetime.timezone.utc)
    batch = import_batch(file_name="a.csv", file_format="csv", status=ImportBatch.Status.IMPORTED)
    ImportBatch.objects.filter(pk=batch.pk).update(created_at=at)
    entry = EntryFactory(import_batch=batch)
    type(entry).objects.filter(pk=entry.pk).update(created_at=at)
    body = expert_client.get(reverse("glossary:entry-detail", args=[entry.pk])).content.decode()
    assert "22:43" in body and "21:43" not in body
    batch.refresh_from_db()
    assert str(batch).endswith("2025-01-15 22:43)")
