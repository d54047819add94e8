"""Active learning vs random selection, with a simulated expert (issue 6, "Measure it").

    python -m bench.active_learning [--quick]        # or: python -m bench --only active_learning

The product's loop, replayed at the level of its pure functions: a glossary drawn from sigles.csv (the rows of the
sigles question set's terms plus a seeded sample of others), and logged questions split into a *pool* (what users
asked; the simulated expert answers some of them) and a *held-out* set (what the next users ask; only measured).
Both come from the hand-written sigles question set (split question by question) and from questions written from
glossary rows with the templates of ``bench/data/active_learning/question_templates.json`` (acronym questions with
filler words, typos, reverse look-ups from the definition): each row users asked about gets a pool question and a
held-out rewording, and rows nobody asked about get held-out questions whose entries are never trained on.

Each cycle the simulated expert answers ``per_cycle`` pool questions with the known right entry, exactly what the
workbench's "question" source records: a confirmed (question, entry) pair whose negatives are the entries the
current model ranked above the right one (``training.builder.FlagData``). Which questions it answers is the only
difference between the two strategies:

* active: the remaining pool scored by the current model like the queue scores logged questions
  (``training.queue.question_signals`` / ``question_uncertainty`` from the top score and the top-2 margin), then
  ordered by ``training.queue.diverse_order`` (uncertainty traded against "same entries as just shown");
* random: a seeded shuffle of the pool.

After each cycle a LoRA adapter is trained from the base model (``training.finetune``) on the same seeded sample
of the glossary's definitional pairs plus every answer so far (``training.builder``), for a fixed number of steps,
and measured on the held-out questions: Def-only Recall@1 and MRR@10 over entries, dense retrieval. Retraining
from the base model on everything labelled so far (not continuing the previous adapter) keeps each point a
function of the labelled set only, so the two curves differ by what was selected and nothing else.

Why pure functions and not the Django workbench: the same code paths (queue scoring and order, builder, trainer,
metrics) without a database, a search index rebuild and Celery per cycle, which would triple the time of a cycle
on a 2-core machine without changing what is measured.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import logging
import os
import random
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from bench import report, results
from bench.environment import BENCH_DIR, ROOT, data_dir
from bench.results import Section
from bench.synthetic import Question, questions
from evaluation.charts import line_chart
from evaluation.metrics import aggregate, ranking_metrics
from glossary.text import collapse_spaces, fold
from training import queue
from training.builder import ACRONYM, ConceptData, FlagData, build_pairs, concept_passages

logger = logging.getLogger(__name__)

TEMPLATES_PATH = Path(__file__).resolve().parent / "data" / "active_learning" / "question_templates.json"
FULL_CHART_PATH = ROOT / "docs" / "active_learning.svg"
QUICK_CHART_PATH = BENCH_DIR / "active_learning-quick.svg"
ACTIVE, RANDOM = "active", "random"
STRATEGY_LABELS = {ACTIVE: "Active", RANDOM: "Random"}
WRITTEN, GENERATED, UNSEEN = "written", "generated", "unseen"
RANKED = 10  # entries a logged question keeps, as the search logs its hits
METRICS = (("hit@1", "R@1"), ("mrr@10", "MRR@10"))
MATCHED_METRIC = "mrr@10"


@dataclass(frozen=True)
class Settings:
    """Sizes of one benchmark run. The question set's terms are always in the glossary, on top of the sample."""

    glossary_size: int  # entries drawn from sigles.csv
    generated_pool: int  # glossary rows users asked about: one pool question and one held-out rewording each
    generated_unseen: int  # held-out questions on other rows, whose entries are never trained on
    cycles: int
    per_cycle: int  # expert decisions per cycle
    glossary_pairs: int  # definitional pairs of the glossary trained in every cycle
    max_steps: int  # LoRA steps per training
    batch_size: int = 32
    learning_rate: float = 1e-3  # the product's tuned default (training/migrations/0004)
    held_out_share: float = 1 / 2  # of the hand-written questions, the rest goes to the pool
    relevance_weight: float = queue.RELEVANCE_WEIGHT
    seed: int = 13


FULL = Settings(glossary_size=1200, generated_pool=500, generated_unseen=100, cycles=5, per_cycle=30, glossary_pairs=256, max_steps=40)
QUICK = Settings(glossary_size=400, generated_pool=150, generated_unseen=40, cycles=3, per_cycle=20, glossary_pairs=128, max_steps=15)


@dataclass(frozen=True)
class LoggedQuestion:
    """A question with the entry that answers it (Def-only: that meaning), where it comes from and its kind."""

    key: str
    query: str
    entry_id: int
    origin: str  # WRITTEN (the sigles question set) | GENERATED (templates) | UNSEEN (templates, entry never trained)
    kind: str


@dataclass(frozen=True)
class Scenario:
    concepts: list[ConceptData]
    pool: list[LoggedQuestion]
    held_out: list[LoggedQuestion]
    held_out_entry_ids: frozenset[int]  # never trained on, not even their glossary pairs


# ---- the glossary and its questions -----------------------------------------------------------------------

def sigles_rows(path: Path) -> list[dict[str, str]]:
    """The (term, definition) rows of a sigles.csv, without empty or repeated meanings."""
    seen: set[tuple[str, str]] = set()
    rows = []
    with path.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            term, definition = collapse_spaces(row["term"]), collapse_spaces(row["definition"])
            key = (fold(term), fold(definition).rstrip(". "))
            if term and definition and key not in seen:
                seen.add(key)
                rows.append({"term": term, "definition": definition})
    return rows


def _question_key(text: str) -> str:
    return "question:" + hashlib.sha1(fold(text).encode()).hexdigest()[:16]


def _misspell(word: str, rng: random.Random) -> str:
    """One typing slip inside the word: a letter dropped, doubled or swapped with the next."""
    if len(word) < 3:
        return word + word[-1]
    index = rng.randrange(1, len(word) - 1)
    slip = rng.choice(("drop", "double", "swap"))
    if slip == "drop":
        return word[:index] + word[index + 1:]
    if slip == "double":
        return word[:index] + word[index] + word[index:]
    return word[:index - 1] + word[index] + word[index - 1] + word[index + 1:]


def write_question(concept: ConceptData, kind: str, templates: Sequence[str], rng: random.Random) -> str:
    """A question of ``kind`` about the concept, from one of the templates drawn with ``rng``."""
    words = concept.definition.lower().rstrip(". ").split()
    long_words = [word for word in words if len(word) > 3] or words
    keyword_positions = sorted(rng.sample(range(len(long_words)), min(3, len(long_words))))
    definition_words = fold(" ".join(words)).split()
    slip_at = max(range(len(definition_words)), key=lambda position: len(definition_words[position]))
    definition_words[slip_at] = _misspell(definition_words[slip_at], rng)
    return rng.choice(list(templates)).format(
        term=concept.term,
        term_typo=_misspell(concept.term.lower(), rng),
        definition=" ".join(words),
        definition_typo=" ".join(definition_words),
        keywords=" ".join(long_words[position] for position in keyword_positions),
    )


def _generated_question(concept: ConceptData, kinds: dict, rng: random.Random, *, origin: str, avoid: str = "") -> LoggedQuestion:
    """One question about the concept, of a kind drawn with the kinds' shares; never the wording ``avoid``."""
    names = list(kinds)
    shares = [kinds[name]["share"] for name in names]
    for _attempt in range(20):
        kind = rng.choices(names, weights=shares)[0]
        query = write_question(concept, kind, kinds[kind]["templates"], rng)
        if fold(query) != fold(avoid):
            break
    return LoggedQuestion(_question_key(query), query, concept.entry_id, origin, kind)


def build_scenario(*, rows: Sequence[dict[str, str]], asked: Sequence[Question], settings: Settings, templates_path: Path = TEMPLATES_PATH) -> Scenario:
    """The glossary, the pool and the held-out questions, drawn with the seed.

    The pool is what users asked; the held-out set is what other users will ask next, about the same glossary:
    * the hand-written question set, split question by question (a term asked twice may land on both sides);
    * per glossary row users asked about, one pool question and one held-out question with another wording;
    * ``generated_unseen`` held-out questions on rows nobody asked about, kept out of every training (not even
      their definitional pairs): the check that answering the pool does not hurt the rest of the glossary.
    A held-out wording is never a pool wording: the expert's answers are never measured as such.
    """
    rng = random.Random(settings.seed)
    asked_terms = {fold(question.term) for question in asked}
    kept = [row for row in rows if fold(row["term"]) in asked_terms]
    others = [row for row in rows if fold(row["term"]) not in asked_terms]
    kept += rng.sample(others, min(len(others), max(0, settings.glossary_size - len(kept))))
    concepts = [
        ConceptData(entry_id=number, term=row["term"], kind=ACRONYM, definition=row["definition"])
        for number, row in enumerate(kept, start=1)
    ]

    by_meaning = {(fold(concept.term), fold(concept.definition).rstrip(". ")): concept.entry_id for concept in concepts}
    written = [
        LoggedQuestion(_question_key(question.query), question.query, entry_id, WRITTEN, question.category or "written")
        for question in asked
        if (entry_id := by_meaning.get((fold(question.term), fold(question.definition).rstrip(". ")))) is not None
    ]
    rng.shuffle(written)
    written_held_out = written[: round(len(written) * settings.held_out_share)]
    written_pool = written[len(written_held_out):]

    term_counts = Counter(fold(concept.term) for concept in concepts)
    # Only unambiguous acronyms get generated questions: "que veut dire X" has no single answer for a homonym.
    candidates = [concept for concept in concepts if term_counts[fold(concept.term)] == 1 and fold(concept.term) not in asked_terms]
    rng.shuffle(candidates)
    kinds = json.loads(templates_path.read_text(encoding="utf-8"))["kinds"]
    asked_about = candidates[: settings.generated_pool]
    unseen = candidates[settings.generated_pool: settings.generated_pool + settings.generated_unseen]
    generated_pool = [_generated_question(concept, kinds, rng, origin=GENERATED) for concept in asked_about]
    generated_held_out = [
        _generated_question(concept, kinds, rng, origin=GENERATED, avoid=question.query)
        for concept, question in zip(asked_about, generated_pool)
    ]
    unseen_held_out = [_generated_question(concept, kinds, rng, origin=UNSEEN) for concept in unseen]

    pool_keys = {question.key for question in written_pool + generated_pool}
    held_out = [question for question in written_held_out + generated_held_out if question.key not in pool_keys] + unseen_held_out
    # The same wording asked twice is one logged question (as the queue keys it).
    pool = list({question.key: question for question in written_pool + generated_pool}.values())
    return Scenario(
        concepts=concepts, pool=pool, held_out=held_out, held_out_entry_ids=frozenset(concept.entry_id for concept in unseen)
    )


# ---- dense retrieval over entries -------------------------------------------------------------------------

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


def decisions_to_match(curve: Sequence[tuple[int, float]], target: float) -> float | None:
    """Decisions at which the curve first reaches ``target``, linearly interpolated between its points; None
    when it never does."""
    for index, (decisions, value) in enumerate(curve):
        if value >= target:
            if index == 0:
                return float(decisions)
            previous_decisions, previous_value = curve[index - 1]
            share = (target - previous_value) / (value - previous_value)
            return previous_decisions + share * (decisions - previous_decisions)
    return None


def paired_difference(first: Sequence[float], second: Sequence[float]) -> dict[str, float]:
    """Mean of first - second over the same questions, with its 95 % normal interval."""
    differences = np.asarray(first, dtype=float) - np.asarray(second, dtype=float)
    half_width = 1.96 * differences.std(ddof=1) / np.sqrt(len(differences)) if len(differences) > 1 else float("nan")
    return {"mean": float(differences.mean()), "low": float(differences.mean() - half_width), "high": float(differences.mean() + half_width)}


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


def _point(decisions: int, per_question: list[dict[str, float]]) -> dict:
    means = aggregate(per_question)
    return {"decisions": decisions, **{name: means[name] for name, _ in METRICS}}


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
        logger.info("start: base %s, glossary-tuned %s", _point(0, base_metrics), _point(0, start_metrics))
        curves: dict[str, list[dict]] = {}
        finals: dict[str, list[dict[str, float]]] = {}
        kinds_chosen: dict[str, dict[str, int]] = {}
        cycle_seconds: list[float] = []
        for strategy in (ACTIVE, RANDOM):
            model, index, answers = start_model, start_index, []
            remaining = list(scenario.pool)
            shuffled = random.Random(settings.seed).sample(scenario.pool, len(scenario.pool))
            curves[strategy] = [_point(0, start_metrics)]
            kinds_chosen[strategy] = defaultdict(int)
            per_question = start_metrics
            for cycle in range(1, settings.cycles + 1):
                cycle_started = time.perf_counter()
                chosen, ranked_ids = _select(
                    strategy, remaining=remaining, shuffled=shuffled, trainer=trainer, model=model, index=index,
                    count=settings.per_cycle, relevance_weight=settings.relevance_weight,
                )
                answers += expert_answers(ranked_ids, chosen)
                chosen_keys = {question.key for question in chosen}
                remaining = [question for question in remaining if question.key not in chosen_keys]
                for question in chosen:
                    kinds_chosen[strategy][f"{question.origin}/{question.kind}"] += 1
                model = trainer.train(answers)
                index, per_question = trainer.measure(model)
                curves[strategy].append(_point(len(answers), per_question))
                cycle_seconds.append(time.perf_counter() - cycle_started)
                logger.info("%s cycle %s: %s (%.0f s)", strategy, cycle, curves[strategy][-1], cycle_seconds[-1])
            finals[strategy] = per_question
    return {
        "base": _point(0, base_metrics),
        "curves": curves,
        "finals": finals,
        "start": start_metrics,
        "kinds_chosen": {strategy: dict(sorted(counts.items())) for strategy, counts in kinds_chosen.items()},
        "cycle_seconds": cycle_seconds,
        "seconds": time.perf_counter() - started,
    }


# ---- numbers, chart and section ------------------------------------------------------------------------------

def _by_kind(scenario: Scenario, per_question: Sequence[dict[str, float]]) -> dict[str, dict[str, float]]:
    groups: dict[str, list[dict[str, float]]] = defaultdict(list)
    for question, metrics in zip(scenario.held_out, per_question):
        groups[f"{question.origin}/{question.kind}"].append(metrics)
    return {kind: {"count": len(rows), **{name: aggregate(rows)[name] for name, _ in METRICS}} for kind, rows in sorted(groups.items())}


def chart(curves: dict[str, list[dict]]) -> str:
    """Held-out R@1 and MRR@10 of both strategies against the number of expert decisions (SVG)."""
    points = []
    for position, point in enumerate(curves[ACTIVE]):
        values = {
            f"{STRATEGY_LABELS[strategy]} {label}": curves[strategy][position][name]
            for name, label in METRICS
            for strategy in (ACTIVE, RANDOM)
        }
        points.append((str(point["decisions"]), values))
    return line_chart(points, "Held-out quality vs expert decisions (active vs random order)")


def measure(*, rows: Sequence[dict[str, str]], asked: Sequence[Question], settings: Settings, chart_path: Path, workdir: Path | None = None) -> dict:
    """Run the simulation, write the chart, and return every number the section reports."""
    scenario = build_scenario(rows=rows, asked=asked, settings=settings)
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="active-learning-", dir=workdir) as folder:
        outcome = simulate(scenario, settings, workdir=Path(folder))
    curves = outcome["curves"]
    random_final = curves[RANDOM][-1][MATCHED_METRIC]
    needed = decisions_to_match([(point["decisions"], point[MATCHED_METRIC]) for point in curves[ACTIVE]], random_final)
    random_decisions = curves[RANDOM][-1]["decisions"]
    chart_path.parent.mkdir(parents=True, exist_ok=True)
    chart_path.write_text(chart(curves), encoding="utf-8")
    return {
        "settings": asdict(settings),
        "sizes": {
            "entries": len(scenario.concepts),
            "pool": len(scenario.pool),
            "held_out": len(scenario.held_out),
            "held_out_entries": len({question.entry_id for question in scenario.held_out}),
            "unseen_entries": len(scenario.held_out_entry_ids),
            "pool_written": sum(question.origin == WRITTEN for question in scenario.pool),
            "held_out_written": sum(question.origin == WRITTEN for question in scenario.held_out),
            "held_out_unseen": sum(question.origin == UNSEEN for question in scenario.held_out),
        },
        "base": outcome["base"],
        "curves": curves,
        "decisions_to_match": needed,
        "random_decisions": random_decisions,
        "ratio": None if needed is None else needed / random_decisions,
        "final_difference": {
            name: paired_difference([row[name] for row in outcome["finals"][ACTIVE]], [row[name] for row in outcome["finals"][RANDOM]])
            for name, _ in METRICS
        },
        "by_kind": {
            "start": _by_kind(scenario, outcome["start"]),
            **{strategy: _by_kind(scenario, outcome["finals"][strategy]) for strategy in (ACTIVE, RANDOM)},
        },
        "kinds_chosen": outcome["kinds_chosen"],
        "cycle_seconds": outcome["cycle_seconds"],
        "seconds": outcome["seconds"],
        "chart": str(chart_path),
    }


def _percent(value: float) -> str:
    return f"{100 * value:.1f}"


def section_of(numbers: dict, *, name: str = "active_learning", title: str = "Quality: active learning vs random selection") -> Section:
    """The report section of ``measure``'s numbers (tables, the ratio as a target, notes)."""
    section = Section(name=name, title=title, data=numbers)
    curves, settings, sizes = numbers["curves"], numbers["settings"], numbers["sizes"]
    section.table(
        "Held-out Def-only quality (percent) against expert decisions",
        ["Decisions", *(f"{STRATEGY_LABELS[strategy]} {label}" for strategy in (ACTIVE, RANDOM) for _, label in METRICS)],
        [
            [point["decisions"], *(_percent(curves[strategy][position][metric]) for strategy in (ACTIVE, RANDOM) for metric, _ in METRICS)]
            for position, point in enumerate(curves[ACTIVE])
        ],
    )
    by_kind = numbers["by_kind"]
    section.table(
        f"Held-out MRR@10 by kind of question (percent): glossary-tuned start, then after {numbers['random_decisions']} decisions",
        ["Kind", "Questions", "Start", "Active", "Random"],
        [
            [kind, values["count"], _percent(values["mrr@10"]), _percent(by_kind[ACTIVE][kind]["mrr@10"]), _percent(by_kind[RANDOM][kind]["mrr@10"])]
            for kind, values in by_kind["start"].items()
        ],
    )
    section.table(
        "Questions the expert answered, by kind",
        ["Kind", "Active", "Random"],
        [
            [kind, numbers["kinds_chosen"][ACTIVE].get(kind, 0), numbers["kinds_chosen"][RANDOM].get(kind, 0)]
            for kind in sorted(set(numbers["kinds_chosen"][ACTIVE]) | set(numbers["kinds_chosen"][RANDOM]))
        ],
    )
    ratio, needed = numbers["ratio"], numbers["decisions_to_match"]
    section.target(
        "Decisions the active order needs to reach the random order's final MRR@10 / the random order's decisions",
        value="not reached" if ratio is None else f"{ratio:.2f} ({needed:.0f} / {numbers['random_decisions']})",
        limit="< 1",
        met=ratio is not None and ratio < 1,
        note="same glossary, pool, N per cycle, cycles, training steps and seed",
    )
    differences = numbers["final_difference"]
    section.notes += [
        f"![Held-out quality against expert decisions]({Path(numbers['chart']).name})",
        "Final active - random (same held-out questions, 95 % normal interval): "
        + "; ".join(
            f"{label} {_percent(differences[metric]['mean'])} points [{_percent(differences[metric]['low'])}, {_percent(differences[metric]['high'])}]"
            for metric, label in METRICS
        ),
        f"Untuned base model on the held-out set: R@1 {_percent(numbers['base']['hit@1'])}, MRR@10 {_percent(numbers['base']['mrr@10'])}; "
        "0 decisions is the model trained on the glossary sample alone (the same starting point for both orders).",
        f"Glossary: {sizes['entries']} sigles entries (every row of the question set's terms, then a seeded sample). "
        f"Pool: {sizes['pool']} logged questions ({sizes['pool_written']} from the hand-written question set, the rest written "
        f"from glossary rows with bench/data/active_learning/question_templates.json). Held-out: {sizes['held_out']} questions "
        f"on {sizes['held_out_entries']} entries, never a pool wording: {sizes['held_out_written']} hand-written (the set is split "
        "question by question), one rewording per generated pool question (another template, often another kind), and "
        f"{sizes['held_out_unseen']} questions on {sizes['unseen_entries']} entries nobody asked about, kept out of every training "
        "(the 'unseen' rows of the by-kind table: answering the pool must not hurt the rest of the glossary).",
        f"Each cycle: the expert answers {settings['per_cycle']} questions, then a LoRA adapter is trained from the base MiniLM "
        f"for {settings['max_steps']} steps of {settings['batch_size']} (learning rate {settings['learning_rate']}) on "
        f"{settings['glossary_pairs']} definitional pairs of the glossary plus every answer so far; {settings['cycles']} cycles, seed {settings['seed']}.",
        "Active order: the product's question uncertainty (training/queue.py, from the top score and the top-2 margin) and its "
        f"diversity order (relevance weight {settings['relevance_weight']}). Random order: a seeded shuffle of the same pool.",
        "Level: the product's pure functions (queue, builder, finetune, metrics) without Django, to spend the time on training, "
        "not on database writes and index rebuilds that do not change the measure.",
        f"Simulation time {numbers['seconds']:.0f} s, {len(numbers['cycle_seconds'])} cycles, median cycle "
        f"{float(np.median(numbers['cycle_seconds'])):.0f} s on this machine (shared with other work).",
    ]
    return section


def run(ctx) -> Section:
    """The bench runner's entry point (``python -m bench --only active_learning``)."""
    source = ctx.data_dir / "sigles.csv"
    if not source.exists():
        return results.skipped("active_learning", "active learning", f"No {source}: set LEXIQUE_DATA_DIR to the folder holding sigles.csv.")
    numbers = measure(
        rows=sigles_rows(source),
        asked=questions(),
        settings=QUICK if ctx.quick else FULL,
        chart_path=QUICK_CHART_PATH if ctx.quick else FULL_CHART_PATH,
        workdir=BENCH_DIR,
    )
    return section_of(numbers)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.active_learning", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smaller glossary and pool, fewer cycles and steps (~3 minutes)")
    parser.add_argument("--relevance-weight", type=float, help="the diversity order's weight of uncertainty (default: the queue's)")
    parser.add_argument("--per-cycle", type=int, help="expert decisions per cycle")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    settings = QUICK if args.quick else FULL
    if args.relevance_weight is not None:
        settings = replace(settings, relevance_weight=args.relevance_weight)
    if args.per_cycle is not None:
        settings = replace(settings, per_cycle=args.per_cycle)
    mode = "quick" if args.quick else "full"
    section = section_of(
        measure(
            rows=sigles_rows(data_dir() / "sigles.csv"),
            asked=questions(),
            settings=settings,
            chart_path=QUICK_CHART_PATH if args.quick else FULL_CHART_PATH,
            workdir=BENCH_DIR,
        )
    )
    section.mode = mode
    section.seconds = section.data["seconds"]
    section.ran_at = time.strftime("%Y-%m-%d %H:%M %Z")
    results.save(section, BENCH_DIR / "results" / mode)
    print(report.section_markdown(section), flush=True)


if __name__ == "__main__":
    main()
