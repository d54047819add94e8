"""The search, answer and flag API: JSON in and out, errors with a reason, roles, throttling."""
import pytest
from django.core.cache import cache
from rest_framework.throttling import ScopedRateThrottle

from retrieval import flags, search, selectors, serving, versions
from retrieval.models import Flag, ModelVersion, QuestionLog


@pytest.fixture
def signed_in(api_client, reader):
    api_client.force_authenticate(reader)
    return api_client


@pytest.fixture
def expert_api(api_client, expert):
    api_client.force_authenticate(expert)
    return api_client


def test_search_returns_ranked_hits_with_scores(signed_in, glossary):
    response = signed_in.get("/api/search", {"q": "c'est quoi l'ursaf ?", "top_k": 3})
    assert response.status_code == 200
    body = response.json()
    assert body["version"] == "base" and body["version_number"] == 0 and body["mode"] == "hybrid"
    assert body["processed"]["corrected"] == "c'est quoi l'urssaf ?" and body["index_revision"] == 1
    assert len(body["hits"]) == 3
    top = body["hits"][0]
    assert top["term"] == "URSSAF" and top["exact_match"] and top["rank"] == 1
    assert top["dense_score"] > 0 and top["lexical_score"] > 0 and top["passage_type"] in ("definition", "context")
    assert "total" in body["timings_ms"]


def test_search_modes_and_versions(signed_in, glossary):
    body = signed_in.get("/api/search/", {"q": "taxe sur la valeur ajoutée", "mode": "lexical", "version": "champion", "preprocess": "false"}).json()
    assert body["mode"] == "lexical" and body["processed"] is None
    assert all(hit["dense_score"] is None for hit in body["hits"])
    response = signed_in.get("/api/search", {"q": "TVA", "version": "v42"})
    assert response.status_code == 400 and "version" in response.json()["reason"]


@pytest.mark.parametrize(
    "params",
    [
        {"q": "c'est quoi l'ursaf ?"},
        {"q": "taxe sur la valeur ajoutée", "mode": "lexical", "preprocess": "false"},
        {"q": "aide au logement des familles", "mode": "dense", "top_k": 6},
        {"q": "what is the TVA", "top_k": 2},
    ],
)
def test_search_sends_what_the_result_serializer_would(signed_in, glossary, params):
    """The view sends search_payload without running SearchResultSerializer (its cost was a third of a warm search's):
    the payload must already be that serializer's output, key order and types included (0.0, not 0)."""
    from rest_framework.renderers import JSONRenderer

    from retrieval.serializers import SearchResultSerializer

    response = signed_in.get("/api/search", params)
    assert response.status_code == 200
    sent = response.json()
    sent.pop("timings_ms")
    # The same search again in process, through the serializer: identical bytes apart from the timings.
    result = search.search(
        query=params["q"], top_k=int(params.get("top_k", 10)), mode=params.get("mode", "hybrid"), preprocess=params.get("preprocess") != "false"
    )
    payload = search.search_payload(result)
    serialized = SearchResultSerializer(payload).data
    assert JSONRenderer().render(serialized) == JSONRenderer().render(payload)
    payload.pop("timings_ms")
    assert sent == payload and list(sent) == list(payload) and [list(hit) for hit in sent["hits"]] == [list(hit) for hit in payload["hits"]]


def test_a_hit_found_only_by_its_exact_term_has_a_float_fused_score(glossary):
    from retrieval.hybrid import SearchHit
    from retrieval.serializers import HitSerializer

    hit = SearchHit(entry_id=glossary["tva"].pk, passage=None, dense_score=None, lexical_score=None, dense_rank=None, lexical_rank=None,
                    fused_score=0, rank=1, exact_match=True)
    entry = selectors.validated_entry_data(entry_ids=[glossary["tva"].pk])[glossary["tva"].pk]
    data = search.hit_as_dict(search.RetrievedEntry(hit=hit, entry=entry))
    assert type(data["fused_score"]) is float and data == dict(HitSerializer(data).data)


def test_the_api_reads_which_version_a_reference_names_once_per_revision_check(signed_in, glossary, settings, django_assert_num_queries):
    settings.INDEX_REVISION_CHECK_SECONDS = 3600
    base = selectors.champion_version_get()
    assert signed_in.get("/api/search", {"q": "TVA"}).json()["version"] == "base"
    with django_assert_num_queries(0):
        first = serving.version_for_search(ref="champion")
        second = serving.version_for_search(ref=" Champion")
    assert first.pk == second.pk == base.pk and first is not second  # a copy per search

    # Another process promotes a version (no signal reaches this one): seen once the delay has passed.
    other = versions.model_version_create(base_model=base.base_model, label="autre")
    assert serving.version_for_search(ref="champion").pk == base.pk
    ModelVersion.objects.filter(pk=base.pk).update(status=ModelVersion.Status.ARCHIVED)
    ModelVersion.objects.filter(pk=other.pk).update(status=ModelVersion.Status.CHAMPION)
    assert serving.version_for_search(ref="champion").pk == base.pk
    settings.INDEX_REVISION_CHECK_SECONDS = 0
    assert serving.version_for_search(ref="champion").pk == other.pk

    # Saved in this process (a promotion, a rollback, a version marked broken): read again at once.
    settings.INDEX_REVISION_CHECK_SECONDS = 3600
    assert serving.version_for_search(ref="champion").pk == other.pk
    other.refresh_from_db()
    other.status = ModelVersion.Status.READY
    other.save(update_fields=["status"])
    base.refresh_from_db()
    base.status = ModelVersion.Status.CHAMPION
    base.save(update_fields=["status"])
    assert serving.version_for_search(ref="champion").pk == base.pk
    assert signed_in.get("/api/search", {"q": "TVA", "version": "v999"}).status_code == 400


@pytest.mark.parametrize("query", ["", "   ", "x" * 501])
def test_search_refuses_empty_or_too_long_queries(signed_in, settings, query):
    settings.QUERY_MAX_CHARS = 500
    response = signed_in.get("/api/search", {"q": query})
    assert response.status_code == 400
    assert response.json()["reason"]


def test_search_needs_authentication(api_client, db):
    response = api_client.get("/api/search", {"q": "TVA"})
    assert response.status_code == 401 and response.json()["reason"]


def test_search_is_throttled_by_scope(signed_in, glossary, monkeypatch):
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"search": "2/min", "answer": "2/min"})
    cache.clear()
    try:
        codes = [signed_in.get("/api/search", {"q": "TVA", "mode": "lexical"}).status_code for _ in range(3)]
    finally:
        cache.clear()
    assert codes == [200, 200, 429]


def test_answer_is_logged_and_can_be_flagged(api_client, reader, expert, glossary):
    api_client.force_authenticate(reader)
    response = api_client.post("/api/answers", {"question": "c'est quoi l'ursaf ?"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["answer_mode"] == "extractive" and "[S1]" in body["answer"] and not body["no_answer"]
    assert body["sources"][0]["term"] == "URSSAF" and body["sources"][0]["number"] == 1
    assert body["hits"][0]["entry_id"] == glossary["urssaf"].pk
    log = QuestionLog.objects.get(pk=body["question_id"])
    assert log.user == reader

    payload = {"question_id": log.pk, "reason": "wrong_entry", "correct_entry": glossary["caf"].pk, "comment": "test"}
    refused = api_client.post("/api/flags", payload, format="json")
    assert refused.status_code == 403 and "expert" in refused.json()["reason"]
    api_client.force_authenticate(expert)
    created = api_client.post("/api/flags", payload, format="json")
    assert created.status_code == 201
    flag = created.json()
    assert flag["question_id"] == log.pk and flag["correct_entry"] == glossary["caf"].pk and flag["status"] == "corrected"
    ranked = [hit["entry_id"] for hit in body["hits"]]
    assert flag["wrongly_ranked_entry_ids"] == ranked[: ranked.index(glossary["caf"].pk)]
    assert flag["retrieved"][0]["term"] == "URSSAF"


def test_answer_refuses_an_empty_question(signed_in, db):
    response = signed_in.post("/api/answers", {"question": ""}, format="json")
    assert response.status_code == 400 and response.json()["reason"].startswith("question")


def test_flag_with_a_new_entry_through_the_api(expert_api, glossary):
    log = QuestionLog.objects.create(question="c'est quoi l'ARS ?", hits=[], version=selectors.champion_version_get())
    response = expert_api.post(
        "/api/flags",
        {"question_id": log.pk, "reason": "missing_entry", "new_entry": {"term": "ARS", "definition": "Agence régionale de santé.", "kind": "acronym"}},
        format="json",
    )
    assert response.status_code == 201
    flag = Flag.objects.get(pk=response.json()["id"])
    assert flag.correct_entry.term == "ARS" and flag.correct_entry.created_by.username == "expert"
    both = expert_api.post(
        "/api/flags",
        {"question_id": log.pk, "reason": "wrong_entry", "correct_entry": glossary["tva"].pk, "new_entry": {"term": "X", "definition": "Y"}},
        format="json",
    )
    assert both.status_code == 400 and both.json()["reason"]
    unknown = expert_api.post("/api/flags", {"question_id": 999999, "reason": "wrong_entry"}, format="json")
    assert unknown.status_code == 400 and "question_id" in unknown.json()["reason"]


def test_flag_list_filters_and_detail(signed_in, expert, glossary):
    champion = selectors.champion_version_get()
    other = versions.model_version_create(base_model=champion.base_model)
    open_flag = flags.flag_create(
        question_log=QuestionLog.objects.create(question="q1", hits=[], version=champion), user=expert, reason="wrong_entry", correct_entry=glossary["caf"]
    )
    dismissed = flags.flag_create(
        question_log=QuestionLog.objects.create(question="q2", hits=[], version=other), user=expert, reason="bad_wording", correct_entry=glossary["tva"]
    )
    flags.flag_set_status(flag=dismissed, status="dismissed", user=expert)

    def ids(**params) -> list[int]:
        response = signed_in.get("/api/flags", params)
        assert response.status_code == 200
        return [flag["id"] for flag in response.json()["results"]]

    assert ids() == [dismissed.pk, open_flag.pk]
    assert ids(status="corrected") == [open_flag.pk]
    assert ids(domain=glossary["tva"].domain.slug) == [dismissed.pk]
    assert ids(version=str(other.number)) == [dismissed.pk]
    assert signed_in.get("/api/flags", {"status": "closed"}).status_code == 400
    detail = signed_in.get(f"/api/flags/{open_flag.pk}")
    assert detail.status_code == 200 and detail.json()["question"] == "q1" and detail.json()["domain"] == glossary["caf"].domain.name
    assert signed_in.get("/api/flags/999999").status_code == 404


def test_search_unavailable_answers_503_with_a_reason(signed_in, glossary, monkeypatch):
    from retrieval import encoding

    def model_missing(*args, **kwargs):
        raise RuntimeError("Le modèle « x » n'est pas disponible sur cette machine")

    monkeypatch.setattr(encoding, "encode_documents_with", model_missing)
    response = signed_in.get("/api/search", {"q": "TVA"})
    assert response.status_code == 503 and "n'est pas disponible" in response.json()["reason"]
