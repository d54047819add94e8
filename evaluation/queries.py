"""Evaluation query sets built from the test side of the glossary (pure functions, no Django).

A query names the entries it is about in two ways, one per protocol (see ``evaluation.protocols``):
``entry_ids`` (Concept: any passage of these entries is relevant) and ``definition_entry_ids`` (Def-only: only the
definition passage of these entries is relevant).

Queries are de-duplicated on their case- and space-normalised text: a duplicate merges its relevant entries into
the first query with that text and is never counted twice (the earlier prototype counted keyword queries twice).
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from config.stored_messages import gettext_noop, message, stored
from glossary.text import collapse_spaces, definition_key, term_key

QUERY_SOURCES = ("term", "cest_quoi", "example", "flag", "file")
# The kinds of real questions (as retrieval.question_kinds.KINDS; repeated here: this module imports no app).
QUESTION_KINDS = ("acronym", "reverse", "paraphrase", "typo", "english", "ambiguous")


@dataclass(frozen=True)
class EvalConcept:
    """One test-side glossary entry, as plain data.

    ``examples`` are the example questions of the entry (the answers are not needed here).
    """

    entry_id: int
    term: str
    kind: str
    domain: str | None
    definition: str
    contexts: tuple[str, ...] = ()
    examples: tuple[str, ...] = ()


@dataclass(frozen=True)
class EvalQuery:
    text: str
    source: str
    entry_ids: frozenset[int]
    definition_entry_ids: frozenset[int]
    domain: str | None = None
    kind: str | None = None
    # The kind of question (retrieval.question_kinds: acronym, reverse, paraphrase, typo, english, ambiguous) a
    # query file gives; None when it gives none.
    question_kind: str | None = None


# Where a query file's terms and entries are looked up: the test side of the frozen split, or every validated entry.
SCOPES = ("test", "glossary")
_SCOPE_WORDS = {"test": gettext_noop("in the test set"), "glossary": gettext_noop("in the validated glossary")}


@dataclass(frozen=True)
class QueryFileError:
    line: int
    message: str  # a stored message (config.stored_messages): shown in the reader's language


@dataclass
class _QuerySetBuilder:
    """Accumulates queries in order, merging those whose normalised text is the same."""

    queries: dict[str, EvalQuery] = field(default_factory=dict)

    def add(self, query: EvalQuery) -> None:
        text = collapse_spaces(query.text)
        if not text:
            return
        key = normalise_query(text)
        existing = self.queries.get(key)
        if existing is None:
            self.queries[key] = replace(query, text=text)
            return
        self.queries[key] = replace(
            existing,
            entry_ids=existing.entry_ids | query.entry_ids,
            definition_entry_ids=existing.definition_entry_ids | query.definition_entry_ids,
            domain=existing.domain if existing.domain == query.domain else None,
            kind=existing.kind if existing.kind == query.kind else None,
            question_kind=existing.question_kind if existing.question_kind == query.question_kind else None,
        )

    def result(self) -> list[EvalQuery]:
        return list(self.queries.values())


def normalise_query(text: str) -> str:
    """Key under which two queries are the same query: case- and space-insensitive."""
    return collapse_spaces(text).casefold()


def cest_quoi(term: str) -> str:
    return f"C'est quoi {collapse_spaces(term)} ?"


def group_by_term(concepts: Iterable[EvalConcept]) -> dict[str, list[EvalConcept]]:
    """Concepts keyed by ``glossary.text.term_key`` of their term, the ``concepts_by_term`` of ``parse_query_file``."""
    grouped: dict[str, list[EvalConcept]] = {}
    for concept in concepts:
        grouped.setdefault(term_key(concept.term), []).append(concept)
    return grouped


def build_queries(
    concepts: Sequence[EvalConcept],
    *,
    flagged: Iterable[tuple[str, int]] = (),
) -> list[EvalQuery]:
    """The query set of the test-side concepts, de-duplicated, in a stable order.

    Per concept: the term alone, "C'est quoi {term} ?", then its example questions. Then the flagged questions
    ``(question, entry_id)`` whose entry is among ``concepts``; flags on other (training-side) entries are left
    out so that nothing learnt from them is tested.
    """
    builder = _QuerySetBuilder()
    by_id = {concept.entry_id: concept for concept in concepts}

    def query_for(concept: EvalConcept, text: str, source: str) -> EvalQuery:
        ids = frozenset({concept.entry_id})
        return EvalQuery(text, source, ids, ids, concept.domain, concept.kind)

    for concept in concepts:
        builder.add(query_for(concept, concept.term, "term"))
        builder.add(query_for(concept, cest_quoi(concept.term), "cest_quoi"))
        for question in concept.examples:
            builder.add(query_for(concept, question, "example"))
    for question, entry_id in flagged:
        concept = by_id.get(entry_id)
        if concept is not None:
            builder.add(query_for(concept, question, "flag"))
    return builder.result()


def parse_query_file(
    lines: bytes | str | Iterable[str],
    *,
    concepts_by_term: Mapping[str, Sequence[EvalConcept]],
    scope: str = "test",
) -> tuple[list[EvalQuery], list[QueryFileError]]:
    """Queries from a user's JSONL file, and the lines that could not be used (1-based line numbers).

    One JSON object a line, either ``{"query", "term", "definition"?}`` or ``{"query", "entry_ids": [...]}`` (or
    ``"entry_id": n``), each with an optional ``"kind"`` of question:

    - with a term: Concept relevance = every entry with that term (case-insensitive); Def-only relevance = the
      definition of the entry whose definition matches ``definition`` (case, accents, spaces and final dot
      ignored), or the definitions of all those entries when no definition is given;
    - with entry ids: both protocols use those entries.

    ``concepts_by_term`` comes from ``group_by_term``. Blank lines are skipped; an unknown term, an unknown entry
    id, an unmatched definition or a malformed line is reported, never silently dropped. With ``scope`` "glossary"
    (real questions over the whole glossary) a query must name one sense: a term with several entries and no
    definition to pick one is reported too.
    """
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}; expected one of {SCOPES}")
    if isinstance(lines, bytes):
        lines = lines.decode("utf-8-sig")
    if isinstance(lines, str):
        lines = lines.splitlines()
    known_ids = {concept.entry_id: concept for group in concepts_by_term.values() for concept in group}

    builder = _QuerySetBuilder()
    errors: list[QueryFileError] = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            query = _parse_line(raw, concepts_by_term=concepts_by_term, known_ids=known_ids, scope=scope)
        except ValueError as error:
            errors.append(QueryFileError(number, str(error)))
            continue
        builder.add(query)
    return builder.result(), errors


def _parse_line(
    raw: str,
    *,
    concepts_by_term: Mapping[str, Sequence[EvalConcept]],
    known_ids: Mapping[int, EvalConcept],
    scope: str = "test",
) -> EvalQuery:
    where = message(_SCOPE_WORDS[scope])
    try:
        record = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ValueError(stored(gettext_noop("invalid JSON: %(error)s"), error=error.msg)) from None
    if not isinstance(record, dict):
        raise ValueError(stored(gettext_noop("a JSON object is expected")))
    text = record.get("query")
    if not isinstance(text, str) or not collapse_spaces(text):
        raise ValueError(stored(gettext_noop("the field “query” (a non-empty text) is required")))

    question_kind = record.get("kind")
    if question_kind is not None and (not isinstance(question_kind, str) or question_kind not in QUESTION_KINDS):
        raise ValueError(stored(gettext_noop("unknown “kind”: %(kind)s (expected: %(expected)s)"),
                                kind=repr(question_kind), expected=", ".join(QUESTION_KINDS)))
    if "entry_id" in record and "entry_ids" not in record:
        record = {**record, "entry_ids": [record["entry_id"]]}
    if "entry_ids" in record:
        ids = record["entry_ids"]
        if not isinstance(ids, list) or not ids or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            raise ValueError(stored(gettext_noop("“entry_ids” must be a non-empty list of integer ids")))
        unknown = sorted(set(ids) - set(known_ids))
        if unknown:
            raise ValueError(stored(gettext_noop("unknown entries %(where)s: %(ids)s"), where=where, ids=", ".join(map(str, unknown))))
        concepts = [known_ids[i] for i in dict.fromkeys(ids)]
        definition_concepts = concepts
    elif "term" in record:
        term = record["term"]
        if not isinstance(term, str) or not collapse_spaces(term):
            raise ValueError(stored(gettext_noop("“term” must be a non-empty text")))
        concepts = list(concepts_by_term.get(term_key(term), ()))
        if not concepts:
            raise ValueError(stored(gettext_noop("unknown term %(where)s: “%(term)s”"), where=where, term=collapse_spaces(term)))
        definition = record.get("definition")
        if definition is None and scope == "glossary" and len(concepts) > 1:
            raise ValueError(stored(
                gettext_noop("ambiguous term: “%(term)s” has %(count)s senses; give “definition” or “entry_ids” (%(ids)s)"),
                term=collapse_spaces(term), count=len(concepts), ids=", ".join(str(concept.entry_id) for concept in concepts),
            ))
        if definition is None:
            definition_concepts = concepts
        elif not isinstance(definition, str):
            raise ValueError(stored(gettext_noop("“definition” must be a text")))
        else:
            wanted = definition_key(definition)
            definition_concepts = [c for c in concepts if definition_key(c.definition) == wanted]
            if not definition_concepts:
                raise ValueError(stored(gettext_noop("no definition of “%(term)s” matches the one given"), term=collapse_spaces(term)))
    else:
        raise ValueError(stored(gettext_noop("“term” or “entry_ids” is required")))

    domains = {concept.domain for concept in definition_concepts}
    kinds = {concept.kind for concept in definition_concepts}
    return EvalQuery(
        text=text,
        source="file",
        entry_ids=frozenset(concept.entry_id for concept in concepts),
        definition_entry_ids=frozenset(concept.entry_id for concept in definition_concepts),
        domain=domains.pop() if len(domains) == 1 else None,
        kind=kinds.pop() if len(kinds) == 1 else None,
        question_kind=question_kind,
    )
