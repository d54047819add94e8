import pytest
from django.urls import reverse

from jobs.models import Job
from training.models import NegativeCandidate, TrainingRun
from tests.factories import EntryFactory

pytestmark = pytest.mark.django_db


def test_retrain_button_needs_maintainer(client, expert, maintainer):
    client.force_login(expert)
    assert client.post(reverse("training:run-create")).status_code == 403
    assert not TrainingRun.objects.exists()
    client.force_login(maintainer)
    response = client.post(reverse("training:run-create"), {"max_steps": 2})
    run = TrainingRun.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("training:run-detail", args=[run.pk])
    assert run.config_values["max_steps"] == 2 and run.requested_by == maintainer


def test_second_press_links_to_the_running_run(maintainer_client):
    maintainer_client.post(reverse("training:run-create"))
    response = maintainer_client.post(reverse("training:run-create"), follow=True)
    run = TrainingRun.objects.get()
    assert "déjà en cours" in response.content.decode()
    assert response.redirect_chain[-1][0] == reverse("training:run-detail", args=[run.pk])


def test_run_pages_and_live_progress_fragment(maintainer_client):
    maintainer_client.post(reverse("training:run-create"))
    run = TrainingRun.objects.get()
    TrainingRun.objects.filter(pk=run.pk).update(stage="training", current_loss=0.5)
    Job.objects.filter(pk=run.job_id).update(status="running", progress_step=3, progress_total=10)
    page = maintainer_client.get(reverse("training:run-detail", args=[run.pk])).content.decode()
    assert "Étape 3 / 10" in page and "<html" in page and 'hx-trigger="every 2s"' in page
    fragment = maintainer_client.get(reverse("training:run-detail", args=[run.pk]), HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in fragment and 'data-status="training"' in fragment
    listing = maintainer_client.get(reverse("training:run-list")).content.decode()
    assert "Réentraîner maintenant" in listing and "Réentraînement nocturne" in listing


def test_cancel_from_ui(maintainer_client):
    maintainer_client.post(reverse("training:run-create"))
    run = TrainingRun.objects.get()
    maintainer_client.post(reverse("training:run-cancel", args=[run.pk]))
    run.refresh_from_db()
    assert run.status == "cancelled"


def test_api_training_runs(api_client, expert, maintainer):
    api_client.force_authenticate(expert)
    assert api_client.post("/api/training-runs", {}, format="json").status_code == 403
    assert api_client.get("/api/training-runs").status_code == 200
    api_client.force_authenticate(maintainer)
    created = api_client.post("/api/training-runs", {"max_steps": 3}, format="json")
    assert created.status_code == 202 and created.json()["status"] == "queued"
    conflict = api_client.post("/api/training-runs", {}, format="json")
    assert conflict.status_code == 409 and conflict.json()["run_id"] == created.json()["id"] and conflict.json()["reason"]
    cancelled = api_client.post(f"/api/training-runs/{created.json()['id']}/cancel/")
    assert cancelled.json()["status"] == "cancelled"
    bad = api_client.post("/api/training-runs", {"epochs": -1}, format="json")
    assert bad.status_code == 400 and "epochs" in bad.json()["reason"]


def test_screening_ui_and_api(client, expert, reader):
    a, b, c = EntryFactory(), EntryFactory(), EntryFactory()
    first = NegativeCandidate.objects.create(anchor="q", anchor_entry=a, negative_entry=b, negative_text="t", score=0.9, positive_score=0.92, reason="close")
    second = NegativeCandidate.objects.create(anchor="q", anchor_entry=a, negative_entry=c, negative_text="u", score=0.8, positive_score=0.92, reason="close")
    client.force_login(reader)
    assert client.post(reverse("training:screening-decide", args=[first.pk]), {"decision": "same"}).status_code == 403
    client.force_login(expert)
    assert b.term in client.get(reverse("training:screening")).content.decode()
    response = client.post(reverse("training:screening-decide", args=[first.pk]), {"decision": "same"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "même sens" in response.content.decode()
    again = client.post(reverse("training:screening-decide", args=[first.pk]), {"decision": "different"}, HTTP_HX_REQUEST="true")
    assert again.status_code == 409
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(expert)
    assert [row["id"] for row in api.get("/api/negative-candidates/").json()["results"]] == [second.pk]
    assert api.post(f"/api/negative-candidates/{second.pk}/decide/", {"decision": "different"}, format="json").json()["decision"] == "different"


def test_retrain_command_refuses_while_running(maintainer):
    from django.core.management import CommandError, call_command

    call_command("retrain", "--max-steps", "2")
    with pytest.raises(CommandError, match="already in progress"):  # commands speak English
        call_command("retrain")
