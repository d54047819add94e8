"""Tuning the training defaults on the DEV half of the sigles question set (issue 12).

``python -m bench.sigles_tuning [--variants NAME ...] [--weights 0.25 0.5 ...] [--test NAME:WEIGHT]``

One process: the sigles glossary is imported once into the bench's scratch database (the product's import
command) and indexed with the base model (``index_rebuild``). The training pairs are built as a cycle builds
them (``training.runs._execute``: frozen split, train-side concepts, ``build_pairs``,
``select_training_pairs`` with the config's seed and ``max_pairs``, hard negatives mined with the base model,
``to_dataset``), each variant is fine-tuned with the product's ``finetune()``, and each candidate model (each
adapter weight, WiSE-FT ``interpolate_adapter``) encodes the whole glossary's passages and ranks the questions
with the product's search steps (hybrid fusion + exact match + pre-processing, ``bench.sigles.product_rankings_with``;
checked identical to ``retrieval.search.search`` on the base model). Per kind, Def-only.

Only the DEV half is scored while tuning; ``--test NAME:WEIGHT`` scores the test half of one chosen setting, once.
Each result is appended to ``var/bench/sigles_tuning.jsonl`` as it comes (an interrupted run keeps its numbers).
The question set itself is never trained on; the generated questions of train-side entries are.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass

from bench.environment import BENCH_DIR, data_dir, fresh_django
from bench.glossary_db import import_sigles, question_targets
from bench.sigles import product_rankings_with, prepare_queries, rank_entries, PRODUCT
from bench.sigles_cycle import KIND_ORDER, scores_by_kind
from bench.sigles_flags import split_targets
from bench.synthetic import DEV, TEST, questions
from evaluation.reports import HIT_AT_1, MRR_AT_10

LOG = BENCH_DIR / "sigles_tuning.jsonl"
HIT, MRR = HIT_AT_1.key, MRR_AT_10.key


@dataclass(frozen=True)
class Variant:
    name: str
    questions_per_kind: int = 1
    templates: bool = True
    learning_rate: float = 1e-3
    max_pairs: int = 1280  # one epoch of batch 32: 40 steps (2560: 80 steps)
    question_kinds: tuple[str, ...] | None = None  # None: every kind


VARIANTS = {
    variant.name: variant
    for variant in (
        Variant("default"),  # the priors on main: templates + 1 question per kind, lr 1e-3, 40 steps
        Variant("no-templates", templates=False),
        Variant("no-templates-q2", templates=False, questions_per_kind=2),
        Variant("no-templates-lr5e-4", templates=False, learning_rate=5e-4),
        Variant("no-templates-lr2e-4", templates=False, learning_rate=2e-4),
        Variant("no-templates-80", templates=False, max_pairs=2560),
        Variant("q2", questions_per_kind=2),
        Variant("lr5e-4", learning_rate=5e-4),
        Variant("80-steps", max_pairs=2560),
    )
}


def log(record: dict) -> None:
    LOG.parent.mkdir(parents=True, exist_ok=True)
    with LOG.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def line(label: str, scores: dict) -> str:
    kinds = [kind for kind in (*KIND_ORDER, "all") if kind in scores]
    return f"{label:34s} " + " ".join(f"{kind[:5]} {scores[kind][HIT]:5.1f}" for kind in kinds)


class Bench:
    """The glossary, the base model's index and rankings, and the questions of both halves, prepared once."""

    def __init__(self):
        import torch

        fresh_django()
        from retrieval import encoding, indexing, selectors

        asked = questions()
        started = time.perf_counter()
        self.summary = import_sigles(data_dir() / "sigles.csv", quick=False, keep_terms=set())
        self.base_version = selectors.champion_version_get()
        indexing.index_rebuild(version=self.base_version)
        self.served = indexing.served_index_get(version=self.base_version)
        self.model, self.spec = encoding.model_for_version(self.base_version)
        targets, self.missing = question_targets(asked)
        self.halves = split_targets(targets)
        self.prepared = {half: prepare_queries([t.question.query for t in chosen], served=self.served) for half, chosen in self.halves.items()}
        print(f"-- glossary ready in {time.perf_counter() - started:.0f} s ({self.summary}); torch threads {torch.get_num_threads()}", flush=True)

    def scores(self, half: str, model) -> dict:
        from retrieval.embedding import encode_queries

        prepared = self.prepared[half]
        if model is None:  # the base model: its index is the served one
            vectors = self.served.vectors
            query_vectors = encode_queries(self.model, self.spec, [item.final for item in prepared])
        else:
            vectors = self._vectors(model)
            query_vectors = encode_queries(model, self.spec, [item.final for item in prepared])
        rankings = product_rankings_with(prepared, vectors=vectors, query_vectors=query_vectors)
        return scores_by_kind(rankings, self.halves[half])

    def _vectors(self, model):
        from retrieval.embedding import encode_documents
        from retrieval.vector_index import VectorIndex

        passages = self.served.vectors.passages
        key = id(model), getattr(model, "_bench_weight", None)
        if getattr(self, "_vector_key", None) != key:
            self._vector_cache = VectorIndex(passages, encode_documents(model, self.spec, [p.text for p in passages]))
            self._vector_key = key
        return self._vector_cache

    def check_against_search(self, half: str, limit: int = 80) -> int:
        """Disagreements between ``product_rankings_with`` (base model) and ``retrieval.search.search`` itself."""
        from retrieval.embedding import encode_queries

        prepared = self.prepared[half][:limit]
        mine = product_rankings_with(prepared, vectors=self.served.vectors,
                                     query_vectors=encode_queries(self.model, self.spec, [p.final for p in prepared]))
        return sum(mine[p.query] != rank_entries(p.query, version=self.base_version, variant=PRODUCT) for p in prepared)

    # ---- training, as a cycle does it -------------------------------------------------------------------

    def pairs(self, variant: Variant):
        from retrieval.embedding import encode_queries
        from retrieval.passages import entry_passages
        from training import selectors
        from training.builder import build_pairs, select_training_pairs, to_dataset, attach_negatives
        from training.mining import MiningQuery, mine_hard_negatives
        from training.models import TrainingConfig
        from training.questions import KINDS
        from training.services import split_assign_all

        defaults = {field.name: field.get_default() for field in TrainingConfig._meta.concrete_fields}
        seed = defaults["seed"]
        split_assign_all(seed=seed)
        test_ids = selectors.test_entry_ids()
        concepts = selectors.train_concepts()
        all_pairs = build_pairs(
            concepts=concepts, test_entry_ids=test_ids, questions_per_kind=variant.questions_per_kind,
            templates=variant.templates, question_kinds=variant.question_kinds or KINDS,
        )
        # First cycle from the base model: nothing earlier to replay.
        pairs = select_training_pairs(all_pairs, [], replay_ratio=defaults["replay_ratio"], seed=seed, max_pairs=variant.max_pairs, test_entry_ids=test_ids)
        train_ids = {concept.entry_id for concept in concepts}
        passages = [p for c in concepts for p in entry_passages(entry_id=c.entry_id, term=c.term, definition=c.definition, contexts=c.contexts)]
        row_of = {p.key: row for row, p in enumerate(self.served.vectors.passages)}
        passage_vectors = self.served.vectors.matrix[[row_of[p.key] for p in passages]]
        keyed = [pair for pair in pairs if pair.positive_key]
        queries = [MiningQuery(anchor=pair.anchor, positive_key=pair.positive_key, entry_id=pair.entry_id) for pair in keyed]
        mined = mine_hard_negatives(
            queries=queries,
            query_vectors=encode_queries(self.model, self.spec, [q.anchor for q in queries]),
            passages=passages,
            passage_vectors=passage_vectors,
            entries=selectors.mining_entries(entry_ids=train_ids),
            equivalent_pairs=selectors.equivalent_pairs(),
            decisions=selectors.screening_decisions(),
            num_negatives=defaults["num_negatives"],
            range_min=defaults["mining_range_min"],
            relative_margin=defaults["mining_relative_margin"],
        )
        pairs = attach_negatives(pairs, mined.triplets, test_entry_ids=test_ids)
        counts = {"pairs": len(pairs), "generated": sum(p.source == "question" for p in pairs)}
        return to_dataset(pairs, num_negatives=defaults["num_negatives"], seed=seed, test_entry_ids=test_ids), counts, defaults

    def train(self, variant: Variant, workdir: str):
        from retrieval.embedding import load_model
        from training.finetune import FinetuneConfig, finetune

        dataset, counts, defaults = self.pairs(variant)
        config = FinetuneConfig(
            lora_r=defaults["lora_r"], lora_alpha=defaults["lora_alpha"], lora_dropout=defaults["lora_dropout"],
            loss=defaults["loss"], learning_rate=variant.learning_rate, epochs=defaults["epochs"],
            batch_size=defaults["batch_size"], warmup_ratio=defaults["warmup_ratio"], max_steps=defaults["max_steps"],
            seed=defaults["seed"], adapter_weight=1.0,
        )
        result = finetune(spec=self.spec, base_path_or_model=self.spec.path, train_dataset=dataset, config=config, output_dir=workdir)
        model = load_model(self.spec, adapter_path=result.adapter_dir)
        return model, counts | {"steps": result.steps, "loss": round(result.train_loss, 4), "train_s": round(result.seconds)}


def admissible(scores: dict, base: dict) -> bool:
    """No kind below the base model's Hit@1 (dev half)."""
    return all(scores[kind][HIT] >= base[kind][HIT] - 1e-9 for kind in base if kind != "all")


def choose(results: dict, base: dict) -> tuple[str, float] | None:
    """The best (variant, weight) on dev: highest overall Hit@1 among the admissible ones (ties: higher MRR@10,
    then the smaller weight); None when no setting keeps every kind at or above the base model."""
    candidates = [(key, scores) for key, scores in results.items() if admissible(scores, base)]
    if not candidates:
        return None
    return max(candidates, key=lambda item: (round(item[1]["all"][HIT], 6), round(item[1]["all"][MRR], 6), -item[0][1]))[0]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.sigles_tuning", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="*", default=["default", "no-templates"], choices=list(VARIANTS))
    parser.add_argument("--weights", nargs="+", type=float, default=[0.5, 1.0])
    parser.add_argument("--refine", action="store_true", help="then try the neighbouring weight (0.25 or 0.75) of the best variant")
    parser.add_argument("--test", action="store_true", help="then score the TEST half of the chosen setting and the base model, once")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    from training.finetune import interpolate_adapter

    bench = Bench()
    disagreements = bench.check_against_search(DEV)
    print(f"-- rankings vs search.search on 80 dev questions (base model): {disagreements} differ", flush=True)
    base = bench.scores(DEV, None)
    log({"variant": "base", "half": DEV, "scores": base, "check_disagreements": disagreements, "glossary": bench.summary})
    print(line("base (dev)", base), flush=True)
    models, results = {}, {}

    def evaluate(name: str, weight: float, half: str = DEV) -> dict:
        model, info = models[name]
        interpolate_adapter(model, weight)
        model._bench_weight = weight
        scores = bench.scores(half, model)
        log({"variant": name, "weight": weight, "half": half, "config": asdict(VARIANTS[name]), "train": info, "scores": scores})
        print(line(f"{name} w={weight} ({half})", scores), flush=True)
        return scores

    for name in args.variants:
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(dir=BENCH_DIR) as workdir:
            models[name] = bench.train(VARIANTS[name], workdir)
        print(f"-- {name}: trained {models[name][1]} in {time.perf_counter() - started:.0f} s", flush=True)
        for weight in args.weights:
            results[(name, weight)] = evaluate(name, weight)
    best_name = max(args.variants, key=lambda name: max(results[(name, w)]["all"][HIT] for w in args.weights if admissible(results[(name, w)], base)) if any(admissible(results[(name, w)], base) for w in args.weights) else -1)
    if args.refine and best_name:
        ranked = sorted(args.weights, key=lambda w: results[(best_name, w)]["all"][HIT], reverse=True)
        neighbour = 0.75 if ranked[0] >= 0.75 or (len(ranked) > 1 and ranked[0] > ranked[1]) else 0.25
        if (best_name, neighbour) not in results:
            results[(best_name, neighbour)] = evaluate(best_name, neighbour)
    chosen = choose(results, base)
    log({"chosen": chosen, "rule": "highest dev overall Hit@1 with no kind below base"})
    print(f"-- chosen on dev: {chosen}", flush=True)
    if args.test and chosen:
        base_test = bench.scores(TEST, None)
        log({"variant": "base", "half": TEST, "scores": base_test})
        print(line("base (test)", base_test), flush=True)
        evaluate(*chosen, half=TEST)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    # The candidates are torch models: the served search must encode its queries with torch too (not the int8 ONNX
    # encoder a version serves by default), or the check against search.search compares two encoders.
    os.environ.setdefault("QUERY_ENCODER", "torch")
    main()
