"""The review backlog stays bounded: at most REVIEW_QUEUE_MAX_OPEN items offered (the most useful first), a
cancelled run adds nothing to screening, and generated queries are not passed off as people's questions."""
import pytest
from django.urls import reverse

from retrieval import selectors as retrieval_selectors
from jobs.models import Job
from training import queue, selectors, workbench
from training.models import NegativeCandidate, QueueRefresh, ReviewItem, TrainingRun
from tests.factories import EntryFactory

pytestmark = pytest.mark.django_db

Source = ReviewItem.Source


def _candidate(key, source, score, **ids):
    return workbench.ItemCandidate(key=key, source=source, score=score, payload={"question": key, "candidates": []}, **ids)


def _upsert(source, candidates):
    return workbench.review_items_upsert(source=source, scan=workbench.SourceScan(candidates), version=retrieval_selectors.champion_version_get())


# ---- the bound ----------------------------------------------------------------------------------------------

def test_offered_keys_best_first_with_a_share_per_source_and_held_items_kept():
    items = [queue.Offerable(key=f"n{i}", source="negative", score=0.9 - i / 100) for i in range(6)]
    items += [queue.Offerable(key="f0", source="flag", score=0.5), queue.Offerable(key="d0", source="draft", score=0.3)]
    items += [queue.Offerable(key="held", source="draft", score=0.0, held=True)]
    kept = queue.offered_keys(items, limit=6)
    # 6 offered: the held one, then at most 3 negatives (half of 6) while others wait, then the rest by score.
    assert kept == {"held", "n0", "n1", "n2", "f0", "d0"}
    assert queue.offered_keys(items, limit=100) == {item.key for item in items}
    assert queue.offered_keys([queue.Offerable(key=f"n{i}", source="negative", score=1.0) for i in range(5)], limit=4) == {"n0", "n1", "n2", "n3"}


def test_the_queue_offers_at_most_the_setting_and_tops_up_from_the_reserve(settings, expert):
    settings.REVIEW_QUEUE_MAX_OPEN = 3
    drafts = [EntryFactory(status="draft") for _ in range(5)]
    _upsert(Source.DRAFT, [_candidate(f"draft:{entry.pk}", Source.DRAFT, 0.3 + i / 10, entry_id=entry.pk) for i, entry in enumerate(drafts)])
    assert workbench.review_queue_bound() == {"offered": 3, "deferred": 2}
    workbench.review_queue_reorder()
    open_keys = set(ReviewItem.objects.filter(status="open").values_list("key", flat=True))
    assert open_keys == {f"draft:{entry.pk}" for entry in drafts[2:]}  # the three most useful
    assert workbench.workbench_counters(user=expert)["open"] == 3 and workbench.workbench_counters()["deferred"] == 2

    # Deciding makes room; the next refresh offers the best of the reserve, kept up to date meanwhile.
    item = workbench.review_item_next(user=expert)
    workbench.review_item_decide(item=item, user=expert, decision="accept")
    counts = _upsert(Source.DRAFT, [_candidate(f"draft:{entry.pk}", Source.DRAFT, 0.3 + i / 10, entry_id=entry.pk) for i, entry in enumerate(drafts) if entry.pk != item.entry_id])
    assert counts["updated"] == 4 and counts["created"] == 0
    workbench.review_queue_bound()
    assert ReviewItem.objects.get(key=f"draft:{drafts[1].pk}").status == "open"
    assert ReviewItem.objects.get(key=f"draft:{drafts[0].pk}").status == "deferred"
    # A deferred item whose draft is gone is retired like an open one.
    _upsert(Source.DRAFT, [])
    assert not ReviewItem.objects.filter(status__in=["open", "deferred"]).exists()


def test_a_held_item_is_never_deferred(settings, expert):
    settings.REVIEW_QUEUE_MAX_OPEN = 1
    low, high = EntryFactory(status="draft"), EntryFactory(status="draft")
    _upsert(Source.DRAFT, [_candidate(f"draft:{low.pk}", Source.DRAFT, 0.1, entry_id=low.pk)])
    workbench.review_queue_reorder()
    held = workbench.review_item_next(user=expert)
    _upsert(Source.DRAFT, [_candidate(f"draft:{low.pk}", Source.DRAFT, 0.1, entry_id=low.pk), _candidate(f"draft:{high.pk}", Source.DRAFT, 0.9, entry_id=high.pk)])
    workbench.review_queue_bound()
    assert ReviewItem.objects.get(pk=held.pk).status == "open" and ReviewItem.objects.get(pk=held.pk).leased_by == expert
    assert ReviewItem.objects.get(key=f"draft:{high.pk}").status == "deferred"


def test_a_full_refresh_respects_the_bound(settings, expert, django_capture_on_commit_callbacks, monkeypatch):
    settings.REVIEW_QUEUE_MAX_OPEN = 2
    for i in range(4):
        EntryFactory(term=f"BROUILLON{i}", status="draft")
    from retrieval import serving

    serving.forget_indexes()
    with django_capture_on_commit_callbacks(execute=True):
        refresh = workbench.review_queue_refresh_request(user=expert)
    serving.forget_indexes()
    refresh.refresh_from_db()
    assert refresh.status == "succeeded", refresh.error
    assert (refresh.counts["open"], refresh.counts["deferred"]) == (2, 2)
    assert ReviewItem.objects.filter(status="open").count() == 2


# ---- a cancelled run adds nothing -----------------------------------------------------------------------------

def test_negatives_of_a_cancelled_run_are_never_offered():
    a, b, c, d = (EntryFactory() for _ in range(4))
    cancelled = TrainingRun.objects.create(job=Job.objects.create(kind="training", status="cancelled"))
    finished = TrainingRun.objects.create(job=Job.objects.create(kind="training", status="succeeded"))
    dropped = NegativeCandidate.objects.create(anchor="q", anchor_entry=a, negative_entry=b, negative_text="t", score=0.9, positive_score=0.9, reason="r", run=cancelled)
    kept = NegativeCandidate.objects.create(anchor="q", anchor_entry=a, negative_entry=c, negative_text="t", score=0.9, positive_score=0.9, reason="r", run=finished)
    unowned = NegativeCandidate.objects.create(anchor="q", anchor_entry=a, negative_entry=d, negative_text="t", score=0.9, positive_score=0.9, reason="r")
    assert {candidate.negative_id for candidate in workbench.negative_items().candidates} == {kept.pk, unowned.pk}
    assert set(selectors.screening_queue().values_list("pk", flat=True)) == {kept.pk, unowned.pk}
    assert dropped.pk not in set(selectors.screening_queue().values_list("pk", flat=True))


# ---- generated queries ----------------------------------------------------------------------------------------

def test_generated_queries_are_labelled_as_generated(expert_client, expert):
    dgfip = EntryFactory(term="DGFiP", kind="acronym", variants=["Direction générale des finances publiques"])
    other = EntryFactory(term="DDFiP")
    generated = NegativeCandidate.objects.create(
        anchor="Exemple d'usage de DGFiP", anchor_entry=dgfip, negative_entry=other, negative_text="t", score=0.95, positive_score=0.9, reason="r",
    )
    variant = NegativeCandidate.objects.create(
        anchor="direction generale des finances publiques", anchor_entry=dgfip, negative_entry=EntryFactory(), negative_text="t", score=0.8, positive_score=0.9, reason="r",
    )
    asked = NegativeCandidate.objects.create(
        anchor="qui gère mes impôts dans le département ?", anchor_entry=dgfip, negative_entry=EntryFactory(), negative_text="t", score=0.7, positive_score=0.9, reason="r",
    )
    by_id = {candidate.negative_id: candidate.payload["generated"] for candidate in workbench.negative_items().candidates}
    assert by_id == {generated.pk: True, variant.pk: True, asked.pk: False}

    _upsert(Source.NEGATIVE, workbench.negative_items().candidates)
    workbench.review_queue_reorder()
    QueueRefresh.objects.create(job=Job.objects.create(kind="queue_refresh", status=QueueRefresh.Status.SUCCEEDED))
    html = expert_client.get(reverse("training:workbench"), {"source": "negative"}).content.decode()
    assert ReviewItem.objects.get(leased_by=expert).negative_id == generated.pk
    assert "Requête générée" in html and "générée, pas une question d'usager" in html
    assert "<strong>Requête :</strong>" not in html
