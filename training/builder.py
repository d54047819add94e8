"""Training pairs from the curated glossary and the experts' flags (pure functions, no Django).

Every pair maps a query (``anchor``) to the passage that should answer it (``positive``), in the exact text the
search index serves (``retrieval.passages.entry_passages``), so training and serving see the same documents.
Query/document prompts are NOT baked into the texts: the trainer applies the catalogue's prompts, as the
search does.

What a train-side concept gives:

* definitional queries -> its definition passage: the term alone, "C'est quoi {term} ?", for an acronym also
  "Que signifie {acronym} ?", and every variant (for an acronym its expansions, i.e. the variants longer than
  the acronym, and the other spellings). The concept's own context passages are offered as hard negatives:
  they contain the term verbatim, which is exactly why an untuned model ranks them above the definition for a
  bare term query.
* contextual queries -> each context passage: "Exemple d'usage de {term}". A bare term asks what the term
  means, so it must stay a definitional query; a user who wants to see the term in use says so, and that
  wording is what the model should learn to send to context passages. The definition passage is the hard
  negative, the mirror image of the definitional pairs.
* example questions -> their answer text (pair type "answer"), and -> the definition passage (pair type
  "definition"): an expert wrote the question as one the entry answers, and the index serves the definition
  passage, not the answer text.
* generated questions (``training.questions``): what users ask rather than templates: reverse look-ups from the
  definition's words, paraphrase-like rewrites, typos of the term, acronym questions in several wordings,
  English questions and glosses, and for a term several entries share, the acronym with words that settle the
  sense -> the definition passage (pair type "definition", source "question"), the context passages as negatives.
* LLM questions (``training.llm_questions``, only with an LLM configured): questions an LLM wrote as users
  would type them -> the definition passage (pair type "definition", source "llm_question"), the context
  passages as negatives, like the generated questions.
* flags (``FlagData``) and labelled questions (``LabelledQuestionData``: any expert-answered question): the
  question -> the answering entry's definition passage; the definitions of the entries that were wrongly ranked
  above it are its negatives.

Every function refuses test-side entries (``ValueError``): test concepts must never reach training data.
"""
from __future__ import annotations

import random
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace

import datasets

from glossary.text import fold
from retrieval.passages import Passage, entry_passages
from training.mining import MinedTriplet
from training.questions import KINDS, GeneratedQuestion, ambiguous_terms, generated_questions

ACRONYM = "acronym"
SOURCE_GLOSSARY = "glossary"
SOURCE_EXAMPLE = "example"
SOURCE_FLAG = "flag"
SOURCE_LABELLED = "labelled"
SOURCE_QUESTION = "question"
SOURCE_LLM_QUESTION = "llm_question"
# Pairs from questions an expert tied to their entry (flag corrections, workbench answers, labelled questions).
EXPERT_SOURCES = frozenset({SOURCE_FLAG, SOURCE_LABELLED})
# Generated questions per kind and entry (tuned on the dev half of the sigles question set, docs/QUALITY.md).
DEFAULT_QUESTIONS_PER_KIND = 1
PAIR_DEFINITION = "definition"
PAIR_CONTEXT = "context"
PAIR_ANSWER = "answer"


@dataclass(frozen=True)
class ConceptData:
    """A validated glossary entry, as plain data. ``examples`` are (question, answer) pairs."""

    entry_id: int
    term: str
    kind: str
    definition: str
    variants: tuple[str, ...] = ()
    contexts: tuple[str, ...] = ()
    examples: tuple[tuple[str, str], ...] = ()
    domain: str | None = None


@dataclass(frozen=True)
class FlagData:
    """A flagged answer: the question as logged, the entry an expert says answers it, and the entries that the
    search wrongly ranked above it (their definitions become negatives)."""

    question: str
    entry_id: int
    wrong_entry_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class LabelledQuestionData:
    """A question an expert tied to its entry (a flag's correction, a workbench answer, an exam question), with
    the entries that the search wrongly ranked above it (their definitions become negatives)."""

    question: str
    entry_id: int
    wrong_entry_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class TrainingPair:
    """One (query, passage) training example with its metadata.

    ``positive_key`` is the passage key of the positive in the search index (None for answer texts, which are
    not indexed); the miner uses it. The metadata never reaches the model: ``to_dataset`` keeps the text
    columns only.
    """

    anchor: str
    positive: str
    negatives: tuple[str, ...]
    source: str
    pair_type: str
    entry_id: int
    domain: str | None
    positive_key: str | None = None


def refuse_test_side(entry_ids: Iterable[int], test_entry_ids: Collection[int], *, what: str) -> None:
    """Raise ``ValueError`` when any of ``entry_ids`` is a test-side entry."""
    leaked = sorted(set(entry_ids) & set(test_entry_ids))
    if leaked:
        raise ValueError(f"{what} include test-side entries (never trained on): {leaked[:20]}")


def definitional_queries(concept: ConceptData) -> list[str]:
    """The queries that ask what a concept is, de-duplicated (case and accents folded), term first."""
    queries = [concept.term, f"C'est quoi {concept.term} ?"]
    if concept.kind == ACRONYM:
        queries.append(f"Que signifie {concept.term} ?")
    queries.extend(concept.variants)
    return _unique_folded(queries)


def contextual_query(concept: ConceptData) -> str:
    return f"Exemple d'usage de {concept.term}"


def _unique_folded(texts: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    unique = []
    for text in texts:
        text = text.strip()
        key = fold(text)
        if key and key not in seen:
            seen.add(key)
            unique.append(text)
    return unique


def concept_passages(concept: ConceptData) -> list[Passage]:
    return entry_passages(
        entry_id=concept.entry_id, term=concept.term, definition=concept.definition, contexts=concept.contexts
    )


def _concept_pairs(concept: ConceptData) -> list[TrainingPair]:
    passages = concept_passages(concept)
    definition = passages[0]
    contexts = passages[1:]
    context_texts = tuple(passage.text for passage in contexts)

    def pair(anchor: str, positive: Passage | str, negatives: tuple[str, ...], source: str, pair_type: str):
        is_passage = isinstance(positive, Passage)
        return TrainingPair(
            anchor=anchor,
            positive=positive.text if is_passage else positive,
            negatives=negatives,
            source=source,
            pair_type=pair_type,
            entry_id=concept.entry_id,
            domain=concept.domain,
            positive_key=positive.key if is_passage else None,
        )

    pairs = [pair(query, definition, context_texts, SOURCE_GLOSSARY, PAIR_DEFINITION) for query in definitional_queries(concept)]
    usage_query = contextual_query(concept)
    pairs.extend(pair(usage_query, context, (definition.text,), SOURCE_GLOSSARY, PAIR_CONTEXT) for context in contexts)
    for question, answer in concept.examples:
        if question.strip() and answer.strip():
            pairs.append(pair(question.strip(), answer.strip(), (), SOURCE_EXAMPLE, PAIR_ANSWER))
            pairs.append(pair(question.strip(), definition, context_texts, SOURCE_EXAMPLE, PAIR_DEFINITION))
    return pairs


def _definition_pairs(concept: ConceptData, queries: Iterable[str], *, source: str) -> list[TrainingPair]:
    """Each query -> the concept's definition passage, its context passages as negatives."""
    passages = concept_passages(concept)
    definition, context_texts = passages[0], tuple(passage.text for passage in passages[1:])
    return [
        TrainingPair(
            anchor=query,
            positive=definition.text,
            negatives=context_texts,
            source=source,
            pair_type=PAIR_DEFINITION,
            entry_id=concept.entry_id,
            domain=concept.domain,
            positive_key=definition.key,
        )
        for query in queries
    ]


def _question_pairs(concept: ConceptData, *, ambiguous: bool, kinds: Collection[str], per_kind: int, seed: int) -> list[TrainingPair]:
    questions = generated_questions(
        entry_id=concept.entry_id, term=concept.term, definition=concept.definition, variants=concept.variants,
        ambiguous=ambiguous, seed=seed, per_kind=per_kind, kinds=kinds,
    )
    return _definition_pairs(concept, (question.query for question in questions), source=SOURCE_QUESTION)


def build_pairs(
    *,
    concepts: Sequence[ConceptData],
    flags: Sequence[FlagData] = (),
    test_entry_ids: Collection[int],
    labelled: Sequence[LabelledQuestionData] = (),
    questions_per_kind: int = DEFAULT_QUESTIONS_PER_KIND,
    question_kinds: Collection[str] = KINDS,
    question_seed: int = 13,
    templates: bool = True,
    llm_questions: Sequence[GeneratedQuestion] = (),
) -> list[TrainingPair]:
    """All the training pairs of train-side concepts and of the flags and labelled questions that point to them.

    ``questions_per_kind`` generated questions of each of ``question_kinds`` per concept (0: none);
    ``llm_questions``: questions an LLM wrote about some of ``concepts`` (``training.llm_questions``), after them;
    ``templates``: the term-template pairs (term, "C'est quoi X ?", variants, usage, examples).
    A flag or labelled question must point to one of ``concepts`` (its entry supplies the positive); its wrongly
    ranked entries that are among ``concepts`` supply negatives, the others are ignored (a test-side entry's text
    must not reach training even as a negative). Expert questions come first: with ``max_pairs`` they are never
    the ones left out by a sample (``select_training_pairs`` keeps every expert pair, then samples the rest).
    """
    refuse_test_side((concept.entry_id for concept in concepts), test_entry_ids, what="concepts")
    refuse_test_side((flag.entry_id for flag in flags), test_entry_ids, what="flags")
    refuse_test_side((item.entry_id for item in labelled), test_entry_ids, what="labelled questions")
    refuse_test_side((question.entry_id for question in llm_questions), test_entry_ids, what="LLM questions")
    by_id = {concept.entry_id: concept for concept in concepts}
    strays = sorted({question.entry_id for question in llm_questions} - set(by_id))
    if strays:
        raise ValueError(f"LLM questions on entries that are not among the given train-side concepts: {strays[:20]}")
    pairs = []
    for source, items in ((SOURCE_FLAG, flags), (SOURCE_LABELLED, labelled)):
        for item in items:
            if item.entry_id not in by_id:
                raise ValueError(f"{source} on entry {item.entry_id}, which is not among the given train-side concepts")
            concept = by_id[item.entry_id]
            definition = concept_passages(concept)[0]
            negatives = tuple(
                concept_passages(by_id[wrong_id])[0].text
                for wrong_id in item.wrong_entry_ids
                if wrong_id in by_id and wrong_id != item.entry_id
            )
            pairs.append(
                TrainingPair(
                    anchor=item.question.strip(),
                    positive=definition.text,
                    negatives=negatives,
                    source=source,
                    pair_type=PAIR_DEFINITION,
                    entry_id=concept.entry_id,
                    domain=concept.domain,
                    positive_key=definition.key,
                )
            )
    if templates:
        pairs.extend(pair for concept in concepts for pair in _concept_pairs(concept))
    if questions_per_kind > 0:
        shared = ambiguous_terms(concept.term for concept in concepts)
        pairs.extend(
            pair
            for concept in concepts
            for pair in _question_pairs(
                concept, ambiguous=fold(concept.term) in shared, kinds=question_kinds, per_kind=questions_per_kind, seed=question_seed
            )
        )
    llm_by_entry: dict[int, list[str]] = {}
    for question in llm_questions:
        llm_by_entry.setdefault(question.entry_id, []).append(question.query.strip())
    for entry_id, queries in llm_by_entry.items():
        pairs.extend(_definition_pairs(by_id[entry_id], queries, source=SOURCE_LLM_QUESTION))
    return _unique_pairs(pairs)


def _pair_key(pair: TrainingPair) -> tuple[str, str]:
    return (pair.anchor, pair.positive)


def _unique_pairs(pairs: Iterable[TrainingPair]) -> list[TrainingPair]:
    """Keep the first pair of each (anchor, positive): the same example twice would only weigh it double."""
    seen: set[tuple[str, str]] = set()
    unique = []
    for pair in pairs:
        if _pair_key(pair) not in seen:
            seen.add(_pair_key(pair))
            unique.append(pair)
    return unique


def attach_negatives(
    pairs: Sequence[TrainingPair],
    triplets: Sequence[MinedTriplet],
    *,
    test_entry_ids: Collection[int],
) -> list[TrainingPair]:
    """Append the mined negatives to the pairs they were mined for (matched on anchor and positive key).

    The builder's own negatives (the concept's other passage type) stay first: they teach the passage type,
    which in-batch negatives never do; mined negatives from other entries follow.
    """
    refuse_test_side((pair.entry_id for pair in pairs), test_entry_ids, what="pairs")
    refuse_test_side(
        (entry_id for triplet in triplets for entry_id in (triplet.entry_id, *triplet.negative_entry_ids)),
        test_entry_ids,
        what="mined negatives",
    )
    mined = {(triplet.anchor, triplet.positive_key): triplet.negatives for triplet in triplets}
    attached = []
    for pair in pairs:
        extra = mined.get((pair.anchor, pair.positive_key), ())
        negatives = tuple(dict.fromkeys((*pair.negatives, *extra)))
        attached.append(replace(pair, negatives=negatives) if extra else pair)
    return attached


def dataset_columns(num_negatives: int) -> list[str]:
    """The text columns the ranking loss expects, in order; nothing else may reach the trainer."""
    return ["anchor", "positive", *(f"negative_{index}" for index in range(1, num_negatives + 1))]


def to_dataset(
    pairs: Sequence[TrainingPair], *, num_negatives: int = 0, seed: int = 13, test_entry_ids: Collection[int]
) -> datasets.Dataset:
    """The trainer's dataset: exactly ``anchor``, ``positive``, ``negative_1..n``, in that order, no metadata.

    The loss needs the same number of negatives in every row. Rows short of negatives (answer pairs, concepts
    without contexts, anchors the miner found nothing for) are padded with positives of other entries, drawn
    with ``seed``, rather than dropped: dropping them would silently remove whole kinds of material (every
    answer pair), while a random other entry's passage is just one more easy negative, like the in-batch ones.
    """
    refuse_test_side((pair.entry_id for pair in pairs), test_entry_ids, what="pairs")
    columns = dataset_columns(num_negatives)
    rows: dict[str, list[str]] = {column: [] for column in columns}
    rng = random.Random(seed)
    pool = _PaddingPool(pairs)
    for pair in pairs:
        negatives = [text for text in dict.fromkeys(pair.negatives) if text != pair.positive][:num_negatives]
        if len(negatives) < num_negatives:
            negatives.extend(pool.draw(pair, taken=negatives, count=num_negatives - len(negatives), rng=rng))
        rows["anchor"].append(pair.anchor)
        rows["positive"].append(pair.positive)
        for index, text in enumerate(negatives, start=1):
            rows[f"negative_{index}"].append(text)
    return datasets.Dataset.from_dict(rows).select_columns(columns)


class _PaddingPool:
    """The distinct positive texts of the pairs, to pad rows with other entries' passages."""

    def __init__(self, pairs: Sequence[TrainingPair]):
        by_text: dict[str, int] = {}
        for pair in pairs:
            by_text.setdefault(pair.positive, pair.entry_id)
        self.items = list(by_text.items())
        self.count_by_entry = Counter(entry_id for _, entry_id in self.items)

    def draw(self, pair: TrainingPair, *, taken: list[str], count: int, rng: random.Random) -> list[str]:
        eligible = len(self.items) - self.count_by_entry[pair.entry_id] - len(taken)
        if eligible < count:
            raise ValueError("too few other entries to pad the negatives; ask for fewer negatives")
        chosen: list[str] = []
        while len(chosen) < count:
            text, entry_id = self.items[rng.randrange(len(self.items))]
            if entry_id != pair.entry_id and text not in taken and text not in chosen:
                chosen.append(text)
        return chosen


def select_training_pairs(
    new_pairs: Sequence[TrainingPair],
    earlier_pairs: Sequence[TrainingPair],
    *,
    replay_ratio: float = 1.0,
    seed: int = 13,
    max_pairs: int | None = None,
    test_entry_ids: Collection[int],
) -> list[TrainingPair]:
    """The material of one training cycle: all new and changed pairs plus a seeded sample of earlier ones.

    ``replay_ratio`` earlier pairs are replayed per new pair (so the model does not forget what it learned
    before). Earlier pairs of an entry that has new glossary or example pairs are stale (its text changed) and
    never replayed; flags and LLM questions do not make an entry's earlier pairs stale (an LLM asked for the first
    time, or another model, says nothing of the entry's text; a changed entry has new glossary pairs anyway). With ``max_pairs``, new pairs are kept
    first (every expert pair, then a seeded sample of the others if they alone exceed it), replay fills the rest.
    """
    if replay_ratio < 0:
        raise ValueError("replay_ratio must be >= 0")
    refuse_test_side((pair.entry_id for pair in (*new_pairs, *earlier_pairs)), test_entry_ids, what="pairs")
    rng = random.Random(seed)
    new = _unique_pairs(new_pairs)
    if max_pairs is not None and len(new) > max_pairs:
        # Questions experts answered are what the cycle is for: they are kept whole, the sample fills the rest.
        expert = [pair for pair in new if pair.source in EXPERT_SOURCES][:max_pairs]
        rest = [pair for pair in new if pair.source not in EXPERT_SOURCES]
        kept = sorted(rng.sample(range(len(rest)), max(0, min(len(rest), max_pairs - len(expert)))))
        new = expert + [rest[index] for index in kept]
    new_keys = {_pair_key(pair) for pair in new}
    refreshed = {pair.entry_id for pair in new if pair.source not in (SOURCE_FLAG, SOURCE_LLM_QUESTION)}
    candidates = [
        pair
        for pair in _unique_pairs(earlier_pairs)
        if pair.entry_id not in refreshed and _pair_key(pair) not in new_keys
    ]
    wanted = round(replay_ratio * len(new))
    if max_pairs is not None:
        wanted = min(wanted, max_pairs - len(new))
    replayed = sorted(rng.sample(range(len(candidates)), min(wanted, len(candidates))))
    return new + [candidates[index] for index in replayed]
