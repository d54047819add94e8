"""The active-learning benchmark's world (bench.active_learning): its sizes, a glossary drawn from sigles.csv, and
logged questions split into the pool users asked (the simulated expert answers some) and the held-out set (what the
next users ask; only measured), hand-written or written from glossary rows with templates."""
from __future__ import annotations

import csv
import hashlib
import json
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.synthetic import Question
from glossary.text import collapse_spaces, fold
from training import queue
from training.builder import ACRONYM, ConceptData

TEMPLATES_PATH = Path(__file__).resolve().parent / "data" / "active_learning" / "question_templates.json"
WRITTEN, GENERATED, UNSEEN = "written", "generated", "unseen"


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
# The question set's own terms take about 450 rows: the quick glossary leaves room for generated and unseen rows
# (the unseen ones are the gate's test side).
QUICK = Settings(glossary_size=700, generated_pool=150, generated_unseen=40, cycles=3, per_cycle=20, glossary_pairs=128, max_steps=15)


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
