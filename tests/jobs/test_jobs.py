"""One job model and runner for every kind: broker down at enqueue, a worker killed mid-job (the stale sweep),
a message delivered twice (the atomic claim). Table-driven over the kinds; plus the maintainers' jobs page."""
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from evaluation.models import EvaluationRun, Leaderboard
from glossary.models import ImportBatch
from jobs import kinds, runner
from jobs.models import Job
from retrieval import selectors as retrieval_selectors
from retrieval.models import IndexState
from training import pipeline
from training.models import QueueRefresh, TrainingRun

pytestmark = pytest.mark.django_db


def _training():
    job = runner.job_create(kind="training", lock=pipeline.CYCLE_LOCK)
    return TrainingRun.objects.create(job=job).job


def _evaluation():
    job = runner.job_create(kind="evaluation")
    return EvaluationRun.objects.create(job=job, version=retrieval_selectors.champion_version_get(), modes=["dense"], protocols=["def_only"]).job


def _gate():
    evaluation_job = _evaluation()
    return runner.job_create(kind="gate", parent=evaluation_job, params={"evaluation_run_id": evaluation_job.evaluation_run.pk})


def _promotion():
    version = retrieval_selectors.champion_version_get()
    return runner.job_create(kind="promotion", params={"version_id": version.pk, "reason": "t", "action": "promote"})


def _queue_refresh():
    job = runner.job_create(kind="queue_refresh")
    return QueueRefresh.objects.create(job=job).job


def _index_build():
    version = retrieval_selectors.champion_version_get()
    job = runner.job_create(kind="index_build", params={"version_id": version.pk})
    IndexState.objects.update_or_create(version=version, defaults={"build_job": job})
    return job


def _import():
    job = runner.job_create(kind="import")
    return ImportBatch.objects.create(job=job, file_name="g.csv", file_format="csv", options={}).job


def _leaderboard():
    job = runner.job_create(kind="leaderboard")
    return Leaderboard.objects.create(job=job).job


MAKERS = {
    "training": _training, "evaluation": _evaluation, "gate": _gate, "promotion": _promotion,
    "queue_refresh": _queue_refresh, "index_build": _index_build, "leaderboard": _leaderboard, "import": _import,
}


def test_every_registered_kind_is_covered_here():
    assert {kind.name for kind in kinds.all_kinds()} == set(MAKERS)


@pytest.mark.parametrize("kind", list(MAKERS))
def test_broker_down_at_enqueue_fails_the_job_with_the_reason(kind, monkeypatch, django_capture_on_commit_callbacks):
    job = MAKERS[kind]()

    def broker_down(job):
        raise ConnectionRefusedError("broker down")

    monkeypatch.setitem(kinds._REGISTRY, kind, kinds.JobKind(**{**kinds.get(kind).__dict__, "send": broker_down}))
    with django_capture_on_commit_callbacks(execute=True):
        runner.enqueue_on_commit(job)
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED and "broker down" in job.error_text and job.lock is None


@pytest.mark.parametrize("kind", list(MAKERS))
def test_a_worker_killed_mid_job_is_swept(kind, monkeypatch):
    job = MAKERS[kind]()
    assert runner.job_claim(job=job, worker="celery@dead")
    sent = []
    monkeypatch.setitem(kinds._REGISTRY, kind, kinds.JobKind(**{**kinds.get(kind).__dict__, "send": lambda job: sent.append(job.pk) or "t"}))
    limit = kinds.get(kind).stale_after
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - limit + timedelta(minutes=1))
    assert runner.jobs_sweep_stale() == 0  # still within its kind's limit
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - limit - timedelta(minutes=1))
    assert runner.jobs_sweep_stale() == 1
    job.refresh_from_db()
    if kinds.get(kind).restartable:
        assert job.status == Job.Status.QUEUED and "Relancée" in job.log_text
    else:
        assert job.status == Job.Status.FAILED and "celery@dead" in job.error_text and job.lock is None


@pytest.mark.parametrize("kind", list(MAKERS))
def test_a_restarted_worker_sweeps_what_it_held(kind):
    from jobs.tasks import _sweep_jobs_of_restarted_worker

    job, other = MAKERS[kind](), runner.job_create(kind=kind)
    runner.job_claim(job=job, worker="celery@box")
    runner.job_claim(job=other, worker="celery@other")
    _sweep_jobs_of_restarted_worker(sender=type("Worker", (), {"hostname": "celery@box"})())
    job.refresh_from_db(), other.refresh_from_db()
    assert job.status in (Job.Status.FAILED, Job.Status.QUEUED) and "celery@box" in job.log_text
    assert other.status == Job.Status.RUNNING


@pytest.mark.parametrize("kind", list(MAKERS))
def test_a_double_claim_runs_the_job_once(kind):
    job = MAKERS[kind]()
    assert runner.job_claim(job=job, worker="celery@a")
    assert not runner.job_claim(job=Job.objects.get(pk=job.pk), worker="celery@b")
    job.refresh_from_db()
    assert job.worker == "celery@a" and job.attempts == 1 and "ignoré" in job.log_text


@pytest.mark.parametrize("kind", list(MAKERS))
def test_a_redelivered_message_of_a_dead_worker_is_never_skipped_silently(kind):
    job = MAKERS[kind]()
    runner.job_claim(job=job, worker="celery@dead")
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - kinds.get(kind).stale_after - timedelta(minutes=1))
    claimed = runner.job_claim(job=Job.objects.get(pk=job.pk), worker="celery@new")
    job.refresh_from_db()
    if kinds.get(kind).restartable:
        assert claimed and job.status == Job.Status.RUNNING and job.worker == "celery@new" and job.attempts == 2
    else:
        assert not claimed and job.status == Job.Status.FAILED and "celery@dead" in job.error_text


def test_cancel_a_queued_job_now_and_a_running_one_on_request():
    queued, running = _queue_refresh(), _leaderboard()
    runner.job_cancel(job=queued)
    runner.job_claim(job=running)
    runner.job_cancel(job=running)
    queued.refresh_from_db(), running.refresh_from_db()
    assert queued.status == Job.Status.CANCELLED and queued.lock is None
    assert running.status == Job.Status.RUNNING and runner.cancel_requested(job=running)


# ---- the maintainers' page --------------------------------------------------------------------------------

def test_jobs_page_lists_filters_and_links_each_kind(maintainer_client):
    training, refresh = _training(), _queue_refresh()
    runner.job_claim(job=training, worker="celery@gpu")
    runner.job_heartbeat(job=training, step=3, total=10)
    page = maintainer_client.get(reverse("jobs:job-list")).content.decode()
    assert "celery@gpu" in page and "3 / 10" in page
    assert reverse("training:run-detail", args=[training.training_run.pk]) in page
    filtered = maintainer_client.get(reverse("jobs:job-list"), {"kind": "queue_refresh"}).content.decode()
    assert 'data-kind="queue_refresh"' in filtered and 'data-kind="training"' not in filtered
    by_status = maintainer_client.get(reverse("jobs:job-list"), {"status": "running"}).content.decode()
    assert 'data-status="running"' in by_status and 'data-status="queued"' not in by_status
    assert refresh.pk


def test_jobs_page_is_for_maintainers_only(expert):
    from django.test import Client

    browser = Client()
    browser.force_login(expert)
    assert browser.get(reverse("jobs:job-list")).status_code == 403
    anonymous = Client().get(reverse("jobs:job-list"))
    assert anonymous.status_code in (302, 403) and 'id="job-table"' not in anonymous.content.decode()


def test_jobs_link_in_the_navigation_for_maintainers_only(maintainer, expert):
    from django.test import Client

    url = reverse("jobs:job-list")
    pages = {}
    for user in (maintainer, expert):
        browser = Client()
        browser.force_login(user)
        pages[user.username] = browser.get(reverse("glossary:entry-list")).content.decode()
    assert f'href="{url}"' in pages[maintainer.username] and f'href="{url}"' not in pages[expert.username]
