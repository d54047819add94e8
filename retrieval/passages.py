"""Glossary entries as plain data, and the passages each entry contributes to the dense index.

Pure module: no Django import. A passage is identified everywhere (index, training pairs, evaluation)
by its key ``"{entry_id}:{passage_type}:{position}"``.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from glossary.text import collapse_spaces, fold

DEFINITION = "definition"
CONTEXT = "context"
# A "known question": a real question an expert tied to this entry (retrieval.LabelledQuestion), served as a
# passage of the entry so that the same question and close rewordings find it at once, before any retraining.
# Evaluation of a model leaves these out of the ranking (a held-out question would find its own text).
QUESTION = "question"
PASSAGE_TYPES = (DEFINITION, CONTEXT, QUESTION)


@dataclass(frozen=True)
class EntryData:
    """What search and answers need of a glossary entry, detached from the database."""

    id: int
    term: str
    definition: str
    kind: str = "term"  # "term" | "acronym", as glossary.Entry.Kind
    variants: tuple[str, ...] = field(default_factory=tuple)
    contexts: tuple[str, ...] = field(default_factory=tuple)
    domain: str = ""


@dataclass(frozen=True)
class Passage:
    entry_id: int
    passage_type: str  # "definition" | "context" | "question"
    position: int  # 0 for the definition, i for the i-th context or known question (1-based)
    text: str

    @property
    def key(self) -> str:
        return f"{self.entry_id}:{self.passage_type}:{self.position}"


def definition_passage_text(*, term: str, definition: str) -> str:
    """The definition, prefixed by ``"{term} : "`` when the term does not already occur in it.

    Without the term, a definition such as "Organisme chargé de collecter les cotisations" could not be
    found by a query naming the term; with it written twice, the term would weigh too much.
    """
    definition = collapse_spaces(definition)
    term = collapse_spaces(term)
    if not term or _contains_words(fold(definition), fold(term)):
        return definition
    return f"{term} : {definition}"


def _contains_words(text: str, words: str) -> bool:
    # Whole words only: the acronym "CAF" does not occur in "café".
    return re.search(rf"(?<!\w){re.escape(words)}(?!\w)", text) is not None


def entry_passages(
    *, entry_id: int, term: str, definition: str, contexts: Sequence[str], questions: Sequence[str] = ()
) -> list[Passage]:
    """The definition passage, one passage per non-empty usage context, as written, then one per known question
    (distinct, in the order given)."""
    passages = [Passage(entry_id, DEFINITION, 0, definition_passage_text(term=term, definition=definition))]
    position = 0
    for context in contexts:
        text = collapse_spaces(context)
        if text:
            position += 1
            passages.append(Passage(entry_id, CONTEXT, position, text))
    seen: set[str] = set()
    for question in questions:
        text = collapse_spaces(question)
        if text and fold(text) not in seen:
            seen.add(fold(text))
            passages.append(Passage(entry_id, QUESTION, len(seen), text))
    return passages


def is_known_question(passage: Passage) -> bool:
    return passage.passage_type == QUESTION


def passages_of(entry: EntryData) -> list[Passage]:
    """``entry_passages`` for an ``EntryData``."""
    return entry_passages(entry_id=entry.id, term=entry.term, definition=entry.definition, contexts=entry.contexts)
