"""Answers from search hits: extractive by default, generative (grounded, cited) when an LLM is given.

``hits_with_entries`` is a best-first sequence of ``(SearchHit, EntryData)``, one pair per entry, as the
search returns them.

When to answer at all (``is_answerable``, applied to the best hit):
- an exact term/acronym/variant match always answers;
- otherwise the dense cosine of its best passage must reach ``threshold`` (the only score with a fixed
  scale: BM25 scores grow with the query and the glossary, RRF scores only encode ranks);
- a hit found by BM25 alone (lexical-only mode, no cosine) answers, since its words matched an entry.
When the best hit fails that test, a strong keyword match among the first hits answers instead, and the
answer says it was found by keywords (``keyword_hit``): the entry ranked first by BM25 with a clear lead over
the second (a ratio, since BM25 scores have no fixed scale).
Below that, the answer is mode "none" with a polite message and no sources.
The fixed words of an answer ("Exemple d'usage", "Voir aussi"...) are French or English (``language``).
Pure module: no Django import.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

from retrieval.hybrid import SearchHit
from retrieval.llm import LLMClient, LLMError, LLMTimeoutError, reply_object
from glossary.text import term_key
from retrieval.passages import CONTEXT, DEFINITION, QUESTION, EntryData
from retrieval.question_kinds import settles_sense
from retrieval.prompts import GroundingExtract, answer_messages, translation_messages

logger = logging.getLogger(__name__)

MAX_SOURCES = 3
NO_ANSWER_TEXT = (
    "Je n'ai pas trouvé de réponse fiable dans le glossaire. Essayez de reformuler la question "
    "ou de préciser le terme ou le sigle recherché."
)
# The fixed words of answers, per UI language (this module has no Django, hence no gettext).
LABELS = {
    "fr": {
        "no_answer": NO_ANSWER_TEXT,
        "example": "Exemple d'usage",
        "see_also": "Voir aussi",
        "by_keyword": "Réponse trouvée par mots-clés (la recherche par le sens n'était pas assez sûre) :",
        "senses": "« {term} » a {count} sens dans le glossaire ; précisez lequel vous cherchez :",
        "quote": "« {text} »",
        "colon": " : ",
    },
    "en": {
        "no_answer": (
            "I found no reliable answer in the glossary. Try rephrasing the question or naming the term or "
            "acronym you are looking for."
        ),
        "example": "Example of use",
        "see_also": "See also",
        "by_keyword": "Answer found by keywords (the search by meaning was not confident enough):",
        "senses": "“{term}” has {count} senses in the glossary; say which one you mean:",
        "quote": "“{text}”",
        "colon": ": ",
    },
}
# A keyword hit answers when BM25 ranks it first by this factor over the second, among the first few hits.
KEYWORD_LEAD = 1.5
KEYWORD_HIT_RANKS = 3


def labels_for(language: str | None) -> dict[str, str]:
    """The answer words for a language code ('en', 'en-gb', 'fr'...); French by default."""
    return LABELS["en"] if (language or "").lower().startswith("en") else LABELS["fr"]
_CITATION = re.compile(r"\[S(\d+)\]")

__all__ = [
    "AmbiguousSense",
    "Answer",
    "LLMClient",
    "MalformedReplyError",
    "Source",
    "ambiguous_answer",
    "ambiguous_senses",
    "extractive_answer",
    "generative_answer",
    "expansion",
    "is_answerable",
    "keyword_hit",
    "labels_for",
    "parse_answer_reply",
    "translate_to_french",
]


@dataclass
class Source:
    number: int  # n in [Sn]
    entry_id: int
    term: str
    text: str  # the retrieved passage (the definition when the entry was found without a passage)
    passage_type: str
    score: float  # the hit's fused score


@dataclass
class Answer:
    text: str
    sources: list[Source]
    mode: str  # "extractive" | "generative" | "none"
    fallback_reason: str | None = None  # why a generative answer fell back to the extractive one


@dataclass
class AmbiguousSense:
    """One sense of an acronym the question names without saying which it means."""

    entry_id: int
    term: str
    definition: str
    domain: str


# A known question (an expert's earlier answer to this very question) this close settles the sense.
KNOWN_QUESTION_SETTLES = 0.9


def ambiguous_senses(*, question: str, hits_with_entries: Sequence[tuple[SearchHit, EntryData]]) -> list[AmbiguousSense]:
    """The senses to list when the question names a term several retrieved entries share and does not settle
    which: none of its words belongs to one sense's definition or domain alone, and no known question of the best
    sense matched it. Empty when the question is not ambiguous."""
    distinct = _distinct(hits_with_entries)
    if not distinct or not distinct[0][0].exact_match or distinct[0][0].answered:
        return []  # no term named, or an expert answered this very question: the sense is settled
    best_hit, best = distinct[0]  # exact matches come first: the best hit names the asked term
    key = term_key(best.term)
    same = [(hit, entry) for hit, entry in distinct if hit.exact_match and term_key(entry.term) == key]
    if len(same) < 2:
        return []
    if best_hit.passage is not None and best_hit.passage.passage_type == QUESTION and (best_hit.dense_score or 0) >= KNOWN_QUESTION_SETTLES:
        return []
    for index, (_hit, entry) in enumerate(same):
        others = [(other.definition, other.domain) for position, (_other_hit, other) in enumerate(same) if position != index]
        if settles_sense(question, definition=entry.definition, domain=entry.domain, others=others):
            return []  # the question's own words pick a sense
    return [AmbiguousSense(entry.id, entry.term, entry.definition.strip(), entry.domain) for _hit, entry in same]


def ambiguous_answer(
    *, senses: Sequence[AmbiguousSense], hits_with_entries: Sequence[tuple[SearchHit, EntryData]], language: str = "fr"
) -> Answer:
    """An answer that says the acronym has several senses and lists them, each with its domain and a source."""
    words = labels_for(language)
    scores = {entry.id: hit.fused_score for hit, entry in hits_with_entries}
    sources = [
        Source(number=number, entry_id=sense.entry_id, term=sense.term, text=sense.definition, passage_type=DEFINITION, score=scores.get(sense.entry_id, 0.0))
        for number, sense in enumerate(senses, start=1)
    ]
    lines = [words["senses"].format(term=senses[0].term, count=len(senses))]
    for number, sense in enumerate(senses, start=1):
        domain = f" ({sense.domain})" if sense.domain else ""
        lines.append(f"- {sense.term}{domain}{words['colon']}{sense.definition} [S{number}]")
    return Answer(text="\n".join(lines), sources=sources, mode="extractive")


class MalformedReplyError(ValueError):
    """The LLM's reply is not the JSON answer asked for."""


def is_answerable(hit: SearchHit, *, threshold: float) -> bool:
    """Whether the best hit is good enough to answer from (see the module docstring)."""
    if hit.exact_match or hit.answered:
        return True
    if hit.dense_score is not None:
        return hit.dense_score >= threshold
    return hit.lexical_score is not None


def keyword_hit(hits_with_entries: Sequence[tuple[SearchHit, EntryData]]) -> int | None:
    """The position, among the first ``KEYWORD_HIT_RANKS`` entries, of a strong keyword match: ranked first by
    BM25 and ahead of the second BM25 hit by ``KEYWORD_LEAD`` (or the only BM25 hit). None when there is none."""
    distinct = _distinct(hits_with_entries)
    second = [hit.lexical_score for hit, _entry in distinct if hit.lexical_rank == 2 and hit.lexical_score is not None]
    for position, (hit, _entry) in enumerate(distinct[:KEYWORD_HIT_RANKS]):
        if hit.lexical_rank != 1 or not hit.lexical_score:
            continue
        if not second or hit.lexical_score >= KEYWORD_LEAD * second[0]:
            return position
    return None


def _answerable(
    hits_with_entries: Sequence[tuple[SearchHit, EntryData]], *, threshold: float
) -> tuple[list[tuple[SearchHit, EntryData]], bool] | None:
    """The hits to answer from, best first, and whether the best was found by keywords only; None: no answer."""
    if not hits_with_entries:
        return None
    if is_answerable(hits_with_entries[0][0], threshold=threshold):
        return list(hits_with_entries), False
    position = keyword_hit(hits_with_entries)
    if position is None:
        return None
    distinct = _distinct(hits_with_entries)
    return [distinct[position], *distinct[:position], *distinct[position + 1:]], True


def expansion(entry: EntryData) -> str | None:
    """What an acronym stands for, from its variants (the first of several words, longer than the acronym),
    unless its definition already spells it out."""
    if entry.kind != "acronym":
        return None
    for variant in entry.variants:
        text = variant.strip()
        if " " in text and len(text) > len(entry.term) and term_key(text) not in term_key(entry.definition):
            return text
    return None


def _distinct(hits_with_entries: Sequence[tuple[SearchHit, EntryData]]) -> list[tuple[SearchHit, EntryData]]:
    seen: set[int] = set()
    distinct = []
    for hit, entry in hits_with_entries:
        if entry.id not in seen:
            seen.add(entry.id)
            distinct.append((hit, entry))
    return distinct


def _sources(hits_with_entries: Sequence[tuple[SearchHit, EntryData]], *, limit: int) -> list[Source]:
    return [
        Source(
            number=number,
            entry_id=entry.id,
            term=entry.term,
            # A known question found the entry: the source shown is still the entry's definition.
            text=hit.passage.text if hit.passage and hit.passage.passage_type != QUESTION else entry.definition,
            passage_type=hit.passage.passage_type if hit.passage and hit.passage.passage_type != QUESTION else DEFINITION,
            score=hit.fused_score,
        )
        for number, (hit, entry) in enumerate(_distinct(hits_with_entries)[:limit], start=1)
    ]


def _no_answer(language: str = "fr") -> Answer:
    return Answer(text=labels_for(language)["no_answer"], sources=[], mode="none")


def _usage_context(hit: SearchHit, entry: EntryData) -> str | None:
    # The retrieved context when the search found one, else the entry's first context.
    if hit.passage is not None and hit.passage.passage_type == CONTEXT:
        return hit.passage.text
    return entry.contexts[0] if entry.contexts else None


def extractive_answer(
    *, hits_with_entries: Sequence[tuple[SearchHit, EntryData]], threshold: float, max_sources: int = MAX_SOURCES,
    language: str = "fr",
) -> Answer:
    """A short answer from the best entry (term, what an acronym stands for, definition, one usage context),
    citing [S1]..[Sn]; the entries' own text as written, the fixed words in ``language``."""
    words = labels_for(language)
    answerable = _answerable(hits_with_entries, threshold=threshold)
    if answerable is None:
        return _no_answer(language)
    hits_with_entries, by_keyword = answerable
    sources = _sources(hits_with_entries, limit=max_sources)
    best_hit, best = hits_with_entries[0]
    stands_for = expansion(best)
    term = f"{best.term} ({stands_for})" if stands_for else best.term
    parts = [words["by_keyword"]] if by_keyword else []
    parts.append(f"{term}{words['colon']}{best.definition.strip()} [S1]")
    context = _usage_context(best_hit, best)
    if context:
        parts.append(f"{words['example']}{words['colon']}{words['quote'].format(text=context.strip())}")
    if len(sources) > 1:
        parts.append(words["see_also"] + words["colon"] + ", ".join(f"{source.term} [S{source.number}]" for source in sources[1:]) + ".")
    return Answer(text="\n\n".join(parts), sources=sources, mode="extractive")


def parse_answer_reply(reply: str, *, source_count: int) -> tuple[str, list[int]]:
    """The answer text and the source numbers it cites, from the LLM's JSON reply.

    Raises ``MalformedReplyError`` for anything but a JSON object with a non-empty "answer" whose cited
    numbers (in "sources" and in the text's [Sn] markers) all exist.
    """
    data = reply_object(reply, MalformedReplyError)
    if not isinstance(data, dict):
        raise MalformedReplyError("the reply is not a JSON object")
    text = data.get("answer")
    if not isinstance(text, str) or not text.strip():
        raise MalformedReplyError("empty answer")
    listed = data.get("sources", [])
    if not isinstance(listed, list) or not all(isinstance(n, int) and not isinstance(n, bool) for n in listed):
        raise MalformedReplyError("sources is not a list of numbers")
    cited = sorted(set(listed) | {int(n) for n in _CITATION.findall(text)})
    unknown = [n for n in cited if not 1 <= n <= source_count]
    if unknown:
        raise MalformedReplyError(f"cites sources that do not exist: {unknown}")
    return text.strip(), cited


def generative_answer(
    *,
    question: str,
    hits_with_entries: Sequence[tuple[SearchHit, EntryData]],
    llm: LLMClient,
    threshold: float,
    max_sources: int = MAX_SOURCES,
    language: str = "fr",
) -> Answer:
    """An LLM answer grounded in the top entries, citing them; falls back to the extractive answer.

    Below the threshold no LLM is called (nothing to ground an answer on). A reply that cites nothing is
    the model saying it does not know: mode "none" with its words. Timeouts, LLM errors and malformed
    replies fall back to ``extractive_answer`` with ``fallback_reason`` set, and are logged.
    """
    answerable = _answerable(hits_with_entries, threshold=threshold)
    if answerable is None:
        return _no_answer(language)
    hits_with_entries = answerable[0]
    sources = _sources(hits_with_entries, limit=max_sources)
    entries = {entry.id: entry for _, entry in hits_with_entries}
    extracts = [
        GroundingExtract(
            number=source.number,
            term=source.term,
            definition=entries[source.entry_id].definition,
            passage_text=source.text,
            domain=entries[source.entry_id].domain,
        )
        for source in sources
    ]
    try:
        text, cited = parse_answer_reply(llm.complete(answer_messages(question=question, extracts=extracts)), source_count=len(sources))
    except LLMTimeoutError as error:
        reason = f"timeout: {error}"
    except MalformedReplyError as error:
        reason = f"malformed reply: {error}"
    except LLMError as error:
        reason = f"LLM error: {error}"
    else:
        if not cited:
            return Answer(text=text, sources=[], mode="none")
        return Answer(text=text, sources=[source for source in sources if source.number in cited], mode="generative")
    logger.warning("Generative answer fell back to the extractive one (%s)", reason)
    fallback = extractive_answer(hits_with_entries=hits_with_entries, threshold=threshold, max_sources=max_sources, language=language)
    fallback.fallback_reason = reason
    return fallback


def translate_to_french(text: str, *, llm: LLMClient) -> str:
    """The query in French, by the LLM; raises ``LLMError`` when it cannot (the caller skips translation)."""
    # Models like to quote what they translate; the quotes are not part of the query.
    translation = llm.complete(translation_messages(text=text)).strip().strip('"«»“”').strip()
    if not translation:
        raise LLMError("empty translation")
    return translation
