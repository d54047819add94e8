"""Retrieval quality and latency of the sigles question set over the whole sigles glossary (issue 3).

The glossary is imported with the product's command (``import_glossary --format sigles --status validated
--skip-invalid``) into the bench database and indexed with the serving code (``index_rebuild``). Rankings are
of entries, cut at 10. Concept = the right term (any entry of that acronym counts), Def-only = the right meaning
(the entry with the question's definition). Hit@k is what the earlier prototype reported as "R@k".

Variants: the model alone (dense), BM25 alone (lexical), their reciprocal rank fusion (hybrid), then the product's
``retrieval.search.search``: hybrid with exact term/acronym matches first, without and with query pre-processing.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass

from bench import api, stats
from bench.environment import fresh_django
from bench.glossary_db import Target, import_sigles, question_targets
from bench.results import Section, skipped
from bench.synthetic import questions
from evaluation.metrics import ranking_metrics
from evaluation.reports import QUESTION_METRICS, Column

VARIANTS = ("dense", "lexical", "hybrid", "hybrid + exact match", "hybrid + exact match + pre-processing")
PRODUCT = VARIANTS[-1]
CANDIDATES = 50


def rank_entries(query: str, *, version, variant: str, query_vector=None) -> list[int]:
    """Entry ids, best first (10 at most), as the variant ranks them (``query_vector``: the query, already encoded)."""
    from retrieval import indexing, search
    from retrieval.hybrid import fuse

    if variant.startswith("hybrid + exact"):
        result = search.search(query=query, top_k=10, version=version, preprocess=variant == PRODUCT)
        return [item.hit.entry_id for item in result.hits]
    served = indexing.served_index_get(version=version)
    dense = served.vectors.search(query_vector, top_k=CANDIDATES) if variant != "lexical" else []
    lexical = served.lexical.search(query, top_k=CANDIDATES) if variant != "dense" else []
    return [hit.entry_id for hit in fuse(dense=dense, lexical=lexical, exact_entry_ids=(), top_k=10, mode=variant)]


@dataclass(frozen=True)
class PreparedQuery:
    """The model-independent half of one product search: pre-processed text, exact matches, BM25 candidates."""

    query: str
    final: str
    exact: frozenset[int]
    lexical: tuple[tuple[int, float], ...]


def prepare_queries(queries: list[str], *, served) -> list[PreparedQuery]:
    """What ``retrieval.search.search`` (hybrid, pre-processing, no LLM) computes before the model is asked, per query."""
    from retrieval import search
    from retrieval.preprocess import preprocess_query

    if search.llm_client() is not None:
        raise RuntimeError("encoder-swapping rankings reproduce the search without an LLM; unset LLM_BASE_URL")
    prepared = []
    for query in queries:
        text = search.check_query(query)
        processed = preprocess_query(text, vocabulary=served.vocabulary, translate=None)
        exact = served.terms.match(text, processed.corrected, language=processed.language)
        lexical = served.lexical.search(processed.final, top_k=CANDIDATES)
        prepared.append(PreparedQuery(query, processed.final, frozenset(exact), tuple(lexical)))
    return prepared


def product_rankings_with(prepared: list[PreparedQuery], *, vectors, query_vectors) -> dict[str, list[int]]:
    """The product search's entry ranking (hybrid + exact match + pre-processing, top 10) with another model:
    ``vectors`` is a ``VectorIndex`` of the whole glossary's passages and ``query_vectors`` the queries' final
    texts, both encoded by that model. Same steps as ``retrieval.search.search``; checked against it on the base model
    by ``bench.sigles_tuning``."""
    from retrieval import search
    from retrieval.hybrid import fuse

    rankings = {}
    for item, query_vector in zip(prepared, query_vectors):
        dense = vectors.search(query_vector, top_k=CANDIDATES)
        dense += search._exact_passages_missing(vectors, query_vector, set(item.exact), dense)
        hits = fuse(dense=dense, lexical=list(item.lexical), exact_entry_ids=set(item.exact), top_k=10, mode="hybrid")
        rankings[item.query] = [hit.entry_id for hit in hits]
    return rankings


def judge(rankings: dict[str, list[int]], targets: list[Target]) -> dict[str, dict[str, float]]:
    """Concept and Def-only metrics (percent) of the rankings."""
    per_protocol: dict[str, list[dict]] = {"concept": [], "def_only": []}
    for target in targets:
        ranked = [str(entry_id) for entry_id in rankings[target.question.query]]
        per_protocol["concept"].append(ranking_metrics(ranked, {str(pk) for pk in target.term_entry_ids}))
        per_protocol["def_only"].append(ranking_metrics(ranked, {str(pk) for pk in target.meaning_entry_ids}))
    return {protocol: stats.percent_means(rows, QUESTION_METRICS) for protocol, rows in per_protocol.items()}


def quality_rows(label: str, *, version, targets: list[Target], variants=VARIANTS) -> tuple[list[list], dict]:
    from retrieval import encoding

    queries = [target.question.query for target in targets]
    # One batch for the model-only variants; the product variants encode each query as a search does.
    vectors = dict(zip(queries, encoding.encode_queries_with(version, queries)))
    rows, scores = [], {}
    for variant in variants:
        rankings = {query: rank_entries(query, version=version, variant=variant, query_vector=vectors[query]) for query in queries}
        scores[variant] = judge(rankings, targets)
        scores[variant]["rankings"] = rankings
        rows.append([label, variant, *(f"{scores[variant][protocol][metric.key]:.1f}" for protocol in ("concept", "def_only") for metric in QUESTION_METRICS)])
    return rows, scores


def category_rows(rankings: dict[str, list[int]], targets: list[Target]) -> list[list]:
    rows = []
    for category in sorted({target.question.category for target in targets}):
        chosen = [target for target in targets if target.question.category == category]
        scores = judge(rankings, chosen)
        rows.append([category, len(chosen), *(f"{scores[protocol][metric.key]:.1f}" for protocol in ("concept", "def_only") for metric in QUESTION_METRICS)])
    return rows


def index_build_ratio(version, *, pairs: int) -> tuple[list[list], float, int]:
    """Full index build (``index_rebuild``) vs raw ``model.encode`` of the same passage texts, alternated."""
    import torch

    from retrieval import encoding, indexing, selectors
    from retrieval.passages import entry_passages

    texts = [
        passage.text
        for pk, term, definition, contexts in selectors.validated_entries().values_list("pk", "term", "definition", "contexts")
        for passage in entry_passages(entry_id=pk, term=term, definition=definition, contexts=contexts)
    ]
    model, _spec = encoding.model_for_version(version)
    rows, ratios = [], []
    for number in range(1, pairs + 1):
        build = stats.timed(lambda: indexing.index_rebuild(version=version))
        raw = stats.timed(lambda: model.encode(texts))
        ratios.append(raw / build)
        rows.append([number, f"{build:.1f}", f"{raw:.1f}", f"{len(texts) / build:.0f}", f"{len(texts) / raw:.0f}", f"{raw / build:.2f}"])
    rows.append(["torch threads", torch.get_num_threads(), "", "", "", ""])
    return rows, stats.median(ratios), len(texts)


def tuned_version(adapter: str):
    """A model version of the default model with the Bercy adapter, stored like a trained version."""
    from django.conf import settings

    from retrieval import versions
    from retrieval.catalogue import DEFAULT_MODEL_NAME

    storage_path = "adapters/bench-bercy"
    target = f"{settings.STORAGES['artifacts']['OPTIONS']['location']}/{storage_path}"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(adapter, target)
    return versions.model_version_create(base_model=DEFAULT_MODEL_NAME, label="Bercy LoRA (bench)", adapter_path=storage_path)


def latency_in_process(queries: list[str], *, version, repeat: int) -> dict[str, float]:
    from retrieval import search

    for query in queries[:5]:
        search.search(query=query, version=version)
    return stats.percentiles_ms([stats.timed(lambda: search.search(query=query, version=version)) for _ in range(repeat) for query in queries])


QUALITY_COLUMNS = ["Model", "Variant", *(Column(protocol, metric).title for protocol in ("concept", "def_only") for metric in QUESTION_METRICS)]


def prepare(ctx, asked) -> str:
    """The sigles glossary in the bench database (once per process); returns the import's summary."""
    fresh_django()
    if not ctx.shared.get("sigles_imported"):
        ctx.shared["sigles_summary"] = import_sigles(ctx.data_dir / "sigles.csv", quick=ctx.quick, keep_terms={q.term for q in asked})
        ctx.shared["sigles_imported"] = True
    return ctx.shared.get("sigles_summary", "imported earlier in this run")


def run(ctx) -> Section:
    name, title = "sigles", "sigles"
    source = ctx.data_dir / "sigles.csv"
    if not source.exists():
        return skipped(name, title, f"No {source}: set LEXIQUE_DATA_DIR to the folder holding sigles.csv.")
    asked = questions()
    summary = prepare(ctx, asked)
    from retrieval import selectors

    section = Section(name=name, title=title)
    targets, missing = question_targets(asked)
    version = selectors.champion_version_get()

    build_rows, build_ratio, passage_count = index_build_ratio(version, pairs=1)
    section.table(
        f"Full index build vs raw model.encode ({passage_count:,} sigles passages, seconds)",
        ["Pair", "index_rebuild", "model.encode", "Passages/s (ours)", "Passages/s (raw)", "Ratio raw/ours"],
        build_rows,
    )
    section.target("Index build throughput / raw model.encode", value=stats.ratio(build_ratio), limit=">= 0.9", met=build_ratio >= 0.9)

    rows, base_scores = quality_rows("base", version=version, targets=targets)
    section.data["base"] = {variant: {k: v for k, v in value.items() if k != "rankings"} for variant, value in base_scores.items()}
    columns = QUALITY_COLUMNS
    section.table(f"Quality over {len(targets)} questions (percent)", columns, rows)
    section.table(
        "Product search (hybrid + exact match + pre-processing, base model) by kind of question",
        ["Kind", "Questions", *columns[2:]],
        category_rows(base_scores[PRODUCT]["rankings"], targets),
    )

    queries = [target.question.query for target in targets]
    latency = latency_in_process(queries, version=version, repeat=1 if ctx.quick else 2)
    load_rows = [["in process (search.search)", 1, latency["n"], 0, stats.ms(latency["p50"]), stats.ms(latency["p95"]), f"{1000 / latency['mean']:.1f}"]]
    token = api.api_token()
    workers = 3
    with api.GunicornServer(workers=workers) as server:
        api.warm_up(server.base_url, token, queries, workers=workers)
        for clients, total in ((1, len(queries)), (10, 100 if ctx.quick else 400)):
            result = api.search_load(server.base_url, token, queries, clients=clients, total=total)
            load_rows.append([f"API, gunicorn {workers} workers", clients, result.requests, result.errors,
                              stats.ms(result.latency_ms["p50"]), stats.ms(result.latency_ms["p95"]), f"{result.throughput:.1f}"])
    section.table(
        "Search latency over the sigles glossary (product search, ms)",
        ["Where", "Clients", "Requests", "Errors", "p50", "p95", "Queries/s"],
        load_rows,
    )
    section.notes += [
        f"Glossary: {summary}",
        f"{len(asked)} questions in bench/data/sigles_questions.jsonl (paraphrases, reverse look-ups from a description, "
        "typos, English, ambiguous acronyms with context words); "
        + (f"{len(missing)} point at rows not imported in quick mode and are left out." if missing else "all resolved to their entry."),
        "Index build: index_rebuild reads the glossary, encodes every passage (batch 64), and writes the artifact; the "
        "reference is sentence-transformers' model.encode with its defaults (batch 32) over the same texts.",
        "Concept counts any entry of the asked acronym (567 acronyms of the list have several meanings), Def-only only the "
        "entry with the asked definition.",
        "The bench process runs torch with one thread, as a web process does (config/wsgi.py). The fine-tuned model's "
        "rows are in the sigles_tuned part (it needs the adapter that the bercy benchmark trains).",
    ]
    return section
