"""The active-learning benchmark's simulation (bench.active_learning): dense retrieval over entries, the simulated
expert, LoRA training from the base model after each cycle, the product's promotion gate after each training, and
both selection orders (active, random) over the same pool. Pure functions of the product (queue, builder,
finetune, question kinds, canary set, gate, metrics), no Django."""
from __future__ import annotations

import logging
import os
import random
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.active_learning_scenario import LoggedQuestion, Scenario, Settings
from evaluation.gate import CANARY, REAL, decide_for_users
from evaluation.gate_records import QuestionScores, QuestionTier
from evaluation.metrics import aggregate, ranking_metrics
from evaluation.reports import KEY_METRICS
from retrieval.question_kinds import is_held_out, normalise_question
from training import queue
from training.builder import ConceptData, FlagData, build_pairs, concept_passages
from training.questions import canary_queries

logger = logging.getLogger("bench.active_learning")

ACTIVE, RANDOM = "active", "random"
RANKED = 10  # entries a logged question keeps, as the search logs its hits
# The product's gate settings (config/settings.py defaults): real questions decide from 30, canaries per kind.
GATE_MIN_REAL_QUESTIONS, GATE_CANARY_PER_KIND, GATE_MIN_KIND_QUESTIONS, GATE_KIND_TOLERANCE = 30, 100, 5, 0.02


@dataclass(frozen=True)
class EntryIndex:
    """The glossary's passages encoded by one model; an entry scores as its best passage."""

    passage_vectors: np.ndarray
    passage_entry_ids: np.ndarray

    def rank(self, query_vectors: np.ndarray, *, top: int = RANKED) -> tuple[np.ndarray, np.ndarray]:
        """(entry ids, scores) of the ``top`` best entries per query, best first."""
        entry_ids, column_of_passage = np.unique(self.passage_entry_ids, return_inverse=True)
        by_entry = np.argsort(column_of_passage, kind="stable")
        starts = np.flatnonzero(np.r_[True, np.diff(column_of_passage[by_entry]) != 0])
        scores = np.maximum.reduceat(query_vectors @ self.passage_vectors[by_entry].T, starts, axis=1)
        best = np.argsort(-scores, axis=1, kind="stable")[:, :top]
        return entry_ids[best], np.take_along_axis(scores, best, axis=1)


def encode_index(model, spec, concepts: Sequence[ConceptData]) -> EntryIndex:
    from retrieval.embedding import encode_documents

    passages = [passage for concept in concepts for passage in concept_passages(concept)]
    return EntryIndex(
        passage_vectors=encode_documents(model, spec, [passage.text for passage in passages]),
        passage_entry_ids=np.asarray([passage.entry_id for passage in passages], dtype=np.int64),
    )


def question_metrics(ranked_ids: np.ndarray, questions_: Sequence[LoggedQuestion]) -> list[dict[str, float]]:
    """Def-only metrics of each question (its one right entry) from the ranked entry ids."""
    return [
        ranking_metrics([str(entry_id) for entry_id in row], {str(question.entry_id)})
        for row, question in zip(ranked_ids.tolist(), questions_)
    ]


def uncertainty_items(ranked_ids: np.ndarray, ranked_scores: np.ndarray, questions_: Sequence[LoggedQuestion]) -> list[queue.Rankable]:
    """The queue's view of logged questions: their uncertainty under the current model, and the entries the
    expert would see (the top two), so that ``diverse_order`` spreads questions about the same entries."""
    items = []
    for ids, scores, question in zip(ranked_ids.tolist(), ranked_scores.tolist(), questions_):
        signals = queue.question_signals(
            top_score=scores[0], margin=scores[0] - scores[1], dense_top_entry=ids[0], lexical_top_entry=None, no_answer=False
        )
        items.append(
            queue.Rankable(key=question.key, score=queue.question_uncertainty(signals), source="question", entry_ids=frozenset(ids[:2]))
        )
    return items


def expert_answers(ranked_ids: np.ndarray, questions_: Sequence[LoggedQuestion]) -> list[FlagData]:
    """What the expert confirms: the right entry; the entries ranked above it become negatives (as ``_label``)."""
    answers = []
    for ids, question in zip(ranked_ids.tolist(), questions_):
        above = ids[: ids.index(question.entry_id)] if question.entry_id in ids else ids
        answers.append(FlagData(question=question.query, entry_id=question.entry_id, wrong_entry_ids=tuple(above)))
    return answers


# ---- the simulation -----------------------------------------------------------------------------------------

@contextmanager
def _training_threads() -> Iterator[None]:
    """All cores for training, even in the bench process that serves with one thread (restored afterwards)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    try:
        yield
    finally:
        torch.set_num_threads(before)


class _Trainer:
    """Trains a LoRA adapter from the base model on the glossary sample plus the answers so far, and measures it."""

    def __init__(self, scenario: Scenario, settings: Settings, workdir: Path):
        from retrieval.catalogue import DEFAULT_MODEL_NAME, get_spec

        self.scenario, self.settings, self.workdir = scenario, settings, workdir
        self.spec = get_spec(DEFAULT_MODEL_NAME)
        self.test_ids = set(scenario.held_out_entry_ids)
        self.train_concepts = [concept for concept in scenario.concepts if concept.entry_id not in self.test_ids]
        glossary = build_pairs(concepts=self.train_concepts, test_entry_ids=self.test_ids)
        sample = random.Random(settings.seed).sample(range(len(glossary)), min(settings.glossary_pairs, len(glossary)))
        self.glossary_pairs = [glossary[index] for index in sorted(sample)]
        self.trainings = 0

    def base(self):
        from retrieval.embedding import load_model

        return load_model(self.spec)

    def train(self, answers: Sequence[FlagData]):
        from retrieval.embedding import load_model
        from training.builder import SOURCE_FLAG, to_dataset
        from training.finetune import FinetuneConfig, finetune

        flags = build_pairs(concepts=self.train_concepts, flags=answers, test_entry_ids=self.test_ids)
        pairs = self.glossary_pairs + [pair for pair in flags if pair.source == SOURCE_FLAG]
        dataset = to_dataset(pairs, num_negatives=1, seed=self.settings.seed, test_entry_ids=self.test_ids)
        self.trainings += 1
        config = FinetuneConfig(
            max_steps=self.settings.max_steps,
            batch_size=self.settings.batch_size,
            learning_rate=self.settings.learning_rate,
            seed=self.settings.seed,
            logging_steps=self.settings.max_steps,
        )
        output = self.workdir / f"training-{self.trainings}"
        result = finetune(spec=self.spec, base_path_or_model=self.spec.path, train_dataset=dataset, config=config, output_dir=str(output))
        return load_model(self.spec, adapter_path=result.adapter_dir)

    def rank(self, model, index: EntryIndex, questions_: Sequence[LoggedQuestion]) -> tuple[np.ndarray, np.ndarray]:
        from retrieval.embedding import encode_queries

        return index.rank(encode_queries(model, self.spec, [question.query for question in questions_]))

    def measure(self, model) -> tuple[EntryIndex, list[dict[str, float]]]:
        index = encode_index(model, self.spec, self.scenario.concepts)
        ranked_ids, _scores = self.rank(model, index, self.scenario.held_out)
        return index, question_metrics(ranked_ids, self.scenario.held_out)


class _Gate:
    """The product's promotion gate at the simulation's level (``evaluation.gate.decide_for_users``, the settings'
    defaults): the held-out share of the expert's answers (``retrieval.question_kinds.is_held_out``, never trained
    on) decide once there are ``GATE_MIN_REAL_QUESTIONS``; before that, the canary set the product builds from the
    test side (``training.questions.canary_queries`` over the entries nobody asked about, never trained on). Each
    candidate is asked the same questions as the champion, with dense retrieval over the simulation's glossary."""

    def __init__(self, trainer: _Trainer, scenario: Scenario, settings: Settings):
        self.trainer = trainer
        test_side = [concept for concept in scenario.concepts if concept.entry_id in scenario.held_out_entry_ids]
        self.canary = canary_queries(test_side, seed=settings.seed, per_kind=GATE_CANARY_PER_KIND)

    def tier(self, model, index: EntryIndex, questions_: Sequence) -> QuestionTier | None:
        """Hit@1 overall and per kind of ``questions_`` (objects with query, entry_id and kind)."""
        if not questions_:
            return None
        ranked_ids, _scores = self.trainer.rank(model, index, questions_)
        right_by_kind: dict[str, list[bool]] = defaultdict(list)
        for row, question in zip(ranked_ids.tolist(), questions_):
            right_by_kind[question.kind].append(bool(row) and row[0] == question.entry_id)
        every = [right for rights in right_by_kind.values() for right in rights]
        return QuestionTier(
            overall=QuestionScores(questions=len(every), hit_at_1=sum(every) / len(every)),
            by_kind={kind: QuestionScores(questions=len(rights), hit_at_1=sum(rights) / len(rights)) for kind, rights in right_by_kind.items()},
        )

    def decide(self, *, candidate: tuple, champion: tuple, real: Sequence[LoggedQuestion]) -> dict:
        """The gate's decision on ``candidate`` over ``champion`` ((model, index) each), as plain data."""
        asked = {}
        for name, (model, index) in (("candidate", candidate), ("champion", champion)):
            asked[name] = {tier: scores for tier, scores in ((REAL, self.tier(model, index, real)), (CANARY, self.tier(model, index, self.canary))) if scores}
        decision = decide_for_users(
            candidate=asked["candidate"], champion=asked["champion"], min_real=GATE_MIN_REAL_QUESTIONS,
            min_kind=GATE_MIN_KIND_QUESTIONS, kind_tolerance=GATE_KIND_TOLERANCE,
        )
        return {
            "promote": decision.promote,
            "deciding_tier": decision.deciding_tier,
            "real_questions": len(real),
            "tier_deltas": dict(decision.tier_deltas),
            "reasons": [reason.code + (f" {dict(reason.params)}" if reason.params else "") for reason in decision.reasons],
        }


def held_out_answer(question: LoggedQuestion) -> bool:
    """Whether the product would keep this answered question out of training, to judge versions with."""
    return is_held_out(normalise_question(question.query))


def _select(strategy: str, *, remaining: list[LoggedQuestion], shuffled: list[LoggedQuestion], trainer: _Trainer, model, index: EntryIndex, count: int, relevance_weight: float):
    """The questions the expert answers this cycle, and the current model's ranking of them."""
    if strategy == RANDOM:
        open_keys = {question.key for question in remaining}
        chosen = [question for question in shuffled if question.key in open_keys][:count]
        return chosen, trainer.rank(model, index, chosen)[0]
    ranked_ids, ranked_scores = trainer.rank(model, index, remaining)
    order = queue.diverse_order(uncertainty_items(ranked_ids, ranked_scores, remaining), relevance_weight=relevance_weight)
    position = {question.key: row for row, question in enumerate(remaining)}
    rows = [position[item.key] for item in order[:count]]
    return [remaining[row] for row in rows], ranked_ids[rows]


def point(decisions: int, per_question: list[dict[str, float]]) -> dict:
    """A point of a curve: the decisions so far and the mean of each key metric (by metric key, 0..1)."""
    means = aggregate(per_question)
    return {"decisions": decisions, **{metric.key: means[metric.key] for metric in KEY_METRICS}}


def simulate(scenario: Scenario, settings: Settings, *, workdir: Path) -> dict:
    """Both strategies over ``settings.cycles`` cycles; the curves, per-question finals and timings."""
    if len(scenario.pool) < settings.cycles * settings.per_cycle:
        raise ValueError(f"the pool holds {len(scenario.pool)} questions, fewer than {settings.cycles} cycles x {settings.per_cycle} decisions")
    trainer = _Trainer(scenario, settings, workdir)
    started = time.perf_counter()
    with _training_threads():
        _index, base_metrics = trainer.measure(trainer.base())
        start_model = trainer.train([])
        start_index, start_metrics = trainer.measure(start_model)
        logger.info("start: base %s, glossary-tuned %s", point(0, base_metrics), point(0, start_metrics))
        gate = _Gate(trainer, scenario, settings)
        curves: dict[str, list[dict]] = {}
        served: dict[str, list[dict]] = {}
        gate_decisions: dict[str, list[dict]] = {}
        finals: dict[str, list[dict[str, float]]] = {}
        kinds_chosen: dict[str, dict[str, int]] = {}
        cycle_seconds: list[float] = []
        for strategy in (ACTIVE, RANDOM):
            # The champion is what users are served and what the queue scores questions with; each cycle's
            # candidate replaces it only when the gate says so.
            champion = (start_model, start_index, start_metrics)
            trained_answers: list[FlagData] = []
            judging: list[LoggedQuestion] = []
            decisions = 0
            remaining = list(scenario.pool)
            shuffled = random.Random(settings.seed).sample(scenario.pool, len(scenario.pool))
            curves[strategy] = [point(0, start_metrics)]
            served[strategy] = [point(0, start_metrics)]
            gate_decisions[strategy] = []
            kinds_chosen[strategy] = defaultdict(int)
            for cycle in range(1, settings.cycles + 1):
                cycle_started = time.perf_counter()
                chosen, ranked_ids = _select(
                    strategy, remaining=remaining, shuffled=shuffled, trainer=trainer, model=champion[0], index=champion[1],
                    count=settings.per_cycle, relevance_weight=settings.relevance_weight,
                )
                for question, answer in zip(chosen, expert_answers(ranked_ids, chosen)):
                    if held_out_answer(question):
                        judging.append(question)
                    else:
                        trained_answers.append(answer)
                decisions += len(chosen)
                chosen_keys = {question.key for question in chosen}
                remaining = [question for question in remaining if question.key not in chosen_keys]
                for question in chosen:
                    kinds_chosen[strategy][f"{question.origin}/{question.kind}"] += 1
                model = trainer.train(trained_answers)
                index, per_question = trainer.measure(model)
                decision = gate.decide(candidate=(model, index), champion=champion[:2], real=judging)
                if decision["promote"]:
                    champion = (model, index, per_question)
                curves[strategy].append(point(decisions, per_question))
                served[strategy].append(point(decisions, champion[2]))
                gate_decisions[strategy].append({"cycle": cycle, "decisions": decisions, "trained_answers": len(trained_answers), **decision})
                cycle_seconds.append(time.perf_counter() - cycle_started)
                logger.info("%s cycle %s: %s, gate %s (%.0f s)", strategy, cycle, curves[strategy][-1], decision, cycle_seconds[-1])
            finals[strategy] = per_question
    return {
        "base": point(0, base_metrics),
        "curves": curves,
        "served": served,
        "gate": gate_decisions,
        "canary_questions": len(gate.canary),
        "finals": finals,
        "start": start_metrics,
        "kinds_chosen": {strategy: dict(sorted(counts.items())) for strategy, counts in kinds_chosen.items()},
        "cycle_seconds": cycle_seconds,
        "seconds": time.perf_counter() - started,
    }
