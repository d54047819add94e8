"""The WiSE-FT guard: the adapter's delta scaled by a weight chosen on held-out queries (real tiny model)."""
from dataclasses import replace

import numpy as np
import pytest

from retrieval.embedding import encode_queries, load_model
from tests.training.test_finetune import SAMPLE, SPEC, TINY, tiny_dataset
from training.finetune import choose_merge_weight, dense_ranking_scorer, finetune, interpolate_adapter, merge_and_verify

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    model = load_model(SPEC)
    result = finetune(
        spec=SPEC, base_path_or_model=model, train_dataset=tiny_dataset(), config=replace(TINY, adapter_weight=1.0, learning_rate=5e-3),
        output_dir=str(tmp_path_factory.mktemp("run")), device="cpu",
    )
    return model, result


def test_weight_zero_gives_the_base_model_and_weight_one_the_adapter(trained):
    model, result = trained
    base = encode_queries(load_model(SPEC), SPEC, SAMPLE)
    adapter = encode_queries(load_model(SPEC, adapter_path=result.adapter_dir), SPEC, SAMPLE)
    assert result.adapter_weight == 1.0 and np.abs(base - adapter).max() > 1e-4
    interpolate_adapter(model, 0.0)
    np.testing.assert_allclose(encode_queries(model, SPEC, SAMPLE), base, atol=1e-5)
    interpolate_adapter(model, 1.0)
    np.testing.assert_allclose(encode_queries(model, SPEC, SAMPLE), adapter, atol=1e-5)
    interpolate_adapter(model, 0.5)
    halfway = encode_queries(model, SPEC, SAMPLE)
    interpolate_adapter(model, 1.0)
    assert 1e-5 < np.abs(halfway - base).max() < np.abs(adapter - base).max() + 1e-6


def test_choose_merge_weight_keeps_the_best_scoring_weight_and_restores_the_trained_one(trained):
    model, _ = trained
    interpolate_adapter(model, 0.5)
    wanted = encode_queries(model, SPEC, SAMPLE)
    interpolate_adapter(model, 1.0)
    trained_vectors = encode_queries(model, SPEC, SAMPLE)

    def closeness_to_halfway(candidate):
        return -float(np.abs(encode_queries(candidate, SPEC, SAMPLE) - wanted).max())

    weight, scores = choose_merge_weight(model, weights=(0.0, 0.25, 0.5, 0.75, 1.0), score=closeness_to_halfway)
    assert weight == 0.5 and set(scores) == {0.0, 0.25, 0.5, 0.75, 1.0} and scores[0.5] == max(scores.values())
    np.testing.assert_allclose(encode_queries(model, SPEC, SAMPLE), trained_vectors, atol=1e-6)
    # Ties go to the weight closest to the base model.
    assert choose_merge_weight(model, weights=(1.0, 0.25, 0.5), score=lambda _: 1.0)[0] == 0.25


def test_finetune_saves_the_chosen_weighted_adapter_and_its_merge_still_verifies(tmp_path):
    queries = ["Le S1G", "service numéro 2 de gestion budgétaire", "S3G"]
    passages = [f"S{index}G : Le S{index}G est le service numéro {index} de gestion budgétaire." for index in range(8)]
    scorer = dense_ranking_scorer(spec=SPEC, queries=queries, passages=passages, relevant=[{1}, {2}, {3}])
    model = load_model(SPEC)
    result = finetune(
        spec=SPEC, base_path_or_model=model, train_dataset=tiny_dataset(), config=TINY, output_dir=str(tmp_path / "run"),
        device="cpu", selection=scorer,
    )
    assert set(result.weight_scores) == set(TINY.merge_weights) and result.adapter_weight in TINY.merge_weights
    assert 0.0 <= min(result.weight_scores.values()) <= max(result.weight_scores.values()) <= 1.0
    interpolate_adapter(model, result.adapter_weight)
    expected = encode_queries(model, SPEC, SAMPLE)
    reloaded = load_model(SPEC, adapter_path=result.adapter_dir)
    np.testing.assert_allclose(encode_queries(reloaded, SPEC, SAMPLE), expected, atol=1e-5)
    merge = merge_and_verify(spec=SPEC, adapter_dir=result.adapter_dir, output_dir=str(tmp_path / "merged"), sample_texts=SAMPLE, device="cpu")
    assert merge.ok
