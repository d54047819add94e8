"""Model versions: the champion every installation has, recorded by migrate (and by the services that need one),
never by a read."""
import pytest
from django.apps import apps as global_apps

from retrieval import search, selectors, versions
from retrieval.apps import champion_after_migrate
from retrieval.catalogue import DEFAULT_MODEL_NAME
from retrieval.models import ModelVersion


# ---- the champion ------------------------------------------------------------------------------------------

def test_migrate_records_the_base_version_as_champion(db):
    base = ModelVersion.objects.get(number=0)
    assert (base.status, base.base_model) == (ModelVersion.Status.CHAMPION, DEFAULT_MODEL_NAME)


def test_reading_the_champion_never_writes(db):
    ModelVersion.objects.all().delete()
    with pytest.raises(selectors.NoChampionError, match="migrate"):
        selectors.champion_version_get()
    with pytest.raises(ModelVersion.DoesNotExist):
        selectors.model_version_get(ref="base")
    with pytest.raises(ModelVersion.DoesNotExist):
        selectors.model_version_get(ref="champion")
    with pytest.raises(selectors.NoChampionError):
        selectors.previous_champion_get()
    assert not ModelVersion.objects.exists()


def test_the_service_that_needs_a_champion_records_base(glossary):
    ModelVersion.objects.all().delete()
    result = search.search(query="TVA")
    assert (result.version.number, result.version.status) == (0, ModelVersion.Status.CHAMPION)
    assert selectors.champion_version_get().pk == result.version.pk
    assert versions.champion_ensure().pk == result.version.pk and ModelVersion.objects.count() == 1


def test_champion_ensure_puts_base_back_when_nothing_serves(db):
    base = ModelVersion.objects.get(number=0)
    ModelVersion.objects.filter(pk=base.pk).update(status=ModelVersion.Status.ARCHIVED)
    assert versions.champion_ensure().pk == base.pk
    base.refresh_from_db()
    assert base.status == ModelVersion.Status.CHAMPION


def test_post_migrate_records_the_champion_once(db):
    ModelVersion.objects.all().delete()
    champion_after_migrate(sender=None, apps=global_apps)
    champion_after_migrate(sender=None, apps=global_apps)
    assert list(ModelVersion.objects.values_list("number", "status")) == [(0, ModelVersion.Status.CHAMPION)]
