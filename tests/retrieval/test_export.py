"""Exporting a version as a plain sentence-transformers folder, and its download (maintainers only)."""
import io
import zipfile

import numpy as np
import pytest
from django.core.management import call_command
from sentence_transformers import SentenceTransformer

from retrieval import encoding, selectors, serving
from retrieval.models import ModelVersion
from tests.evaluation.test_runs import tiny_glossary

pytestmark = pytest.mark.django_db

TEXTS = ["c'est quoi la TVA ?", "Organisme qui collecte les cotisations sociales."]


@pytest.mark.slow
def test_a_fine_tuned_version_exports_to_a_folder_plain_sentence_transformers_loads(maintainer, tmp_path, settings):
    from tests.training.test_runs import TINY, _glossary
    from training import runs as training_runs
    from training import services as training_services

    _glossary()
    run = training_services.training_run_request(user=maintainer, overrides=TINY)
    training_runs.training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    version = run.model_version
    assert version is not None and version.adapter_path and version.merged_path, run.log + run.error
    serving.clear()

    target = tmp_path / "exported"
    call_command("export_model", f"v{version.number}", str(target))

    loaded = SentenceTransformer(str(target), device="cpu")
    spec = selectors.model_spec_get(name=version.base_model)
    assert np.allclose(loaded.encode(TEXTS, prompt_name="query", normalize_embeddings=True), encoding.encode_queries_with(version, TEXTS), atol=2e-4)
    assert np.allclose(loaded.encode(TEXTS, prompt_name="document", normalize_embeddings=True), encoding.encode_documents_with(version, TEXTS), atol=2e-4)
    assert loaded.prompts["query"] == spec.query_prompt
    card = (target / "README.md").read_text(encoding="utf-8")
    assert "sentence-transformers" in card and "## Lexique" in card
    assert version.data_snapshot_hash in card and "lora_r" in card  # data snapshot and training settings
    # The fine-tuned weights really differ from the base model's: the round trip is not trivially the base.
    base_vectors = encoding.encode_queries_with(selectors.model_version_get(ref="base"), TEXTS)
    assert not np.allclose(loaded.encode(TEXTS, prompt_name="query", normalize_embeddings=True), base_vectors, atol=1e-6)


def test_export_includes_checked_onnx_files_and_the_evaluation_numbers(tmp_path, settings):
    settings.ENCODER_BUILD_ON_INDEX = True
    serving.clear()
    tiny_glossary()
    base = selectors.model_version_get(ref="base")
    from retrieval import encoder_check

    encoder_check.encoders_build(version=base)
    base.refresh_from_db()
    base.metrics = {"def_only": {"hit@1": 0.75}}
    base.save(update_fields=["metrics"])
    target = tmp_path / "base"
    call_command("export_model", "base", str(target))
    assert (target / "onnx" / "model.onnx").exists() and (target / "onnx" / "model_qint8.onnx").exists()
    card = (target / "README.md").read_text(encoding="utf-8")
    assert "def_only.hit@1 | 0.7500" in card and "onnx-int8" in card
    loaded = SentenceTransformer(str(target), device="cpu")
    assert np.allclose(loaded.encode(TEXTS, normalize_embeddings=True), encoding.encode_queries_with(base, TEXTS), atol=1e-5)
    serving.clear()


def test_download_is_for_maintainers_only(client, expert, maintainer):
    tiny_glossary()
    base = selectors.model_version_get(ref="base")
    url = f"/versions/{base.pk}/export.zip"
    client.force_login(expert)
    assert client.get(url).status_code == 403
    client.logout()
    assert client.get(url).status_code in (302, 403)
    client.force_login(maintainer)
    response = client.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "application/zip" and response.streaming
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    names = set(archive.namelist())
    assert {"modules.json", "config_sentence_transformers.json", "README.md", "lexique_version.json"} <= names
    assert any(name.endswith(".safetensors") for name in names)


def test_export_refuses_a_non_empty_folder(tmp_path):
    tiny_glossary()
    (tmp_path / "x").write_text("x")
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("export_model", "base", str(tmp_path))
    assert ModelVersion.objects.filter(number=0).exists()
