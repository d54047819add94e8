"""The promotion gate in the loop: trained version -> evaluation -> gate -> promotion (or not) -> training run closed."""
import pytest

from evaluation import services
from evaluation import runs as evaluation_runs
from evaluation.models import EvaluationRun
from evaluation.reports import EvaluationReport
from retrieval import selectors as retrieval_selectors
from retrieval import flags as retrieval_flags
from retrieval import search as retrieval_search
from retrieval import versions as retrieval_versions
from retrieval.models import ModelVersion, PromotionEvent
from tests.evaluation.test_runs import tiny_glossary
from tests.factories import EntryFactory
from training import runs as training_runs
from training import services as training_services
from jobs import runner
from training import pipeline
from training.models import TrainingRun

pytestmark = pytest.mark.django_db

HASH = "a" * 64


def crafted(mrr, domains):
    """What evaluate_version returns, with a chosen Def-only MRR@10 overall and per domain (dense mode)."""
    protocol = {
        "overall": {"hit@1": mrr, "mrr@10": mrr},
        "by_domain": {name: {"queries": 6, "metrics": {"hit@1": value, "mrr@10": value}} for name, value in domains.items()},
        "by_kind": {}, "by_source": {}, "skipped": [], "worst": [],
    }
    report = {"queries": 12, "ks": [1], "cutoff": 10, "protocols": {"def_only": protocol, "concept": protocol}}
    return services.EvaluationResult(
        report=EvaluationReport.from_dict({"dense": report, "hybrid": report}), similarity={}, ragas={}, test_set_hash=HASH,
        query_count=12, passage_count=8,
    )


@pytest.fixture
def numbers(monkeypatch, settings):
    """Evaluation numbers by version number; the champion "base" (0) scores 0.60 overall.

    These tests pin the flow of the template tier (the frozen test set's report), so the question tiers are off:
    no canary set and no held-out real questions. The question tiers are tested on real evaluations in
    test_gate_questions.py.
    """
    settings.GATE_CANARY_PER_KIND = 0
    table = {0: crafted(0.60, {"Fiscalité": 0.60, "Budget": 0.60})}

    def fake_evaluate_version(*, version, **kwargs):
        return table[version.number]

    monkeypatch.setattr(services, "evaluate_version", fake_evaluate_version)
    return table


def trained_candidate():
    base = retrieval_selectors.model_version_get(ref="base")
    job = runner.job_create(kind=pipeline.TRAIN, lock=pipeline.CYCLE_LOCK)
    runner.job_claim(job=job)
    run = TrainingRun.objects.create(job=job, parent_version=base)
    version = retrieval_versions.model_version_create(base_model=base.base_model, label="candidate", parent=base, training_run_id=run.pk)
    TrainingRun.objects.filter(pk=run.pk).update(model_version=version)
    run.refresh_from_db()
    return run, version


def train_and_evaluate(captured):
    run, version = trained_candidate()
    with captured(execute=True):
        pipeline.step_succeeded(job=run.job)  # the training step is done: the cycle goes on
    run.refresh_from_db()
    version.refresh_from_db()
    return run, version


def test_a_better_candidate_is_promoted_after_its_index_is_built(numbers, django_capture_on_commit_callbacks):
    tiny_glossary()
    numbers[1] = crafted(0.80, {"Fiscalité": 0.80, "Budget": 0.80})
    run, version = train_and_evaluate(django_capture_on_commit_callbacks)
    assert version.status == ModelVersion.Status.CHAMPION
    assert retrieval_selectors.champion_version_get() == version
    assert version.index_state.status == "ready" and version.index_state.passage_count > 0
    event = PromotionEvent.objects.get(version=version)
    assert event.action == PromotionEvent.Action.AUTO and event.user is None and "fait mieux" in event.reason_text
    assert event.previous_champion.number == 0
    evaluation = EvaluationRun.objects.get(version=version)
    assert evaluation.trigger == "auto" and evaluation.training_run_id == run.pk and evaluation.gate["decision"] == "promote"
    assert version.metrics["gate"]["promote"] and version.metrics["gate"]["primary_delta"] == pytest.approx(0.2)
    # The champion had no report on this test set: it was evaluated for the comparison.
    assert EvaluationRun.objects.filter(version__number=0, test_set_hash=HASH, job__status="succeeded").exists()
    assert run.status == TrainingRun.Status.SUCCEEDED and "sera promue" in run.log and run.job.lock is None
    assert "Évaluation de" in run.log  # the evaluation's progress shows in the cycle's log on the run's page


def test_a_worse_candidate_stays_ready_with_the_reasons(numbers, django_capture_on_commit_callbacks):
    tiny_glossary()
    numbers[1] = crafted(0.55, {"Fiscalité": 0.55, "Budget": 0.55})
    run, version = train_and_evaluate(django_capture_on_commit_callbacks)
    assert version.status == ModelVersion.Status.READY
    assert retrieval_selectors.champion_version_get().number == 0
    assert not PromotionEvent.objects.exists()
    assert version.metrics["gate"]["decision"] == "keep"
    reasons = version.metrics["gate"]["reasons"]
    assert any("ne fait pas assez mieux" in reason for reason in reasons)
    assert "templates_only" in [reason["code"] for reason in version.metrics["gate"]["reason_codes"]]
    assert run.status == TrainingRun.Status.SUCCEEDED and "reste prête" in run.log


def test_a_regression_in_one_domain_is_refused(numbers, django_capture_on_commit_callbacks):
    tiny_glossary()
    numbers[1] = crafted(0.70, {"Fiscalité": 0.95, "Budget": 0.45})
    run, version = train_and_evaluate(django_capture_on_commit_callbacks)
    assert version.status == ModelVersion.Status.READY
    reasons = EvaluationRun.objects.get(version=version).gate["reasons"]
    assert any("Budget" in reason and "recule" in reason for reason in reasons)
    assert "non promue" in run.log


def test_the_champion_report_is_reused_when_on_the_same_test_set(numbers, django_capture_on_commit_callbacks):
    tiny_glossary()
    numbers[1] = crafted(0.55, {"Fiscalité": 0.55, "Budget": 0.55})
    base = retrieval_selectors.model_version_get(ref="base")
    earlier = evaluation_runs.evaluation_run_create(version=base)
    evaluation_runs.evaluation_run_execute(run_id=earlier.pk)
    train_and_evaluate(django_capture_on_commit_callbacks)
    assert EvaluationRun.objects.filter(version=base).count() == 1
    assert EvaluationRun.objects.exclude(version=base).get().gate["champion_evaluation_id"] == earlier.pk


def test_a_failed_evaluation_fails_the_training_run_and_keeps_the_version_ready(monkeypatch, django_capture_on_commit_callbacks):
    def broken(**kwargs):
        raise RuntimeError("mémoire insuffisante")

    monkeypatch.setattr(services, "evaluate_version", broken)
    run, version = train_and_evaluate(django_capture_on_commit_callbacks)
    evaluation = EvaluationRun.objects.get(version=version)
    assert evaluation.status == EvaluationRun.Status.FAILED and "mémoire insuffisante" in evaluation.error
    assert run.status == TrainingRun.Status.FAILED and run.error.startswith("évaluation échouée:")
    assert version.status == ModelVersion.Status.READY


def test_search_keeps_the_old_champion_until_the_new_index_is_ready(django_capture_on_commit_callbacks):
    tiny_glossary()
    base = retrieval_selectors.champion_version_get()
    assert retrieval_search.search(query="URSSAF").version == base
    candidate = retrieval_versions.model_version_create(base_model=base.base_model, label="next", parent=base)
    # The promotion is requested; its task has not run yet (no index for the candidate).
    evaluation_runs.version_promote_request(version=candidate, user=None, reason="essai")
    candidate.refresh_from_db()
    assert candidate.status == ModelVersion.Status.PROMOTING
    during = retrieval_search.search(query="URSSAF")
    assert during.version == base and during.hits
    retrieval_versions.model_version_promote(version=candidate, user=None, reason="essai")
    after = retrieval_search.search(query="URSSAF")
    assert after.version == candidate and after.hits


@pytest.mark.slow
def test_a_real_tiny_training_run_is_evaluated_and_closed_with_the_decision(maintainer, django_capture_on_commit_callbacks):
    tiny_glossary()
    for index in range(3):  # a little more train-side material for the tiny LoRA run
        EntryFactory(term=f"SIGLE{index}", definition=f"Service administratif chargé du dossier {index}", split="train", split_pinned=True)
    run = training_services.training_run_request(user=maintainer, overrides={"max_steps": 2, "batch_size": 8})
    with django_capture_on_commit_callbacks(execute=True):
        training_runs.training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.SUCCEEDED, run.log + run.error
    evaluation = EvaluationRun.objects.get(version=run.model_version, trigger="auto")
    assert evaluation.status == "succeeded" and evaluation.gate["decision"] in ("promote", "keep")
    assert ("sera promue" in run.log) or ("reste prête" in run.log)


@pytest.mark.slow
def test_the_cycle_marks_the_flags_it_trained_on_and_asks_them_again_after_the_promotion(maintainer, expert, settings, django_capture_on_commit_callbacks):
    """The flag's life through a real tiny cycle: corrected -> used by training run N -> answered right by
    version M (or open again, back in the queue)."""
    from retrieval.models import Flag, QuestionLog
    from retrieval.question_kinds import is_held_out, normalise_question

    settings.GATE_MARGIN, settings.GATE_KIND_TOLERANCE, settings.GATE_DOMAIN_TOLERANCE = -1.0, 1.0, 1.0  # always promote
    tiny_glossary()
    caf = retrieval_selectors.validated_entries().get(term="CAF")  # train side
    # A wording that is not held out (held-out questions are never trained on).
    question = next(text for text in (f"l'organisme des prestations familiales {suffix}".strip() for suffix in ("", "svp", "stp", "merci", "?"))
                    if not is_held_out(normalise_question(text)))
    log = QuestionLog.objects.create(question=question, version=retrieval_selectors.champion_version_get(), hits=[])
    flag = retrieval_flags.flag_create(question_log=log, user=expert, reason="wrong_entry", correct_entry=caf)
    assert flag.status == Flag.Status.CORRECTED
    run = training_services.training_run_request(user=maintainer, overrides={"max_steps": 2, "batch_size": 8})
    with django_capture_on_commit_callbacks(execute=True):
        training_runs.training_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.SUCCEEDED, run.log + run.error
    flag.refresh_from_db()
    assert flag.used_by_run_id == run.pk
    assert run.stats["labelled_question_ids"] and run.model_version.status == ModelVersion.Status.CHAMPION
    # Asked again to the new champion after its promotion: answered right, or open again with its rank.
    assert flag.checked_version_id == run.model_version_id
    assert (flag.status, flag.answered_right) in ((Flag.Status.ANSWERED, True), (Flag.Status.OPEN, False))
    steps = [step["step"] for step in retrieval_flags.flag_life(flag)]
    assert steps[:3] == ["open", "corrected", "used"] and steps[-1] in ("answered", "still_wrong")
    assert "Poids de l'adaptateur" in run.log


@pytest.mark.slow
def test_retrain_inline_runs_the_whole_cycle_in_the_command_without_a_worker(settings):
    from io import StringIO

    from django.core.management import call_command

    settings.GATE_MARGIN, settings.GATE_KIND_TOLERANCE, settings.GATE_DOMAIN_TOLERANCE = -1.0, 1.0, 1.0  # always promote
    tiny_glossary()
    out = StringIO()
    call_command("retrain", inline=True, max_steps=2, stdout=out, stderr=out)
    run = TrainingRun.objects.get()
    assert run.status == TrainingRun.Status.SUCCEEDED, out.getvalue() + run.log + run.error
    assert "Aucun worker" not in out.getvalue() and "succeeded" in out.getvalue()
    evaluation = EvaluationRun.objects.get(version=run.model_version, trigger="auto")
    assert evaluation.status == "succeeded" and evaluation.gate["decision"] == "promote"
    run.model_version.refresh_from_db()
    assert run.model_version.status == ModelVersion.Status.CHAMPION
