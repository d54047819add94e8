"""Run as a child process: one short LoRA training on a Bercy slice, with our task or a bare trainer.

    python -m bench.train_probe --impl ours|bare --rows 640 --batch-size 32 --steps 20 [--device cuda] --report out.json

Both train the default model with the same LoRA settings, loss, batch size, steps and dataset (the builder's
``anchor, positive, negative_1`` rows of the first Bercy training concepts). ``ours`` is
``training.finetune.finetune``; ``bare`` is the few lines of sentence-transformers' documented LoRA recipe (with bf16/fp16 mixed precision on a GPU,
as ours chooses).
Writes samples/s, seconds and the process's peak RSS.
"""
from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import torch


def bercy_dataset(data_dir: Path, rows: int):
    from bench.bercy_cycle import TEST_ID_OFFSET, load_concepts
    from training.builder import build_pairs, to_dataset

    train = load_concepts(data_dir / "bercy_train_90.jsonl", first_id=1)
    test_ids = {concept.entry_id for concept in load_concepts(data_dir / "bercy_test_10.jsonl", first_id=TEST_ID_OFFSET)}
    pairs = build_pairs(concepts=train, test_entry_ids=test_ids)
    return to_dataset(pairs, num_negatives=1, test_entry_ids=test_ids).select(range(rows))


def train_ours(spec, dataset, *, batch_size: int, steps: int, output_dir: str, device: str) -> dict:
    from training.finetune import FinetuneConfig, finetune

    result = finetune(
        spec=spec, base_path_or_model=spec.path, train_dataset=dataset, output_dir=output_dir, device=device,
        config=FinetuneConfig(batch_size=batch_size, max_steps=steps),
    )
    return {"samples_per_s": result.samples_per_s, "train_seconds": result.seconds}


def train_bare(spec, dataset, *, batch_size: int, steps: int, output_dir: str, device: str) -> dict:
    from peft import LoraConfig, TaskType
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from sentence_transformers.sentence_transformer.trainer import SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.training_args import SentenceTransformerTrainingArguments

    from retrieval.catalogue import resolve_path

    model = SentenceTransformer(resolve_path(spec), device=device)
    model.add_adapter(LoraConfig(task_type=TaskType.FEATURE_EXTRACTION, r=16, lora_alpha=32, lora_dropout=0.05,
                                 target_modules=["query", "key", "value"]))
    on_gpu = device.startswith("cuda")
    bf16 = on_gpu and torch.cuda.is_bf16_supported()
    args = SentenceTransformerTrainingArguments(
        output_dir=output_dir, per_device_train_batch_size=batch_size, max_steps=steps, learning_rate=2e-4,
        use_cpu=not on_gpu, bf16=bf16, fp16=on_gpu and not bf16, report_to="none", save_strategy="no", disable_tqdm=True,
    )
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset, loss=MultipleNegativesRankingLoss(model))
    started = time.perf_counter()
    output = trainer.train()
    return {"samples_per_s": float(output.metrics["train_samples_per_second"]), "train_seconds": time.perf_counter() - started}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--impl", choices=("ours", "bare"), required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--rows", type=int, default=640)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--report", type=Path, required=True)
    args = parser.parse_args()

    from retrieval.catalogue import DEFAULT_MODEL_NAME, get_spec

    spec = get_spec(DEFAULT_MODEL_NAME)
    dataset = bercy_dataset(args.data_dir, args.rows)
    train = train_ours if args.impl == "ours" else train_bare
    with tempfile.TemporaryDirectory(prefix="bench-train-") as output_dir:
        measured = train(spec, dataset, batch_size=args.batch_size, steps=args.steps, output_dir=output_dir, device=args.device)
    measured.update(
        impl=args.impl, device=args.device, rows=len(dataset), steps=args.steps, batch_size=args.batch_size, torch_threads=torch.get_num_threads(),
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    )
    args.report.write_text(json.dumps(measured), encoding="utf-8")


if __name__ == "__main__":
    main()
