"""The vector index of a version: first build, incremental updates from glossary edits, promotion, rollback."""
import logging
import time

import numpy as np
import pytest
from django.core.management import call_command

from glossary import services as glossary_services
from glossary.models import Entry
from retrieval import artifacts, encoding, indexing, search, selectors, serving, tasks, vector_index, versions
from retrieval.models import IndexState, ModelVersion, PromotionEvent
from retrieval.vector_index import VectorIndex
from tests.factories import EntryFactory


def _stored_index(version: ModelVersion) -> tuple[IndexState, VectorIndex]:
    state = IndexState.objects.get(version=version)
    return state, serving.load_vector_index(state.artifact_path, base_revision=state.base_revision, revision=state.revision)


def _by_key(index: VectorIndex) -> tuple[list[str], np.ndarray]:
    order = np.argsort(index.keys)
    return [index.keys[row] for row in order], index.matrix[order]


def _ranking(query: str) -> list[tuple[int, float | None]]:
    return [(item.entry.id, item.hit.dense_score) for item in search.search(query=query, top_k=10).hits]


def test_first_search_builds_the_index(glossary):
    champion = selectors.champion_version_get()
    assert not IndexState.objects.filter(version=champion).exists()
    result = search.search(query="taxe sur la valeur ajoutée")
    state = IndexState.objects.get(version=champion)
    assert (state.status, state.revision, result.index_revision) == (IndexState.Status.READY, 1, 1)
    assert state.artifact_path == "indexes/v0/r1.npz" and artifacts.artifact_storage().exists(state.artifact_path)
    validated = Entry.objects.filter(status=Entry.Status.VALIDATED)
    assert state.entry_count == validated.count()
    assert state.passage_count == validated.count() + sum(len(entry.contexts) for entry in validated)


def test_build_index_command(glossary, capsys):
    call_command("build_index", "--version", "base")
    assert "revision 1" in capsys.readouterr().out  # commands speak English
    assert IndexState.objects.get(version__number=0).status == IndexState.Status.READY
    call_command("build_index", "--if-missing")
    assert "already built (revision 1)" in capsys.readouterr().out


def test_incremental_updates_equal_a_full_rebuild(glossary, expert, django_capture_on_commit_callbacks):
    """Glossary edits reach the index through the signals and the (eager) task, entry by entry."""
    version = selectors.champion_version_get()
    indexing.index_rebuild(version=version)
    with django_capture_on_commit_callbacks(execute=True):
        added = glossary_services.entry_create(
            term="DGFiP",
            kind=Entry.Kind.ACRONYM,
            definition="Direction de l'administration qui calcule et recouvre les impôts des particuliers et des entreprises.",
            contexts=["La DGFiP a envoyé l'avis d'imposition."],
            status=Entry.Status.VALIDATED,
            created_by=expert,
        )
    with django_capture_on_commit_callbacks(execute=True):
        glossary_services.entry_update(
            entry=glossary["caf"], data={"definition": "Organisme qui verse les allocations familiales et les aides au logement."}, user=expert
        )
    with django_capture_on_commit_callbacks(execute=True):
        glossary_services.entry_set_status(entry=glossary["rescrit"], status=Entry.Status.DRAFT, user=expert)
    with django_capture_on_commit_callbacks(execute=True):
        glossary_services.entry_delete(entry=glossary["pension"], user=expert)

    state, incremental = _stored_index(version)
    assert state.revision == 5  # one full build and four incremental updates
    keys = set(incremental.keys)
    assert f"{added.pk}:definition:0" in keys and f"{added.pk}:context:1" in keys
    assert not any(key.startswith((f"{glossary['rescrit'].pk}:", f"{glossary['pension'].pk}:")) for key in keys)
    queries = ["impôts des particuliers", "allocations familiales", "rescrit fiscal", "retraite"]
    incremental_rankings = [_ranking(query) for query in queries]
    assert incremental_rankings[0][0][0] == added.pk

    indexing.index_rebuild(version=version)
    _, rebuilt = _stored_index(version)
    incremental_keys, incremental_matrix = _by_key(incremental)
    rebuilt_keys, rebuilt_matrix = _by_key(rebuilt)
    assert incremental_keys == rebuilt_keys
    assert np.allclose(incremental_matrix, rebuilt_matrix, atol=1e-5)
    for query, ranking in zip(queries, incremental_rankings):
        rebuilt_ranking = _ranking(query)
        assert [entry_id for entry_id, _ in rebuilt_ranking] == [entry_id for entry_id, _ in ranking]
        assert [score for _, score in rebuilt_ranking] == pytest.approx([score for _, score in ranking], abs=1e-5)


def test_edits_that_do_not_touch_the_index_keep_its_revision(glossary, expert, django_capture_on_commit_callbacks):
    version = selectors.champion_version_get()
    indexing.index_rebuild(version=version)
    with django_capture_on_commit_callbacks(execute=True):
        glossary_services.entry_update(entry=glossary["draft"], data={"definition": "Caisse départementale de l'assurance maladie."}, user=expert)
    assert IndexState.objects.get(version=version).revision == 1


def test_an_edit_is_stored_as_a_delta_and_deltas_are_folded_into_a_full_artifact(glossary, monkeypatch):
    version = selectors.champion_version_get()
    indexing.index_rebuild(version=version)
    for term in ("caf", "tva", "urssaf"):
        indexing.index_update_entry(entry_id=glossary[term].pk)
    state = IndexState.objects.get(version=version)
    assert (state.revision, state.base_revision, state.artifact_path) == (4, 1, "indexes/v0/r1.npz")
    _, files = artifacts.artifact_storage().listdir("indexes/v0")
    assert sorted(files) == ["d2.npz", "d3.npz", "d4.npz", "r1.npz"]
    # The full artifact is never rewritten by an edit: its size does not matter to the cost of one.
    assert serving.load_vector_index(state.artifact_path, base_revision=1, revision=1).keys != [] and state.delta_passages >= 3

    monkeypatch.setattr(vector_index, "COMPACT_MIN_PASSAGES", state.delta_passages + 1)
    indexing.index_update_entry(entry_id=glossary["caf"].pk)  # enough deltas now: folded into r6
    state.refresh_from_db()
    assert (state.revision, state.base_revision, state.artifact_path, state.delta_passages) == (6, 6, "indexes/v0/r6.npz", 0)
    _, files = artifacts.artifact_storage().listdir("indexes/v0")
    assert sorted(files) == ["r1.npz", "r6.npz"]  # r1 kept for a reader still on it
    folded = _stored_index(version)[1]
    indexing.index_rebuild(version=version)
    _, files = artifacts.artifact_storage().listdir("indexes/v0")
    assert sorted(files) == ["r6.npz", "r7.npz"]
    rebuilt = _stored_index(version)[1]
    assert _by_key(folded)[0] == _by_key(rebuilt)[0]
    assert np.allclose(_by_key(folded)[1], _by_key(rebuilt)[1], atol=1e-5)


def test_a_serving_process_catches_up_from_deltas_without_reloading_the_full_artifact(glossary, expert, django_capture_on_commit_callbacks, monkeypatch):
    version = selectors.champion_version_get()
    indexing.index_rebuild(version=version)
    assert search.search(query="TVA").hits[0].entry.term == "TVA"  # loads r1 in this process
    loads = []
    real_from_bytes = VectorIndex.from_bytes.__func__
    monkeypatch.setattr(VectorIndex, "from_bytes", classmethod(lambda cls, data: loads.append(len(data)) or real_from_bytes(cls, data)))
    with django_capture_on_commit_callbacks(execute=True):
        glossary_services.entry_update(
            entry=glossary["tva"], data={"term": "TVAX", "definition": "Taxe zorglub sur la valeur ajoutée."}, user=expert
        )
    serving.forget(version.pk)
    hits = search.search(query="zorglub").hits
    assert hits[0].entry.term == "TVAX" and hits[0].hit.lexical_score  # dense and BM25 both know the edit
    assert loads == []  # the full artifact was not read again: only the delta
    served = serving.served_index(version)
    assert served.revision == 2 and served.entry(glossary["tva"].pk).term == "TVAX" and set(served.overlay) == {glossary["tva"].pk}
    assert glossary["tva"].pk in served.terms.match("c'est quoi la TVAX")  # the term lookup knows the new name...
    assert glossary["tva"].pk not in served.terms.match("c'est quoi la TVA")  # ...and no longer the old one
    assert served.vocabulary.knows("zorglub")

    # Past OVERLAY_MAX_ENTRIES changed entries, the process rebuilds its glossary side from the entries it holds.
    monkeypatch.setattr(serving, "OVERLAY_MAX_ENTRIES", 1)
    with django_capture_on_commit_callbacks(execute=True):
        glossary_services.entry_set_status(entry=glossary["caf"], status=Entry.Status.DRAFT, user=expert)
    serving.forget(version.pk)
    rebuilt = serving.served_index(version)
    assert rebuilt.revision == 3 and rebuilt.overlay == {} and rebuilt.entry(glossary["tva"].pk).term == "TVAX"
    assert rebuilt.entry(glossary["caf"].pk) is None and rebuilt.entry_count == served.entry_count - 1
    assert search.search(query="zorglub").hits[0].entry.term == "TVAX" and loads == []


def test_a_process_whose_deltas_were_folded_away_meanwhile_loads_the_new_full_artifact(glossary, settings, monkeypatch):
    settings.INDEX_REVISION_CHECK_SECONDS = 3600  # this process will not look at the revision again by itself
    version = selectors.champion_version_get()
    indexing.index_rebuild(version=version)
    assert search.search(query="TVA").index_revision == 1
    for term in ("caf", "tva"):
        indexing.index_update_entry(entry_id=glossary[term].pk)
    serving.forget(version.pk)
    serving.served_index(version)  # caught up to revision 3 from d2 and d3
    indexing.index_update_entry(entry_id=glossary["urssaf"].pk)
    serving.forget(version.pk)
    stale = serving._revision_of(version.pk)  # revision 4 on r1, cached for an hour
    monkeypatch.setattr(vector_index, "COMPACT_MIN_PASSAGES", 1)
    indexing.index_update_entry(entry_id=glossary["caf"].pk)  # d5, then folded into r6: every delta deleted
    # As a web process that read the revision just before the worker wrote (here worker and web share a process).
    serving._revision_checks[version.pk] = (time.monotonic(), stale)
    assert serving._revision_of(version.pk) == stale and stale.revision == 4
    result = search.search(query="TVA")  # d4 is gone: the process reads the revision again and loads r6
    assert result.index_revision == 6 and result.hits[0].entry.term == "TVA"


def test_a_failed_build_is_recorded_on_the_index_state(glossary, monkeypatch):
    version = selectors.champion_version_get()

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(encoding, "encode_documents_with", broken)
    with pytest.raises(RuntimeError):
        tasks.index_rebuild.delay(version.pk)
    state = IndexState.objects.get(version=version)
    assert state.status == IndexState.Status.FAILED and "disk full" in state.error


def test_a_broker_outage_is_logged_not_raised(glossary, monkeypatch, caplog, django_capture_on_commit_callbacks):
    def broker_down(*args, **kwargs):
        raise ConnectionRefusedError("broker down")

    monkeypatch.setattr(tasks.index_entry, "delay", broker_down)
    with caplog.at_level(logging.ERROR, logger="retrieval.tasks"), django_capture_on_commit_callbacks(execute=True):
        EntryFactory(term="AFT", definition="Agence qui gère la dette et la trésorerie de l'État.")
    assert "build_index" in caplog.text


def test_promotion_switches_the_champion_only_once_its_index_is_ready(glossary, maintainer, monkeypatch, django_capture_on_commit_callbacks):
    base = selectors.champion_version_get()
    search.search(query="TVA")  # the base serves with its index
    candidate = versions.model_version_create(base_model=base.base_model, label="candidate")
    real_rebuild = indexing.index_rebuild
    seen_during_build = {}

    def observed_rebuild(*, version):
        # While the candidate's index is being built, the base still serves, with its own index.
        seen_during_build["champion"] = selectors.champion_version_get()
        seen_during_build["search_version"] = search.search(query="TVA").version
        seen_during_build["status"] = ModelVersion.objects.get(pk=version.pk).status
        return real_rebuild(version=version)

    monkeypatch.setattr(indexing, "index_rebuild", observed_rebuild)
    with django_capture_on_commit_callbacks(execute=True):
        versions.model_version_request_promotion(version=candidate, user=maintainer, reason="meilleur MRR")

    assert seen_during_build == {"champion": base, "search_version": base, "status": ModelVersion.Status.PROMOTING}
    candidate.refresh_from_db()
    base.refresh_from_db()
    assert (candidate.status, base.status) == (ModelVersion.Status.CHAMPION, ModelVersion.Status.ARCHIVED)
    assert candidate.promoted_at is not None
    assert IndexState.objects.get(version=candidate).status == IndexState.Status.READY
    event = PromotionEvent.objects.get()
    assert (event.version, event.previous_champion, event.action, event.user, event.reason) == (
        candidate, base, PromotionEvent.Action.PROMOTE, maintainer, "meilleur MRR"
    )
    assert search.search(query="TVA").version == candidate

    versions.model_version_rollback(user=maintainer, reason="régression signalée")
    assert selectors.champion_version_get() == base
    assert PromotionEvent.objects.first().action == PromotionEvent.Action.ROLLBACK


def test_a_failed_promotion_leaves_the_champion_serving(glossary, maintainer, monkeypatch):
    base = selectors.champion_version_get()
    candidate = versions.model_version_create(base_model=base.base_model)

    def broken(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(encoding, "encode_documents_with", broken)
    with pytest.raises(RuntimeError):
        versions.model_version_promote(version=candidate, user=maintainer, reason="test")
    candidate.refresh_from_db()
    assert candidate.status == ModelVersion.Status.READY
    assert selectors.champion_version_get() == base
    assert IndexState.objects.get(version=candidate).status == IndexState.Status.FAILED
    assert not PromotionEvent.objects.exists()


def test_a_version_whose_model_cannot_load_is_marked_broken(glossary, maintainer, tmp_path):
    candidate = versions.model_version_create(base_model=str(tmp_path))  # an empty folder: no model in it
    with pytest.raises(Exception, match="is not available"):
        versions.model_version_promote(version=candidate, user=maintainer, reason="test")
    candidate.refresh_from_db()
    assert candidate.status == ModelVersion.Status.BROKEN


def test_an_edit_committed_during_a_build_is_not_lost(glossary, expert, monkeypatch):
    version = selectors.champion_version_get()
    real_encode = encoding.encode_documents_with
    calls = []

    def encode_while_someone_edits(version, texts):
        if not calls:  # the full encoding pass: an expert edits and unvalidates entries meanwhile
            glossary_services.entry_update(entry=glossary["tva"], data={"definition": "Impôt sur la consommation finale des biens et services."}, user=expert)
            glossary_services.entry_set_status(entry=glossary["caf"], status=Entry.Status.REJECTED, user=expert)
        calls.append(len(texts))
        return real_encode(version, texts)

    monkeypatch.setattr(encoding, "encode_documents_with", encode_while_someone_edits)
    indexing.index_rebuild(version=version)
    _, index = _stored_index(version)
    definitions = {passage.entry_id: passage.text for passage in index.passages if passage.passage_type == "definition"}
    assert "consommation finale" in definitions[glossary["tva"].pk]
    assert glossary["caf"].pk not in definitions
    assert len(calls) == 2  # the full pass, then only the edited entry


def test_a_bulk_import_rebuilds_the_existing_index_once(glossary, expert, django_capture_on_commit_callbacks):
    from glossary.imports import import_file

    search.search(query="URSSAF")  # builds the first index
    state = selectors.index_state_get(version=selectors.champion_version_get())
    before = state.revision
    content = "term,definition,domain,kind,variants,contexts\nCNAV,Caisse qui verse les retraites du régime général des salariés,Protection sociale,acronym,Caisse nationale d'assurance vieillesse,La CNAV a liquidé la pension.\n".encode()
    with django_capture_on_commit_callbacks(execute=True):
        report = import_file(content=content, file_name="x.csv", file_format="csv", status="validated", user=expert)
    assert report.created == 1
    state.refresh_from_db()
    assert state.revision == before + 1
    assert search.search(query="CNAV").hits[0].entry.term == "CNAV"


def test_the_approximate_index_is_a_setting_with_a_clear_error_without_faiss(glossary, settings):
    from retrieval.vector_index import FaissUnavailableError, FaissVectorIndex

    assert serving.vector_index_class() is VectorIndex
    settings.VECTOR_INDEX = "faiss"
    assert serving.vector_index_class() is FaissVectorIndex
    try:
        import faiss  # noqa: F401
    except ImportError:
        with pytest.raises(FaissUnavailableError, match="pip install faiss-cpu"):
            FaissVectorIndex.build([], np.zeros((0, 4), dtype=np.float32))
