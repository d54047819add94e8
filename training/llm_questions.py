"""Natural questions about glossary entries written by an OpenAI-compatible LLM, for training (issue #12 item 4).

Optional, never required: without an LLM the deterministic questions of ``training.questions`` are all there is.
With one, each train-side entry is asked once for a few questions users would really type to find it (the prompt
is ``retrieval.prompts.question_generation_messages``); the replies are cached per entry under ``cache_key`` by
the caller, so a cycle only asks about new or changed entries.

Pure functions (no Django): the LLM is a ``complete(messages) -> str`` callable (``retrieval.llm.LLMClient``'s
``complete``); a failing entry (an ``LLMError``, a reply that is not the JSON asked for) is counted and skipped,
never raised, and the whole generation is bounded by a number of entries asked and a wall-clock budget.
"""
from __future__ import annotations

import hashlib
import json
import time
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field

from glossary.text import collapse_spaces, fold
from retrieval.llm import LLMError, reply_object
from retrieval.prompts import question_generation_messages
from retrieval.question_kinds import KindEntry, normalise_question, question_kind
from training.questions import GeneratedQuestion

MIN_CHARS = 3
MAX_CHARS = 200

Complete = Callable[[list[dict[str, str]]], str]


class MalformedQuestionsReply(ValueError):
    """The LLM's reply is not a JSON object with a list of questions."""


@dataclass(frozen=True)
class CachedQuestions:
    """What an earlier cycle got for an entry: the key it was asked under and the questions kept."""

    key: str
    questions: tuple[str, ...]


@dataclass(frozen=True)
class AskedQuestions:
    """What this generation got from the LLM for an entry, to be cached under ``key``."""

    entry_id: int
    key: str
    questions: tuple[str, ...]


@dataclass
class LLMQuestionsResult:
    questions: list[GeneratedQuestion] = field(default_factory=list)
    # Entries asked this time (successfully): the caller caches them.
    fresh: list[AskedQuestions] = field(default_factory=list)
    asked: int = 0  # requests made (successful or not)
    from_cache: int = 0  # entries served from the cache
    failed: int = 0  # requests that gave no usable reply (LLM error, timeout, malformed reply)
    not_asked: int = 0  # entries neither cached nor asked: over the entry cap or the time budget

    def stats(self) -> dict[str, int]:
        return {
            "asked": self.asked, "from_cache": self.from_cache, "failed": self.failed, "not_asked": self.not_asked,
            "questions": len(self.questions),
        }


def _has_control(text: str) -> bool:
    return any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") for ch in text)


def parse_questions(reply: str, *, term: str, count: int) -> list[str]:
    """The usable questions of an LLM reply ``{"questions": [...]}``, at most ``count``, in order.

    Each is stripped and kept when it is a text of ``MIN_CHARS``..``MAX_CHARS`` characters without control
    characters, is not the bare term, and is not a duplicate of an earlier one (case and accents ignored).
    Raises ``MalformedQuestionsReply`` when the reply holds no JSON object with a "questions" list.
    """
    data = reply_object(reply, MalformedQuestionsReply)
    if not isinstance(data, dict) or not isinstance(data.get("questions"), list):
        raise MalformedQuestionsReply('no "questions" list in the reply')
    seen = {normalise_question(term)}
    kept: list[str] = []
    for item in data["questions"]:
        if len(kept) >= count:
            break
        if not isinstance(item, str):
            continue
        text = item.strip()
        if not MIN_CHARS <= len(text) <= MAX_CHARS or _has_control(text):
            continue
        text = collapse_spaces(text)
        key = normalise_question(text)
        if not key or key in seen:
            continue
        seen.add(key)
        kept.append(text)
    return kept


def cache_key(*, model: str, term: str, definition: str, domain: str = "", count: int) -> str:
    """Under which key an entry's questions are cached: the exact request (the prompt's text, the entry's term,
    definition and domain, the number asked) and the model. A changed entry, prompt or model is asked again."""
    return _messages_key(model=model, count=count, messages=question_generation_messages(term=term, definition=definition, domain=domain, count=count))


def _messages_key(*, model: str, count: int, messages: list[dict[str, str]]) -> str:
    payload = json.dumps([model, count, messages], ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def _kind_entries(concepts: Sequence) -> dict[int, KindEntry]:
    """What the kind rules need of each concept, with the other senses of its term among ``concepts``."""
    by_term: dict[str, list] = defaultdict(list)
    for concept in concepts:
        by_term[fold(concept.term)].append(concept)
    entries = {}
    for concept in concepts:
        others = [other for other in by_term[fold(concept.term)] if other.entry_id != concept.entry_id]
        entries[concept.entry_id] = KindEntry(
            term=concept.term, definition=concept.definition, variants=tuple(concept.variants or ()), domain=concept.domain or "",
            homonyms=tuple((other.definition, other.domain or "") for other in others),
        )
    return entries


def generate_llm_questions(
    concepts: Sequence,
    *,
    complete: Complete | None,
    model: str,
    count: int,
    cached: Mapping[int, CachedQuestions] | None = None,
    max_entries: int = 300,
    budget_seconds: float = 600.0,
    held_out: Collection[str] = (),
    keep_going: Callable[[], bool] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> LLMQuestionsResult:
    """LLM questions for ``concepts`` (objects with ``entry_id``, ``term``, ``definition``, ``variants``,
    ``domain``: ``builder.ConceptData``), ``count`` per entry at most, each with its kind (the rules of
    ``retrieval.question_kinds``).

    An entry whose ``cached`` key matches is served from the cache; the others are asked in order, at most
    ``max_entries`` of them, and none once ``budget_seconds`` have passed since the start (a request already
    made may run until the client's timeout). ``complete`` None: the cache only. Failures are counted, never raised.
    A question whose ``normalise_question`` key is in ``held_out`` (real questions kept to judge versions) is left
    out of the questions returned (it stays in ``fresh``: which questions are held out may change).
    ``keep_going`` is called before each request (a heartbeat); False stops the asking (a cancelled run).
    """
    result = LLMQuestionsResult()
    if count <= 0 or not concepts:
        return result
    cached = cached or {}
    kinds = _kind_entries(concepts)
    started = clock()

    def add(concept, questions: Sequence[str]) -> None:
        entry = kinds[concept.entry_id]
        result.questions.extend(
            GeneratedQuestion(query=query, kind=question_kind(query, entry), entry_id=concept.entry_id)
            for query in questions
            if normalise_question(query) not in held_out
        )

    for concept in concepts:
        messages = question_generation_messages(term=concept.term, definition=concept.definition, domain=concept.domain or "", count=count)
        key = _messages_key(model=model, count=count, messages=messages)
        hit = cached.get(concept.entry_id)
        if hit is not None and hit.key == key:
            result.from_cache += 1
            add(concept, hit.questions[:count])
            continue
        if (
            complete is None or result.asked >= max_entries or clock() - started >= budget_seconds
            or (keep_going is not None and not keep_going())
        ):
            result.not_asked += 1
            complete = None  # once stopped, stopped: the remaining entries are served from the cache only
            continue
        result.asked += 1
        try:
            questions = parse_questions(complete(messages), term=concept.term, count=count)
        except (LLMError, MalformedQuestionsReply):
            result.failed += 1
            continue
        result.fresh.append(AskedQuestions(entry_id=concept.entry_id, key=key, questions=tuple(questions)))
        add(concept, questions)
    return result
