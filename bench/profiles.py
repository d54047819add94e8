"""Where the time goes: cProfile of warm product searches and of a few LoRA training steps, summarised.

The summary lists the functions with the most own time, and the share of all time spent in this project's code
(files of this repository, outside the virtualenv): that share says whether something of ours dominates.
Full profiles are kept under var/bench/ (``python -m pstats var/bench/profile-search.prof``).
"""
from __future__ import annotations

import cProfile
import pstats
import tempfile
from pathlib import Path

from bench.environment import BENCH_DIR, ROOT, fresh_django
from bench.glossary_db import import_sigles
from bench.results import Section, skipped
from bench.synthetic import questions

TOP = 12


def _where(filename: str) -> str:
    path = Path(filename)
    if str(path).startswith(str(ROOT)) and ".venv" not in path.parts:
        return str(path.relative_to(ROOT))
    if "site-packages" in path.parts:
        return "/".join(path.parts[path.parts.index("site-packages") + 1:][:2])
    return path.name or filename


def summarise(profile: cProfile.Profile, *, per: int, unit: str) -> tuple[list[list], float, float]:
    """(top rows, total seconds, share of our own code) of a profile covering ``per`` operations."""
    stats = pstats.Stats(profile)
    entries = stats.stats  # {(file, line, function): (primitive calls, calls, own time, cumulative, callers)}
    total = sum(own for _, _, own, _, _ in entries.values())
    ours = sum(
        own for (filename, _, _), (_, _, own, _, _) in entries.items()
        if filename.startswith(str(ROOT)) and ".venv" not in Path(filename).parts
    )
    rows = []
    for (filename, line, function), (_, calls, own, cumulative, _) in sorted(entries.items(), key=lambda item: -item[1][2])[:TOP]:
        rows.append([f"{function} ({_where(filename)}:{line})", calls // per if calls >= per else f"{calls}/{per}",
                     f"{own / per * 1000:.2f}", f"{100 * own / total:.1f}"])
    return rows, total, (ours / total if total else 0.0)


def profile_search(ctx) -> tuple[list[list], float, float, int]:
    from retrieval import search, selectors

    if not ctx.shared.get("sigles_imported"):
        import_sigles(ctx.data_dir / "sigles.csv", quick=ctx.quick, keep_terms={question.term for question in questions()})
        ctx.shared["sigles_imported"] = True
    version = selectors.champion_version_get()
    queries = [question.query for question in questions()][:: 4 if ctx.quick else 2]
    for query in queries[:5]:
        search.search(query=query, version=version)  # warm: model, index, dictionaries loaded
    profile = cProfile.Profile()
    profile.enable()
    for query in queries:
        search.search(query=query, version=version)
    profile.disable()
    profile.dump_stats(BENCH_DIR / "profile-search.prof")
    rows, total, ours = summarise(profile, per=len(queries), unit="search")
    return rows, total, ours, len(queries)


def profile_training(ctx, steps: int) -> tuple[list[list], float, float]:
    from bench.train_probe import bercy_dataset
    from retrieval.catalogue import DEFAULT_MODEL_NAME, get_spec
    from training.finetune import FinetuneConfig, finetune

    spec = get_spec(DEFAULT_MODEL_NAME)
    dataset = bercy_dataset(ctx.data_dir / "bercy", 16 * (steps + 1))
    config = FinetuneConfig(batch_size=16, max_steps=1)
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as output_dir:
        finetune(spec=spec, base_path_or_model=spec.path, train_dataset=dataset, config=config, output_dir=output_dir, device="cpu")
        profile = cProfile.Profile()
        profile.enable()
        finetune(spec=spec, base_path_or_model=spec.path, train_dataset=dataset, output_dir=output_dir, device="cpu",
                 config=FinetuneConfig(batch_size=16, max_steps=steps))
        profile.disable()
    profile.dump_stats(BENCH_DIR / "profile-training.prof")
    return summarise(profile, per=steps, unit="step")


def run(ctx) -> Section:
    if not (ctx.data_dir / "sigles.csv").exists() or not (ctx.data_dir / "bercy").is_dir():
        return skipped("profiles", "profiles", f"Needs sigles.csv and bercy/ under {ctx.data_dir}.")
    fresh_django()
    section = Section(name="profiles", title="profiles")
    rows, total, ours, count = profile_search(ctx)
    section.table(
        f"One product search (hybrid + pre-processing, sigles glossary): top functions by own time, per search ({count} searches profiled)",
        ["Function (where)", "Calls per search", "Own ms per search", "% of time"],
        rows,
    )
    section.notes.append(f"Search: {total / count * 1000:.1f} ms per search under the profiler; this project's own code: {100 * ours:.1f}% of it.")
    steps = 2 if ctx.quick else 6
    rows, total, ours = profile_training(ctx, steps)
    section.table(
        f"One LoRA training step (batch 16, anchor/positive/negative): top functions by own time, per step ({steps} steps, model load and save included)",
        ["Function (where)", "Calls per step", "Own ms per step", "% of time"],
        rows,
    )
    section.notes.append(f"Training: {total / steps:.2f} s per step under the profiler (one torch thread); this project's own code: {100 * ours:.1f}% of it.")
    section.data = {"search_ours_share": ours}
    return section
