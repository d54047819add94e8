"""Limits: request rates of the costly endpoints, and the size of uploads, texts and queries, each with a clear error."""
from __future__ import annotations

import io

import pytest
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from rest_framework.throttling import ScopedRateThrottle

from glossary import imports
from glossary import services as glossary_services
from glossary.models import Entry, ImportBatch
from retrieval import flags as retrieval_flags
from retrieval import search as retrieval_search
from retrieval.api import AnswerView, SearchView
from retrieval.models import Flag, QuestionLog
from training.api import TrainingRunViewSet
from training.models import TrainingRun
from tests.factories import EntryFactory

pytestmark = pytest.mark.django_db


# ---- throttling -----------------------------------------------------------------------------------------


@pytest.fixture
def two_per_minute(monkeypatch):
    """DRF reads the rates once, at import: the test lowers them on the throttle class itself."""
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"search": "2/min", "answer": "2/min", "retrain": "2/min"})
    cache.clear()
    yield
    cache.clear()


def test_costly_endpoints_declare_a_scope_that_settings_rate():
    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    assert SearchView.throttle_scope == "search" and ScopedRateThrottle in SearchView.throttle_classes
    assert AnswerView.throttle_scope == "answer" and ScopedRateThrottle in AnswerView.throttle_classes
    retrain = TrainingRunViewSet(action="create")
    assert [type(throttle) for throttle in retrain.get_throttles()] == [ScopedRateThrottle]
    assert retrain.throttle_scope == "retrain"
    assert {"search", "answer", "retrain"} <= set(rates)


def _assert_throttled(response):
    assert response.status_code == 429
    body = response.json()
    assert body["code"] == "throttled"
    assert "seconds" in body["reason"] or "secondes" in body["reason"]
    assert int(response["Retry-After"]) > 0


def test_search_is_throttled_per_user(two_per_minute, api_client, reader, expert):
    api_client.force_authenticate(reader)
    # Requests without a query are refused (400) after the throttle counted them: no model is loaded here.
    assert [api_client.get("/api/search").status_code for _ in range(2)] == [400, 400]
    _assert_throttled(api_client.get("/api/search", {"q": "TVA"}))
    api_client.force_authenticate(expert)
    assert api_client.get("/api/search").status_code == 400, "another user has a budget of their own"


def test_answers_are_throttled(two_per_minute, api_client, reader):
    api_client.force_authenticate(reader)
    assert [api_client.post("/api/answers", {}, format="json").status_code for _ in range(2)] == [400, 400]
    _assert_throttled(api_client.post("/api/answers", {"question": "TVA ?"}, format="json"))
    assert QuestionLog.objects.count() == 0


def test_retrain_requests_are_throttled_but_reading_runs_is_not(two_per_minute, api_client, maintainer):
    api_client.force_authenticate(maintainer)
    first = api_client.post("/api/training-runs", {}, format="json")
    assert first.status_code == 202
    assert api_client.post("/api/training-runs", {}, format="json").status_code == 409
    _assert_throttled(api_client.post("/api/training-runs", {}, format="json"))
    assert TrainingRun.objects.count() == 1
    assert [api_client.get("/api/training-runs").status_code for _ in range(4)] == [200] * 4


# ---- uploads --------------------------------------------------------------------------------------------

CSV = "term,definition\nTVA,Taxe sur la valeur ajoutée\nCAF,Caisse d'allocations familiales\n"


def _upload(content: bytes, name: str = "glossaire.csv"):
    upload = io.BytesIO(content)
    upload.name = name
    return upload


def test_import_over_the_size_limit_is_refused_everywhere(settings, api_client, expert_client, expert):
    settings.IMPORT_MAX_BYTES = 40
    content = CSV.encode()
    assert len(content) > 40

    with pytest.raises(imports.ImportRefused, match="trop volumineux"):
        imports.import_file(content=content, file_name="g.csv", file_format="csv")

    api_client.force_authenticate(expert)
    response = api_client.post("/api/imports/", {"file": _upload(content), "format": "csv"}, format="multipart")
    assert response.status_code == 413
    assert "trop volumineux" in response.json()["reason"]

    page = expert_client.post("/glossary/imports/new/", {"file": _upload(content), "file_format": "csv", "status": "draft"})
    assert page.status_code == 200
    assert "trop volumineux" in page.content.decode()
    assert Entry.objects.count() == 0 and ImportBatch.objects.count() == 0


# ---- text fields ----------------------------------------------------------------------------------------

LONG_DEFINITION = "mot " * (glossary_services.DEFINITION_MAX_CHARS // 4 + 1)


@pytest.mark.parametrize("field,value,message", [
    ("term", "T" * 256, "255"),
    ("definition", LONG_DEFINITION, str(glossary_services.DEFINITION_MAX_CHARS)),
    ("contexts", ["contexte " * 300], str(glossary_services.CONTEXT_MAX_CHARS)),
    ("variants", ["V" * 300], str(glossary_services.VARIANT_MAX_CHARS)),
])
def test_entry_texts_over_their_limit_are_refused_by_the_services(field, value, message):
    data = {"term": "TVA", "definition": "Taxe sur la valeur ajoutée", field: value}
    with pytest.raises(ValidationError) as refusal:
        glossary_services.entry_create(**data)
    assert field in refusal.value.message_dict
    assert message in " ".join(refusal.value.message_dict[field])
    entry = EntryFactory(term="CAF")
    with pytest.raises(ValidationError):
        glossary_services.entry_update(entry=entry, data={field: value})
    assert Entry.objects.filter(term="TVA").count() == 0


def test_entry_text_limits_through_the_api_and_the_form(api_client, expert, expert_client):
    api_client.force_authenticate(expert)
    response = api_client.post("/api/entries/", {"term": "TVA", "definition": LONG_DEFINITION}, format="json")
    assert response.status_code == 400
    assert "définition" in response.json()["reason"].lower()

    page = expert_client.post("/glossary/entries/new/", {"term": "TVA", "kind": "acronym", "definition": LONG_DEFINITION, "status": "draft"})
    assert page.status_code == 200
    assert str(glossary_services.DEFINITION_MAX_CHARS) in page.content.decode()
    assert not Entry.objects.exists()


def test_flag_comment_over_its_limit_is_refused(api_client, expert):
    log = QuestionLog.objects.create(question="TVA ?")
    long_comment = "x" * (retrieval_flags.FLAG_COMMENT_MAX_CHARS + 1)
    with pytest.raises(ValidationError):
        retrieval_flags.flag_create(question_log=log, user=expert, reason="bad_wording", comment=long_comment)
    api_client.force_authenticate(expert)
    response = api_client.post("/api/flags", {"question_id": log.pk, "reason": "bad_wording", "comment": long_comment}, format="json")
    assert response.status_code == 400
    assert "commentaire" in response.json()["reason"].lower()
    assert not Flag.objects.exists()


# ---- queries --------------------------------------------------------------------------------------------


def test_query_over_the_length_limit_is_refused(api_client, reader, client):
    too_long = "impôt " * (settings.QUERY_MAX_CHARS // 6 + 1)
    with pytest.raises(ValidationError, match=str(settings.QUERY_MAX_CHARS)):
        retrieval_search.check_query(too_long)
    api_client.force_authenticate(reader)
    search = api_client.get("/api/search", {"q": too_long})
    assert search.status_code == 400 and str(settings.QUERY_MAX_CHARS) in search.json()["reason"]
    answer = api_client.post("/api/answers", {"question": too_long}, format="json")
    assert answer.status_code == 400 and str(settings.QUERY_MAX_CHARS) in answer.json()["reason"]
    client.force_login(reader)
    page = client.post("/ask/", {"question": too_long})
    assert page.status_code == 200 and str(settings.QUERY_MAX_CHARS) in page.content.decode()
    assert QuestionLog.objects.count() == 0
