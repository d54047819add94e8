"""One training cycle on the Bercy data set, base model vs fine-tuned, with the Bercy protocol (no Django).

    python bench/bercy_cycle.py [--data-dir ../shared/data/bercy] [--lr 1e-3] [--max-pairs 1280] ... [--report FILE]

Train concepts come from ``bercy_train_90.jsonl`` and test concepts from ``bercy_test_10.jsonl`` (concept
disjoint), rows grouped by ``cluster_id``: the ``def`` row gives the definition, ``context`` a usage context,
``qa`` an example question with its answer. The cycle is the product's: build pairs (training/builder.py), mine
hard negatives with the base model (training/mining.py), fine-tune a LoRA adapter (training/finetune.py), then
evaluate both models.

Protocol: documents = the def and context texts of the test concepts; queries = the anchor alone and
"C'est quoi {anchor} ?" of each concept (de-duplicated: the def and context rows share their anchor) and the
question of each qa row; Concept relevance = the def and context of the same cluster (tolerant), Def-only = its
def (strict). Dense retrieval with the catalogue's prompts. Hit@k (at least one relevant in the top k) is what the
earlier prototype reported as "R@k".

Writes a JSON report (numbers, timings, settings) to ``--report`` and prints a summary.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.stats import percent_means  # noqa: E402
from evaluation.metrics import ranking_metrics  # noqa: E402
from evaluation.reports import HIT_AT_1, REPORT_METRICS  # noqa: E402
from retrieval.catalogue import DEFAULT_MODEL_NAME, get_spec  # noqa: E402
from retrieval.embedding import encode_documents, encode_queries, load_model  # noqa: E402
from training.builder import (  # noqa: E402
    ConceptData,
    attach_negatives,
    build_pairs,
    concept_passages,
    select_training_pairs,
    to_dataset,
)
from training.finetune import FinetuneConfig, finetune  # noqa: E402
from training.mining import MiningEntry, MiningQuery, mine_hard_negatives  # noqa: E402
from training.snapshot import snapshot_of  # noqa: E402

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "bercy"
TEST_ID_OFFSET = 100_000


def load_concepts(path: Path, *, first_id: int) -> list[ConceptData]:
    clusters: dict[str, dict[str, dict]] = defaultdict(dict)
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            clusters[row["cluster_id"]][row["pair_type"]] = row
    concepts = []
    for offset, rows in enumerate(clusters.values()):
        definition = rows["def"]
        concepts.append(
            ConceptData(
                entry_id=first_id + offset,
                term=definition["anchor"],
                kind=definition["anchor_type"],
                definition=definition["positive"],
                contexts=(rows["context"]["positive"],) if "context" in rows else (),
                examples=((rows["qa"]["anchor"], rows["qa"]["positive"]),) if "qa" in rows else (),
                domain=definition["domain"],
            )
        )
    return concepts


def bercy_benchmark(concepts: list[ConceptData]):
    """Documents (key -> raw text), queries (text -> (concept keys, def key)), as in the Bercy protocol."""
    documents: dict[str, str] = {}
    queries: dict[str, tuple[set[str], set[str]]] = {}

    def add_query(text: str, concept_keys: set[str], definition_key: str) -> None:
        concept_relevant, definition_relevant = queries.setdefault(text, (set(), set()))
        concept_relevant |= concept_keys
        definition_relevant.add(definition_key)

    for concept in concepts:
        definition_key = f"{concept.entry_id}:definition:0"
        documents[definition_key] = concept.definition
        for position, context in enumerate(concept.contexts, start=1):
            documents[f"{concept.entry_id}:context:{position}"] = context
        concept_keys = {key for key in documents if key.startswith(f"{concept.entry_id}:")}
        for text in (concept.term, f"C'est quoi {concept.term} ?", *(question for question, _ in concept.examples)):
            add_query(text, concept_keys, definition_key)
    return documents, queries


def evaluate(model, spec, documents: dict[str, str], queries) -> dict[str, dict[str, float]]:
    keys = list(documents)
    document_vectors = encode_documents(model, spec, [documents[key] for key in keys])
    texts = list(queries)
    scores = encode_queries(model, spec, texts) @ document_vectors.T
    per_protocol: dict[str, list[dict]] = {"concept": [], "def_only": []}
    for row, text in enumerate(texts):
        ranked = [keys[column] for column in np.argsort(-scores[row], kind="stable")[:20]]
        concept_relevant, definition_relevant = queries[text]
        per_protocol["concept"].append(ranking_metrics(ranked, concept_relevant))
        per_protocol["def_only"].append(ranking_metrics(ranked, definition_relevant))
    return {protocol: percent_means(rows, REPORT_METRICS) for protocol, rows in per_protocol.items()}


def mine(model, spec, pairs, concepts, *, num_negatives: int, range_min: int, margin: float):
    passages = [passage for concept in concepts for passage in concept_passages(concept)]
    passage_vectors = encode_documents(model, spec, [passage.text for passage in passages])
    minable = [pair for pair in pairs if pair.positive_key]
    queries = [MiningQuery(anchor=pair.anchor, positive_key=pair.positive_key, entry_id=pair.entry_id) for pair in minable]
    query_vectors = encode_queries(model, spec, [query.anchor for query in queries])
    entries = {
        concept.entry_id: MiningEntry(entry_id=concept.entry_id, term=concept.term, kind=concept.kind, variants=concept.variants)
        for concept in concepts
    }
    return mine_hard_negatives(
        queries=queries,
        query_vectors=query_vectors,
        passages=passages,
        passage_vectors=passage_vectors,
        entries=entries,
        num_negatives=num_negatives,
        range_min=range_min,
        relative_margin=margin,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--model", default=DEFAULT_MODEL_NAME)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--lr", type=float, default=FinetuneConfig.learning_rate)
    parser.add_argument("--batch-size", type=int, default=FinetuneConfig.batch_size)
    parser.add_argument("--rank", type=int, default=FinetuneConfig.lora_r)
    parser.add_argument("--alpha", type=int, default=FinetuneConfig.lora_alpha)
    parser.add_argument("--targets", default="", help="comma-separated LoRA target modules (default: detected)")
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--num-negatives", type=int, default=1, help="negative columns (own other passage type, then mined)")
    parser.add_argument("--mined", type=int, default=1, help="negatives mined per anchor (0: no mining)")
    parser.add_argument("--range-min", type=int, default=3, help="top mined candidates skipped (the product's default)")
    parser.add_argument("--margin", type=float, default=0.05)
    parser.add_argument("--pair-types", default="", help="keep only these pair types (comma-separated)")
    parser.add_argument("--max-pairs", type=int, default=1280,
                        help="a seeded sample of the pairs, as the product's max_pairs default (0: all)")
    parser.add_argument("--eval-every", type=int, default=0, help="evaluate the model in training every N steps (learning curve)")
    parser.add_argument("--output-dir", default="")
    parser.add_argument("--report", type=Path, default=Path("var/bench/bercy_cycle.json"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch_threads = os.environ.get("OMP_NUM_THREADS")

    timings: dict[str, float] = {}
    started = time.perf_counter()
    train = load_concepts(args.data_dir / "bercy_train_90.jsonl", first_id=1)
    test = load_concepts(args.data_dir / "bercy_test_10.jsonl", first_id=TEST_ID_OFFSET)
    test_ids = {concept.entry_id for concept in test}
    spec = get_spec(args.model)
    base = load_model(spec)
    documents, queries = bercy_benchmark(test)

    mark = time.perf_counter()
    base_scores = evaluate(base, spec, documents, queries)
    timings["evaluate_base"] = time.perf_counter() - mark
    print("base", json.dumps(base_scores), flush=True)

    mark = time.perf_counter()
    pairs = build_pairs(concepts=train, test_entry_ids=test_ids)
    if args.pair_types:
        kept = set(args.pair_types.split(","))
        pairs = [pair for pair in pairs if f"{pair.source}:{pair.pair_type}" in kept or pair.pair_type in kept]
    if args.max_pairs:
        pairs = select_training_pairs(pairs, [], max_pairs=args.max_pairs, test_entry_ids=test_ids)
    mining_stats = {}
    if args.mined:
        mined = mine(base, spec, pairs, train, num_negatives=args.mined, range_min=args.range_min, margin=args.margin)
        pairs = attach_negatives(pairs, mined.triplets, test_entry_ids=test_ids)
        mining_stats = {"suspects": len(mined.suspects), "triplets": len(mined.triplets),
                        "with_negatives": sum(1 for triplet in mined.triplets if triplet.negatives),
                        "skipped_above_positive": mined.skipped_above_positive}
    timings["build_and_mine"] = time.perf_counter() - mark
    snapshot = snapshot_of(pairs)
    dataset = to_dataset(pairs, num_negatives=args.num_negatives, test_entry_ids=test_ids)
    print(f"pairs {snapshot.total} {snapshot.counts()} mining {mining_stats}", flush=True)

    config = FinetuneConfig(
        lora_r=args.rank,
        lora_alpha=args.alpha,
        learning_rate=args.lr,
        epochs=args.epochs,
        batch_size=args.batch_size,
        max_steps=args.max_steps,
        target_modules=tuple(filter(None, args.targets.split(","))),
    )
    output_dir = args.output_dir or tempfile.mkdtemp(prefix="bercy-cycle-")
    # The model object in training, so that the learning curve can evaluate it between steps (the trainer puts it
    # back in training mode at its next step).
    in_training = load_model(spec)
    curve: list[dict] = []
    curve_seconds = 0.0

    def progress(update: dict) -> None:
        nonlocal curve_seconds
        print(f"step {update['step']}/{update['total']} loss {update['loss']}", flush=True)
        step = update["step"]
        if args.eval_every and step % args.eval_every == 0 and step < update["total"] and not any(
            point["step"] == step for point in curve
        ):
            curve_mark = time.perf_counter()
            scores = evaluate(in_training, spec, documents, queries)
            curve_seconds += time.perf_counter() - curve_mark
            curve.append({"step": step, **scores})
            print(f"curve step {step} def_only {scores['def_only'][HIT_AT_1.key]:.1f} concept {scores['concept'][HIT_AT_1.key]:.1f}", flush=True)

    mark = time.perf_counter()
    result = finetune(
        spec=spec,
        base_path_or_model=in_training,
        train_dataset=dataset,
        config=config,
        output_dir=output_dir,
        progress=progress,
    )
    timings["finetune"] = time.perf_counter() - mark - curve_seconds

    mark = time.perf_counter()
    tuned = load_model(spec, adapter_path=result.adapter_dir)
    tuned_scores = evaluate(tuned, spec, documents, queries)
    timings["evaluate_tuned"] = time.perf_counter() - mark
    timings["cycle"] = time.perf_counter() - started - curve_seconds

    report = {
        "model": spec.name,
        "queries": len(queries),
        "documents": len(documents),
        "base": base_scores,
        "fine_tuned": tuned_scores,
        "curve": curve,
        "snapshot": {"hash": snapshot.content_hash, "total": snapshot.total, **snapshot.counts()},
        "mining": mining_stats,
        "config": {**vars(config), "num_negatives": args.num_negatives, "mined": args.mined,
                   "range_min": args.range_min, "margin": args.margin, "pair_types": args.pair_types,
                   "max_pairs": args.max_pairs},
        "train": {"steps": result.steps, "loss": result.train_loss, "samples_per_s": result.samples_per_s,
                  "peak_rss_mb": result.peak_rss_mb, "device": result.device, "targets": result.target_modules,
                  "omp_threads": torch_threads},
        "timings_s": {name: round(value, 1) for name, value in timings.items()},
        "adapter_dir": result.adapter_dir,
    }
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    for protocol in ("def_only", "concept"):
        base_line = " ".join(f"{name} {value:.1f}" for name, value in base_scores[protocol].items())
        tuned_line = " ".join(f"{name} {value:.1f}" for name, value in tuned_scores[protocol].items())
        print(f"{protocol:9s} base  {base_line}\n{protocol:9s} tuned {tuned_line}")
    print(f"timings {report['timings_s']} report {args.report}")


if __name__ == "__main__":
    main()
