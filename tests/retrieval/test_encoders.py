"""ONNX query encoders: the check against torch, which variant serves, the forcing setting, the query cache."""
import threading

import numpy as np
import pytest
from django.core.files.base import ContentFile

from retrieval import artifacts, encoder_check, encoders, encoding, search, selectors, serving
from retrieval.embedding import QueryEmbeddingCache
from retrieval.models import ModelVersion

# ---- pure parts ------------------------------------------------------------------------------------------


def _unit(rows):
    rows = np.asarray(rows, dtype=np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_compare_refuses_a_variant_whose_queries_land_elsewhere():
    passages = _unit([[1, 0, 0], [0, 1, 0], [0, 0, 1]])
    torch_vectors = _unit([[1, 0.1, 0], [0.1, 1, 0], [0, 0.1, 1]])
    same = encoders.compare_variant(
        variant="onnx", torch_vectors=torch_vectors, variant_vectors=torch_vectors + 1e-4, passage_vectors=passages,
        passage_entry_ids=[1, 2, 3], relevant=[{1}, {2}, {3}],
    )
    assert same.passed and same.reason == "" and same.recall_at_1_torch == same.recall_at_1_variant == 100.0
    swapped = encoders.compare_variant(
        variant="onnx-int8", torch_vectors=torch_vectors, variant_vectors=torch_vectors[[1, 0, 2]], passage_vectors=passages,
        passage_entry_ids=[1, 2, 3], relevant=[{1}, {2}, {3}],
    )
    assert not swapped.passed
    assert swapped.recall_at_1_variant == pytest.approx(100 / 3, abs=0.01) and "Hit@1" in swapped.reason and "cosine" in swapped.reason


def test_choose_variant_takes_the_fastest_that_passed_and_never_a_refused_one():
    checks = {"onnx-int8": {"passed": False, "reason": "R@1"}, "onnx": {"passed": True}}
    assert encoders.choose_variant(checks) == "onnx"
    assert encoders.choose_variant({**checks, "onnx-int8": {"passed": True}}) == "onnx-int8"
    assert encoders.choose_variant(checks, forced="torch") == "torch"
    assert encoders.choose_variant(checks, forced="onnx") == "onnx"
    assert encoders.choose_variant(checks, forced="onnx-int8") == "torch"  # forced, but refused by its check
    assert encoders.choose_variant({}) == "torch"
    assert encoders.choose_variant(checks, available=lambda variant: False) == "torch"


def test_cache_returns_identical_vectors_counts_hits_and_is_per_version():
    calls = []

    def encode(texts):
        calls.append(list(texts))
        return np.array([[float(len(text)), 1.0] for text in texts], dtype=np.float32)

    cache = QueryEmbeddingCache(10)
    first = cache.get_or_encode(version_key=1, variant="onnx", texts=["c'est quoi  l'urssaf ?"], encode=encode)
    again = cache.get_or_encode(version_key=1, variant="onnx", texts=["  c'est quoi l'urssaf ?"], encode=encode)
    assert np.array_equal(first, again) and calls == [["c'est quoi l'urssaf ?"]]
    assert cache.stats()["hits"] == 1 and cache.stats()["misses"] == 1
    cache.get_or_encode(version_key=2, variant="onnx", texts=["c'est quoi l'urssaf ?"], encode=encode)
    cache.get_or_encode(version_key=1, variant="torch", texts=["c'est quoi l'urssaf ?"], encode=encode)
    assert len(calls) == 3  # another version, another encoder: encoded again
    again[0, 0] = 5.0  # a caller altering its copy does not alter the cache
    assert np.array_equal(cache.get_or_encode(version_key=1, variant="onnx", texts=["c'est quoi l'urssaf ?"], encode=encode), first)


def test_cache_is_bounded_lru_and_encodes_only_the_misses_of_a_batch():
    cache = QueryEmbeddingCache(2)
    encoded = []

    def encode(texts):
        encoded.extend(texts)
        return np.ones((len(texts), 3), dtype=np.float32)

    cache.get_or_encode(version_key=1, variant="torch", texts=["a", "b"], encode=encode)
    cache.get_or_encode(version_key=1, variant="torch", texts=["a"], encode=encode)  # a is now the most recent
    cache.get_or_encode(version_key=1, variant="torch", texts=["c"], encode=encode)  # evicts b
    assert cache.stats()["size"] == 2
    encoded.clear()
    cache.get_or_encode(version_key=1, variant="torch", texts=["a", "b", "c"], encode=encode)
    assert encoded == ["b"]


def test_cache_is_shared_safely_by_threads():
    cache = QueryEmbeddingCache(50)

    def encode(texts):
        return np.array([[hash(text) % 97, 1.0] for text in texts], dtype=np.float32)

    results, errors = {}, []

    def worker(n):
        try:
            for i in range(200):
                text = f"question {i % 20}"
                vector = cache.get_or_encode(version_key=1, variant="onnx", texts=[text], encode=encode)[0]
                assert results.setdefault(text, vector.tolist()) == vector.tolist()
        except Exception as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats = cache.stats()
    assert not errors and stats["hits"] + stats["misses"] == 8 * 200 and stats["size"] == 20 and stats["misses"] >= 20


# ---- through Django: a real export of the bundled model ---------------------------------------------------


def _broken_int8(model, folder):
    """The real export, then an int8 file from a model whose weights were scrambled: a damaged variant."""
    import onnx
    from onnx import numpy_helper

    files = encoders.export_onnx(model, folder)
    graph = onnx.load(str(folder / encoders.ONNX_FILES["onnx"]))
    rng = np.random.default_rng(0)
    for initializer in graph.graph.initializer:
        weights = numpy_helper.to_array(initializer)
        if weights.dtype == np.float32 and weights.ndim == 2:
            initializer.CopyFrom(numpy_helper.from_array(rng.permutation(weights.ravel()).reshape(weights.shape), initializer.name))
    onnx.save(graph, str(folder / encoders.ONNX_FILES["onnx-int8"]))
    return files


@pytest.fixture
def build_on_index(settings):
    settings.ENCODER_BUILD_ON_INDEX = True
    settings.QUERY_ENCODER = "auto"
    serving.clear()
    yield settings
    serving.clear()


def test_index_build_exports_checks_and_serves_the_int8_encoder(glossary, build_on_index):
    search.search(query="URSSAF", top_k=3)  # builds the base index, and with it the encoders
    base = ModelVersion.objects.get(number=0)
    check = base.encoder_check
    assert set(check["variants"]) == {"onnx", "onnx-int8"}
    for name, result in check["variants"].items():
        assert result["passed"], result
        assert result["queries"] > 0 and result["cosine_mean"] >= encoders.MIN_MEAN_COSINE
        assert abs(result["recall_at_1_torch"] - result["recall_at_1_variant"]) <= encoders.MAX_RECALL_DROP_POINTS
    assert check["served"] == "onnx-int8" and encoding.query_encoder_variant(base) == "onnx-int8"
    for path in check["checksums"]:
        assert artifacts.artifact_storage().exists(path)

    texts = ["c'est quoi l'urssaf", "taxe sur la valeur ajoutée"]
    served = encoding.encode_search_queries(base, texts)
    reference = encoding.encode_queries_with(base, texts)
    assert np.all(np.sum(served * reference, axis=1) > encoders.MIN_MEAN_COSINE)
    assert not np.allclose(served, reference, atol=1e-6)  # really another encoder than torch
    assert search.search(query="c'est quoi l'urssaf", top_k=1).hits[0].entry.term == "URSSAF"

    # The setting forces a backend that passed its check.
    build_on_index.QUERY_ENCODER = "torch"
    assert encoding.query_encoder_variant(base) == "torch"
    assert np.array_equal(encoding.encode_search_queries(base, texts), reference)
    build_on_index.QUERY_ENCODER = "onnx"
    assert encoding.query_encoder_variant(base) == "onnx"


def test_a_variant_that_disagrees_is_never_served_and_the_reason_is_recorded(db, build_on_index, maintainer_client):
    from tests.evaluation.test_runs import tiny_glossary

    tiny_glossary()  # with a test side: the check uses the frozen test queries
    build_on_index.ENCODER_BUILD_ON_INDEX = False
    base = selectors.model_version_get(ref="base")
    record = encoder_check.encoders_build(version=base, export=_broken_int8)
    base.refresh_from_db()
    assert base.encoder_check["query_source"] == "test"
    broken = base.encoder_check["variants"]["onnx-int8"]
    assert not broken["passed"] and "mean cosine" in broken["reason"]
    assert base.encoder_check["variants"]["onnx"]["passed"]
    assert record["served"] == "onnx" and encoding.query_encoder_variant(base) == "onnx"
    build_on_index.QUERY_ENCODER = "onnx-int8"
    assert encoding.query_encoder_variant(base) == "torch"  # forcing a refused variant does not serve it
    build_on_index.QUERY_ENCODER = "auto"

    from evaluation import runs as evaluation_runs

    run = evaluation_runs.evaluation_run_create(version=base)
    evaluation_runs.evaluation_run_execute(run_id=run.pk)
    page = maintainer_client.get(f"/versions/{base.pk}/report/").content.decode()
    assert 'id="encoders"' in page and "<strong>onnx</strong>" in page
    assert broken["reason"].split(" ")[0] in page and "mean cosine" in page
    assert f"/versions/{base.pk}/export.zip" in page


def test_damaged_encoder_files_fall_back_to_torch(glossary, build_on_index):
    search.search(query="URSSAF", top_k=3)
    base = ModelVersion.objects.get(number=0)
    folder = base.encoder_check["folder"]
    storage = artifacts.artifact_storage()
    path = f"{folder}/{encoders.ONNX_FILES['onnx-int8']}"
    storage.delete(path)
    storage.save(path, ContentFile(b"not a model"))
    serving.clear()
    texts = ["c'est quoi la CAF"]
    assert np.array_equal(encoding.encode_search_queries(base, texts), encoding.encode_queries_with(base, texts))
