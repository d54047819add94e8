"""Active learning vs random selection, with a simulated expert (issue 6, "Measure it").

    python -m bench.active_learning [--quick]        # or: python -m bench --only active_learning

The product's loop, replayed at the level of its pure functions: a glossary drawn from sigles.csv (the rows of the
sigles question set's terms plus a seeded sample of others), and logged questions split into a *pool* (what users
asked; the simulated expert answers some of them) and a *held-out* set (what the next users ask; only measured).
Both come from the hand-written sigles question set (split question by question) and from questions written from
glossary rows with the templates of ``bench/data/active_learning/question_templates.json`` (acronym questions with
filler words, typos, reverse look-ups from the definition): each row users asked about gets a pool question and a
held-out rewording, and rows nobody asked about get held-out questions whose entries are never trained on.

Each cycle the simulated expert answers ``per_cycle`` pool questions with the known right entry, exactly what the
workbench's "question" source records: a confirmed (question, entry) pair whose negatives are the entries the
current model ranked above the right one (``training.builder.FlagData``). Which questions it answers is the only
difference between the two strategies:

* active: the remaining pool scored by the current model like the queue scores logged questions
  (``training.queue.question_signals`` / ``question_uncertainty`` from the top score and the top-2 margin), then
  ordered by ``training.queue.diverse_order`` (uncertainty traded against "same entries as just shown");
* random: a seeded shuffle of the pool.

After each cycle a LoRA adapter is trained from the base model (``training.finetune``) on the same seeded sample
of the glossary's definitional pairs plus every answer so far (``training.builder``), for a fixed number of steps,
and measured on the held-out questions: Def-only Hit@1 and MRR@10 over entries, dense retrieval. Retraining
from the base model on everything labelled so far (not continuing the previous adapter) keeps each point a
function of the labelled set only, so the two curves differ by what was selected and nothing else.

As in the product, about 30 % of the answers (a stable hash of the question) are held out of training to judge
versions, and after each training the product's promotion gate (``evaluation.gate.decide_for_users``) compares the
candidate with the served version: on those held-out answers once there are 30, else on the canary set built from
the entries nobody asked about. The served version (the champion) is what the next cycle's active order scores
questions with; the report gives each cycle's candidate and what users are served.

Why pure functions and not the Django workbench: the same code paths (queue scoring and order, builder, trainer,
metrics) without a database, a search index rebuild and Celery per cycle, which would triple the time of a cycle
on a 2-core machine without changing what is measured.

The scenario (sizes, glossary, questions) is in bench.active_learning_scenario, the simulation in
bench.active_learning_simulation; this module turns their numbers into the report's section.
"""
from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from bench import report, results
from bench.active_learning_scenario import FULL, QUICK, UNSEEN, WRITTEN, Scenario, Settings, build_scenario, sigles_rows
from bench.active_learning_simulation import ACTIVE, GATE_MIN_REAL_QUESTIONS, RANDOM, simulate
from bench.environment import BENCH_DIR, ROOT, data_dir
from bench.results import Section
from bench.synthetic import Question, questions
from evaluation.charts import line_chart
from evaluation.metrics import aggregate
from evaluation.reports import KEY_METRICS, MRR_AT_10

FULL_CHART_PATH = ROOT / "docs" / "active_learning.svg"
QUICK_CHART_PATH = BENCH_DIR / "active_learning-quick.svg"
STRATEGY_LABELS = {ACTIVE: "Active", RANDOM: "Random"}
MATCHED_METRIC = MRR_AT_10.key


def decisions_to_match(curve: Sequence[tuple[int, float]], target: float) -> float | None:
    """Decisions at which the curve first reaches ``target``, linearly interpolated between its points; None
    when it never does."""
    for index, (decisions, value) in enumerate(curve):
        if value >= target:
            if index == 0:
                return float(decisions)
            previous_decisions, previous_value = curve[index - 1]
            share = (target - previous_value) / (value - previous_value)
            return previous_decisions + share * (decisions - previous_decisions)
    return None


def paired_difference(first: Sequence[float], second: Sequence[float]) -> dict[str, float]:
    """Mean of first - second over the same questions, with its 95 % normal interval."""
    differences = np.asarray(first, dtype=float) - np.asarray(second, dtype=float)
    half_width = 1.96 * differences.std(ddof=1) / np.sqrt(len(differences)) if len(differences) > 1 else float("nan")
    return {"mean": float(differences.mean()), "low": float(differences.mean() - half_width), "high": float(differences.mean() + half_width)}


# ---- numbers, chart and section ------------------------------------------------------------------------------

def _by_kind(scenario: Scenario, per_question: Sequence[dict[str, float]]) -> dict[str, dict[str, float]]:
    groups: dict[str, list[dict[str, float]]] = defaultdict(list)
    for question, metrics in zip(scenario.held_out, per_question):
        groups[f"{question.origin}/{question.kind}"].append(metrics)
    return {kind: {"count": len(rows), **{metric.key: aggregate(rows)[metric.key] for metric in KEY_METRICS}} for kind, rows in sorted(groups.items())}


def chart(curves: dict[str, list[dict]]) -> str:
    """Held-out Hit@1 and MRR@10 of both strategies against the number of expert decisions (SVG)."""
    points = []
    for position, point in enumerate(curves[ACTIVE]):
        values = {
            f"{STRATEGY_LABELS[strategy]} {metric.label}": curves[strategy][position][metric.key]
            for metric in KEY_METRICS
            for strategy in (ACTIVE, RANDOM)
        }
        points.append((str(point["decisions"]), values))
    return line_chart(points, "Held-out quality vs expert decisions (active vs random order)")


def measure(*, rows: Sequence[dict[str, str]], asked: Sequence[Question], settings: Settings, chart_path: Path, workdir: Path | None = None) -> dict:
    """Run the simulation, write the chart, and return every number the section reports."""
    scenario = build_scenario(rows=rows, asked=asked, settings=settings)
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="active-learning-", dir=workdir) as folder:
        outcome = simulate(scenario, settings, workdir=Path(folder))
    curves = outcome["curves"]
    random_final = curves[RANDOM][-1][MATCHED_METRIC]
    needed = decisions_to_match([(point["decisions"], point[MATCHED_METRIC]) for point in curves[ACTIVE]], random_final)
    random_decisions = curves[RANDOM][-1]["decisions"]
    chart_path.parent.mkdir(parents=True, exist_ok=True)
    chart_path.write_text(chart(curves), encoding="utf-8")
    return {
        "settings": asdict(settings),
        "sizes": {
            "entries": len(scenario.concepts),
            "pool": len(scenario.pool),
            "held_out": len(scenario.held_out),
            "held_out_entries": len({question.entry_id for question in scenario.held_out}),
            "unseen_entries": len(scenario.held_out_entry_ids),
            "pool_written": sum(question.origin == WRITTEN for question in scenario.pool),
            "held_out_written": sum(question.origin == WRITTEN for question in scenario.held_out),
            "held_out_unseen": sum(question.origin == UNSEEN for question in scenario.held_out),
        },
        "base": outcome["base"],
        "curves": curves,
        "served": outcome["served"],
        "gate": outcome["gate"],
        "canary_questions": outcome["canary_questions"],
        "decisions_to_match": needed,
        "random_decisions": random_decisions,
        "ratio": None if needed is None else needed / random_decisions,
        "final_difference": {
            metric.key: paired_difference([row[metric.key] for row in outcome["finals"][ACTIVE]], [row[metric.key] for row in outcome["finals"][RANDOM]])
            for metric in KEY_METRICS
        },
        "by_kind": {
            "start": _by_kind(scenario, outcome["start"]),
            **{strategy: _by_kind(scenario, outcome["finals"][strategy]) for strategy in (ACTIVE, RANDOM)},
        },
        "kinds_chosen": outcome["kinds_chosen"],
        "cycle_seconds": outcome["cycle_seconds"],
        "seconds": outcome["seconds"],
        "chart": str(chart_path),
    }


def _percent(value: float) -> str:
    return f"{100 * value:.1f}"


def _points(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:+.1f}"


def section_of(numbers: dict, *, name: str = "active_learning", title: str = "Quality: active learning vs random selection") -> Section:
    """The report section of ``measure``'s numbers (tables, the ratio as a target, notes)."""
    section = Section(name=name, title=title, data=numbers)
    curves, settings, sizes = numbers["curves"], numbers["settings"], numbers["sizes"]
    section.table(
        "Held-out Def-only quality (percent) against expert decisions",
        ["Decisions", *(f"{STRATEGY_LABELS[strategy]} {metric.label}" for strategy in (ACTIVE, RANDOM) for metric in KEY_METRICS)],
        [
            [point["decisions"], *(_percent(curves[strategy][position][metric.key]) for strategy in (ACTIVE, RANDOM) for metric in KEY_METRICS)]
            for position, point in enumerate(curves[ACTIVE])
        ],
    )
    served = numbers["served"]
    section.table(
        "The version users are served after each cycle's gate (held-out Def-only quality, percent)",
        ["Decisions", *(f"{STRATEGY_LABELS[strategy]} served {metric.label}" for strategy in (ACTIVE, RANDOM) for metric in KEY_METRICS)],
        [
            [point["decisions"], *(_percent(served[strategy][position][metric.key]) for strategy in (ACTIVE, RANDOM) for metric in KEY_METRICS)]
            for position, point in enumerate(served[ACTIVE])
        ],
    )
    section.table(
        "The promotion gate after each cycle (the product's decide_for_users: held-out answers decide from "
        f"{GATE_MIN_REAL_QUESTIONS}, else {numbers['canary_questions']} canary questions on the entries nobody asked about)",
        ["Order", "Cycle", "Decisions", "Answers trained on", "Held-out answers", "Deciding tier", "Hit@1 change (points)", "Decision", "Reasons"],
        [
            [STRATEGY_LABELS[strategy], row["cycle"], row["decisions"], row["trained_answers"], row["real_questions"], row["deciding_tier"] or "-",
             _points(row["tier_deltas"].get(row["deciding_tier"])) if row["deciding_tier"] else "-",
             "promote" if row["promote"] else "keep", "; ".join(row["reasons"])]
            for strategy in (ACTIVE, RANDOM) for row in numbers["gate"][strategy]
        ],
    )
    by_kind = numbers["by_kind"]
    section.table(
        f"Held-out {MRR_AT_10.label} by kind of question (percent): glossary-tuned start, then after {numbers['random_decisions']} decisions",
        ["Kind", "Questions", "Start", "Active", "Random"],
        [
            [kind, values["count"], *(_percent(by_kind[side][kind][MATCHED_METRIC]) for side in ("start", ACTIVE, RANDOM))]
            for kind, values in by_kind["start"].items()
        ],
    )
    section.table(
        "Questions the expert answered, by kind",
        ["Kind", "Active", "Random"],
        [
            [kind, numbers["kinds_chosen"][ACTIVE].get(kind, 0), numbers["kinds_chosen"][RANDOM].get(kind, 0)]
            for kind in sorted(set(numbers["kinds_chosen"][ACTIVE]) | set(numbers["kinds_chosen"][RANDOM]))
        ],
    )
    ratio, needed = numbers["ratio"], numbers["decisions_to_match"]
    section.target(
        f"Decisions the active order needs to reach the random order's final {MRR_AT_10.label} / the random order's decisions",
        value="not reached" if ratio is None else f"{ratio:.2f} ({needed:.0f} / {numbers['random_decisions']})",
        limit="< 1",
        met=ratio is not None and ratio < 1,
        note="same glossary, pool, N per cycle, cycles, training steps and seed",
    )
    differences = numbers["final_difference"]
    section.notes += [
        f"![Held-out quality against expert decisions]({Path(numbers['chart']).name})",
        "Final active - random (same held-out questions, 95 % normal interval): "
        + "; ".join(
            f"{metric.label} {_percent(differences[metric.key]['mean'])} points [{_percent(differences[metric.key]['low'])}, {_percent(differences[metric.key]['high'])}]"
            for metric in KEY_METRICS
        ),
        "Untuned base model on the held-out set: " + ", ".join(f"{metric.label} {_percent(numbers['base'][metric.key])}" for metric in KEY_METRICS) + "; "
        "0 decisions is the model trained on the glossary sample alone (the same starting point for both orders).",
        f"Glossary: {sizes['entries']} sigles entries (every row of the question set's terms, then a seeded sample). "
        f"Pool: {sizes['pool']} logged questions ({sizes['pool_written']} from the hand-written question set, the rest written "
        f"from glossary rows with bench/data/active_learning/question_templates.json). Held-out: {sizes['held_out']} questions "
        f"on {sizes['held_out_entries']} entries, never a pool wording: {sizes['held_out_written']} hand-written (the set is split "
        "question by question), one rewording per generated pool question (another template, often another kind), and "
        f"{sizes['held_out_unseen']} questions on {sizes['unseen_entries']} entries nobody asked about, kept out of every training "
        "(the 'unseen' rows of the by-kind table: answering the pool must not hurt the rest of the glossary).",
        f"Each cycle: the expert answers {settings['per_cycle']} questions, then a LoRA adapter is trained from the base MiniLM "
        f"for {settings['max_steps']} steps of {settings['batch_size']} (learning rate {settings['learning_rate']}) on "
        f"{settings['glossary_pairs']} pairs sampled from the glossary's training pairs as a cycle builds them (term templates and "
        "generated questions of every kind: reverse look-ups, paraphrases, typos, English, ambiguous acronyms) plus every answer so far "
        f"that is not held out (about 30 % of the answers are, by the product's stable hash, to judge versions with); adapter weight as "
        f"the product's default; {settings['cycles']} cycles, seed {settings['seed']}.",
        "After each training the product's gate decides whether the candidate replaces the served version; the served version is "
        "what the queue scores the next cycle's questions with (as in the product). The first table is each cycle's candidate, "
        "the second what users get.",
        "Active order: the product's question uncertainty (training/queue.py, from the top score and the top-2 margin) and its "
        f"diversity order (relevance weight {settings['relevance_weight']}). Random order: a seeded shuffle of the same pool.",
        "Level: the product's pure functions (queue, builder, finetune, metrics) without Django, to spend the time on training, "
        "not on database writes and index rebuilds that do not change the measure.",
        f"Simulation time {numbers['seconds']:.0f} s, {len(numbers['cycle_seconds'])} cycles, median cycle "
        f"{float(np.median(numbers['cycle_seconds'])):.0f} s on this machine (shared with other work).",
    ]
    return section


def run(ctx) -> Section:
    """The bench runner's entry point (``python -m bench --only active_learning``)."""
    source = ctx.data_dir / "sigles.csv"
    if not source.exists():
        return results.skipped("active_learning", "active learning", f"No {source}: set LEXIQUE_DATA_DIR to the folder holding sigles.csv.")
    numbers = measure(
        rows=sigles_rows(source),
        asked=questions(),
        settings=QUICK if ctx.quick else FULL,
        chart_path=QUICK_CHART_PATH if ctx.quick else FULL_CHART_PATH,
        workdir=BENCH_DIR,
    )
    return section_of(numbers)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.active_learning", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smaller glossary and pool, fewer cycles and steps (~3 minutes)")
    parser.add_argument("--relevance-weight", type=float, help="the diversity order's weight of uncertainty (default: the queue's)")
    parser.add_argument("--per-cycle", type=int, help="expert decisions per cycle")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    settings = QUICK if args.quick else FULL
    if args.relevance_weight is not None:
        settings = replace(settings, relevance_weight=args.relevance_weight)
    if args.per_cycle is not None:
        settings = replace(settings, per_cycle=args.per_cycle)
    mode = "quick" if args.quick else "full"
    section = section_of(
        measure(
            rows=sigles_rows(data_dir() / "sigles.csv"),
            asked=questions(),
            settings=settings,
            chart_path=QUICK_CHART_PATH if args.quick else FULL_CHART_PATH,
            workdir=BENCH_DIR,
        )
    )
    section.mode = mode
    section.seconds = section.data["seconds"]
    section.ran_at = time.strftime("%Y-%m-%d %H:%M %Z")
    results.save(section, BENCH_DIR / "results" / mode)
    print(report.section_markdown(section), flush=True)


if __name__ == "__main__":
    main()
