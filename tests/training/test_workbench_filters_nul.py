"""A NUL character in a review-queue filter: ignored by the pages, a 400 with a reason from the API (issue #16, item 11).

PostgreSQL refuses NUL in a query (the probe got a 500 on 7 URLs); SQLite accepts it, so on SQLite these tests check
the same answers, and on PostgreSQL (CI) they are the regression tests.
"""
import pytest
from django.urls import reverse

from glossary.models import Domain
from tests.factories import DomainFactory, EntryFactory
from training.models import ReviewItem

NUL = "fisc\x00alite"


@pytest.fixture
def queue(db):
    domain = DomainFactory(name="Fiscalité")
    entry = EntryFactory(term="TVA", definition="Taxe sur la valeur ajoutée", domain=domain)
    return ReviewItem.objects.create(
        entry=entry, domain=domain, source=ReviewItem.Source.values[0], key=f"test:{entry.pk}", score=0.5, payload={},
    )


@pytest.mark.parametrize("url_name", ["training:workbench", "training:workbench-next"])
@pytest.mark.parametrize("parameter", ["domain", "source", "group"])
def test_workbench_pages_ignore_a_filter_with_a_nul(expert_client, queue, url_name, parameter):
    response = expert_client.get(reverse(url_name), {parameter: NUL})
    assert response.status_code in (200, 302)
    assert response.status_code != 500


@pytest.mark.parametrize("parameter", ["domain", "source"])
def test_workbench_decisions_and_undo_ignore_a_filter_with_a_nul(expert_client, queue, parameter):
    response = expert_client.post(reverse("training:workbench-undo"), {parameter: NUL})
    assert response.status_code == 302
    response = expert_client.post(reverse("training:workbench-decide", args=[queue.pk]), {parameter: NUL, "action": "skip"})
    assert response.status_code == 302


@pytest.mark.parametrize("path", ["/api/review-items/", "/api/review-items/next/"])
@pytest.mark.parametrize("parameter", ["domain", "source", "status"])
def test_review_queue_api_answers_400_with_a_reason_for_a_nul(api_client, expert, queue, path, parameter):
    if path.endswith("next/") and parameter == "status":
        pytest.skip("next/ has no status filter")
    api_client.force_authenticate(expert)
    response = api_client.get(path, {parameter: NUL})
    assert response.status_code == 400, response.content
    body = response.json()
    assert "NUL" in body["reason"] and parameter in body["errors"]


def test_the_filters_still_work_without_nul(api_client, expert, queue):
    api_client.force_authenticate(expert)
    slug = Domain.objects.get().slug
    assert api_client.get("/api/review-items/", {"domain": slug}).json()["count"] == 1
