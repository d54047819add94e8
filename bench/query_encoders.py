"""Query encoders side by side in one run: int8 ONNX vs ONNX vs torch (speed, and R@1 on the Bercy and sigles
question sets), the API at 10 clients over 10k passages with the torch path vs the served ONNX path, and the
query cache on a replay of repeated questions.
"""
from __future__ import annotations

import json
import os
import random
import time
from collections import Counter

import numpy as np

from bench import api, stats
from bench.glossary_db import add_synthetic_entries, import_sigles, question_targets, validated_passage_count
from bench.environment import fresh_django
from bench.results import Section
from bench.synthetic import questions

VARIANTS = ("torch", "onnx", "onnx-int8")


def _bercy(path) -> tuple[list[str], list[set[str]], list[str], list[str]]:
    """Anchors as queries, def/context texts as documents, relevant = the documents of the anchor's cluster."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    documents = [row["positive"] for row in rows]
    clusters = [row["cluster_id"] for row in rows]
    anchors = {}
    for row in rows:
        anchors.setdefault(row["anchor"], set()).add(row["cluster_id"])
    return list(anchors), list(anchors.values()), documents, clusters


def _r1(query_vectors, document_vectors, doc_keys, relevant) -> float:
    top = np.argmax(query_vectors @ document_vectors.T, axis=1)
    return 100.0 * sum(doc_keys[best] in relevant[row] for row, best in enumerate(top)) / len(relevant)


def _single_ms(encode, texts, *, repeat=1) -> float:
    encode(texts[:1])
    timings = []
    for _ in range(repeat):
        for text in texts:
            started = time.perf_counter()
            encode([text])
            timings.append(time.perf_counter() - started)
    return 1000 * stats.median(timings)


def _replay(queries: list[str], total: int, *, seed: int = 3) -> list[str]:
    """Repeated traffic: a few hundred distinct questions, the most popular asked far more often (Zipf, s=1.1)."""
    rng = random.Random(seed)
    weights = [1 / (rank + 1) ** 1.1 for rank in range(len(queries))]
    return rng.choices(queries, weights=weights, k=total)


def run(ctx) -> Section:
    fresh_django()
    import torch

    from retrieval import encoder_check, encoders, indexing, selectors, serving
    from retrieval.embedding import encode_documents, encode_queries

    section = Section(name="query_encoders", title="query_encoders")
    asked = questions()
    queries = [question.query for question in asked]
    if not ctx.shared.get("sigles_imported") and (ctx.data_dir / "sigles.csv").exists():
        import_sigles(ctx.data_dir / "sigles.csv", quick=ctx.quick, keep_terms={question.term for question in asked})
        ctx.shared["sigles_imported"] = True
    add_synthetic_entries(2_000 if ctx.quick else 10_000)
    passages = validated_passage_count()
    version = selectors.champion_version_get()
    os.environ["ENCODER_BUILD_ON_INDEX"] = "0"
    from django.conf import settings

    settings.ENCODER_BUILD_ON_INDEX = False
    build = stats.timed(lambda: indexing.index_rebuild(version=version))
    check_s = stats.timed(lambda: encoder_check.encoders_build(version=version))
    version.refresh_from_db()
    check = version.encoder_check
    section.notes.append(
        f"Glossary: {passages:,} passages; full index build {build:.0f} s; ONNX export + int8 quantisation + check "
        f"({check['variants']['onnx']['queries']} frozen test queries, source: {check.get('query_source')}) {check_s:.0f} s. "
        f"Served by the check: {check['served']}."
    )
    section.table(
        "The check recorded on the version (frozen test queries, vs torch)",
        ["Variant", "Passed", "Cosine min", "Cosine mean", "R@1 torch", "R@1 variant", "Reason"],
        [[name, "yes" if c["passed"] else "no", c["cosine_min"], c["cosine_mean"], c["recall_at_1_torch"], c["recall_at_1_variant"], c["reason"] or ""]
         for name, c in check["variants"].items()],
    )

    # ---- encoding speed, one query at a time, one thread (as a web worker encodes) --------------------------
    torch.set_num_threads(1)
    model, spec = serving.model_for_version(version)
    onnx = {name: serving.onnx_encoder(version, name) for name in ("onnx", "onnx-int8")}

    def encoder_of(name):
        if name == "torch":
            return lambda batch: encode_queries(model, spec, batch)
        return lambda batch: onnx[name].encode(batch, prompt=spec.query_prompt)

    sample = queries[: 60 if ctx.quick else 300]
    speed = {name: _single_ms(encoder_of(name), sample) for name in VARIANTS}
    section.table(
        f"Query encoding, one query at a time, 1 thread ({len(sample)} sigles questions, median ms)",
        ["Variant", "ms / query", "Speed-up vs torch"],
        [[name, f"{speed[name]:.2f}", f"{speed['torch'] / speed[name]:.1f}x"] for name in VARIANTS],
    )

    # ---- quality per variant: sigles (over the served index) and Bercy test split ---------------------------
    served = indexing.served_index_get(version=version)
    targets, _missing = question_targets(asked)
    if not targets:
        raise RuntimeError(f"none of the {len(asked)} sigles questions matches an entry of the bench glossary: import sigles.csv first")
    target_queries = [target.question.query for target in targets]
    entry_of = [passage.entry_id for passage in served.vectors.passages]
    rows = []
    quality = {}
    bercy_path = ctx.data_dir / "bercy" / "bercy_test_10.jsonl"
    bercy = _bercy(bercy_path) if bercy_path.exists() else None
    bercy_docs = encode_documents(model, spec, bercy[2]) if bercy else None
    for name in VARIANTS:
        vectors = encoder_of(name)(target_queries)
        top = [entry_of[i] for i in np.argmax(vectors @ served.vectors.matrix.T, axis=1)] if hasattr(served.vectors, "matrix") else None
        if top is None:
            top = [served.vectors.search(vector, top_k=1)[0][0].entry_id for vector in vectors]
        concept = 100.0 * sum(entry in target.term_entry_ids for entry, target in zip(top, targets)) / len(targets)
        def_only = 100.0 * sum(entry in target.meaning_entry_ids for entry, target in zip(top, targets)) / len(targets)
        bercy_r1 = _r1(encoder_of(name)(bercy[0]), bercy_docs, bercy[3], bercy[1]) if bercy else None
        quality[name] = {"sigles_concept": concept, "sigles_def_only": def_only, "bercy": bercy_r1}
        rows.append([name, f"{def_only:.1f}", f"{concept:.1f}", f"{bercy_r1:.1f}" if bercy_r1 is not None else "–"])
    section.table(
        f"Dense R@1 per query encoder (documents by torch): sigles {len(targets)} questions over {passages:,} passages; "
        f"Bercy test split {len(bercy[0]) if bercy else 0} anchors over {len(bercy[2]) if bercy else 0} documents (percent)",
        ["Variant", "sigles Def-only R@1", "sigles Concept R@1", "Bercy R@1"],
        rows,
    )
    for name in ("onnx", "onnx-int8"):
        drops = [quality["torch"][key] - quality[name][key] for key in ("sigles_def_only", "sigles_concept", "bercy") if quality[name][key] is not None]
        section.target(f"{name} R@1 within 0.5 point of torch (sigles, Bercy)", value=f"max drop {max(drops):+.2f} points", limit="<= 0.5", met=max(drops) <= 0.5)

    # ---- the query cache: in process, on a replay of repeated questions -------------------------------------
    replay = _replay(queries[:300], 400 if ctx.quick else 2000)
    distinct = len(Counter(replay))
    settings.QUERY_ENCODER = "auto"
    cache_rows = []
    for size in (0, 4096):
        settings.QUERY_CACHE_SIZE = size
        serving.query_cache().clear()
        started = time.perf_counter()
        for text in replay:
            serving.encode_search_queries(version, [text])
        elapsed = time.perf_counter() - started
        cache_stats = serving.query_cache().stats()
        cache_rows.append([size, len(replay), distinct, f"{cache_stats['hit_rate'] * 100:.1f}", f"{1000 * elapsed / len(replay):.3f}"])
    section.table(
        f"Query cache on a replay of {len(replay)} questions ({distinct} distinct, Zipf), in process, {check['served']} encoder",
        ["QUERY_CACHE_SIZE", "Queries", "Distinct", "Hit rate %", "Encoding ms / query (mean)"],
        cache_rows,
    )

    # ---- the API at 10 clients: torch path vs the new path, same run ---------------------------------------
    token = api.api_token()
    total = 150 if ctx.quick else 500
    api_rows, results = [], {}
    setups = [
        ("torch, no cache", {"QUERY_ENCODER": "torch", "QUERY_CACHE_SIZE": "0"}, 3),
        (f"{check['served']}, no cache", {"QUERY_ENCODER": "auto", "QUERY_CACHE_SIZE": "0"}, 3),
        (f"{check['served']}, no cache, 2 workers", {"QUERY_ENCODER": "auto", "QUERY_CACHE_SIZE": "0"}, 2),
        (f"{check['served']} + cache (replay)", {"QUERY_ENCODER": "auto", "QUERY_CACHE_SIZE": "4096"}, 3),
    ]
    unique = queries[:total]
    saved = {key: os.environ.get(key) for key in ("QUERY_ENCODER", "QUERY_CACHE_SIZE")}
    try:
        for label, env, workers in setups:
            os.environ.update(env)
            traffic = replay[:total] if "replay" in label else unique
            with api.GunicornServer(workers=workers) as server:
                api.warm_up(server.base_url, token, queries[-20:], workers=workers)
                result = api.search_load(server.base_url, token, traffic, clients=10, total=total)
            results[label] = result
            api_rows.append([label, workers, result.requests, result.errors, stats.ms(result.latency_ms["p50"]), stats.ms(result.latency_ms["p95"]),
                             f"{result.throughput:.1f}", f"{10000 / result.throughput:.0f}"])
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    section.table(
        f"API search at 10 clients, {passages:,} passages (gunicorn sync workers, OMP/ONNX threads 1 per worker, loopback, ms)",
        ["Path", "Workers", "Requests", "Errors", "p50", "p95", "Queries/s", "Little's-law floor of p50 (10 / q/s, ms)"],
        api_rows,
    )
    torch_result = results["torch, no cache"]
    new_result = results[f"{check['served']}, no cache"]
    ratio = new_result.throughput / torch_result.throughput
    section.target(
        "API at 10 clients: p50 <= 50 ms, or >= 3x the torch path's throughput (same run)",
        value=f"p50 {stats.ms(new_result.latency_ms['p50'])} ms, {ratio:.1f}x throughput", limit="<= 50 ms or >= 3x",
        met=new_result.latency_ms["p50"] <= 50 or ratio >= 3,
        note=f"torch path: p50 {stats.ms(torch_result.latency_ms['p50'])} ms at {torch_result.throughput:.0f} q/s; by Little's law the p50 "
        f"at 10 clients is at least 10 / throughput = {10000 / new_result.throughput:.0f} ms at {new_result.throughput:.0f} q/s (new path)",
    )
    section.notes.append(
        "The load generator shares the 2 cores with the server. Without the cache, each path encodes every query; the cache row "
        "replays the repeated-question traffic (each gunicorn worker has its own cache, so the hit rate per worker is below the "
        "in-process one)."
    )
    section.data = {"speed_ms": speed, "quality": quality, "check": check,
                    "api": {label: {"p50": r.latency_ms["p50"], "p95": r.latency_ms["p95"], "qps": r.throughput, "errors": r.errors} for label, r in results.items()}}
    return section
