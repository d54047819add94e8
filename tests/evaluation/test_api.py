"""Model versions and evaluations API: metrics and gate, report, promote and roll back (maintainers), requests."""
import pytest

from evaluation import runs as evaluation_runs
from evaluation.models import EvaluationRun
from retrieval import selectors as retrieval_selectors
from retrieval import versions as retrieval_versions
from retrieval.models import ModelVersion, PromotionEvent
from tests.evaluation.test_runs import tiny_glossary

pytestmark = pytest.mark.django_db


@pytest.fixture
def candidate():
    base = retrieval_selectors.model_version_get(ref="base")
    version = retrieval_versions.model_version_create(base_model=base.base_model, label="api", parent=base)
    retrieval_versions.model_version_set_metrics(version=version, metrics={"gate": {"decision": "keep", "promote": False, "reasons": ["trop juste"]}})
    return version


def test_versions_list_and_detail_carry_metrics_and_gate(api_client, reader, candidate):
    api_client.force_authenticate(reader)
    listing = api_client.get("/api/model-versions").json()
    assert [row["number"] for row in listing["results"]] == [candidate.number, 0]
    detail = api_client.get(f"/api/model-versions/{candidate.pk}").json()
    assert detail["gate"]["reasons"] == ["trop juste"] and detail["parent"] == listing["results"][1]["id"]
    assert listing["results"][1]["is_champion"] is True


def test_report_endpoint(api_client, reader, candidate):
    api_client.force_authenticate(reader)
    missing = api_client.get(f"/api/model-versions/{candidate.pk}/report")
    assert missing.status_code == 404 and missing.json()["reason"]
    tiny_glossary()
    run = evaluation_runs.evaluation_run_create(version=candidate, modes=["dense"])
    evaluation_runs.evaluation_run_execute(run_id=run.pk)
    report = api_client.get(f"/api/model-versions/{candidate.pk}/report").json()
    assert report["evaluation_id"] == run.pk and "def_only" in report["report"]["dense"]["protocols"]


def test_promote_needs_a_maintainer_and_a_reason(api_client, expert, maintainer, candidate, django_capture_on_commit_callbacks):
    tiny_glossary()
    api_client.force_authenticate(expert)
    forbidden = api_client.post(f"/api/model-versions/{candidate.pk}/promote", {"reason": "x"}, format="json")
    assert forbidden.status_code == 403 and forbidden.json()["reason"]
    api_client.force_authenticate(maintainer)
    no_reason = api_client.post(f"/api/model-versions/{candidate.pk}/promote", {}, format="json")
    assert no_reason.status_code == 400 and no_reason.json()["reason"].startswith("reason")
    with django_capture_on_commit_callbacks(execute=True):
        accepted = api_client.post(f"/api/model-versions/{candidate.pk}/promote", {"reason": "meilleure"}, format="json")
    assert accepted.status_code == 202 and accepted.json()["status"] == "promoting"
    event = PromotionEvent.objects.get(version=candidate)
    assert event.action == "promote" and event.user == maintainer and event.reason == "meilleure"
    again = api_client.post(f"/api/model-versions/{candidate.pk}/promote", {"reason": "encore"}, format="json")
    assert again.status_code == 409 and "sert déjà" in again.json()["reason"]


def test_rollback(api_client, maintainer, candidate, django_capture_on_commit_callbacks):
    tiny_glossary()
    api_client.force_authenticate(maintainer)
    nothing = api_client.post("/api/model-versions/rollback", {"reason": "x"}, format="json")
    assert nothing.status_code == 409 and nothing.json()["code"] == "no_previous_champion"
    retrieval_versions.model_version_promote(version=candidate, user=maintainer, reason="essai")
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post("/api/model-versions/rollback", {"reason": "retour"}, format="json")
    assert response.status_code == 202 and response.json()["number"] == 0
    assert retrieval_selectors.champion_version_get().number == 0
    assert PromotionEvent.objects.filter(action="rollback", user=maintainer, reason="retour").exists()


def test_evaluation_requests(api_client, expert, maintainer, candidate, django_capture_on_commit_callbacks):
    tiny_glossary()
    api_client.force_authenticate(expert)
    assert api_client.post("/api/evaluations", {"version": f"v{candidate.number}"}, format="json").status_code == 403
    api_client.force_authenticate(maintainer)
    bad = api_client.post("/api/evaluations", {"version": "v99"}, format="json")
    assert bad.status_code == 400 and "v99" in bad.json()["reason"]
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post("/api/evaluations", {"version": f"v{candidate.number}", "modes": ["lexical"]}, format="json")
    assert response.status_code == 202
    run = EvaluationRun.objects.get(pk=response.json()["id"])
    assert run.status == "succeeded" and list(run.report) == ["lexical"]
    listing = api_client.get(f"/api/evaluations?version={candidate.pk}").json()
    assert [row["id"] for row in listing["results"]] == [run.pk]
    assert api_client.get(f"/api/evaluations/{run.pk}").json()["test_set_hash"] == run.test_set_hash
    assert ModelVersion.objects.get(pk=candidate.pk).metrics["evaluation"]["run_id"] == run.pk
