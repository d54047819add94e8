"""Agreement between experts (Krippendorff's alpha from the ``krippendorff`` package) and per-expert figures."""
from datetime import datetime, timedelta, timezone as dt_timezone

import pytest
from django.contrib.auth import get_user_model

from config.roles import EXPERT, assign_role
from retrieval import selectors as retrieval_selectors
from retrieval.models import Flag, QuestionLog
from training import workbench
from training.models import ReviewItem
from training.workbench.agreement import (
    Vote, agreement_chart, agreement_with_final, alpha_by_week, disagreement_ranking, expert_alpha, krippendorff_alpha,
)
from training.workbench.experts import median_seconds_per_decision
from tests.factories import DomainFactory, EntryFactory

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=dt_timezone.utc)  # a Monday


def _votes(rows):
    """rows: (item, expert, answer[, minutes after T0])."""
    return [Vote(item_id=item, expert_id=expert, answer=answer, at=T0 + timedelta(minutes=row[3] if len(row) > 3 else 0))
            for row in rows for item, expert, answer in [row[:3]]]


# Two experts, four items: A says (x, x, y, y), B says (x, y, y, y).
# By hand (nominal): the coincidences are o_xx = 2, o_xy = o_yx = 1, o_yy = 4; n = 8, n_x = 3, n_y = 5.
# Observed disagreement D_o = 2 / 8 = 1/4; expected D_e = 2 * 3 * 5 / (8 * 7) = 15/28;
# alpha = 1 - D_o / D_e = 1 - 7/15 = 8/15.
HAND_MADE = _votes([(1, 1, "x"), (2, 1, "x"), (3, 1, "y"), (4, 1, "y"), (1, 2, "x"), (2, 2, "y"), (3, 2, "y"), (4, 2, "y")])


def test_alpha_on_a_hand_made_example():
    assert krippendorff_alpha(HAND_MADE) == pytest.approx(8 / 15)


def test_alpha_on_the_package_documented_example():
    # krippendorff.alpha's docstring: three coders, fifteen units, values 1-4 with gaps; nominal alpha 0.691358.
    nan = None
    data = [
        [nan, nan, nan, nan, nan, 3, 4, 1, 2, 1, 1, 3, 3, nan, 3],
        [1, nan, 2, 1, 3, 3, 4, 3, nan, nan, nan, nan, nan, nan, nan],
        [nan, nan, 2, 1, 3, 4, 4, nan, 2, 1, 1, 3, 3, nan, 4],
    ]
    votes = [Vote(item_id=unit, expert_id=coder, answer=f"v{value}") for coder, row in enumerate(data) for unit, value in enumerate(row) if value is not None]
    assert round(krippendorff_alpha(votes), 6) == 0.691358


def test_alpha_is_undefined_without_shared_items_or_with_a_single_value():
    assert krippendorff_alpha(_votes([(1, 1, "x"), (2, 2, "y")])) is None
    assert krippendorff_alpha(_votes([(1, 1, "x"), (1, 2, "x"), (2, 1, "x"), (2, 2, "x")])) is None


def test_perfect_agreement_and_systematic_disagreement():
    assert krippendorff_alpha(_votes([(1, 1, "x"), (1, 2, "x"), (2, 1, "y"), (2, 2, "y")])) == pytest.approx(1.0)
    assert krippendorff_alpha(_votes([(1, 1, "x"), (1, 2, "y"), (2, 1, "y"), (2, 2, "x")])) < 0


def test_per_expert_alpha_agreement_with_final_and_ranking():
    votes = HAND_MADE + _votes([(5, 3, "x"), (5, 1, "y"), (6, 3, "z")])
    finals = {1: "x", 2: "y", 3: "y", 5: "x"}
    # Item 4 has no final yet; expert 1 differs from the final on items 2 and 5.
    assert agreement_with_final(votes, finals) == {1: (2, 4), 2: (3, 3), 3: (1, 1)}
    # Expert 3 shares item 5 only (item 6 has one answer): one unit with two different values.
    assert expert_alpha(votes, 3) == pytest.approx(krippendorff_alpha(_votes([(5, 3, "x"), (5, 1, "y")])))
    ranking = disagreement_ranking(votes)
    assert [item for item, _share, _n in ranking[:2]] == [2, 5] and ranking[0][1] == 0.5 and ranking[-1][1] == 0.0


def test_alpha_by_week_groups_items_by_their_last_answer():
    week_two = 7 * 24 * 60
    votes = _votes([(1, 1, "x", 0), (1, 2, "x", 5), (2, 1, "y", 10), (2, 2, "y", 15), (3, 1, "x", week_two), (3, 2, "y", week_two + 1), (4, 1, "x", week_two), (4, 2, "x", week_two)])
    weeks = alpha_by_week(votes)
    assert [(week.isoformat(), n) for week, _alpha, n in weeks] == [("2026-03-02", 2), ("2026-03-09", 2)]
    assert weeks[0][1] == pytest.approx(1.0) and weeks[1][1] == pytest.approx(krippendorff_alpha(votes[4:]))


def test_median_seconds_leaves_pauses_out():
    moments = [T0, T0 + timedelta(seconds=10), T0 + timedelta(seconds=40), T0 + timedelta(hours=2), T0 + timedelta(hours=2, seconds=20)]
    assert median_seconds_per_decision(moments) == 20.0  # gaps 10, 30, 20; the two-hour pause is not a decision time
    assert median_seconds_per_decision([T0]) is None


def test_chart_is_an_svg_of_weekly_alpha():
    report = {"weeks": [(T0.date(), 0.5, 2), (T0.date() + timedelta(days=7), -0.2, 2)], "domain_weeks": {T0.date(): {"Fiscalité": 0.5}}}
    svg = agreement_chart(report)
    assert svg.startswith("<svg") and "Fiscalité" in svg and "Tous les domaines" in svg
    assert agreement_chart({"weeks": [], "domain_weeks": {}}) == ""


@pytest.mark.django_db
def test_agreement_report_and_expert_stats_from_decisions(expert, maintainer):
    second = get_user_model().objects.create_user(username="expert2")
    assign_role(second, EXPERT)
    domain = DomainFactory(name="Fiscalité")
    entries = [EntryFactory(domain=domain, split="train") for _ in range(2)]
    hits = [{"entry_id": entry.pk, "term": entry.term, "domain": domain.name, "passage_type": "definition", "passage_text": entry.definition,
             "dense_score": 0.5, "lexical_score": None, "dense_rank": rank, "lexical_rank": None, "rank": rank} for rank, entry in enumerate(entries, start=1)]
    for i in range(4):
        log = QuestionLog.objects.create(question=f"question {i}", hits=hits)
        Flag.objects.create(question_log=log, created_by=expert, reason=Flag.Reason.WRONG_ENTRY, retrieved=hits, domain=domain)
    workbench.review_items_upsert(source=ReviewItem.Source.FLAG, scan=workbench.flag_items(), version=retrieval_selectors.champion_version_get())
    workbench.review_queue_reorder()
    workbench.review_overlap_set(source=ReviewItem.Source.FLAG, required=2, user=maintainer)
    # The hand-made example: expert says (x, x, y, y), expert2 says (x, y, y, y), x = reject, y = choose the second entry.
    answers = {expert: ["reject", "reject", "choose", "choose"], second: ["reject", "choose", "choose", "choose"]}
    items = list(ReviewItem.objects.order_by("pk"))
    for user, decisions in answers.items():
        for item, decision in zip(items, decisions):
            workbench.review_item_decide(item=item, user=user, decision=decision, candidate=entries[1].pk if decision == "choose" else None)
    disputed = ReviewItem.objects.get(status="disputed")
    workbench.review_item_adjudicate(item=disputed, user=maintainer, decision="reject")

    report = workbench.agreement_report()
    assert report["alpha"] == round(8 / 15, 3) and report["units"] == 4
    assert report["domains"] == [{"name": "Fiscalité", "alpha": round(8 / 15, 3), "units": 4}]
    assert report["disputed"][0]["item"] == disputed and report["disputed"][0]["disagreement"] == 0.5
    by_user = {row["user"]: row for row in report["experts"]}
    assert (by_user[expert]["agreed"], by_user[expert]["compared"]) == (4, 4)
    assert (by_user[second]["agreed"], by_user[second]["compared"]) == (3, 4)

    stats = workbench.expert_stats(user=second)
    assert stats["decisions"] == 4 and stats["agreement"] == 0.75 and stats["pending"] == 0
    assert stats["flags_corrected"] == 2 and stats["questions_fixed"] == 0
    Flag.objects.filter(correct_entry__isnull=False).update(answered_right=True, checked_version=retrieval_selectors.champion_version_get())
    assert workbench.expert_stats(user=second)["questions_fixed"] == 2
    assert workbench.expert_stats(user=maintainer)["adjudications"] == 1
