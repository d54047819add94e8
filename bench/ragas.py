"""Offline RAGAS (ragas' non-LLM metrics) of retrieval on the Bercy test split, base vs fine-tuned model.

Retrieved = the top 5 passages (what the assistant answers from), reference = the passages of the right concept
(Concept relevance); questions only (bare terms are keywords, not questions). LLM metrics need a judge endpoint
(``LLM_BASE_URL``), which benchmarks do not assume.
"""
from __future__ import annotations

import numpy as np

from bench.bercy import adapter_dir
from bench.bercy_cycle import TEST_ID_OFFSET, bercy_benchmark, load_concepts
from bench.results import Section, skipped
from evaluation.ragas_report import OFFLINE_METRICS, RagasSample, ragas_report
from retrieval.catalogue import DEFAULT_MODEL_NAME, get_spec
from retrieval.embedding import encode_documents, encode_queries, load_model

TOP_K = 5


def samples_for(model, spec, documents: dict[str, str], queries) -> list[RagasSample]:
    keys = list(documents)
    vectors = encode_documents(model, spec, [documents[key] for key in keys])
    texts = [text for text in queries if " " in text.strip()]  # questions, not bare terms
    scores = encode_queries(model, spec, texts) @ vectors.T
    samples = []
    for row, text in enumerate(texts):
        retrieved = [keys[column] for column in np.argsort(-scores[row], kind="stable")[:TOP_K]]
        reference = sorted(queries[text][0])
        samples.append(RagasSample(
            question=text, retrieved_ids=retrieved, reference_ids=reference,
            retrieved_contexts=[documents[key] for key in retrieved], reference_contexts=[documents[key] for key in reference],
        ))
    return samples


def run(ctx) -> Section:
    data = ctx.data_dir / "bercy" / "bercy_test_10.jsonl"
    if not data.exists():
        return skipped("ragas", "ragas", f"No {data}.")
    adapter = adapter_dir(ctx)
    test = load_concepts(data, first_id=TEST_ID_OFFSET)
    documents, queries = bercy_benchmark(test)
    spec = get_spec(DEFAULT_MODEL_NAME)
    models = {"base": load_model(spec, device="cpu")}
    if adapter:
        models["fine-tuned"] = load_model(spec, adapter_path=adapter, device="cpu")
    reports = {}
    for label, model in models.items():
        samples = samples_for(model, spec, documents, queries)
        if ctx.quick:
            samples = samples[:60]
        reports[label] = ragas_report(samples)
    section = Section(name="ragas", title="ragas")
    section.table(
        f"Offline RAGAS, {reports['base'].samples} questions, top {TOP_K} passages (mean, 0-1)",
        ["Metric", *reports],
        [[metric, *(_mean(report.metrics[metric].mean) for report in reports.values())] for metric in OFFLINE_METRICS],
    )
    if not adapter:
        section.notes.append("No fine-tuned adapter (the bercy benchmark trains it in a full run): base model only.")
    section.notes.append("LLM metrics (faithfulness, answer relevancy, LLM context precision/recall) need LLM_BASE_URL: not run here.")
    section.data = {label: report.as_dict() for label, report in reports.items()}
    return section


def _mean(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
