"""The training and encoding benchmarks on a CUDA GPU, when the machine has one.

    python bench/gpu.py          # = python -m bench --only gpu; on a machine without CUDA it says so and exits 0

Device chosen automatically (the first CUDA device); mixed precision where supported: encoding in fp32 and in
fp16, training with bf16 (fp16 where bf16 is missing), ours and the bare trainer alike. Same report format as the
other benchmarks (its part of docs/BENCHMARKS.md).
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import stats  # noqa: E402
from bench.results import Section, skipped  # noqa: E402
from bench.synthetic import synthetic_entries, synthetic_passages, vocabulary_from_sigles  # noqa: E402

ENCODE_PASSAGES = 20_000


def cuda_device() -> str | None:
    import torch

    return "cuda" if torch.cuda.is_available() else None


def encoding_rows(device: str, *, passages: int, repeat: int) -> list[list]:
    import torch

    from retrieval.catalogue import DEFAULT_MODEL_NAME, get_spec
    from retrieval.embedding import encode_documents, load_model

    from bench.environment import data_dir

    texts = [passage.text for passage in synthetic_passages(synthetic_entries(passages // 2, extra_words=vocabulary_from_sigles(data_dir())))]
    spec = get_spec(DEFAULT_MODEL_NAME)
    rows = []
    for precision in ("fp32", "fp16"):
        model = load_model(spec, device=device)
        if precision == "fp16":
            model.half()
        seconds = stats.median(stats.repeat_timings(lambda: encode_documents(model, spec, texts, batch_size=256), repeat=repeat))
        rows.append([precision, len(texts), f"{seconds:.2f}", f"{len(texts) / seconds:.0f}"])
        del model
        torch.cuda.empty_cache()
    return rows


def run(ctx) -> Section:
    device = cuda_device()
    if device is None:
        return skipped("gpu", "gpu", "No CUDA GPU on this machine: run `python bench/gpu.py` on one to fill this part.")
    import torch

    from bench.training import probe

    section = Section(name="gpu", title="gpu")
    section.notes.append(f"Device: {torch.cuda.get_device_name(0)}, bf16 {'supported' if torch.cuda.is_bf16_supported() else 'not supported'}.")
    section.table(
        "Encoding passages with the default model (batch 256, median of repeats)",
        ["Precision", "Passages", "Seconds", "Passages/s"],
        encoding_rows(device, passages=2_000 if ctx.quick else ENCODE_PASSAGES, repeat=1 if ctx.quick else 3),
    )
    bercy = ctx.data_dir / "bercy"
    if not (bercy / "bercy_train_90.jsonl").exists():
        section.notes.append(f"Training skipped: no Bercy training split under {bercy}.")
        return section
    batch_size, steps = (32, 10) if ctx.quick else (64, 60)
    runs = {"ours": [], "bare": []}
    rows = []
    for number in (1, 2):
        for impl in ("ours", "bare"):
            measured = probe(impl, data_dir=bercy, rows=batch_size * steps, batch_size=batch_size, steps=steps, number=number, device=device)
            runs[impl].append(measured["samples_per_s"])
            rows.append([number, impl, f"{measured['samples_per_s']:.1f}", f"{measured['train_seconds']:.1f}", f"{measured['peak_rss_mb']:.0f}"])
    section.table(
        f"LoRA training on the GPU, {steps} steps of {batch_size} rows, mixed precision",
        ["Run", "Implementation", "Samples/s", "Train seconds", "Peak host RSS MiB"],
        rows,
    )
    ratio = stats.median(runs["ours"]) / stats.median(runs["bare"])
    section.target("GPU training samples/s, ours / bare trainer", value=stats.ratio(ratio), limit=">= 0.95", met=ratio >= 0.95)
    return section


if __name__ == "__main__":
    from bench.runner import main

    main(["--only", "gpu", *sys.argv[1:]])
