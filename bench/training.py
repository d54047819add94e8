"""Training speed: samples/s of our training task vs a bare sentence-transformers trainer, and peak memory.

Each training runs in its own child process (``bench.train_probe``), alternating ours and bare, so that both
start cold, share the machine's state equally, and report their own peak RSS.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

from bench import stats
from bench.environment import BENCH_DIR, ROOT
from bench.results import Section, skipped


def child_env() -> dict[str, str]:
    """Training runs with torch's default threads, as in a Celery worker."""
    env = dict(os.environ)
    env.pop("OMP_NUM_THREADS", None)
    return env


def probe(impl: str, *, data_dir, rows: int, batch_size: int, steps: int, number: int, device: str = "cpu") -> dict:
    report = BENCH_DIR / f"train-{device}-{impl}-{number}.json"
    subprocess.run(
        [sys.executable, "-m", "bench.train_probe", "--impl", impl, "--data-dir", str(data_dir), "--rows", str(rows),
         "--batch-size", str(batch_size), "--steps", str(steps), "--device", device, "--report", str(report)],
        cwd=ROOT, env=child_env(), check=True, capture_output=True, timeout=1800,
    )
    return json.loads(report.read_text(encoding="utf-8"))


def run(ctx) -> Section:
    bercy = ctx.data_dir / "bercy"
    if not (bercy / "bercy_train_90.jsonl").exists():
        return skipped("training", "training", f"No Bercy training split under {bercy}.")
    section = Section(name="training", title="training")
    batch_size, steps, pairs = (8, 3, 1) if ctx.quick else (32, 12, 3)
    rows = batch_size * steps
    runs: dict[str, list[dict]] = {"ours": [], "bare": []}
    table = []
    for number in range(1, pairs + 1):
        for impl in ("ours", "bare"):
            measured = probe(impl, data_dir=bercy, rows=rows, batch_size=batch_size, steps=steps, number=number)
            runs[impl].append(measured)
            table.append([number, impl, f"{measured['samples_per_s']:.1f}", f"{measured['train_seconds']:.1f}", f"{measured['peak_rss_mb']:.0f}", measured["torch_threads"]])
    section.table(
        f"LoRA training of the default model, {steps} steps of {batch_size} rows (anchor, positive, negative_1)",
        ["Run", "Implementation", "Samples/s", "Train seconds", "Peak RSS MiB", "Torch threads"],
        table,
    )
    # Each pair ran back to back: the ratio within a pair cancels the machine's drifting load, the median across pairs
    # drops the pair that a burst of other work disturbed.
    pair_ratios = [ours_run["samples_per_s"] / bare_run["samples_per_s"] for ours_run, bare_run in zip(runs["ours"], runs["bare"])]
    speed_ratio = stats.median(pair_ratios)
    section.target(
        "Training samples/s, ours / bare trainer (median of pairs)", value=stats.ratio(speed_ratio), limit=">= 0.95", met=speed_ratio >= 0.95,
        note="per pair: " + ", ".join(f"{value:.2f}" for value in pair_ratios),
    )
    peak = max(run["peak_rss_mb"] for run in runs["ours"])
    section.notes += [
        f"Peak memory of a training process (ours): {peak:.0f} MiB RSS; it grows with the batch size, the sequence "
        "length and the number of negative columns (activations), not with the glossary.",
        "Ours adds to the bare recipe: the catalogue's prompts per column (none for MiniLM), a no-duplicates batch "
        "sampler, warm-up, a progress callback that writes the run row, and the adapter save.",
    ]
    section.data = {"ours": runs["ours"], "bare": runs["bare"], "ratio": speed_ratio}
    return section
