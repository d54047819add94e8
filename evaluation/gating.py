"""The gate step of a training cycle: may the evaluated version replace the champion? (the Django side)

The decision itself is pure (evaluation.gate.decide_for_users). This module gathers what it reads, for the
candidate and for the champion, asked the same questions through the product's own search (hybrid, pre-processing,
exact matches) over each version's serving index, known-question passages left out:

1. ``real``: the installation's held-out labelled questions (never trained on), over the whole validated glossary;
   they decide once there are ``GATE_MIN_REAL_QUESTIONS`` of them, and a version that lowers their Hit@1 is never
   promoted automatically;
2. ``canary``: a synthetic set built from the TEST side of the frozen split covering every kind of question
   (reverse look-ups from the definition's words, typos of the term, "le sigle de ...", English, shared acronyms,
   not only "C'est quoi X ?"; training.questions.canary_queries), answered over the whole glossary;
3. ``templates``: the evaluation report on the frozen test set (evaluation.gate.decide): its domain regressions
   refuse, and it decides alone only when there is no question tier at all.

A candidate is searched over its own index, built here when it has none (the promotion rebuilds it anyway).
The decision is stored on the evaluation run and the version: reasons as codes and parameters (rendered in the
reader's language, ``gate_reasons``) and as sentences in the installation's language (LANGUAGE_CODE) for older
readers of ``reasons``.
"""
from __future__ import annotations

import logging

from django.conf import settings
from django.utils import timezone, translation
from django.utils.translation import gettext as _, gettext_noop

from config.stored_messages import stored
from evaluation import selectors
from evaluation import runs as evaluation_runs
from evaluation.gate import CANARY, GATE_MODE, REAL, decide, decide_for_users, reason_message, render_reason
from evaluation.models import EvaluationRun
from evaluation.real_questions import RealQuestion, evaluate_real_questions, real_questions_from_labelled
from evaluation.gate_records import CANDIDATE, CHAMPION, GateRecord, QuestionTier
from evaluation.reports import EvaluationReport
from jobs import runner
from jobs.models import Job
from retrieval import selectors as retrieval_selectors
from retrieval import versions as retrieval_versions
from retrieval.models import ModelVersion

logger = logging.getLogger("lexique.evaluation")

GATE_KIND = "gate"
# The question tiers use what users get (the template tier: evaluation.gate.GATE_MODE, dense).
QUESTION_MODE = "hybrid"
# Questions a tier keeps of those it did not answer first (the report page lists them).
STORED_WRONG = 20


def canary_questions() -> list[RealQuestion]:
    """The canary set: generated questions of every kind about the test-side entries (deterministic)."""
    from evaluation.services import test_set_build
    from training.questions import canary_queries

    per_kind = settings.GATE_CANARY_PER_KIND
    if per_kind <= 0:
        return []
    test_set = test_set_build()
    variants = {entry.id: entry.variants for entry in test_set.entries}
    concepts = [
        _Concept(concept.entry_id, concept.term, concept.definition, variants.get(concept.entry_id, ()))
        for concept in test_set.concepts
    ]
    return [
        RealQuestion(question.query, frozenset({question.entry_id}), question.kind, "canary")
        for question in canary_queries(concepts, per_kind=per_kind)
    ]


class _Concept:
    __slots__ = ("entry_id", "term", "definition", "variants")

    def __init__(self, entry_id: int, term: str, definition: str, variants: tuple[str, ...]):
        self.entry_id, self.term, self.definition, self.variants = entry_id, term, definition, variants


def question_tiers(version: ModelVersion, *, real: list[RealQuestion], canary: list[RealQuestion]) -> dict[str, QuestionTier]:
    """Each non-empty tier asked to ``version``, with the first questions it did not answer first."""
    tiers = {}
    for tier, questions in ((REAL, real), (CANARY, canary)):
        if questions:
            result = evaluate_real_questions(version=version, questions=questions, mode=QUESTION_MODE, exclude_known_questions=True)
            tiers[tier] = result.tier(wrong=STORED_WRONG)
    return tiers


def gate_messages(gate: GateRecord) -> list[dict]:
    """The gate's reasons as stored messages (config.stored_messages): the tiers' reasons, then the template
    gate's own comparison when it decided. For what is written down (the job's log, the audit log)."""
    reasons = list(gate.reason_codes)
    if gate.champion_version_id and gate.deciding_tier is None:
        reasons += gate.template_reason_codes
    return [message for message in map(reason_message, reasons) if message is not None]


def gate_reasons(gate: GateRecord | None) -> list[str]:
    """The gate's reasons as sentences in the active language (stored codes), or as stored (older decisions)."""
    if gate is None:
        return []
    if gate.reason_codes:
        return [render_reason(reason) for reason in gate.reason_codes]
    return list(gate.reasons)


def _champion_run(*, champion: ModelVersion, candidate_run: EvaluationRun) -> EvaluationRun:
    """The champion's evaluation on the candidate's test set and modes: its latest one, or a new one now."""
    from evaluation import services
    from django.core.exceptions import ValidationError

    existing = selectors.latest_evaluation(version=champion, test_set_hash=candidate_run.test_set_hash, mode=GATE_MODE)
    if existing is not None and set(candidate_run.protocols) <= set(existing.protocols):
        return existing
    evaluation_runs.run_log(candidate_run, stored(
        gettext_noop("The champion %(champion)s has no report on this test set: it is evaluated again."), champion=champion,
    ))
    champion_run = evaluation_runs.evaluation_run_create(
        version=champion, trigger=EvaluationRun.Trigger.AUTO, modes=[GATE_MODE], protocols=candidate_run.protocols,
        queries=[services.query_from_dict(item) for item in candidate_run.custom_queries] or None,
        query_source=candidate_run.query_source,
    )
    runner.job_claim(job=champion_run.job)
    try:
        champion_run = evaluation_runs.evaluate_into(champion_run)
    except Exception as error:
        runner.job_fail(job=champion_run.job, error=f"{type(error).__name__}: {error}")
        raise
    evaluation_runs.run_succeed(champion_run)
    if champion_run.test_set_hash != candidate_run.test_set_hash:
        raise ValidationError(_("The test set changed during the evaluation: run it again."))
    return champion_run


def gate_send(job: Job) -> str:
    from evaluation import tasks

    return tasks.gate.delay(job.pk).id


def gate_execute(*, job_id: int, worker: str = "") -> Job:
    """The gate step of a cycle: compare the evaluated version with the champion; the pipeline promotes it or not."""
    from training import pipeline

    job = Job.objects.get(pk=job_id)
    if not runner.job_claim(job=job, worker=worker):
        return job
    run = EvaluationRun.objects.select_related("version", "job").get(pk=job.params["evaluation_run_id"])
    try:
        gate = gate_apply(run, job=job)
    except Exception as error:
        logger.exception("gate %s failed", job.pk)
        runner.job_fail(job=job, error=f"{type(error).__name__}: {error}")
        return job
    if gate.promote:
        message = stored(gettext_noop("Evaluation finished: %(v)s will be promoted once its index is built."), v=run.version)
    else:
        message = stored(gettext_noop("Evaluation finished: %(v)s stays ready, not promoted."), v=run.version)
    pipeline.step_succeeded(job=job, message=message)
    return job


def gate_apply(run: EvaluationRun, *, job: Job) -> GateRecord:
    """Ask candidate and champion the real and canary questions, compare them (with the template report) and
    record the decision on the run and the version."""
    version = run.version
    champion = retrieval_selectors.champion_version_get()
    champion_run = None if champion.pk == version.pk else _champion_run(champion=champion, candidate_run=run)
    primary = settings.GATE_PRIMARY_METRIC
    templates = decide(
        candidate=EvaluationReport.from_dict(run.report)[GATE_MODE],
        champion=EvaluationReport.from_dict(champion_run.report)[GATE_MODE] if champion_run else None,
        primary=primary,
        margin=settings.GATE_MARGIN,
        domain_tolerance=settings.GATE_DOMAIN_TOLERANCE,
    )
    tiers: dict[str, dict[str, QuestionTier]] = {}
    if champion_run is not None:
        real = real_questions_from_labelled(held_out=True)
        canary = canary_questions()
        runner.job_log(job=job, message=stored(
            gettext_noop("%(real)s held-out real questions, %(canary)s canary questions."), real=len(real), canary=len(canary),
        ))
        tiers = {
            CANDIDATE: question_tiers(version, real=real, canary=canary),
            CHAMPION: question_tiers(champion, real=real, canary=canary),
        }
    decision = decide_for_users(
        candidate=tiers.get(CANDIDATE, {}),
        champion=tiers.get(CHAMPION, {}) if champion_run else None,
        templates=templates if champion_run else None,
        min_real=settings.GATE_MIN_REAL_QUESTIONS,
        min_kind=settings.GATE_MIN_KIND_QUESTIONS,
        kind_tolerance=settings.GATE_KIND_TOLERANCE,
        domain_tolerance=settings.GATE_DOMAIN_TOLERANCE,
        margin=settings.GATE_MARGIN,
    )
    shown = list(decision.reasons)
    if champion_run is not None and decision.deciding_tier is None:
        shown += templates.reasons  # the template gate decided: its own comparison
    with translation.override(settings.LANGUAGE_CODE):
        sentences = [render_reason(reason) for reason in shown]
        template_sentences = [render_reason(reason) for reason in templates.reasons]
    gate = GateRecord(
        decision="promote" if decision.promote else "keep",
        promote=decision.promote,
        reasons=sentences,
        reason_codes=list(decision.reasons),
        deciding_tier=decision.deciding_tier,
        tier_deltas=decision.tier_deltas,
        kind_deltas=decision.kind_deltas,
        tiers=tiers,
        kind_tolerance=settings.GATE_KIND_TOLERANCE,
        min_real_questions=settings.GATE_MIN_REAL_QUESTIONS,
        question_mode=QUESTION_MODE,
        primary=primary,
        mode=GATE_MODE,
        margin=settings.GATE_MARGIN,
        domain_tolerance=settings.GATE_DOMAIN_TOLERANCE,
        primary_delta=templates.primary_delta,
        domain_deltas=templates.domain_deltas,
        template_reasons=template_sentences,
        template_reason_codes=list(templates.reasons),
        champion_version_id=champion.pk if champion_run else None,
        champion_version=champion.display_name if champion_run else None,
        champion_evaluation_id=champion_run.pk if champion_run else None,
        test_set_hash=run.test_set_hash,
        decided_at=timezone.now().isoformat(),
    )
    run.gate = gate.to_dict()
    run.save(update_fields=["gate"])
    retrieval_versions.model_version_set_metrics(version=version, metrics={"gate": run.gate})
    runner.job_log(job=job, message=stored(gettext_noop("Decision: %(reasons)s"), reasons=gate_messages(gate)))
    return gate
