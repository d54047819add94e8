"""Several experts per item: overlap serving rules, no peeking, agreement settles, disagreement goes to an
adjudicator (maintainer or senior expert), only final decisions take effect, undo, pending counts, access."""
import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from config.roles import EXPERT, SENIOR_EXPERT, assign_role
from retrieval import selectors as retrieval_selectors
from retrieval.models import Flag, LabelledQuestion, QuestionLog
from training import selectors, workbench
from training.builder import build_pairs
from training.models import QuestionLabel, ReviewDecision, ReviewItem
from tests.factories import DomainFactory, EntryFactory

pytestmark = pytest.mark.django_db

Source = ReviewItem.Source


def _user(name, *, senior=False):
    user = get_user_model().objects.create_user(username=name, password="pw")
    assign_role(user, EXPERT)
    if senior:
        assign_role(user, SENIOR_EXPERT)
    return user


@pytest.fixture
def second(db):
    return _user("expert2")


@pytest.fixture
def third(db):
    return _user("expert3")


def _hit(entry, rank):
    return {
        "entry_id": entry.pk, "term": entry.term, "domain": entry.domain.name, "passage_type": "definition", "passage_text": entry.definition,
        "dense_score": 0.6 - rank / 100, "lexical_score": None, "dense_rank": rank, "lexical_rank": None, "rank": rank,
    }


def _one_flag(expert, *, required=2, maintainer=None):
    """One open flag with three train-side candidates in the queue; flags need ``required`` decisions."""
    domain = DomainFactory(name="Fiscalité")
    entries = [EntryFactory(domain=domain, split="train") for _ in range(3)]
    log = QuestionLog.objects.create(question="où déclarer la taxe foncière ?", hits=[_hit(entry, rank) for rank, entry in enumerate(entries, start=1)])
    Flag.objects.create(question_log=log, created_by=expert, reason=Flag.Reason.WRONG_ENTRY, retrieved=log.hits, domain=domain)
    workbench.review_items_upsert(source=Source.FLAG, scan=workbench.flag_items(), version=retrieval_selectors.champion_version_get())
    workbench.review_queue_reorder()
    if required != 1:
        workbench.review_overlap_set(source=Source.FLAG, required=required, user=maintainer)
    return entries, ReviewItem.objects.get()


def _vote(user, decision, candidate=None):
    item = workbench.review_item_next(user=user)
    assert item is not None, f"{user} was served nothing"
    return workbench.review_item_decide(item=item, user=user, decision=decision, candidate=candidate)


def _trained_questions():
    train_ids = {concept.entry_id for concept in selectors.train_concepts()}
    pairs = build_pairs(concepts=selectors.train_concepts(), flags=selectors.training_flags(train_entry_ids=train_ids), test_entry_ids=set())
    return {(pair.anchor, pair.entry_id) for pair in pairs if pair.anchor == "où déclarer la taxe foncière ?"}


def test_default_is_one_decision_per_source():
    assert {row["source"]: row["required"] for row in workbench.overlap_settings()} == {value: 1 for value in Source.values}
    assert workbench.required_decisions(Source.FLAG) == 1


def test_an_item_needing_two_decisions_goes_to_another_expert_never_twice_to_the_same(expert, second, third, maintainer):
    entries, item = _one_flag(expert)
    first = _vote(expert, "choose", entries[1].pk)
    assert (first.applied, first.effect) == (False, {})
    item.refresh_from_db()
    assert (item.status, item.leased_by_id) == ("open", None)
    # Nothing took effect: the flag is not corrected, no real-question label, nothing to train on.
    assert Flag.objects.get().correct_entry_id is None and _trained_questions() == set()
    assert not LabelledQuestion.objects.exists()
    assert workbench.review_item_next(user=expert) is None
    with pytest.raises(workbench.ReviewConflict) as error:
        workbench.review_item_decide(item=item, user=expert, decision="reject")
    assert error.value.code == "already_voted"
    assert workbench.workbench_counters(user=expert)["open"] == 0
    assert workbench.review_item_next(user=second).pk == item.pk
    assert workbench.pending_decision_counts() == {"waiting_items": 1, "waiting_votes": 1, "disputed_items": 0, "disputed_votes": 0}


def test_agreeing_decisions_take_effect_once(expert, second, maintainer):
    entries, item = _one_flag(expert)
    _vote(expert, "choose", entries[1].pk)
    last = _vote(second, "choose", entries[1].pk)
    item.refresh_from_db()
    assert item.status == "done" and last.applied and last.effect
    assert ReviewDecision.objects.filter(item=item, applied=True).count() == 1
    flag = Flag.objects.get()
    assert (flag.correct_entry_id, flag.status) == (entries[1].pk, "corrected")
    assert LabelledQuestion.objects.get().entry_id == entries[1].pk
    assert _trained_questions() == {("où déclarer la taxe foncière ?", entries[1].pk)}


def test_disagreement_waits_for_an_adjudicator_and_only_the_adjudication_takes_effect(expert, second, maintainer):
    entries, item = _one_flag(expert)
    _vote(expert, "choose", entries[1].pk)
    _vote(second, "choose", entries[2].pk)
    item.refresh_from_db()
    assert item.status == "disputed"
    assert Flag.objects.get().correct_entry_id is None and _trained_questions() == set()
    assert not LabelledQuestion.objects.exists()
    assert workbench.pending_decision_counts()["disputed_items"] == 1
    assert list(workbench.disputed_items()) == [item]
    assert [vote["user"] for vote in workbench.votes_shown(item)] == [expert, second]
    # Not served in the workbench any more, to anyone.
    assert workbench.review_item_next(user=maintainer) is None

    record = workbench.review_item_adjudicate(item=item, user=maintainer, decision="choose", candidate=entries[2].pk)
    item.refresh_from_db()
    assert item.status == "done" and record.adjudication and record.applied
    assert Flag.objects.get().correct_entry_id == entries[2].pk
    assert LabelledQuestion.objects.get().entry_id == entries[2].pk
    assert _trained_questions() == {("où déclarer la taxe foncière ?", entries[2].pk)}
    assert workbench.pending_decision_counts()["disputed_items"] == 0
    with pytest.raises(workbench.ReviewConflict):
        workbench.review_item_adjudicate(item=item, user=maintainer, decision="reject")


def test_a_question_label_is_written_only_by_the_final_decision(expert, second, maintainer):
    a, b = EntryFactory(split="train"), EntryFactory(split="train")
    QuestionLog.objects.create(question="quel formulaire ?", hits=[_hit(a, 1), _hit(b, 2)], top_score=0.4, score_margin=0.0, no_answer=True)
    workbench.review_items_upsert(source=Source.QUESTION, scan=workbench.uncertain_question_items(), version=retrieval_selectors.champion_version_get())
    workbench.review_overlap_set(source=Source.QUESTION, required=2, user=maintainer)
    _vote(expert, "choose", b.pk)
    assert not QuestionLabel.objects.exists()
    _vote(second, "accept")
    assert not QuestionLabel.objects.exists() and ReviewItem.objects.get().status == "disputed"
    record = workbench.review_item_adjudicate(item=ReviewItem.objects.get(), user=maintainer, decision="choose", candidate=b.pk)
    label = QuestionLabel.objects.get()
    assert (label.entry_id, label.decision_id, label.wrong_entry_ids) == (b.pk, record.pk, [a.pk])


def test_only_maintainers_and_senior_experts_adjudicate(expert, second, maintainer):
    entries, item = _one_flag(expert)
    _vote(expert, "reject")
    _vote(second, "choose", entries[0].pk)
    item.refresh_from_db()
    with pytest.raises(PermissionDenied):
        workbench.review_item_adjudicate(item=item, user=expert, decision="reject")
    with pytest.raises(ValidationError):
        workbench.review_item_adjudicate(item=item, user=maintainer, decision="skip")
    senior = _user("senior", senior=True)
    workbench.review_item_adjudicate(item=item, user=senior, decision="reject")
    assert Flag.objects.get().status == "dismissed"


def test_no_peeking_before_deciding(client, expert, second, maintainer):
    entries, item = _one_flag(expert)
    first = _vote(expert, "choose", entries[1].pk)
    client.force_login(second)
    page = client.get(reverse("training:workbench")).content.decode()
    assert f'data-item-id="{item.pk}"' in page
    assert first.get_decision_display() not in page.split('id="workbench-item"')[1].split('class="decisions')[0]
    # The API lists the other expert's vote neither to the second expert, nor by id.
    ids = [row["id"] for row in client.get("/api/review-decisions/").json()["results"]]
    assert first.pk not in ids
    assert client.get(f"/api/review-decisions/{first.pk}/").status_code == 404
    client.force_login(maintainer)
    assert first.pk in [row["id"] for row in client.get("/api/review-decisions/").json()["results"]]
    # Once disputed, a late second decision is refused without naming anyone's answer.
    client.force_login(second)
    _vote(second, "reject")
    third = _user("late")
    with pytest.raises(workbench.ReviewConflict) as error:
        workbench.review_item_decide(item=item, user=third, decision="reject")
    assert "arbitrage" in error.value.messages[0] and "expert" not in error.value.messages[0]


def test_undo_a_vote_and_an_adjudication(expert, second, maintainer):
    entries, item = _one_flag(expert)
    mine = _vote(expert, "choose", entries[1].pk)
    workbench.review_decision_undo(decision=mine, user=expert)
    item.refresh_from_db()
    assert (item.status, item.leased_by_id) == ("open", expert.pk)
    assert workbench.pending_decision_counts()["waiting_items"] == 0
    _vote(expert, "choose", entries[1].pk)
    _vote(second, "reject")
    record = workbench.review_item_adjudicate(item=item, user=maintainer, decision="reject")
    assert Flag.objects.get().status == "dismissed"
    workbench.review_decision_undo(decision=record, user=maintainer)
    item.refresh_from_db()
    assert item.status == "disputed" and Flag.objects.get().status == "open"
    # Withdrawing an agreeing vote reverts the effect applied on the other expert's record.
    workbench.review_item_adjudicate(item=item, user=maintainer, decision="choose", candidate=entries[1].pk)
    vote = ReviewDecision.objects.get(item=item, user=second, undone_at__isnull=True)
    workbench.review_decision_undo(decision=vote, user=second)
    item.refresh_from_db()
    assert item.status == "open" and Flag.objects.get().correct_entry_id is None and Flag.objects.get().status == "open"
    assert not LabelledQuestion.objects.exists()
    assert not ReviewDecision.objects.filter(item=item, applied=True, undone_at__isnull=True).exists()


def test_lowering_the_overlap_settles_items_that_have_enough_decisions(expert, second, maintainer):
    entries, item = _one_flag(expert, required=3)
    _vote(expert, "reject")
    _vote(second, "reject")
    assert ReviewItem.objects.get().status == "open"
    workbench.review_overlap_set(source=Source.FLAG, required=2, user=maintainer)
    assert ReviewItem.objects.get().status == "done" and Flag.objects.get().status == "dismissed"
    with pytest.raises(ValidationError):
        workbench.review_overlap_set(source=Source.FLAG, required=0, user=maintainer)


# ---- pages and access ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["workbench-agreement", "workbench-adjudication", "workbench-overlap", "workbench-experts", "workbench-me"])
def test_anonymous_is_refused(client, name):
    response = client.get(reverse(f"training:{name}"))
    assert response.status_code in (302, 403)
    assert response.status_code == 403 or "/accounts/login/" in response["Location"]


def test_experts_cannot_adjudicate_unless_senior(client, expert, second, maintainer):
    entries, item = _one_flag(expert)
    _vote(expert, "reject")
    _vote(second, "choose", entries[0].pk)
    client.force_login(expert)
    assert client.get(reverse("training:workbench-adjudication")).status_code == 403
    assert client.post(reverse("training:workbench-adjudicate", args=[item.pk]), {"action": "reject"}).status_code == 403
    for name in ("workbench-agreement", "workbench-overlap", "workbench-experts"):
        assert client.get(reverse(f"training:{name}")).status_code == 403
    assert client.get(reverse("training:workbench-expert", args=[second.pk])).status_code == 403
    assert ReviewItem.objects.get().status == "disputed"
    senior = _user("senior", senior=True)
    client.force_login(senior)
    page = client.get(reverse("training:workbench-adjudication")).content.decode()
    assert f'data-item-id="{item.pk}"' in page and "expert2" in page and 'data-key="r"' in page and 'data-key="1"' in page
    response = client.post(reverse("training:workbench-adjudicate", args=[item.pk]), {"action": f"choose:{entries[0].pk}"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "Aucun désaccord" in response.content.decode()
    assert Flag.objects.get().correct_entry_id == entries[0].pk


def test_maintainer_sets_overlap_on_its_page_and_sees_pending_on_the_training_page(client, expert, maintainer):
    _one_flag(expert, required=1)
    client.force_login(maintainer)
    response = client.post(reverse("training:workbench-overlap"), {f"required-{Source.FLAG}": "2", f"required-{Source.DRAFT}": "1"})
    assert response.status_code == 302 and workbench.required_decisions(Source.FLAG) == 2
    _vote(expert, "reject")
    page = client.get(reverse("training:run-list")).content.decode()
    assert 'id="pending-waiting"' in page and "1 élément attend la décision d'autres experts" in page


def test_expert_pages(client, expert, second, maintainer):
    entries, item = _one_flag(expert)
    _vote(expert, "choose", entries[1].pk)
    _vote(second, "choose", entries[1].pk)
    client.force_login(expert)
    page = client.get(reverse("training:workbench-me")).content.decode()
    assert 'id="expert-decisions">1<' in page and "100 % (1/1)" in page
    client.force_login(maintainer)
    assert client.get(reverse("training:workbench-expert", args=[second.pk])).status_code == 200
    assert "expert2" in client.get(reverse("training:workbench-experts")).content.decode()
    agreement = client.get(reverse("training:workbench-agreement")).content.decode()
    assert 'id="alpha-units">1<' in agreement
