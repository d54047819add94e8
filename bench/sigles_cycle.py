"""One product training cycle on the whole sigles glossary, judged on the questions people ask (issue 12).

The sigles glossary is imported with the product's command and indexed with the serving code (as in the sigles
part). Then ONE cycle runs exactly as ``manage.py retrain --inline`` runs it, with the default training config:
the training service (split, pairs, mining, LoRA, merge, model version), the evaluation it triggers, the
promotion gate and the promotion when the gate asks for it. Base and new version are then searched with the product's search (hybrid + exact match +
pre-processing) over the whole glossary for every question of ``bench/data/sigles_questions.jsonl``, reported per
kind on the TEST half (the reported numbers) and on the DEV half (the half the defaults were tuned on), with the
gate's decision. Def-only relevance: the entry with the question's definition.

Targets (issue 12): no kind loses Hit@1 on the test half; overall Hit@1 +10 points or more; >= 70 % of the flagged
questions' unseen rewordings answered right after the cycle (the flags: the sigles_flags part).
"""
from __future__ import annotations

from collections import Counter, defaultdict

from bench.glossary_db import Target
from bench import stats
from bench.results import Section, skipped
from bench.sigles_flags import flag_to_fix, product_rankings, r1, r1_of
from bench.synthetic import DEV, TEST
from evaluation.metrics import ranking_metrics
from evaluation.gate_records import GateRecord, gate_of
from evaluation.reports import HIT_AT_1, QUESTION_METRICS

REWORDING_TARGET = 70.0
KIND_ORDER = ("acronym", "reverse", "paraphrase", "typo", "english", "ambiguous")


def scores_by_kind(rankings: dict[str, list[int]], targets: list[Target]) -> dict[str, dict[str, float]]:
    """Def-only Hit@1, Hit@10, MRR@10 (percent, by metric key) per kind and "all"."""
    rows: dict[str, list[dict]] = defaultdict(list)
    for target in targets:
        ranked = [str(entry_id) for entry_id in rankings[target.question.query]]
        metrics = ranking_metrics(ranked, {str(pk) for pk in target.meaning_entry_ids})
        rows[target.question.category].append(metrics)
        rows["all"].append(metrics)
    return {
        kind: stats.percent_means(items, QUESTION_METRICS) | {"n": len(items)}
        for kind, items in rows.items()
    }


def comparison_rows(base: dict, new: dict) -> list[list]:
    kinds = [kind for kind in (*KIND_ORDER, *sorted(set(base) - set(KIND_ORDER) - {"all"}), "all") if kind in base]
    rows = []
    for kind in kinds:
        b, n = base[kind], new.get(kind, {})
        rows.append([kind, b["n"], *(f"{b[metric.key]:.1f}" for metric in QUESTION_METRICS), *(f"{n.get(metric.key, 0):.1f}" for metric in QUESTION_METRICS),
                     f"{n.get(HIT_AT_1.key, 0) - b[HIT_AT_1.key]:+.1f}"])
    return rows


def run_cycle() -> tuple[object, GateRecord | None]:
    """``retrain --inline`` with the default config: training, then the evaluation, gate and promotion it
    triggers, in this process."""
    from django.core.management import call_command

    from evaluation.models import EvaluationRun
    from training.models import TrainingRun

    call_command("retrain", inline=True)
    run = TrainingRun.objects.order_by("-pk").first()
    evaluation = EvaluationRun.objects.filter(training_run_id=run.pk).order_by("-pk").first()
    return run, gate_of(evaluation.gate if evaluation else None)


def run(ctx) -> Section:
    name = "sigles_cycle"
    if not (ctx.data_dir / "sigles.csv").exists():
        return skipped(name, name, f"No {ctx.data_dir / 'sigles.csv'}.")
    # Flag-to-fix (the sigles_flags part): a batch of wrongly answered dev questions is flagged and corrected
    # before the cycle; the base rankings were taken before any flag.
    fix = flag_to_fix(ctx)
    from training.builder import DEFAULT_QUESTIONS_PER_KIND
    from training.finetune import FinetuneConfig

    summary, targets, missing, halves = fix.summary, fix.targets, fix.missing, fix.halves
    flagged, rewordings, flag_seconds, instant = fix.flagged, fix.rewordings, fix.flag_seconds, fix.instant
    base_rankings = fix.base_rankings
    base_scores = {half: scores_by_kind(base_rankings[half], chosen) for half, chosen in halves.items()}
    from retrieval import indexing, selectors

    training_run, gate = run_cycle()
    section = Section(name=name, title=name)
    if training_run.model_version_id is None:
        section.notes.append(f"The cycle made no version: {training_run.status} {training_run.error}")
        return section
    new = training_run.model_version
    indexing.index_rebuild(version=new)
    new_scores = {half: scores_by_kind(product_rankings(new, chosen), chosen) for half, chosen in halves.items()}

    from retrieval.models import Flag

    served = selectors.champion_version_get()
    after = {"flagged": r1(new, flagged), "rewordings": r1(new, rewordings), "served_rewordings": r1(served, rewordings)}
    states = dict(Counter(Flag.objects.values_list("status", flat=True)))
    section.table(
        f"Flag-to-fix: {len(flagged)} wrongly answered dev questions flagged and corrected, {len(rewordings)} unseen rewordings ({HIT_AT_1.label}, percent, product search over the whole glossary)",
        ["Questions", "base before the flags", "right after correction (instant fix)", f"after the cycle ({new})", f"served after the cycle ({served})"],
        [["flagged", "0.0", f"{instant['flagged']:.1f}", f"{after['flagged']:.1f}", f"{r1(served, flagged):.1f}"],
         ["unseen rewordings", f"{r1_of(base_rankings[DEV], rewordings):.1f}", f"{instant['rewordings']:.1f}", f"{after['rewordings']:.1f}", f"{after['served_rewordings']:.1f}"]],
    )
    section.target("Unseen rewordings answered right after the cycle (served version)", value=f"{after['served_rewordings']:.1f} %", limit=f">= {REWORDING_TARGET:.0f} %", met=after["served_rewordings"] >= REWORDING_TARGET)
    section.notes.append(
        f"Flags: {len(flagged)} corrected and served in {flag_seconds:.1f} s in all (flag service + the entry's index update, "
        f"{flag_seconds / max(len(flagged), 1) * 1000:.0f} ms each); flag states after the cycle: {states}."
    )

    columns = ["Kind", "Questions", *(f"{side} {metric.label}" for side in ("base", "new") for metric in QUESTION_METRICS), f"{HIT_AT_1.label} change"]
    for half, label in ((TEST, "TEST half (reported)"), (DEV, "DEV half (tuned on)")):
        section.table(f"{label}: product search over the whole glossary, base vs {new} (Def-only, percent)", columns,
                      comparison_rows(base_scores[half], new_scores[half]))
    test_base, test_new = base_scores[TEST], new_scores[TEST]
    hit = HIT_AT_1.key
    worst = min((test_new[kind][hit] - test_base[kind][hit] for kind in test_base if kind != "all"), default=0.0)
    overall = test_new["all"][hit] - test_base["all"][hit]
    section.target(f"No kind loses {HIT_AT_1.label} (test half)", value=f"worst {worst:+.1f} points", limit=">= 0", met=worst >= 0)
    section.target(f"Overall {HIT_AT_1.label} gain (test half)", value=f"{overall:+.1f} points", limit=">= +10", met=overall >= 10)
    decision = gate.decision if gate else "none"
    section.notes += [
        f"Glossary: {summary}",
        f"Questions: {len(targets)} resolved ({len(halves[TEST])} test, {len(halves[DEV])} dev), {len(missing)} unresolved"
        + (f": {[q.query for q in missing[:5]]}" if missing else "") + ".",
        f"Cycle: training run {training_run.pk} {training_run.status}, version {new}; stats {training_run.stats}; "
        f"timings {training_run.timings}; adapter weight (FinetuneConfig default) {FinetuneConfig().adapter_weight}, generated questions per kind {DEFAULT_QUESTIONS_PER_KIND}.",
        f"Gate: {decision} ({' '.join(gate.reasons if gate else [])})",
    ]
    section.data = {"base": base_scores, "new": new_scores, "gate": gate.to_dict() if gate else {}, "training_run": training_run.pk,
                    "flag_to_fix": {"flagged": len(flagged), "rewordings": len(rewordings), "instant": instant, "after": after, "states": states}}
    return section
