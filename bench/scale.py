"""Search latency and index updates at 1k, 10k and 100k passages, in process, on the pure retrieval core.

The pipeline timed per query is the one ``retrieval.services.search`` runs, without the database: pre-processing
(language, spelling, acronym expansion against the glossary's vocabulary), query encoding, exact dense scan,
BM25, reciprocal rank fusion. Passages beyond the first ``encoded`` ones get random unit vectors: the scan costs
the same and encoding 100k passages would take most of the run.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from bench import stats
from bench.environment import data_dir
from bench.models import default_model
from bench.results import Section
from bench.synthetic import questions, random_unit_vectors, synthetic_entries, synthetic_passages, vocabulary_from_sigles
from retrieval.embedding import encode_documents, encode_queries
from retrieval.hybrid import fuse
from retrieval.lexical import LexicalIndex, lexical_document
from retrieval.passages import EntryData, passages_of
from retrieval.preprocess import Vocabulary, build_vocabulary, preprocess_query, warm_up
from retrieval.vector_index import VectorIndex

STAGES = ("preprocess", "encode", "dense", "lexical", "fuse")
CANDIDATES = 50


@dataclass
class Glossary:
    entries: list[EntryData]
    vectors: VectorIndex
    lexical: LexicalIndex
    vocabulary: Vocabulary


def build_glossary(passage_count: int, *, model, spec, encoded: int, extra_words: list[str]) -> Glossary:
    """A synthetic glossary of ``passage_count`` passages (two per entry), its first ``encoded`` really encoded."""
    entries = synthetic_entries(max(1, passage_count // 2), extra_words=extra_words)
    passages = synthetic_passages(entries)
    real = min(encoded, len(passages))
    vectors = encode_documents(model, spec, [passage.text for passage in passages[:real]])
    if len(passages) > real:
        vectors = np.vstack([vectors, random_unit_vectors(len(passages) - real, vectors.shape[1])])
    return Glossary(
        entries=entries,
        vectors=VectorIndex.build(passages, vectors),
        lexical=LexicalIndex.build([lexical_document(entry) for entry in entries]),
        vocabulary=build_vocabulary([(entry.term, entry.kind, entry.variants, entry.definition) for entry in entries]),
    )


def search_stages(query: str, glossary: Glossary, *, model, spec, preprocess: bool = True, top_k: int = 10) -> dict[str, float]:
    """Seconds spent in each stage of one hybrid search."""
    spent: dict[str, float] = {}
    mark = time.perf_counter()
    final = preprocess_query(query, vocabulary=glossary.vocabulary).final if preprocess else query
    spent["preprocess"] = time.perf_counter() - mark
    mark = time.perf_counter()
    vector = encode_queries(model, spec, [final])[0]
    spent["encode"] = time.perf_counter() - mark
    mark = time.perf_counter()
    dense = glossary.vectors.search(vector, top_k=CANDIDATES)
    spent["dense"] = time.perf_counter() - mark
    mark = time.perf_counter()
    lexical = glossary.lexical.search(final, top_k=CANDIDATES)
    spent["lexical"] = time.perf_counter() - mark
    mark = time.perf_counter()
    fuse(dense=dense, lexical=lexical, exact_entry_ids=(), top_k=top_k)
    spent["fuse"] = time.perf_counter() - mark
    spent["total"] = sum(spent.values())
    return spent


def in_process_latency(glossaries: dict[int, Glossary], queries: list[str], *, model, spec, repeat: int) -> dict[int, dict[str, dict[str, float]]]:
    """Per glossary size, percentiles (ms) of each stage and of the total over ``repeat`` passes of ``queries``.

    Sizes take turns query by query, so that the load of a shared machine weighs on all of them alike.
    """
    for glossary in glossaries.values():
        for query in queries[:3]:
            search_stages(query, glossary, model=model, spec=spec)
    samples = {size: {stage: [] for stage in (*STAGES, "total")} for size in glossaries}
    for _ in range(repeat):
        for query in queries:
            for size, glossary in glossaries.items():
                for stage, seconds in search_stages(query, glossary, model=model, spec=spec).items():
                    samples[size][stage].append(seconds)
    return {size: {stage: stats.percentiles_ms(values) for stage, values in by_stage.items()} for size, by_stage in samples.items()}


def update_costs(glossaries: dict[int, Glossary], *, model, spec, repeat: int, persisted_repeat: int) -> dict[int, dict[str, float]]:
    """Per size, median ms of re-indexing one edited entry: in memory (encode + upsert) and with the artifact
    rewritten as the index-update task does (read the artifact, upsert, write the next revision). Sizes alternate."""
    jobs = {}
    for size, glossary in glossaries.items():
        entry = glossary.entries[0]
        edited = EntryData(id=entry.id, term=entry.term, definition=entry.definition + " modifiée", kind=entry.kind, contexts=entry.contexts)
        passages = passages_of(edited)
        blob = glossary.vectors.to_bytes()

        def in_memory(glossary=glossary, edited=edited, passages=passages):
            glossary.vectors.upsert_entry(edited.id, passages, encode_documents(model, spec, [p.text for p in passages]))

        def persisted(blob=blob, edited=edited, passages=passages):
            index = VectorIndex.from_bytes(blob)
            index.upsert_entry(edited.id, passages, encode_documents(model, spec, [p.text for p in passages]))
            index.to_bytes()

        jobs[size] = (in_memory, persisted, len(blob) / 2**20)
    timings = {size: {"in_memory": [], "persisted": []} for size in glossaries}
    for number in range(max(repeat, persisted_repeat)):
        for size, (in_memory, persisted, _) in jobs.items():
            if number < repeat:
                timings[size]["in_memory"].append(stats.timed(in_memory))
            if number < persisted_repeat:
                timings[size]["persisted"].append(stats.timed(persisted))
    return {
        size: {"in_memory": stats.median(timings[size]["in_memory"]) * 1000, "persisted": stats.median(timings[size]["persisted"]) * 1000,
               "artifact_mb": jobs[size][2]}
        for size in glossaries
    }


def encode_by_threads(queries: list[str], *, model, spec, repeat: int) -> list[list]:
    """Median ms to encode one query with 1 torch thread and with one per core: why web processes use one."""
    import os

    import torch

    current = torch.get_num_threads()
    rows = []
    try:
        for threads in sorted({1, os.cpu_count() or 1}):
            torch.set_num_threads(threads)
            timings = stats.repeat_timings(lambda: [encode_queries(model, spec, [query]) for query in queries], repeat=repeat)
            rows.append([threads, stats.ms(stats.median(timings) / len(queries) * 1000)])
    finally:
        torch.set_num_threads(current)
    return rows


def run(ctx) -> Section:
    section = Section(name="scale", title="Speed and scale: in-process search and index updates (synthetic glossaries)")
    model, spec = default_model()
    warm_up()
    sizes = (1_000, 10_000, 100_000)
    repeat, update_repeat, persisted_repeat = (1, 5, 1) if ctx.quick else (2, 15, 3)
    encoded = 200 if ctx.quick else 500
    queries = [question.query for question in questions()]
    queries = queries[::4] if ctx.quick else queries[::2]
    extra_words = vocabulary_from_sigles(data_dir())

    glossaries = {}
    for size in sizes:
        built_at = time.perf_counter()
        glossaries[size] = build_glossary(size, model=model, spec=spec, encoded=encoded, extra_words=extra_words)
        section.notes.append(f"{size:,} passages: synthetic glossary built and indexed in {time.perf_counter() - built_at:.0f} s.")
    latencies = in_process_latency(glossaries, queries, model=model, spec=spec, repeat=repeat)
    updates = update_costs(glossaries, model=model, spec=spec, repeat=update_repeat, persisted_repeat=persisted_repeat)
    by_size = {size: {"latency": latencies[size], "updates": updates[size]} for size in sizes}
    latency_rows, stage_rows, update_rows = [], [], []
    for size in sizes:
        latency, update = latencies[size], updates[size]
        total = latency["total"]
        latency_rows.append([f"{size:,}", stats.ms(total["p50"]), stats.ms(total["p95"]), f"{1000 / total['mean']:.0f}", total["n"]])
        stage_rows.append([f"{size:,}", *(stats.ms(latency[stage]["p50"]) for stage in STAGES)])
        update_rows.append([f"{size:,}", stats.ms(update["in_memory"]), stats.ms(update["persisted"]), f"{update['artifact_mb']:.1f}"])

    section.table("Hybrid search with pre-processing, one client (ms)", ["Passages", "p50", "p95", "Queries/s", "Searches"], latency_rows)
    section.table("Median time per stage (ms)", ["Passages", *STAGES], stage_rows)
    section.table(
        "Encoding one query vs torch threads (median ms per query)",
        ["Torch threads", "ms"],
        encode_by_threads(queries, model=model, spec=spec, repeat=repeat + 1),
    )
    section.table(
        "Re-indexing one edited entry (median ms)",
        ["Passages", "Encode + upsert in memory", "Read artifact + upsert + write artifact", "Artifact MB"],
        update_rows,
    )
    p50 = {size: by_size[size]["latency"]["total"]["p50"] for size in sizes}
    growth = p50[100_000] / p50[1_000]
    at_10k = by_size[10_000]["latency"]
    encode_share = at_10k["encode"]["p50"] / at_10k["total"]["p50"]
    section.target(
        "In-process search p50 at 10k passages", value=f"{stats.ms(p50[10_000])} ms", limit="<= 20 ms", met=p50[10_000] <= 20,
        note=f"query encoding is {100 * encode_share:.0f}% of it (one MiniLM forward pass on a shared CPU)",
    )
    section.target(
        "Latency 100k / 1k (p50)", value=stats.ratio(growth), limit="<= 3", met=growth <= 3,
        note=f"the exact scan grows from {stats.ms(by_size[1_000]['latency']['dense']['p50'])} to "
        f"{stats.ms(by_size[100_000]['latency']['dense']['p50'])} ms (memory-bound: 150 MiB of vectors per query)",
    )
    in_memory_growth = by_size[100_000]["updates"]["in_memory"] / by_size[1_000]["updates"]["in_memory"]
    persisted_growth = by_size[100_000]["updates"]["persisted"] / by_size[1_000]["updates"]["persisted"]
    section.target(
        "One-entry update cost 100k / 1k (index core)", value=stats.ratio(in_memory_growth), limit="≈ 1 (size-independent)",
        met=in_memory_growth <= 1.5,
    )
    section.target(
        "One-entry update cost 100k / 1k (with the artifact rewrite)", value=stats.ratio(persisted_growth),
        limit="≈ 1 (size-independent)", met=persisted_growth <= 1.5,
        note="the update task re-reads and rewrites the whole .npz artifact (linear in size); the in-memory update is constant",
    )
    section.notes += [
        f"Queries: {len(queries)} questions of the sigles set x {repeat} pass(es), after a warm-up, the three sizes taking "
        "turns query by query (a shared machine's load weighs on all alike); the default "
        f"model ({spec.name}) encodes each query; the first {encoded} passages are really encoded, the rest are random "
        "unit vectors (the exact scan costs the same).",
        "Throughput here is one client in one process (1000 / mean ms); the API section measures concurrent clients.",
    ]
    section.data = {"by_size": {str(size): value for size, value in by_size.items()}}
    return section
