"""Training runs through the Django layer: split, lock, cancel, crash, a tiny real LoRA run, artifacts."""
import json

import pytest
from django.core.files.storage import storages

from glossary.models import Entry
from retrieval.models import ModelVersion
from jobs import runner
from jobs.models import Job
from training import runs, selectors, services
from training.models import DataSnapshot, NegativeCandidate, TrainingRun
from tests.factories import DomainFactory, EntryFactory

pytestmark = pytest.mark.django_db

TINY = {"max_steps": 2, "batch_size": 8, "num_negatives": 1, "mining_range_min": 0}


def _glossary(n=14):
    domains = [DomainFactory(name="Fiscalité"), DomainFactory(name="Budget")]
    for i in range(n):
        EntryFactory(
            term=f"SIG{i}", definition=f"Service numéro {i} chargé du sujet administratif {i * 7}",
            contexts=[f"Le SIG{i} a traité le dossier {i}."], domain=domains[i % 2], status="validated",
            examples=[{"question": f"Que fait le SIG{i} ?", "answer": f"Il traite le sujet {i}."}],
        )


def test_split_assignment_is_stable_and_respects_pins():
    _glossary(20)
    pinned = EntryFactory(term="PIN", definition="Entrée épinglée au test", split="test", split_pinned=True)
    first = services.split_assign_all(test_ratio=0.2)
    assert pinned.pk not in first
    sides = dict(Entry.objects.values_list("pk", "split"))
    assert set(sides.values()) == {"train", "test"}
    EntryFactory(term="NEW", definition="Une nouvelle entrée arrivée ensuite")
    second = services.split_assign_all(test_ratio=0.2)
    assert list(second) == [Entry.objects.get(term="NEW").pk]
    assert {pk: side for pk, side in Entry.objects.values_list("pk", "split") if pk in sides} == sides


def test_only_one_run_at_a_time(maintainer, django_capture_on_commit_callbacks):
    run = services.training_run_request(user=maintainer, overrides=TINY)
    with pytest.raises(services.TrainingAlreadyRunning) as info:
        services.training_run_request(user=maintainer)
    assert info.value.run == run


def test_cancel_a_queued_run_releases_the_lock(maintainer):
    run = services.training_run_request(user=maintainer)
    cancelled = services.training_run_cancel(run=run, user=maintainer)
    assert cancelled.status == TrainingRun.Status.CANCELLED and cancelled.job.lock is None
    assert services.training_run_request(user=maintainer).pk != run.pk


def test_run_without_material_fails_cleanly(maintainer):
    run = services.training_run_request(user=maintainer, overrides=TINY)
    runs.training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.FAILED
    assert "Aucune entrée" in run.error
    assert run.job.lock is None
    assert not ModelVersion.objects.exclude(number=0).exists()


def test_crash_mid_run_leaves_failed_run_and_no_version(maintainer, monkeypatch):
    _glossary()

    def boom(**kwargs):
        raise RuntimeError("disque plein")

    monkeypatch.setattr("training.finetune.finetune", boom)
    run = services.training_run_request(user=maintainer, overrides=TINY)
    runs.training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.FAILED and "disque plein" in run.error
    assert ModelVersion.objects.filter(status__in=["ready", "champion"]).exclude(number=0).count() == 0
    assert services.training_run_request(user=maintainer).status == TrainingRun.Status.QUEUED


def test_stale_runs_are_failed_on_worker_restart(maintainer):
    run = services.training_run_request(user=maintainer)
    Job.objects.filter(pk=run.job_id).update(status="running", worker="celery@box")
    assert runner.jobs_sweep_stale(worker="celery@box") == 1
    run.refresh_from_db()
    assert run.status == "failed" and "redémarré" in run.error and run.job.lock is None


@pytest.mark.slow
def test_tiny_real_lora_run_makes_a_traceable_version(maintainer):
    _glossary()
    run = services.training_run_request(user=maintainer, overrides=TINY)
    runs.training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status in (TrainingRun.Status.SUCCEEDED, TrainingRun.Status.EVALUATING), run.log + run.error
    version = run.model_version
    assert version.status == ModelVersion.Status.READY and version.training_run_id == run.pk
    snapshot = DataSnapshot.objects.get(content_hash=version.data_snapshot_hash)
    assert run.snapshot == snapshot and snapshot.total > 0
    storage = storages["artifacts"]
    lines = storage.open(snapshot.artifact_path).read().decode().splitlines()
    assert len(lines) == snapshot.total
    test_ids = selectors.test_entry_ids()
    assert test_ids and not {json.loads(line)["entry_id"] for line in lines} & test_ids
    for name in version.artifact_checksums:
        assert storage.exists(name)
    card = json.loads(storage.open(f"versions/run-{run.pk}/model_card.json").read())
    assert card["data_snapshot"] == snapshot.content_hash and card["merge_max_abs_diff"] <= 1e-4
    assert run.progress_step == 2 and run.timings["total_s"] > 0


def test_screening_same_meaning_records_equivalence(expert):
    a, b = EntryFactory(), EntryFactory()
    candidate = NegativeCandidate.objects.create(anchor="x", anchor_entry=a, negative_entry=b, negative_text="t", score=0.9, positive_score=0.91, reason="close")
    services.screening_decide(candidate=candidate, decision="same", user=expert)
    assert selectors.equivalent_pairs() == {frozenset((a.pk, b.pk))}
    assert selectors.screening_decisions() == {(a.pk, b.pk): "same"}
    with pytest.raises(Exception):
        services.screening_decide(candidate=candidate, decision="different", user=expert)


def test_schedule_trains_only_above_threshold(maintainer):
    config = services.training_config_default_get()
    config.min_new_material = 5
    config.save()
    EntryFactory.create_batch(3)
    assert services.scheduled_retrain() is None
    EntryFactory.create_batch(3)
    run = services.scheduled_retrain()
    assert run is not None and run.trigger == TrainingRun.Trigger.SCHEDULE
