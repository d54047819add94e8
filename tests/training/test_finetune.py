"""LoRA fine-tuning with the bundled MiniLM on a tiny slice (a few steps: fast)."""
import os
from dataclasses import replace

import datasets
import numpy as np
import pytest

from retrieval.catalogue import BUILTIN_MODELS, DEFAULT_MODEL_NAME, get_spec
from retrieval.embedding import encode_queries, load_model
from training.builder import ConceptData, build_pairs, to_dataset
from training.finetune import (
    FinetuneConfig,
    MergeMismatch,
    finetune,
    lora_target_modules,
    merge_and_verify,
    training_prompts,
)

pytestmark = pytest.mark.slow  # trains a real (tiny) model: a few seconds each on a free CPU

SPEC = get_spec(DEFAULT_MODEL_NAME)
TINY = FinetuneConfig(max_steps=2, batch_size=8, learning_rate=1e-3, logging_steps=1)
SAMPLE = ["URSSAF", "C'est quoi la DGFiP ?", "Organisme chargé de collecter les cotisations."]


def tiny_dataset(num_negatives=1):
    concepts = [
        ConceptData(
            entry_id=index,
            term=f"S{index}G",
            kind="acronym",
            definition=f"Le S{index}G est le service numéro {index} de gestion budgétaire.",
            contexts=(f"Dans un dossier, S{index}G est mobilisé.",),
            domain="Budget",
        )
        for index in range(8)
    ]
    pairs = build_pairs(concepts=concepts, test_entry_ids=set())[:32]
    return to_dataset(pairs, num_negatives=num_negatives, test_entry_ids=set())


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    model = load_model(SPEC)
    updates = []
    result = finetune(
        spec=SPEC,
        base_path_or_model=model,
        train_dataset=tiny_dataset(),
        config=TINY,
        output_dir=str(tmp_path_factory.mktemp("run")),
        device="cpu",
        progress=updates.append,
    )
    return model, result, updates


def test_finetune_saves_an_adapter_that_reloads_to_the_trained_model(trained):
    model, result, updates = trained
    assert result.steps == 2 and not result.stopped_early
    assert result.train_loss > 0 and result.samples_per_s > 0 and result.peak_rss_mb > 0
    assert result.target_modules == ("query", "key", "value") and result.device == "cpu"
    assert sorted(os.listdir(result.adapter_dir)) == ["adapter_config.json", "adapter_model.safetensors"]
    assert updates[-1]["step"] == 2
    assert all(update["total"] == 2 for update in updates)
    assert any(update["loss"] is not None for update in updates)

    reloaded = load_model(SPEC, adapter_path=result.adapter_dir)
    base = load_model(SPEC)
    trained_vectors = encode_queries(model, SPEC, SAMPLE)
    np.testing.assert_allclose(encode_queries(reloaded, SPEC, SAMPLE), trained_vectors, atol=1e-5)
    assert np.abs(encode_queries(base, SPEC, SAMPLE) - trained_vectors).max() > 1e-4  # it did learn something


def test_should_stop_cancels_after_the_current_step(tmp_path):
    result = finetune(
        spec=SPEC,
        base_path_or_model=SPEC.path,
        train_dataset=tiny_dataset(num_negatives=0),
        config=replace(TINY, max_steps=5, loss="cached_mnrl", cached_mini_batch_size=4),
        output_dir=str(tmp_path),
        device="cpu",
        should_stop=lambda: True,
    )
    assert result.steps == 1 and result.stopped_early
    assert os.path.isfile(os.path.join(result.adapter_dir, "adapter_config.json"))


def test_dataset_with_metadata_columns_or_unknown_loss_is_refused(tmp_path):
    with_metadata = datasets.Dataset.from_dict({"entry_id": [1], "anchor": ["a"], "positive": ["b"]})
    with pytest.raises(ValueError, match="exactly anchor, positive"):
        finetune(spec=SPEC, base_path_or_model=SPEC.path, train_dataset=with_metadata, config=TINY, output_dir=str(tmp_path))
    with pytest.raises(ValueError, match="unknown loss"):
        finetune(spec=SPEC, base_path_or_model=SPEC.path, train_dataset=tiny_dataset(), config=replace(TINY, loss="triplet"), output_dir=str(tmp_path))


def test_training_uses_the_catalogue_prompts_per_column():
    e5 = BUILTIN_MODELS["intfloat/multilingual-e5-large"]
    assert training_prompts(e5, ["anchor", "positive", "negative_1"]) == {
        "anchor": "query: ",
        "positive": "passage: ",
        "negative_1": "passage: ",
    }
    instruct = BUILTIN_MODELS["intfloat/multilingual-e5-large-instruct"]
    assert training_prompts(instruct, ["anchor", "positive"]) == {"anchor": instruct.query_prompt}
    assert training_prompts(SPEC, ["anchor", "positive"]) is None


def test_lora_targets_come_from_the_spec_the_model_or_the_override():
    base = load_model(SPEC)
    assert lora_target_modules(base, spec=SPEC) == ("query", "key", "value")
    # A spec naming layers this architecture does not have falls back to detection.
    assert lora_target_modules(base, spec=replace(SPEC, lora_target_modules=("q_proj", "v_proj"))) == ("query", "key", "value")
    assert lora_target_modules(base, spec=SPEC, override=("query", "value")) == ("query", "value")


def test_merge_is_saved_only_when_it_matches_the_adapter(trained, tmp_path):
    _, result, _ = trained
    merged_dir = tmp_path / "merged"
    merge = merge_and_verify(spec=SPEC, adapter_dir=result.adapter_dir, output_dir=str(merged_dir), sample_texts=SAMPLE, device="cpu")
    assert merge.ok and merge.max_abs_diff < 1e-4
    merged = load_model(replace(SPEC, path=str(merged_dir)))
    with_adapter = load_model(SPEC, adapter_path=result.adapter_dir)
    np.testing.assert_allclose(encode_queries(merged, SPEC, SAMPLE), encode_queries(with_adapter, SPEC, SAMPLE), atol=1e-4)

    refused_dir = tmp_path / "refused"
    with pytest.raises(MergeMismatch):
        merge_and_verify(spec=SPEC, adapter_dir=result.adapter_dir, output_dir=str(refused_dir), sample_texts=SAMPLE, atol=-1.0, device="cpu")
    assert not refused_dir.exists()
