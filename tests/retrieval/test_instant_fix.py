"""The instant fix, end to end: a corrected flag's question is served right within seconds by a real worker."""
import pytest
from django.urls import reverse

from retrieval import answering, indexing, search, selectors
from retrieval.models import Flag, IndexState, LabelledQuestion, QuestionLog
from tests.live import wait_for

pytestmark = pytest.mark.slow

QUESTION = "l'argent des vieux, il vient d'où ?"
REWORDING = "L'argent des vieux vient d'où"


def _first(query: str, **options) -> int | None:
    hits = search.search(query=query, top_k=5, **options).hits
    return hits[0].entry.id if hits else None


def test_a_corrected_flag_is_answered_right_within_seconds(live_worker, glossary, client, expert, settings):
    settings.INDEX_REVISION_CHECK_SECONDS = 0
    version = selectors.champion_version_get()
    built = indexing.index_rebuild(version=version)
    client.force_login(expert)
    client.post(reverse("retrieval:ask"), {"question": QUESTION})
    log = QuestionLog.objects.get(question=QUESTION)
    # The expert says the right entry is one the assistant did not put first.
    right = next(hit["entry_id"] for hit in log.hits[1:])
    assert _first(QUESTION) != right

    response = client.post(reverse("retrieval:flag-create", args=[log.pk]), {"reason": "wrong_entry", "correct_entry": right})
    assert response.status_code == 302, response.content.decode()[:2000]
    flag = Flag.objects.get()
    assert flag.status == Flag.Status.CORRECTED and LabelledQuestion.objects.get().flag == flag

    wait_for(lambda: _first(QUESTION) == right, timeout=120, interval=0.5,
             message=f"the corrected question answered right; worker log:\n{live_worker.log()[-3000:]}")
    assert _first(REWORDING) == right  # a close rewording too, before any retraining
    answer, _log = answering.answer_question(question=QUESTION, user=expert)
    assert answer.sources[0].entry_id == right and answer.sources[0].passage_type == "definition"
    # One incremental update by the worker, not a rebuild; and the model alone still has to learn it.
    state = IndexState.objects.get(version=version)
    assert state.revision == built.revision + 1 and state.built_at == built.built_at
    assert "retrieval.tasks.index_entry" in live_worker.log()
    assert _first(QUESTION, exclude_known_questions=True) != right
