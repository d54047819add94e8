"""Flag-to-fix right after correction (the instant fix) on the whole sigles glossary, without a training cycle.

The sigles glossary is imported and indexed as in the sigles part. Every hand-written question is asked with the
product's search (the base model, over the whole glossary); then, from the DEV half only, one wrongly answered
question per entry that has other dev questions is flagged and corrected through the product's flag service, and
the entry's index update runs as the worker runs it. The flagged questions and their unseen rewordings (the other
dev questions about the same entries, never flagged) are asked again at once.

Target (issue 12): >= 95 % of the flagged questions answered right right after correction. The rewordings after a
training cycle are the sigles_cycle part's (it reuses this part's flags when both run in one process).
"""
from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass

from bench.glossary_db import Target, question_targets
from bench.results import Section, skipped
from bench.sigles import PRODUCT, prepare, rank_entries
from bench.synthetic import DEV, TEST, question_split, questions
from evaluation.reports import HIT_AT_1

INSTANT_TARGET = 95.0


def split_targets(targets: list[Target]) -> dict[str, list[Target]]:
    halves: dict[str, list[Target]] = {DEV: [], TEST: []}
    for target in targets:
        halves[question_split(target.question.query)].append(target)
    return halves


def product_rankings(version, targets: list[Target]) -> dict[str, list[int]]:
    return {target.question.query: rank_entries(target.question.query, version=version, variant=PRODUCT) for target in targets}


def r1_of(rankings: dict[str, list[int]], targets: list[Target]) -> float:
    return 100 * sum((rankings[t.question.query][:1] or [None])[0] in t.meaning_entry_ids for t in targets) / max(len(targets), 1)


def r1(version, targets: list[Target]) -> float:
    return r1_of(product_rankings(version, targets), targets)


def flag_batch(targets: list[Target], base_rankings: dict[str, list[int]]) -> tuple[list[Target], list[Target]]:
    """Questions users would flag and their unseen rewordings, from the DEV half only (the TEST half stays out of
    the cycle's data): per entry with two or more dev questions, the first one the base model answers wrong (a flag)
    and the others (rewordings, never flagged, never trained on)."""
    by_entry: dict[int, list[Target]] = defaultdict(list)
    for target in targets:
        if len(target.meaning_entry_ids) == 1:
            by_entry[next(iter(target.meaning_entry_ids))].append(target)
    flagged, rewordings = [], []
    for _entry_id, group in sorted(by_entry.items()):
        wrong = [target for target in group if (base_rankings[target.question.query][:1] or [None])[0] not in target.meaning_entry_ids]
        if len(group) >= 2 and wrong:
            flagged.append(wrong[0])
            rewordings.extend(target for target in group if target is not wrong[0])
    return flagged, rewordings


def correct_flags(flagged: list[Target], base_rankings: dict[str, list[int]]) -> float:
    """Each question asked, flagged by an expert with its right entry (the product's flag service), then the index
    update a worker runs for the entry; returns the seconds from the first flag to the last entry served."""
    from django.contrib.auth import get_user_model

    from glossary.models import Entry
    from retrieval import flags, indexing, selectors
    from retrieval.models import QuestionLog

    expert, _created = get_user_model().objects.get_or_create(username="bench-expert")
    champion = selectors.champion_version_get()
    started = time.perf_counter()
    for target in flagged:
        ranked = base_rankings[target.question.query]
        log = QuestionLog.objects.create(
            question=target.question.query, version=champion,
            hits=[{"entry_id": entry_id, "term": "", "rank": rank} for rank, entry_id in enumerate(ranked, start=1)],
        )
        entry = Entry.objects.get(pk=next(iter(target.meaning_entry_ids)))
        flags.flag_create(question_log=log, user=expert, reason="wrong_entry", correct_entry=entry)
        indexing.index_update_entry(entry_id=entry.pk)  # what the worker's task does, on commit
    return time.perf_counter() - started


@dataclass
class FlagToFix:
    """What the sigles_cycle part needs from this one: the questions, the base rankings asked BEFORE any flag
    (known questions would otherwise answer them), the flags and the instant-fix scores."""

    summary: str
    targets: list[Target]
    missing: list
    halves: dict[str, list[Target]]
    base_rankings: dict[str, dict[str, list[int]]]
    flagged: list[Target]
    rewordings: list[Target]
    flag_seconds: float
    instant: dict[str, float]
    misses: list[tuple[str, str, str]]  # (question, kind, what came first) of flagged questions still answered wrong


def flag_to_fix(ctx) -> FlagToFix:
    """Import, index, ask, flag and correct, ask again (once per bench process)."""
    if "sigles_flag_to_fix" in ctx.shared:
        return ctx.shared["sigles_flag_to_fix"]
    asked = questions()
    summary = prepare(ctx, asked)
    from glossary.models import Entry
    from retrieval import indexing, selectors

    targets, missing = question_targets(asked)
    halves = split_targets(targets)
    base = selectors.champion_version_get()
    indexing.index_rebuild(version=base)
    base_rankings = {half: product_rankings(base, chosen) for half, chosen in halves.items()}
    flagged, rewordings = flag_batch(halves[DEV], base_rankings[DEV])
    flag_seconds = correct_flags(flagged, base_rankings[DEV])
    after = product_rankings(base, flagged)
    misses = []
    for target in flagged:
        first = (after[target.question.query][:1] or [None])[0]
        if first not in target.meaning_entry_ids:
            shown = Entry.objects.filter(pk=first).values_list("term", flat=True).first() if first else None
            misses.append((target.question.query, target.question.category, shown or "nothing"))
    instant = {"flagged": r1_of(after, flagged), "rewordings": r1(base, rewordings)}
    result = FlagToFix(summary, targets, missing, halves, base_rankings, flagged, rewordings, flag_seconds, instant, misses)
    ctx.shared["sigles_flag_to_fix"] = result
    return result


def run(ctx) -> Section:
    name = "sigles_flags"
    if not (ctx.data_dir / "sigles.csv").exists():
        return skipped(name, name, f"No {ctx.data_dir / 'sigles.csv'}.")
    fix = flag_to_fix(ctx)
    section = Section(name=name, title=name)
    section.table(
        f"Flag-to-fix right after correction: {len(fix.flagged)} wrongly answered dev questions flagged and corrected, "
        f"{len(fix.rewordings)} unseen rewordings ({HIT_AT_1.label}, percent, the base model, product search over the whole glossary)",
        ["Questions", "before the flags", "right after correction (instant fix)"],
        [["flagged", f"{r1_of(fix.base_rankings[DEV], fix.flagged):.1f}", f"{fix.instant['flagged']:.1f}"],
         ["unseen rewordings", f"{r1_of(fix.base_rankings[DEV], fix.rewordings):.1f}", f"{fix.instant['rewordings']:.1f}"]],
    )
    section.target("Flagged questions answered right after correction", value=f"{fix.instant['flagged']:.1f} %",
                   limit=f">= {INSTANT_TARGET:.0f} %", met=fix.instant["flagged"] >= INSTANT_TARGET)
    section.notes += [
        f"Flags: {len(fix.flagged)} corrected and served in {fix.flag_seconds:.1f} s in all (flag service + the entry's index "
        f"update, {fix.flag_seconds / max(len(fix.flagged), 1) * 1000:.0f} ms each).",
        "Still wrong after correction: " + ("; ".join(f"{q!r} ({kind}, answered {shown})" for q, kind, shown in fix.misses) or "none") + ".",
        f"Glossary: {fix.summary}",
        f"Questions: {len(fix.targets)} resolved ({len(fix.halves[TEST])} test, {len(fix.halves[DEV])} dev), {len(fix.missing)} unresolved.",
    ]
    section.data = {"flagged": len(fix.flagged), "rewordings": len(fix.rewordings), "instant": fix.instant, "misses": fix.misses}
    return section
