"""Query encoders side by side in one run: int8 ONNX vs ONNX vs torch (speed, and Hit@1 on the Bercy and sigles
question sets), the query cache on a replay of repeated questions, and the API at 10 clients over 10k passages:
the torch path vs the served path, over a small grid of web workers x intra-op threads on the same cores
(bench.query_encoders_api).
"""
from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np

from bench import stats
from bench.environment import fresh_django
from bench.glossary_db import add_synthetic_entries, import_sigles, question_targets, validated_passage_count
from bench.query_encoders_api import ZIPF_S, api_part, replay
from bench.results import Section, skipped
from bench.synthetic import questions
from evaluation.reports import HIT_AT_1

VARIANTS = ("torch", "onnx", "onnx-int8")
HIT = HIT_AT_1.label


def _bercy(path) -> tuple[list[str], list[set[str]], list[str], list[str]]:
    """Anchors as queries, def/context/qa texts as documents, relevant = the documents of the anchor's cluster."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    documents = [row["positive"] for row in rows]
    clusters = [row["cluster_id"] for row in rows]
    anchors: dict[str, set[str]] = {}
    for row in rows:
        anchors.setdefault(row["anchor"], set()).add(row["cluster_id"])
    return list(anchors), list(anchors.values()), documents, clusters


def _hit_at_1(query_vectors, document_vectors, doc_keys, relevant) -> float:
    """Percent of the queries whose best document is relevant."""
    top = np.argmax(query_vectors @ document_vectors.T, axis=1)
    return 100.0 * sum(doc_keys[best] in relevant[row] for row, best in enumerate(top)) / len(relevant)


def interleaved_single_ms(encoders: dict[str, Callable[[list[str]], object]], texts: Sequence[str]) -> dict[str, list[float]]:
    """Milliseconds per query, one query at a time (as a web worker encodes), each query through every encoder in
    turn (the order rotating), so that the machine's load drifts alike for all of them."""
    names = list(encoders)
    for name in names:
        encoders[name]([texts[0]])  # first-call allocations
    timings: dict[str, list[float]] = {name: [] for name in names}
    for position, text in enumerate(texts):
        for name in names[position % len(names):] + names[:position % len(names)]:
            started = time.perf_counter()
            encoders[name]([text])
            timings[name].append(1000 * (time.perf_counter() - started))
    return timings


def run(ctx) -> Section:
    sigles_path = ctx.data_dir / "sigles.csv"
    if not sigles_path.exists():
        # Without it the bench glossary holds none of the sigles questions' entries (the crash of an earlier run).
        return skipped("query_encoders", "query_encoders", f"Needs sigles.csv under {ctx.data_dir} (LEXIQUE_DATA_DIR sets the folder).")
    fresh_django()
    import torch
    from django.conf import settings

    from retrieval import encoder_check, encoding, indexing, selectors
    from retrieval.embedding import encode_documents, encode_queries

    section = Section(name="query_encoders", title="query_encoders")
    asked = questions()
    queries = [question.query for question in asked]
    if not ctx.shared.get("sigles_imported"):
        import_sigles(sigles_path, quick=ctx.quick, keep_terms={question.term for question in asked})
        ctx.shared["sigles_imported"] = True
    add_synthetic_entries(2_000 if ctx.quick else 10_000)
    passages = validated_passage_count()
    targets, missing = question_targets(asked)
    if not targets:
        raise RuntimeError(f"none of the {len(asked)} sigles questions matches an entry of the bench glossary ({sigles_path})")
    version = selectors.champion_version_get()
    settings.ENCODER_BUILD_ON_INDEX = False  # built below, timed on its own
    build = stats.timed(lambda: indexing.index_rebuild(version=version))
    check_s = stats.timed(lambda: encoder_check.encoders_build(version=version))
    version.refresh_from_db()
    check = version.encoder_check
    served_variant = check["served"]
    section.notes.append(
        f"Glossary: {passages:,} passages (the sigles glossary{' subset' if ctx.quick else ''} plus synthetic entries); "
        f"full index build {build:.0f} s; ONNX export + int8 quantisation + check ({check['variants']['onnx']['queries']} "
        f"queries, source: {check.get('query_source')}) {check_s:.0f} s. Served with QUERY_ENCODER=auto: {served_variant}."
    )
    section.table(
        f"The product's check, recorded on the version (vs torch; a variant serves only if {HIT} is within 0.5 point and mean cosine >= 0.97)",
        ["Variant", "Passed", "Cosine min", "Cosine mean", f"{HIT} torch", f"{HIT} variant", "Reason"],
        [[name, "yes" if c["passed"] else "no", c["cosine_min"], c["cosine_mean"], c["recall_at_1_torch"], c["recall_at_1_variant"], c["reason"] or ""]
         for name, c in check["variants"].items()],
    )

    # ---- encoding speed: one query at a time, one thread (as a web worker encodes), interleaved -------------
    torch.set_num_threads(1)
    model, spec = encoding.model_for_version(version)
    onnx = {name: encoding.onnx_encoder(version, name) for name in ("onnx", "onnx-int8")}

    def encoder_of(name):
        if name == "torch":
            return lambda batch: encode_queries(model, spec, batch)
        return lambda batch: onnx[name].encode(batch, prompt=spec.query_prompt)

    sample = queries[: 100 if ctx.quick else 300]
    timings = interleaved_single_ms({name: encoder_of(name) for name in VARIANTS}, sample)
    speed = {name: stats.median(values) for name, values in timings.items()}
    p95 = {name: float(np.percentile(values, 95)) for name, values in timings.items()}
    section.table(
        f"Query encoding, one query at a time, 1 thread, the variants interleaved query by query ({len(sample)} sigles questions, ms)",
        ["Variant", "Median ms / query", "p95", "Speed-up vs torch (medians)", "Speed-up vs ONNX fp32"],
        [[name, f"{speed[name]:.2f}", f"{p95[name]:.2f}", f"{speed['torch'] / speed[name]:.2f}x", f"{speed['onnx'] / speed[name]:.2f}x"] for name in VARIANTS],
    )

    # ---- quality per variant: sigles (over the served index) and Bercy ---------------------------------------
    served = indexing.served_index_get(version=version)
    target_queries = [target.question.query for target in targets]
    entry_of = [passage.entry_id for passage in served.vectors.passages]
    bercy_path = ctx.data_dir / "bercy" / ("bercy_test_10.jsonl" if ctx.quick else "Dataset_Bercy_4k_lines.jsonl")
    bercy = _bercy(bercy_path) if bercy_path.exists() else None
    bercy_docs = encode_documents(model, spec, bercy[2]) if bercy else None
    quality = {}
    for name in VARIANTS:
        vectors = encoder_of(name)(target_queries)
        top = [entry_of[i] for i in np.argmax(vectors @ served.vectors.matrix.T, axis=1)]
        quality[name] = {
            "sigles_concept": 100.0 * sum(entry in target.term_entry_ids for entry, target in zip(top, targets)) / len(targets),
            "sigles_def_only": 100.0 * sum(entry in target.meaning_entry_ids for entry, target in zip(top, targets)) / len(targets),
            "bercy": _hit_at_1(encoder_of(name)(bercy[0]), bercy_docs, bercy[3], bercy[1]) if bercy else None,
        }
    drops = {
        name: max(quality["torch"][key] - quality[name][key] for key in ("sigles_def_only", "sigles_concept", "bercy") if quality[name][key] is not None)
        for name in VARIANTS
    }
    section.table(
        f"Dense {HIT} per query encoder (documents by torch): sigles, {len(targets)} questions over {passages:,} passages; "
        f"Bercy ({bercy_path.name}), {len(bercy[0]) if bercy else 0} anchors over {len(bercy[2]) if bercy else 0} documents (percent)",
        ["Variant", f"sigles Def-only {HIT}", f"sigles Concept {HIT}", f"Bercy {HIT}", "Largest drop vs torch (points)", "Within 0.5 point", "Served (auto)"],
        [[name, f"{quality[name]['sigles_def_only']:.2f}", f"{quality[name]['sigles_concept']:.2f}",
          f"{quality[name]['bercy']:.2f}" if quality[name]["bercy"] is not None else "–",
          f"{drops[name]:+.2f}" if name != "torch" else "–", "yes" if drops[name] <= 0.5 else "no", "yes" if name == served_variant else "no"]
         for name in VARIANTS],
    )
    for name in ("onnx", "onnx-int8"):
        section.target(
            f"{name} {HIT} within 0.5 point of torch (sigles, Bercy)", value=f"largest drop {drops[name]:+.2f} points", limit="<= 0.5",
            met=drops[name] <= 0.5,
            note=("served" if name == served_variant else "not served") + " (the product's check on its own queries decides; this is the bench's cross-check)",
        )
    if missing:
        section.notes.append(f"{len(missing)} sigles questions have no entry in the bench glossary and are left out.")

    # ---- the query cache, in process, on a replay of repeated questions -------------------------------------
    distinct_pool = queries[:300]
    traffic = replay(distinct_pool, 600 if ctx.quick else 2000)
    distinct = len(Counter(traffic))
    top_share = sum(count for _text, count in Counter(traffic).most_common(30)) / len(traffic)
    settings.QUERY_ENCODER = "auto"
    cache = {}
    for size in (0, 4096):
        settings.QUERY_CACHE_SIZE = size
        encoding.query_cache().clear()
        started = time.perf_counter()
        for text in traffic:
            encoding.encode_search_queries(version, [text])
        cache[size] = {"ms": 1000 * (time.perf_counter() - started) / len(traffic), **encoding.query_cache().stats()}
    section.table(
        f"Query cache on a replay of {len(traffic)} questions ({distinct} distinct, Zipf s={ZIPF_S}: the 30 most asked make "
        f"{100 * top_share:.0f} % of the traffic), in process, {served_variant} encoder",
        ["QUERY_CACHE_SIZE", "Hit rate %", "Encoding ms / query (mean)", "Speed-up"],
        [[size, f"{100 * cache[size]['hit_rate']:.1f}", f"{cache[size]['ms']:.3f}", f"{cache[0]['ms'] / cache[size]['ms']:.1f}x"] for size in (0, 4096)],
    )

    measured = api_part(
        section, quick=ctx.quick, passages=passages, served_variant=served_variant, distinct_pool=distinct_pool, warm_up=queries[-40:],
    )
    section.data = {
        "speed_ms": speed, "quality": quality, "drops": drops, "check": check, "served": served_variant,
        "best": {"workers": measured.best.workers, "threads": measured.best.threads},
        "relative": {setup.label: value for setup, value in measured.relative.items()},
        "cache": {str(size): value for size, value in cache.items()},
        "api": measured.rows,
    }
    return section


