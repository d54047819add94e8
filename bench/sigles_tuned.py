"""The sigles question set with the fine-tuned model (the Bercy adapter), next to the base model's rows.

The adapter is stored as a model version of the default model, indexed with the serving code and searched like
any version (not promoted). Its numbers show whether training on one glossary (Bercy) transfers to another.
"""
from __future__ import annotations

from bench.bercy import adapter_dir
from bench.glossary_db import question_targets
from bench.results import Section, skipped
from bench.sigles import PRODUCT, QUALITY_COLUMNS, prepare, quality_rows, tuned_version
from bench.synthetic import questions


def run(ctx) -> Section:
    if not (ctx.data_dir / "sigles.csv").exists():
        return skipped("sigles_tuned", "sigles_tuned", f"No {ctx.data_dir / 'sigles.csv'}.")
    adapter = adapter_dir(ctx)
    if not adapter:
        return skipped("sigles_tuned", "sigles_tuned", "No fine-tuned adapter yet: the bercy benchmark (full mode) trains it.")
    asked = questions()
    prepare(ctx, asked)
    from retrieval import indexing, selectors

    targets, _missing = question_targets(asked)
    tuned = tuned_version(adapter)
    indexing.index_rebuild(version=tuned)
    variants = ("dense", "hybrid", PRODUCT)
    rows, _ = quality_rows("base", version=selectors.champion_version_get(), targets=targets, variants=variants)
    tuned_rows, scores = quality_rows("fine-tuned (Bercy LoRA)", version=tuned, targets=targets, variants=variants)
    section = Section(name="sigles_tuned", title="sigles_tuned")
    section.table(f"Quality over {len(targets)} questions (percent)", QUALITY_COLUMNS, rows + tuned_rows)
    section.notes.append(f"Adapter: {adapter} (trained by the bercy benchmark on the Bercy train split only).")
    section.data = {variant: {k: v for k, v in value.items() if k != "rankings"} for variant, value in scores.items()}
    return section
