"""Issue #16 items 7 and 11 (part), #13 item 8: an index rebuild killed mid-way, identical evaluation requests,
a crashed run's work folder, ``retrain --wait`` without a worker."""
import os
import time
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.utils import timezone

from evaluation import runs as evaluation_runs
from evaluation.models import EvaluationRun
from glossary.models import Entry
from jobs import runner
from jobs.models import Job
from retrieval import selectors as retrieval_selectors
from retrieval import indexing as retrieval_indexing
from retrieval import search as retrieval_search
from retrieval.models import IndexState
from tests.factories import EntryFactory
from training import runs, services as training_services

pytestmark = pytest.mark.django_db


def _validated(term, definition):
    return EntryFactory(term=term, definition=definition, status=Entry.Status.VALIDATED)


def test_an_index_rebuild_killed_mid_way_is_restarted_and_the_entry_is_searchable(django_capture_on_commit_callbacks):
    _validated("URSSAF", "Organisme qui collecte les cotisations sociales.")
    version = retrieval_selectors.champion_version_get()
    retrieval_indexing.index_rebuild(version=version)
    # A bulk import adds a validated entry without per-entry updates, and asks for a rebuild, which a worker
    # takes and then dies with (killed while encoding).
    Entry.objects.bulk_create([Entry(term="CADES", term_key="cades", definition="Caisse d'amortissement de la dette sociale.", status=Entry.Status.VALIDATED)])
    with django_capture_on_commit_callbacks(execute=False):
        retrieval_indexing.index_rebuild_enqueue(version=version)
    job = IndexState.objects.get(version=version).build_job
    assert runner.job_claim(job=job, worker="celery@killed")
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(days=1))
    # A later edit of another entry is published as a delta meanwhile: it is not lost either.
    with django_capture_on_commit_callbacks(execute=True):
        _validated("ACOSS", "Caisse nationale du réseau des Urssaf.")
    # The sweep restarts the build (sent again, run by the eager worker here).
    with django_capture_on_commit_callbacks(execute=True):
        assert runner.jobs_sweep_stale() == 1
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED and job.attempts == 2
    found = [item.entry.term for item in retrieval_search.search(query="amortissement de la dette sociale", mode="dense").hits]
    assert "CADES" in found
    found = [item.entry.term for item in retrieval_search.search(query="réseau des Urssaf", mode="dense").hits]
    assert "ACOSS" in found


def test_an_index_lacking_a_validated_entry_is_never_published(monkeypatch):
    _validated("URSSAF", "Organisme qui collecte les cotisations sociales.")
    version = retrieval_selectors.champion_version_get()
    state = retrieval_indexing.index_rebuild(version=version)
    real_encode = retrieval_indexing.encoding.encode_documents_with

    def encode_while_an_entry_is_validated(version, texts):
        if not Entry.objects.filter(term="CADES").exists():
            _validated("CADES", "Caisse d'amortissement de la dette sociale.")
        return real_encode(version, texts)

    monkeypatch.setattr(retrieval_indexing.encoding, "encode_documents_with", encode_while_an_entry_is_validated)
    monkeypatch.setattr(retrieval_indexing, "_catch_up", lambda index, **kwargs: None)  # a catch-up that misses the edit
    with pytest.raises(retrieval_indexing.IndexIncomplete):
        retrieval_indexing.index_rebuild(version=version)
    after = IndexState.objects.get(version=version)
    assert after.revision == state.revision and after.status == IndexState.Status.FAILED  # the old revision still serves


def test_identical_evaluation_requests_are_queued_once(django_capture_on_commit_callbacks):
    version = retrieval_selectors.champion_version_get()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        first = evaluation_runs.evaluation_run_request(version=version)
        second = evaluation_runs.evaluation_run_request(version=version)
        third = evaluation_runs.evaluation_run_request(version=version)
        other = evaluation_runs.evaluation_run_request(version=version, modes=["dense"])
    assert first.pk == second.pk == third.pk != other.pk
    assert EvaluationRun.objects.count() == 2 and len(callbacks) == 2
    runner.job_fail(job=first.job, error="fini")
    assert evaluation_runs.evaluation_run_request(version=version).pk != first.pk  # once finished, a new one


def test_a_crashed_run_removes_its_work_folder_and_orphans_are_swept(maintainer, monkeypatch):
    root = Path(settings.VAR_DIR) / "training"
    orphan = root / "run-999-abc"
    orphan.mkdir(parents=True, exist_ok=True)
    left_long_ago = time.time() - runs.ORPHAN_WORKDIR_AGE_S - 60
    os.utime(orphan, (left_long_ago, left_long_ago))
    seen = []

    def crash(run, workdir):
        seen.append(workdir)
        (workdir / "weights.bin").write_bytes(b"x" * 10)
        raise RuntimeError("worker crashed")

    monkeypatch.setattr(runs, "_execute", crash)
    run = training_services.training_run_request(user=maintainer)
    runs.training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "failed" and seen and not seen[0].exists()
    assert runs.training_workdirs_sweep() >= 1 and not orphan.exists()


def test_retrain_wait_says_when_no_worker_takes_the_job(monkeypatch, django_capture_on_commit_callbacks):
    monkeypatch.setattr("time.sleep", lambda seconds: None)
    out, err = StringIO(), StringIO()
    with django_capture_on_commit_callbacks(execute=False):  # queued, and no worker will ever take it
        with pytest.raises(CommandError, match="still queued"):
            call_command("retrain", "--wait", "--timeout", "0", "--no-worker-after", "0", stdout=out, stderr=err)
    assert "No worker has taken this job" in err.getvalue()  # command output is English


def test_the_run_page_says_when_no_worker_takes_the_job(maintainer_client, maintainer):
    from django.urls import reverse

    run = training_services.training_run_request(user=maintainer)
    Job.objects.filter(pk=run.job_id).update(created_at=timezone.now() - timedelta(minutes=5))
    page = maintainer_client.get(reverse("training:run-detail", args=[run.pk])).content.decode()
    assert 'id="run-no-worker"' in page and 'id="run-chain"' in page
