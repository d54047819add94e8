"""LLM questions in a real tiny training cycle: train side only, cached, failures counted, off at 0.

The LLM is the local OpenAI-compatible test server (tests/llm_server.py)."""
import json
import re

import pytest
from django.core.files.storage import storages

from config.stored_messages import render_log
from glossary.models import Entry
from tests.llm_server import running_llm_server
from tests.training.test_runs import TINY, _glossary
from training import runs, selectors, services
from training.models import LLMQuestionSet, TrainingRun

pytestmark = pytest.mark.django_db

_TERM = re.compile(r"Terme : (\S+)")


def _term_of(body: dict) -> str:
    return _TERM.search(body["messages"][-1]["content"]).group(1)


def _questions_for(body: dict) -> str:
    term = _term_of(body)
    number = term.removeprefix("SIG")
    return json.dumps({"questions": [f"zz organisme du sujet {number} en vrai", f"que fait le {term} au juste", term]})


@pytest.fixture
def llm(settings):
    with running_llm_server() as server:
        server.responder = _questions_for
        settings.LLM_BASE_URL, settings.LLM_MODEL, settings.LLM_TIMEOUT_SECONDS = server.base_url, "scripted", 2.0
        yield server


def _run_cycle(user, **overrides) -> TrainingRun:
    run = services.training_run_request(user=user, overrides={**TINY, **overrides})
    runs.training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    return run


def _snapshot_pairs(run: TrainingRun) -> list[dict]:
    lines = storages["artifacts"].open(run.snapshot.artifact_path).read().decode().splitlines()
    return [json.loads(line) for line in lines]


@pytest.mark.slow
def test_a_cycle_trains_on_the_llm_questions_of_the_train_side_only_and_the_next_cycle_reads_them_from_the_cache(maintainer, llm):
    _glossary()
    first = _run_cycle(maintainer)
    assert first.status in (TrainingRun.Status.SUCCEEDED, TrainingRun.Status.EVALUATING), first.log + first.error
    train_ids, test_ids = {concept.entry_id for concept in selectors.train_concepts()}, selectors.test_entry_ids()
    assert test_ids and train_ids
    terms = dict(Entry.objects.values_list("pk", "term"))
    # Asked once about every train-side entry, never about a test-side one.
    assert sorted(_term_of(body) for body in llm.requests) == sorted(terms[pk] for pk in train_ids)
    llm_pairs = [pair for pair in _snapshot_pairs(first) if pair["source"] == "llm_question"]
    assert {pair["entry_id"] for pair in llm_pairs} == train_ids
    assert {pair["anchor"] for pair in llm_pairs} == {
        text for pk in train_ids for text in (f"zz organisme du sujet {terms[pk][3:]} en vrai", f"que fait le {terms[pk]} au juste")
    }  # the bare term the LLM also gave is dropped
    stats = first.stats["llm_questions"]
    assert stats == {"asked": len(train_ids), "from_cache": 0, "failed": 0, "not_asked": 0, "questions": 2 * len(train_ids), "used": len(llm_pairs)}
    assert LLMQuestionSet.objects.filter(entry_id__in=test_ids).count() == 0
    assert set(LLMQuestionSet.objects.values_list("entry_id", flat=True)) == train_ids
    assert "Questions écrites par le LLM (scripted)" in render_log(first.job.log)

    services.training_run_cancel(run=first, user=maintainer)  # its evaluation: the next cycle may start
    asked = len(llm.requests)
    second = _run_cycle(maintainer)
    assert second.status in (TrainingRun.Status.SUCCEEDED, TrainingRun.Status.EVALUATING), second.log + second.error
    assert len(llm.requests) == asked  # no new request: every entry is unchanged
    assert second.stats["llm_questions"]["from_cache"] == len(train_ids) and second.stats["llm_questions"]["asked"] == 0
    assert {pair["anchor"] for pair in _snapshot_pairs(second) if pair["source"] == "llm_question"} == {pair["anchor"] for pair in llm_pairs}


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["malformed", "sleep"])
def test_a_broken_or_slow_llm_leaves_the_cycle_succeeding_with_its_failures_counted(maintainer, llm, settings, mode):
    _glossary()
    llm.mode, llm.sleep_seconds = mode, 1.0
    settings.LLM_TIMEOUT_SECONDS, settings.LLM_QUESTIONS_MAX_ENTRIES = 0.2, 3
    run = _run_cycle(maintainer)
    assert run.status in (TrainingRun.Status.SUCCEEDED, TrainingRun.Status.EVALUATING), run.log + run.error
    stats = run.stats["llm_questions"]
    assert (stats["asked"], stats["failed"], stats["questions"], stats["used"]) == (3, 3, 0, 0)
    assert stats["not_asked"] == len(selectors.train_concepts()) - 3  # over the per-cycle limit: a later cycle asks
    assert not LLMQuestionSet.objects.exists()  # a failure is not cached: asked again next cycle
    assert not any(pair["source"] == "llm_question" for pair in _snapshot_pairs(run))


def test_no_request_with_zero_questions_per_entry_or_without_an_llm(maintainer, llm, settings, monkeypatch):
    class DataBuilt(Exception):
        pass

    def stop(**kwargs):  # the training data is what this test is about: no need to fine-tune
        raise DataBuilt()

    monkeypatch.setattr("training.finetune.finetune", stop)
    _glossary()
    run = _run_cycle(maintainer, llm_questions_per_entry=0)
    assert "DataBuilt" in run.error and "llm_questions" not in run.stats and run.stats["pairs"] > 0
    assert llm.requests == []
    settings.LLM_BASE_URL = ""
    run = _run_cycle(maintainer)
    assert run.config_values["llm_questions_per_entry"] == 3 and "llm_questions" not in run.stats and run.stats["pairs"] > 0
    assert llm.requests == [] and not LLMQuestionSet.objects.exists()
