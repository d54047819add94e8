"""Agreement between experts: Krippendorff's alpha (the maintained ``krippendorff`` package, nominal level) per
domain and per expert, each expert's agreement with the final decision, the most disputed items, and alpha
over time.

The functions over ``Vote`` are pure (plain data in, numbers out); ``agreement_report`` reads the database.
Only items decided by at least two experts count: alpha needs pairs of values for a unit.
"""
from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import krippendorff
import numpy as np

from training.models import ReviewDecision, ReviewItem
from training.workbench.overlap import answer_of
from training.workbench.sources.base import Decision


@dataclass(frozen=True)
class Vote:
    item_id: int
    expert_id: int
    answer: str
    at: datetime | None = None
    domain: str = ""


def _units(votes: Iterable[Vote]) -> dict[int, dict[int, str]]:
    """item -> {expert -> answer}, keeping only items with at least two experts' answers."""
    units: dict[int, dict[int, str]] = defaultdict(dict)
    for vote in votes:
        units[vote.item_id][vote.expert_id] = vote.answer
    return {item: answers for item, answers in units.items() if len(answers) >= 2}


def krippendorff_alpha(votes: Iterable[Vote]) -> float | None:
    """Nominal Krippendorff's alpha of the votes (experts as coders, items as units); None when undefined (no
    item with two answers, or a single value in the whole data, where the expected disagreement is zero)."""
    units = _units(votes)
    experts = sorted({expert for answers in units.values() for expert in answers})
    values = sorted({answer for answers in units.values() for answer in answers.values()})
    if not units or len(values) < 2:
        return None
    code = {value: index for index, value in enumerate(values)}
    items = sorted(units)
    matrix = np.full((len(experts), len(items)), np.nan)
    for column, item in enumerate(items):
        for row, expert in enumerate(experts):
            if expert in units[item]:
                matrix[row, column] = code[units[item][expert]]
    return float(krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal"))


def expert_alpha(votes: Sequence[Vote], expert_id: int) -> float | None:
    """Alpha over the items ``expert_id`` decided (every expert's answers on them)."""
    theirs = {vote.item_id for vote in votes if vote.expert_id == expert_id}
    return krippendorff_alpha(vote for vote in votes if vote.item_id in theirs)


def agreement_with_final(votes: Iterable[Vote], finals: Mapping[int, str]) -> dict[int, tuple[int, int]]:
    """expert -> (answers equal to the item's final decision, answers on items that have one), over items with
    at least two experts' answers."""
    tally: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for item, answers in _units(votes).items():
        if item not in finals:
            continue
        for expert, answer in answers.items():
            tally[expert][1] += 1
            tally[expert][0] += int(answer == finals[item])
    return {expert: (agreed, total) for expert, (agreed, total) in tally.items()}


def disagreement_ranking(votes: Iterable[Vote]) -> list[tuple[int, float, int]]:
    """(item, disagreement, experts) for the items with two answers or more, most disputed first: disagreement is
    the share of answers that differ from the most common one (0: unanimous)."""
    ranked = []
    for item, answers in _units(votes).items():
        counts = Counter(answers.values())
        ranked.append((item, 1 - counts.most_common(1)[0][1] / len(answers), len(answers)))
    return sorted(ranked, key=lambda row: (-row[1], -row[2], row[0]))


def week_of(moment: datetime) -> date:
    day = moment.date()
    return day - timedelta(days=day.weekday())


def alpha_by_week(votes: Sequence[Vote]) -> list[tuple[date, float | None, int]]:
    """(Monday of the week, alpha of the items whose last answer came that week, how many items), oldest first."""
    last_at: dict[int, datetime] = {}
    for vote in votes:
        if vote.at is not None and (vote.item_id not in last_at or vote.at > last_at[vote.item_id]):
            last_at[vote.item_id] = vote.at
    weeks: dict[date, set[int]] = defaultdict(set)
    for item in _units(votes):
        if item in last_at:
            weeks[week_of(last_at[item])].add(item)
    return [(week, krippendorff_alpha(vote for vote in votes if vote.item_id in items), len(items)) for week, items in sorted(weeks.items())]


# ---- reading the database ------------------------------------------------------------------------------------


def votes_and_finals(*, domain_id: int | None = None) -> tuple[list[Vote], dict[int, str]]:
    """Every standing vote (skips and adjudications aside) and each item's final answer (the applied decision)."""
    decisions = ReviewDecision.objects.filter(undone_at__isnull=True).exclude(decision=Decision.SKIP).select_related("item__domain")
    if domain_id is not None:
        decisions = decisions.filter(item__domain_id=domain_id)
    votes, finals = [], {}
    for decision in decisions.order_by("created_at", "pk"):
        answer = answer_of(decision.decision, decision.candidate_id)
        if decision.applied:
            finals[decision.item_id] = answer
        if not decision.adjudication and decision.user_id is not None:
            domain = decision.item.domain.name if decision.item.domain_id else ""
            votes.append(Vote(item_id=decision.item_id, expert_id=decision.user_id, answer=answer, at=decision.created_at, domain=domain))
    return votes, finals


def _rounded(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else round(value, 3)


def _domain_weeks(by_domain: Mapping[str, list[Vote]]) -> dict[date, dict[str, float | None]]:
    weeks: dict[date, dict[str, float | None]] = defaultdict(dict)
    for name, domain_votes in by_domain.items():
        for week, alpha, _n in alpha_by_week(domain_votes):
            weeks[week][name] = _rounded(alpha)
    return dict(weeks)


def agreement_report(*, most_disputed: int = 20) -> dict[str, Any]:
    """What the agreement page shows: overall and per-domain alpha, per-expert figures, alpha per week, and the
    most disputed items first."""
    from django.contrib.auth import get_user_model

    votes, finals = votes_and_finals()
    units = _units(votes)
    by_domain: dict[str, list[Vote]] = defaultdict(list)
    for vote in votes:
        by_domain[vote.domain or "—"].append(vote)
    with_final = agreement_with_final(votes, finals)
    experts = get_user_model().objects.in_bulk({vote.expert_id for vote in votes})
    per_expert = []
    for expert_id, user in sorted(experts.items(), key=lambda pair: pair[1].get_username()):
        agreed, total = with_final.get(expert_id, (0, 0))
        per_expert.append({
            "user": user,
            "decisions": sum(1 for vote in votes if vote.expert_id == expert_id),
            "shared": sum(1 for answers in units.values() if expert_id in answers),
            "alpha": _rounded(expert_alpha(votes, expert_id)),
            "agreed": agreed,
            "compared": total,
            "agreement": round(agreed / total, 3) if total else None,
        })
    ranking = disagreement_ranking(votes)[:most_disputed]
    items = ReviewItem.objects.select_related("domain").in_bulk([item for item, _share, _n in ranking])
    return {
        "alpha": _rounded(krippendorff_alpha(votes)),
        "units": len(units),
        "domains": [
            {"name": name, "alpha": _rounded(krippendorff_alpha(domain_votes)), "units": len(_units(domain_votes))}
            for name, domain_votes in sorted(by_domain.items())
        ],
        "experts": per_expert,
        "weeks": [(week, _rounded(alpha), n) for week, alpha, n in alpha_by_week(votes)],
        "domain_weeks": _domain_weeks(by_domain),
        "disputed": [
            {"item": items[item], "disagreement": round(share, 3), "experts": n, "final": finals.get(item)}
            for item, share, n in ranking if item in items
        ],
    }


def agreement_chart(report: dict[str, Any], *, title: str | None = None) -> str:
    """The weekly alpha, overall and per domain, as an SVG line chart (evaluation.charts). Alpha below zero
    (worse than chance) is drawn at zero; the tables give the exact values."""
    from django.utils.translation import gettext as _

    from evaluation.charts import line_chart

    title = title or _("Krippendorff's alpha per week")

    points = []
    for week, alpha, _n in report["weeks"]:
        values = {_("All domains"): max(0.0, alpha)} if alpha is not None else {}
        for name, domain_alpha in report["domain_weeks"].get(week, {}).items():
            if domain_alpha is not None:
                values[name] = max(0.0, domain_alpha)
        points.append((week.strftime("%d/%m"), values))
    if not any(values for _label, values in points):
        return ""
    return line_chart(points, title)
