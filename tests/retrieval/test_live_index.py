"""End to end: an expert's edit in the UI reaches search through a real worker, without a full rebuild."""
import pytest
from django.urls import reverse

from glossary.forms import EntryEditForm
from retrieval import indexing, search, selectors
from retrieval.models import IndexState
from tests.live import wait_for

pytestmark = pytest.mark.slow


def _edit_form_data(entry, **changes) -> dict:
    data = {**EntryEditForm.initial_for(entry), **changes}
    return {key: "\n".join(value) if isinstance(value, list) else ("" if value is None else value) for key, value in data.items()}


def test_an_edit_in_the_ui_is_searchable_within_seconds(live_worker, glossary, client, expert, settings):
    settings.INDEX_REVISION_CHECK_SECONDS = 0
    version = selectors.champion_version_get()
    built = indexing.index_rebuild(version=version)
    entry = glossary["rescrit"]
    new_definition = "Réponse écrite de l'administration qui engage le fisc sur le traitement du zorglub d'un contribuable."

    client.force_login(expert)
    response = client.post(reverse("glossary:entry-edit", args=[entry.pk]), _edit_form_data(entry, definition=new_definition))
    assert response.status_code == 302, response.content.decode()[:2000]

    def searchable():
        hits = search.search(query="traitement du zorglub", top_k=3).hits
        return hits and hits[0].entry.id == entry.pk and "zorglub" in (hits[0].hit.passage.text if hits[0].hit.passage else "")

    wait_for(searchable, timeout=120, interval=0.5, message=f"the edited entry in search results; worker log:\n{live_worker.log()[-3000:]}")
    state = IndexState.objects.get(version=version)
    # One incremental update on top of the full build: not a rebuild.
    assert state.revision == built.revision + 1
    assert state.built_at == built.built_at and state.entries_read_at == built.entries_read_at
    assert "retrieval.tasks.index_entry" in live_worker.log()
