"""Search latency and index updates at 1k, 10k and 100k passages, in process, on the pure retrieval core.

The pipeline timed per query is the one ``retrieval.search.search`` runs, without the database: pre-processing
(language, spelling, acronym expansion against the glossary's vocabulary), query encoding, exact dense scan,
BM25, reciprocal rank fusion. Passages beyond the first ``encoded`` ones get random unit vectors: the scan costs
the same and encoding 100k passages would take most of the run.
"""
from __future__ import annotations

import copy
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
from retrieval.preprocess import LayeredVocabulary, Vocabulary, build_vocabulary, preprocess_query, warm_up
from retrieval.lexical import OVERLAY_MAX_ENTRIES
from retrieval.vector_index import COMPACT_MIN_PASSAGES, COMPACT_SHARE, EntryDelta, VectorIndex

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
    """Per size, median ms of re-indexing one edited entry, the ways the product does it (sizes alternate):

    * ``in_memory``: encode the entry's passages and upsert them into the index;
    * ``stored``: what the index-update task writes: encode, and serialise the entry's delta (the full artifact
      is not touched);
    * ``fold``: the full rewrite the deltas are eventually folded into (read the artifact, write a new one), and
      ``fold_per_edit``, its share per edit (the rewrite comes after ``compaction_due`` passages of deltas);
    * ``catch_up``: what each serving process does when it sees the new revision: apply the delta to a copy of
      its passage list, lay the entry over BM25 and the vocabulary.
    """
    jobs = {}
    for size, glossary in glossaries.items():
        entry = glossary.entries[0]
        edited = EntryData(id=entry.id, term=entry.term, definition=entry.definition + " modifiée", kind=entry.kind, contexts=entry.contexts)
        passages = passages_of(edited)
        blob = glossary.vectors.to_bytes()
        delta = EntryDelta(edited.id, tuple(passages), encode_documents(model, spec, [p.text for p in passages]))

        def in_memory(glossary=glossary, edited=edited, passages=passages):
            glossary.vectors.upsert_entry(edited.id, passages, encode_documents(model, spec, [p.text for p in passages]))

        def stored(edited=edited, passages=passages):
            EntryDelta(edited.id, tuple(passages), encode_documents(model, spec, [p.text for p in passages])).to_bytes()

        def fold(blob=blob):
            VectorIndex.from_bytes(blob).to_bytes()

        def catch_up(glossary=glossary, edited=edited, delta_bytes=delta.to_bytes()):
            # What retrieval.serving._caught_up does with one delta (its term lookup is laid over the same way).
            vectors = copy.copy(glossary.vectors)
            EntryDelta.from_bytes(delta_bytes).apply_to(vectors)
            glossary.lexical.with_changes(changed=[lexical_document(edited)])
            LayeredVocabulary(glossary.vocabulary, build_vocabulary([(edited.term, edited.kind, edited.variants, edited.definition)]))

        glossary.lexical.with_changes()  # its entry -> row map is made once per full build, then shared by every overlay
        edits_per_fold = max(COMPACT_MIN_PASSAGES, COMPACT_SHARE * len(glossary.vectors)) / len(passages)
        jobs[size] = ({"in_memory": in_memory, "stored": stored, "fold": fold, "catch_up": catch_up}, len(blob) / 2**20, edits_per_fold)
    counts = {"in_memory": repeat, "stored": repeat, "fold": persisted_repeat, "catch_up": repeat}
    timings = {size: {name: [] for name in counts} for size in glossaries}
    for number in range(max(counts.values())):
        for size, (functions, _, _) in jobs.items():
            for name, function in functions.items():
                if number < counts[name]:
                    timings[size][name].append(stats.timed(function))
    costs = {}
    for size, (_, artifact_mb, edits_per_fold) in jobs.items():
        costs[size] = {name: stats.median(values) * 1000 for name, values in timings[size].items()}
        costs[size].update(artifact_mb=artifact_mb, edits_per_fold=edits_per_fold, fold_per_edit=costs[size]["fold"] / edits_per_fold)
    return costs


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
        update_rows.append([
            f"{size:,}", stats.ms(update["in_memory"]), stats.ms(update["stored"]), stats.ms(update["fold"]),
            f"{update['edits_per_fold']:.0f}", stats.ms(update["fold_per_edit"]), stats.ms(update["catch_up"]), f"{update['artifact_mb']:.1f}",
        ])

    section.table("Hybrid search with pre-processing, one client (ms)", ["Passages", "p50", "p95", "Queries/s", "Searches"], latency_rows)
    section.table("Median time per stage (ms)", ["Passages", *STAGES], stage_rows)
    section.table(
        "Encoding one query vs torch threads (median ms per query)",
        ["Torch threads", "ms"],
        encode_by_threads(queries, model=model, spec=spec, repeat=repeat + 1),
    )
    section.table(
        "Re-indexing one edited entry (median ms)",
        ["Passages", "Encode + upsert in memory", "Update task: encode + write delta", "Fold: full rewrite",
         "Edits per fold", "Fold per edit", "Serving process catch-up", "Artifact MB"],
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
    growth_of = {
        name: by_size[100_000]["updates"][name] / by_size[1_000]["updates"][name] for name in ("in_memory", "stored", "fold_per_edit", "catch_up")
    }
    section.target(
        "One-entry update cost 100k / 1k (index core)", value=stats.ratio(growth_of["in_memory"]), limit="≈ 1 (size-independent)",
        met=growth_of["in_memory"] <= 1.5,
    )
    section.target(
        "One-entry update cost 100k / 1k (update task: encode + stored delta)", value=stats.ratio(growth_of["stored"]),
        limit="≈ 1 (size-independent)", met=growth_of["stored"] <= 1.5,
        note=f"the full artifact is rewritten once per {by_size[100_000]['updates']['edits_per_fold']:.0f} edits at 100k "
        f"({stats.ms(by_size[100_000]['updates']['fold_per_edit'])} ms per edit amortised, vs "
        f"{stats.ms(by_size[1_000]['updates']['fold_per_edit'])} ms at 1k)",
    )
    section.notes.append(
        f"Serving-process catch-up after one edit: {stats.ms(by_size[1_000]['updates']['catch_up'])} ms at 1k passages, "
        f"{stats.ms(by_size[100_000]['updates']['catch_up'])} ms at 100k ({stats.ratio(growth_of['catch_up'])}x, the only part "
        "still touching every passage is a 8-byte-per-row scan for the entry's rows): the delta applied, BM25 and the vocabulary "
        f"with the entry laid over them. Every {OVERLAY_MAX_ENTRIES} changed entries a process rebuilds BM25 and the "
        "vocabulary from the entries it holds. The end-to-end time is the serving section's target."
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
