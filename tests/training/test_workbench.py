"""The workbench services: each queue source and its score, refresh, leases, decisions, undo, training material."""
from datetime import timedelta

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from config.roles import EXPERT, assign_role
from glossary.models import Entry
from retrieval import selectors as retrieval_selectors
from retrieval import encoding, serving
from retrieval.models import Flag, PromotionEvent, QuestionLog
from retrieval.passages import Passage
from retrieval.vector_index import VectorIndex
from training import selectors, workbench
from training.builder import SOURCE_FLAG, build_pairs
from jobs import runner
from jobs.models import Job
from training import pipeline
from training.models import Equivalence, NegativeCandidate, QuestionLabel, QueueRefresh, ReviewDecision, ReviewItem, TrainingRun
from tests.factories import DomainFactory, EntryFactory

pytestmark = pytest.mark.django_db

Source = ReviewItem.Source


@pytest.fixture
def other_expert(db):
    user = get_user_model().objects.create_user(username="expert2", password="pw")
    assign_role(user, EXPERT)
    return user


@pytest.fixture
def version(db):
    return retrieval_selectors.champion_version_get()


def _hit(entry, rank, *, dense=0.6, dense_rank=None, lexical_rank=None, lexical=None):
    return {
        "entry_id": entry.pk, "term": entry.term, "domain": entry.domain.name, "passage_type": "definition", "passage_text": entry.definition,
        "dense_score": dense, "lexical_score": lexical, "dense_rank": dense_rank if dense_rank is not None else rank,
        "lexical_rank": lexical_rank, "fused_score": 1 / (60 + rank), "rank": rank, "exact_match": False,
    }


def _log(question, hits, *, top_score=0.8, margin=0.2, no_answer=False):
    return QuestionLog.objects.create(question=question, hits=hits, top_score=top_score, score_margin=margin, no_answer=no_answer)


def _upsert(source, scan, version):
    counts = workbench.review_items_upsert(source=source, scan=scan, version=version)
    workbench.review_queue_reorder()
    return counts


# ---- sources ----------------------------------------------------------------------------------------------

def test_flag_source_scores_open_flags_only(expert):
    a, b = EntryFactory(), EntryFactory()
    log = _log("qui collecte les cotisations ?", [_hit(a, 1), _hit(b, 2)])
    open_flag = Flag.objects.create(question_log=log, created_by=expert, reason=Flag.Reason.WRONG_ENTRY, retrieved=log.hits, domain=a.domain)
    corrected = Flag.objects.create(question_log=log, created_by=expert, reason=Flag.Reason.WRONG_ENTRY, correct_entry=b, retrieved=log.hits)
    Flag.objects.create(question_log=log, created_by=expert, reason=Flag.Reason.WRONG_ENTRY, status=Flag.Status.DISMISSED)
    scan = workbench.flag_items()
    scores = {candidate.flag_id: candidate.score for candidate in scan.candidates}
    assert scores == {open_flag.pk: 1.0, corrected.pk: 0.6}
    first = next(candidate for candidate in scan.candidates if candidate.flag_id == open_flag.pk)
    assert [c["entry_id"] for c in first.payload["candidates"]] == [a.pk, b.pk]
    assert first.payload["question"] == "qui collecte les cotisations ?" and first.key == f"flag:{open_flag.pk}"


def test_question_source_scores_uncertainty_and_skips_sure_or_flagged_questions(expert):
    a, b = EntryFactory(), EntryFactory()
    sure = _log("sûr", [_hit(a, 1, dense=0.9), _hit(b, 2, dense=0.5)], top_score=0.9, margin=0.4)
    close = _log("serré", [_hit(a, 1, dense=0.62), _hit(b, 2, dense=0.61)], top_score=0.62, margin=0.01)
    disagree = _log("désaccord", [_hit(a, 1, dense=0.8, lexical_rank=2), _hit(b, 2, dense=0.5, lexical_rank=1)], top_score=0.8, margin=0.3)
    _log("Serré", [_hit(a, 1)], top_score=0.62, margin=0.01)  # the same question asked again: one item
    flagged = _log("signalé", [_hit(a, 1), _hit(b, 2)], top_score=0.3, margin=0.0)
    Flag.objects.create(question_log=flagged, created_by=expert, reason=Flag.Reason.WRONG_ENTRY)
    scan = workbench.uncertain_question_items()
    by_question = {candidate.payload["question"].lower(): candidate for candidate in scan.candidates}
    assert set(by_question) == {"serré", "désaccord"}
    assert sure.pk not in {candidate.question_log_id for candidate in scan.candidates}
    assert by_question["serré"].signals["small_margin"] == pytest.approx(0.9)
    assert "dense_lexical_disagree" in by_question["désaccord"].signals
    assert by_question["serré"].score > by_question["désaccord"].score >= workbench.QUESTION_MIN_UNCERTAINTY
    assert by_question["désaccord"].question_log_id == disagree.pk and close.pk != disagree.pk


def test_negative_source_scores_suspicion():
    a, b, c = EntryFactory(), EntryFactory(), EntryFactory()
    close = NegativeCandidate.objects.create(anchor="q", anchor_entry=a, negative_entry=b, negative_text="t", score=0.9, positive_score=0.91, reason="proche")
    far = NegativeCandidate.objects.create(anchor="q", anchor_entry=a, negative_entry=c, negative_text="u", score=0.85, positive_score=0.91, reason="proche")
    NegativeCandidate.objects.create(anchor="q", anchor_entry=b, negative_entry=c, negative_text="v", score=0.9, positive_score=0.9, reason="x", decision="same")
    scan = workbench.negative_items()
    assert [candidate.negative_id for candidate in scan.candidates] == [close.pk, far.pk]
    assert scan.candidates[0].score == pytest.approx(0.9) and scan.candidates[1].score == pytest.approx(0.4)
    assert [c["entry_id"] for c in scan.candidates[0].payload["candidates"]] == [a.pk, b.pk]


def _served(entries_and_vectors, version):
    """A served index over crafted 2-d vectors: [(entry, passage_type, vector)]."""
    passages = [Passage(entry.pk, kind, 0 if kind == "definition" else 1, entry.definition) for entry, kind, _v in entries_and_vectors]
    matrix = np.array([vector for _e, _k, vector in entries_and_vectors], dtype=np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    return serving.ServedIndex(version_id=version.pk, revision=1, vectors=VectorIndex(passages, matrix), lexical=None, terms=None, vocabulary=None, entry_count=len(passages))


def test_self_retrieval_source_finds_entries_missed_for_their_own_term(version, monkeypatch):
    found = EntryFactory(term="TVA", split="train")
    missed = EntryFactory(term="CSG", split="train")
    homonym_a = EntryFactory(term="PAS", split="train")
    homonym_b = EntryFactory(term="PAS", definition="Un autre sens de PAS", split="train")
    served = _served([(found, "definition", [1, 0]), (missed, "definition", [0.6, 0.8]), (homonym_a, "definition", [0, 1]), (homonym_b, "definition", [0.1, 1])], version)
    # Queries: "TVA" -> (1, 0), "CSG" -> (1, 0.1) (closer to TVA than to CSG), "PAS" -> (0, 1).
    query_vectors = {"TVA": [1, 0], "CSG": [1, 0.1], "PAS": [0, 1]}
    monkeypatch.setattr(encoding, "encode_queries_with", lambda v, texts: np.array([query_vectors[t] for t in texts], dtype=np.float32))
    scan = workbench.self_retrieval_items(version=version, served=served)
    assert scan.checked_keys == {f"self_retrieval:{entry.pk}" for entry in (found, missed, homonym_a, homonym_b)}
    assert [candidate.entry_id for candidate in scan.candidates] == [missed.pk]  # homonyms never count against each other
    item = scan.candidates[0]
    assert item.signals == {"rank": 2} and item.score == pytest.approx(0.5)
    assert item.other_entry_id == found.pk
    assert [c["entry_id"] for c in item.payload["candidates"]] == [found.pk, missed.pk]


def test_duplicate_source_pairs_near_identical_definitions(version):
    one = EntryFactory(term="DGFIP")
    twin = EntryFactory(term="DGFiP (direction)")
    same_term = EntryFactory(term="DGFIP", definition="Autre formulation")
    other = EntryFactory(term="CAF")
    served = _served([(one, "definition", [1, 0.0]), (twin, "definition", [1, 0.02]), (same_term, "definition", [1, 0.45]), (one, "context", [1, 0.01]), (other, "definition", [0, 1])], version)
    scan = workbench.duplicate_items(served=served)
    pairs = {(candidate.entry_id, candidate.other_entry_id): candidate for candidate in scan.candidates}
    # cos(one, same_term) ~ 0.91: below the different-term bar, above the same-term bar.
    assert set(pairs) == {(one.pk, twin.pk), (one.pk, same_term.pk)}
    assert pairs[(one.pk, same_term.pk)].payload["same_term"] is True
    assert pairs[(one.pk, twin.pk)].score > 0.9
    Equivalence.objects.create(entry_a=one, entry_b=twin)
    assert {(c.entry_id, c.other_entry_id) for c in workbench.duplicate_items(served=served).candidates} == {(one.pk, same_term.pk)}


def test_draft_source_flags_drafts_that_repeat_an_entry(version, monkeypatch):
    validated = EntryFactory(term="URSSAF")
    repeat = EntryFactory(term="Urssaf", status=Entry.Status.DRAFT)
    fresh = EntryFactory(term="NOUVEAU", status=Entry.Status.DRAFT)
    Entry.objects.filter(pk=fresh.pk).update(created_at=timezone.now() - timedelta(days=30))
    served = _served([(validated, "definition", [1, 0])], version)
    # The fake model reads the term at the start of each definition passage ("Urssaf : ...").
    vectors = {"Urssaf": [0.9988, 0.0499], "NOUVEAU": [0, 1]}
    monkeypatch.setattr(encoding, "encode_documents_with", lambda v, texts: np.array([vectors[text.split(" : ")[0]] for text in texts], dtype=np.float32))
    scan = workbench.draft_items(version=version, served=served)
    by_entry = {candidate.entry_id: candidate for candidate in scan.candidates}
    assert set(by_entry) == {repeat.pk, fresh.pk}
    assert by_entry[repeat.pk].signals["duplicate_similarity"] > 0.99
    assert "duplicate_similarity" not in by_entry[fresh.pk].signals and by_entry[fresh.pk].signals["age_days"] >= 29
    assert by_entry[repeat.pk].score > by_entry[fresh.pk].score
    assert by_entry[repeat.pk].payload["candidates"][0]["entry_id"] == validated.pk


# ---- refresh ----------------------------------------------------------------------------------------------

def test_refresh_updates_open_items_keeps_decided_ones_and_retires_stale_ones(expert, version):
    a, b = EntryFactory(), EntryFactory()
    log = _log("q", [_hit(a, 1), _hit(b, 2)])
    first = Flag.objects.create(question_log=log, created_by=expert, reason=Flag.Reason.WRONG_ENTRY, retrieved=log.hits)
    second = Flag.objects.create(question_log=log, created_by=expert, reason=Flag.Reason.WRONG_ENTRY, retrieved=log.hits)
    assert _upsert(Source.FLAG, workbench.flag_items(), version)["created"] == 2
    decided = ReviewItem.objects.get(flag=first)
    workbench.review_item_decide(item=decided, user=expert, decision="choose", candidate=b.pk)
    Flag.objects.filter(pk=second.pk).update(status=Flag.Status.DISMISSED)
    counts = _upsert(Source.FLAG, workbench.flag_items(), version)
    # The decided flag is corrected (its question is now a labelled question), so it is no longer scanned; its
    # item stays done.
    assert Flag.objects.get(pk=first.pk).status == Flag.Status.CORRECTED
    assert counts == {"found": 0, "created": 0, "updated": 0, "retired": 1}
    assert dict(ReviewItem.objects.values_list("flag_id", "status")) == {first.pk: "done", second.pk: "obsolete"}


def test_refresh_request_is_queued_once_and_on_each_new_champion(django_capture_on_commit_callbacks, version, monkeypatch):
    # The promotion step asks for the refresh explicitly once the switch is done (training.pipeline).
    monkeypatch.setattr("retrieval.versions.model_version_promote", lambda **kwargs: PromotionEvent.objects.create(
        version=version, action=PromotionEvent.Action.PROMOTE, reason="test"))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job = runner.job_create(kind=pipeline.PROMOTE, params={"version_id": version.pk, "reason": "test", "action": "promote"})
        pipeline.promotion_execute(job_id=job.pk)
    refresh = QueueRefresh.objects.get()
    assert (refresh.trigger, refresh.status, len(callbacks)) == ("champion", "queued", 1)
    assert workbench.review_queue_refresh_request().pk == refresh.pk  # one waiting refresh is enough


def test_refresh_is_due_after_a_training_run_or_when_old():
    assert workbench.review_queue_refresh_due()
    refresh = QueueRefresh.objects.create(job=Job.objects.create(kind="queue_refresh", status=Job.Status.SUCCEEDED))
    assert not workbench.review_queue_refresh_due()
    TrainingRun.objects.create(job=Job.objects.create(kind="training", status="succeeded", finished_at=timezone.now() + timedelta(seconds=1)))
    assert workbench.review_queue_refresh_due()
    TrainingRun.objects.all().delete()
    QueueRefresh.objects.filter(pk=refresh.pk).update(started_at=timezone.now() - timedelta(hours=2))
    assert workbench.review_queue_refresh_due()


def test_full_refresh_with_the_bundled_model(expert, django_capture_on_commit_callbacks):
    """Requested, queued and run by the (eager) task: every source runs against the real champion and its
    index; a draft and an open flag reach the queue."""
    domain = DomainFactory(name="Fiscalité")
    entries = [
        EntryFactory(term="TVA", definition="Impôt indirect sur la consommation reversé à l'État.", domain=domain, split="train"),
        EntryFactory(term="CSG", definition="Contribution sociale généralisée prélevée sur les revenus.", domain=domain, split="train"),
    ]
    EntryFactory(term="DRAFT", definition="Un brouillon à valider.", status=Entry.Status.DRAFT, domain=domain)
    log = _log("taxe sur la consommation", [_hit(entries[0], 1)])
    Flag.objects.create(question_log=log, created_by=expert, reason=Flag.Reason.WRONG_ENTRY, retrieved=log.hits)
    serving.forget_indexes()
    with django_capture_on_commit_callbacks(execute=True):
        refresh = workbench.review_queue_refresh_request(user=expert)
    serving.forget_indexes()
    refresh.refresh_from_db()
    assert refresh.status == "succeeded", refresh.error
    assert refresh.counts["draft"]["created"] == 1 and refresh.counts["flag"]["created"] == 1
    ranks = sorted(ReviewItem.objects.filter(status="open").values_list("rank", flat=True))
    assert ranks == list(range(1, len(ranks) + 1))


# ---- leases -----------------------------------------------------------------------------------------------

def _flag_items(expert, version, n=3):
    entries = [EntryFactory() for _ in range(3)]
    for i in range(n):
        log = _log(f"question {i}", [_hit(entry, rank) for rank, entry in enumerate(entries, start=1)])
        Flag.objects.create(question_log=log, created_by=expert, reason=Flag.Reason.WRONG_ENTRY, retrieved=log.hits)
    _upsert(Source.FLAG, workbench.flag_items(), version)
    return entries


def test_two_experts_never_get_the_same_item_and_expiry_frees_it(expert, other_expert, version):
    _flag_items(expert, version, n=2)
    mine = workbench.review_item_next(user=expert)
    theirs = workbench.review_item_next(user=other_expert)
    assert mine.pk != theirs.pk
    assert workbench.review_item_next(user=expert).pk == mine.pk  # reloading the page gives the same item back
    third = get_user_model().objects.create_user(username="expert3")
    assign_role(third, EXPERT)
    assert workbench.review_item_next(user=third) is None
    ReviewItem.objects.filter(pk=mine.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert workbench.review_item_next(user=third).pk == mine.pk


def test_lease_skips_items_settled_elsewhere_and_filters(expert, version):
    _flag_items(expert, version, n=2)
    first = workbench.review_item_list().first()
    Flag.objects.filter(pk=first.flag_id).update(status=Flag.Status.DISMISSED)
    item = workbench.review_item_next(user=expert)
    assert item.pk != first.pk
    assert ReviewItem.objects.get(pk=first.pk).status == "obsolete"
    assert workbench.review_item_next(user=expert, source=Source.DRAFT) is None


def test_a_held_item_settled_elsewhere_is_not_served_again(expert, version):
    _flag_items(expert, version, n=2)
    held = workbench.review_item_next(user=expert)
    Flag.objects.filter(pk=held.flag_id).update(status=Flag.Status.DISMISSED)
    assert workbench.review_item_next(user=expert).pk != held.pk
    assert ReviewItem.objects.get(pk=held.pk).status == "obsolete"


def test_first_decision_wins_and_a_held_item_is_refused(expert, other_expert, version):
    entries = _flag_items(expert, version, n=1)
    item = workbench.review_item_next(user=expert)
    with pytest.raises(workbench.ReviewConflict, match="autre expert"):
        workbench.review_item_decide(item=item, user=other_expert, decision="reject")
    workbench.review_item_decide(item=item, user=expert, decision="choose", candidate=entries[1].pk)
    with pytest.raises(workbench.ReviewConflict, match="déjà été traité par expert") as info:
        workbench.review_item_decide(item=item, user=other_expert, decision="reject")
    assert info.value.code == "already_decided"
    # The refused "reject" did not dismiss the flag: it stays corrected by the first decision (a labelled question now).
    assert ReviewDecision.objects.count() == 1 and Flag.objects.get().status == "corrected"


def test_decisions_that_do_not_fit_are_refused(expert, version):
    _flag_items(expert, version, n=1)
    item = workbench.review_item_next(user=expert)
    with pytest.raises(Exception, match="ne s'applique pas"):
        workbench.review_item_decide(item=item, user=expert, decision="same")
    with pytest.raises(Exception, match="entrées proposées"):
        workbench.review_item_decide(item=item, user=expert, decision="choose", candidate=999999)
    with pytest.raises(Exception, match="pas encore de bonne entrée"):
        workbench.review_item_decide(item=item, user=expert, decision="accept")
    assert ReviewItem.objects.get(pk=item.pk).status == "open" and not ReviewDecision.objects.exists()


def test_skip_hides_the_item_from_that_expert_until_undone(expert, other_expert, version):
    _flag_items(expert, version, n=1)
    item = workbench.review_item_next(user=expert)
    skip = workbench.review_item_decide(item=item, user=expert, decision="skip")
    assert workbench.review_item_next(user=expert) is None
    assert workbench.review_item_next(user=other_expert).pk == item.pk
    ReviewItem.objects.filter(pk=item.pk).update(leased_by=None, lease_expires_at=None)
    workbench.review_decision_undo(decision=skip, user=expert)
    assert workbench.review_item_next(user=expert).pk == item.pk


# ---- each decision's effect, and its undo -----------------------------------------------------------------

def _decide_and_undo(item, user, decision, candidate=None):
    record = workbench.review_item_decide(item=item, user=user, decision=decision, candidate=candidate)
    assert record.snapshot["key"] == item.key and record.user == user
    return record


def test_flag_choice_sets_the_correct_entry_and_undo_restores_it(expert, version):
    entries = _flag_items(expert, version, n=1)
    item = workbench.review_item_next(user=expert)
    record = _decide_and_undo(item, expert, "choose", entries[2].pk)
    flag = Flag.objects.get()
    assert flag.correct_entry_id == entries[2].pk and flag.wrongly_ranked_entry_ids == [entries[0].pk, entries[1].pk]
    assert record.snapshot["flag"]["correct_entry_id"] is None
    workbench.review_decision_undo(decision=record, user=expert)
    flag.refresh_from_db()
    assert flag.correct_entry_id is None and flag.wrongly_ranked_entry_ids == []
    item.refresh_from_db()
    assert (item.status, item.leased_by_id) == ("open", expert.pk)
    with pytest.raises(workbench.ReviewConflict, match="déjà été annulée"):
        workbench.review_decision_undo(decision=record, user=expert)


def test_flag_reject_dismisses_and_undo_reopens(expert, version):
    _flag_items(expert, version, n=1)
    record = _decide_and_undo(workbench.review_item_next(user=expert), expert, "reject")
    assert Flag.objects.get().status == "dismissed"
    workbench.review_decision_undo(decision=record, user=expert)
    assert Flag.objects.get().status == "open"


def test_question_label_feeds_build_pairs_and_undo_removes_it(expert, version):
    a, b = EntryFactory(split="train"), EntryFactory(split="train")
    _log("où déclarer la taxe ?", [_hit(a, 1, dense=0.5), _hit(b, 2, dense=0.49)], top_score=0.5, margin=0.01)
    _upsert(Source.QUESTION, workbench.uncertain_question_items(), version)
    item = workbench.review_item_next(user=expert)
    record = _decide_and_undo(item, expert, "choose", b.pk)
    label = QuestionLabel.objects.get()
    assert (label.question, label.entry_id, label.wrong_entry_ids, label.decision_id) == ("où déclarer la taxe ?", b.pk, [a.pk], record.pk)

    train_ids = {a.pk, b.pk}
    flags = selectors.training_flags(train_entry_ids=train_ids)
    pairs = build_pairs(concepts=selectors.train_concepts(), flags=flags, test_entry_ids=set())
    taught = [pair for pair in pairs if pair.source == SOURCE_FLAG]
    assert [(pair.anchor, pair.entry_id) for pair in taught] == [("où déclarer la taxe ?", b.pk)]
    assert taught[0].negatives and a.definition in taught[0].negatives[0]
    assert selectors.new_material_count()["labels"] == 1

    workbench.review_decision_undo(decision=record, user=expert)
    assert not QuestionLabel.objects.exists()
    assert selectors.question_label_flags(train_entry_ids=train_ids) == []


def test_question_accept_labels_the_first_result(expert, version):
    a, b = EntryFactory(), EntryFactory()
    _log("q", [_hit(a, 1), _hit(b, 2)], top_score=0.4, margin=0.0, no_answer=True)
    _upsert(Source.QUESTION, workbench.uncertain_question_items(), version)
    _decide_and_undo(workbench.review_item_next(user=expert), expert, "accept")
    assert QuestionLabel.objects.get().entry_id == a.pk


def test_negative_screening_and_undo(expert, version):
    a, b = EntryFactory(), EntryFactory()
    candidate = NegativeCandidate.objects.create(anchor="q", anchor_entry=a, negative_entry=b, negative_text="t", score=0.9, positive_score=0.9, reason="r")
    _upsert(Source.NEGATIVE, workbench.negative_items(), version)
    record = _decide_and_undo(workbench.review_item_next(user=expert), expert, "same")
    candidate.refresh_from_db()
    assert candidate.decision == "same" and Equivalence.objects.filter(entry_a=min(a, b, key=lambda e: e.pk)).exists()
    workbench.review_decision_undo(decision=record, user=expert)
    candidate.refresh_from_db()
    assert (candidate.decision, candidate.decided_by) == ("pending", None) and not Equivalence.objects.exists()
    record = _decide_and_undo(workbench.review_item_next(user=expert), expert, "accept")
    assert NegativeCandidate.objects.get().decision == "different"


def test_draft_validation_and_undo_back_to_draft(expert, version):
    draft = EntryFactory(status=Entry.Status.DRAFT)
    scan = workbench.SourceScan([workbench.ItemCandidate(key=f"draft:{draft.pk}", source=Source.DRAFT, score=0.5, payload={"question": draft.term, "candidates": []}, entry_id=draft.pk)])
    _upsert(Source.DRAFT, scan, version)
    record = _decide_and_undo(workbench.review_item_next(user=expert), expert, "accept")
    draft.refresh_from_db()
    assert draft.status == "validated" and selectors.new_material_count()["entries"] >= 1
    workbench.review_decision_undo(decision=record, user=expert)
    draft.refresh_from_db()
    assert draft.status == "draft"


def test_draft_merge_into_an_entry_and_undo(expert, version):
    kept = EntryFactory(term="URSSAF", variants=["Urssaf"])
    draft = EntryFactory(term="Union de recouvrement", status=Entry.Status.DRAFT, variants=["URSSAF"])
    scan = workbench.SourceScan([workbench.ItemCandidate(
        key=f"draft:{draft.pk}", source=Source.DRAFT, score=0.9, entry_id=draft.pk, other_entry_id=kept.pk,
        payload={"question": draft.term, "candidates": [{"entry_id": kept.pk, "term": kept.term}]},
    )])
    _upsert(Source.DRAFT, scan, version)
    record = _decide_and_undo(workbench.review_item_next(user=expert), expert, "choose", kept.pk)
    kept.refresh_from_db(), draft.refresh_from_db()
    assert kept.variants == ["Urssaf", "Union de recouvrement"] and draft.status == "rejected"
    workbench.review_decision_undo(decision=record, user=expert)
    kept.refresh_from_db(), draft.refresh_from_db()
    assert kept.variants == ["Urssaf"] and draft.status == "draft"


def test_undo_refuses_when_the_entry_changed_since(expert, version):
    from glossary.services import entry_update

    draft = EntryFactory(status=Entry.Status.DRAFT)
    scan = workbench.SourceScan([workbench.ItemCandidate(key=f"draft:{draft.pk}", source=Source.DRAFT, score=0.5, payload={"candidates": []}, entry_id=draft.pk)])
    _upsert(Source.DRAFT, scan, version)
    record = _decide_and_undo(workbench.review_item_next(user=expert), expert, "reject")
    entry_update(entry=Entry.objects.get(pk=draft.pk), data={"definition": "Définition corrigée depuis"})
    with pytest.raises(workbench.ReviewConflict, match="modifiée depuis"):
        workbench.review_decision_undo(decision=record, user=expert)
    assert ReviewDecision.objects.get(pk=record.pk).undone_at is None


def test_self_retrieval_and_duplicate_decisions(expert, version):
    entry, above, twin = EntryFactory(split="train"), EntryFactory(split="train"), EntryFactory()
    candidates = [{"entry_id": above.pk, "term": above.term}, {"entry_id": entry.pk, "term": entry.term}]
    _upsert(Source.SELF_RETRIEVAL, workbench.SourceScan([workbench.ItemCandidate(
        key=f"self_retrieval:{entry.pk}", source=Source.SELF_RETRIEVAL, score=0.5, entry_id=entry.pk, other_entry_id=above.pk,
        payload={"question": entry.term, "rank": 2, "candidates": candidates},
    )]), version)
    learn = _decide_and_undo(workbench.review_item_next(user=expert), expert, "accept")
    label = QuestionLabel.objects.get()
    assert (label.question, label.entry_id, label.wrong_entry_ids) == (entry.term, entry.pk, [above.pk])
    workbench.review_decision_undo(decision=learn, user=expert)
    rework = _decide_and_undo(workbench.review_item_next(user=expert), expert, "reject")
    assert Entry.objects.get(pk=entry.pk).status == "draft"
    workbench.review_decision_undo(decision=rework, user=expert)
    assert Entry.objects.get(pk=entry.pk).status == "validated"
    _decide_and_undo(workbench.review_item_next(user=expert), expert, "same")
    assert Equivalence.objects.filter(entry_a_id=min(entry.pk, above.pk), entry_b_id=max(entry.pk, above.pk)).exists()

    _upsert(Source.DUPLICATE, workbench.SourceScan([workbench.ItemCandidate(
        key=f"duplicate:{above.pk}-{twin.pk}", source=Source.DUPLICATE, score=0.9, entry_id=above.pk, other_entry_id=twin.pk,
        payload={"candidates": [{"entry_id": above.pk, "term": above.term}, {"entry_id": twin.pk, "term": twin.term}]},
    )]), version)
    merge = _decide_and_undo(workbench.review_item_next(user=expert), expert, "choose", twin.pk)
    assert Entry.objects.get(pk=above.pk).status == "rejected" and above.term in Entry.objects.get(pk=twin.pk).variants
    workbench.review_decision_undo(decision=merge, user=expert)
    assert Entry.objects.get(pk=above.pk).status == "validated" and Entry.objects.get(pk=twin.pk).variants == []


def test_only_the_author_or_a_maintainer_undoes(expert, other_expert, maintainer, version):
    _flag_items(expert, version, n=1)
    record = _decide_and_undo(workbench.review_item_next(user=expert), expert, "reject")
    with pytest.raises(Exception, match="Seul l'auteur"):
        workbench.review_decision_undo(decision=record, user=other_expert)
    workbench.review_decision_undo(decision=record, user=maintainer)
    assert Flag.objects.get().status == "open"


def test_counters_follow_decisions_and_the_threshold(expert, version):
    from training.models import TrainingConfig

    _flag_items(expert, version, n=2)
    before = workbench.workbench_counters()
    assert (before["open"], before["decisions"], before["threshold"]) == (2, 0, 20)
    assert not TrainingConfig.objects.exists()  # a read: the default config is recorded by the services that need it
    record = _decide_and_undo(workbench.review_item_next(user=expert), expert, "choose", Flag.objects.first().retrieved[0]["entry_id"])
    after = workbench.workbench_counters()
    assert (after["open"], after["decisions"]) == (1, 1)
    assert after["material"]["total"] == before["material"]["total"] + 1 and after["missing"] == before["missing"] - 1
    workbench.review_decision_undo(decision=record, user=expert)
    assert workbench.workbench_counters()["decisions"] == 0


def test_workbench_answers_become_labelled_questions_held_out_ones_never_trained(expert, version):
    from retrieval.models import LabelledQuestion
    from retrieval.question_kinds import is_held_out, normalise_question

    a, b = EntryFactory(split="train"), EntryFactory(split="train")
    # Two questions: one the held-out rule keeps for judging, one it leaves for training.
    texts = [f"question numéro {n} sur la taxe" for n in range(40)]
    held = next(text for text in texts if is_held_out(normalise_question(text)))
    trained = next(text for text in texts if not is_held_out(normalise_question(text)))
    for text in (held, trained):
        _log(text, [_hit(a, 1, dense=0.5), _hit(b, 2, dense=0.49)], top_score=0.5, margin=0.01)
    _upsert(Source.QUESTION, workbench.uncertain_question_items(), version)
    records = []
    for _ in range(2):
        item = workbench.review_item_next(user=expert)
        records.append(_decide_and_undo(item, expert, "choose", b.pk))
    labelled = {row.text: row for row in LabelledQuestion.objects.all()}
    assert set(labelled) == {held, trained} and labelled[held].held_out and not labelled[trained].held_out
    assert all(row.source == "workbench" and row.entry_id == b.pk and row.wrong_entry_ids == [a.pk] for row in labelled.values())

    taught = [(flag.question, flag.entry_id) for flag in selectors.training_flags(train_entry_ids={a.pk, b.pk})]
    assert taught == [(trained, b.pk)]

    for record in records:
        workbench.review_decision_undo(decision=record, user=expert)
    assert not LabelledQuestion.objects.exists()


def test_flag_choice_makes_the_flag_corrected_and_undo_reopens_it(expert, version):
    from retrieval.models import LabelledQuestion

    entries = _flag_items(expert, version, n=1)
    record = _decide_and_undo(workbench.review_item_next(user=expert), expert, "choose", entries[2].pk)
    flag = Flag.objects.get()
    assert flag.status == Flag.Status.CORRECTED
    question = LabelledQuestion.objects.get()
    assert (question.flag_id, question.entry_id, question.source) == (flag.pk, entries[2].pk, "workbench")
    workbench.review_decision_undo(decision=record, user=expert)
    assert Flag.objects.get().status == Flag.Status.OPEN and not LabelledQuestion.objects.exists()
