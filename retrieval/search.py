"""Search of the validated glossary with a model version (hybrid, dense or lexical), its hits, and the one JSON
payload of a search (API and ``manage.py search --json``)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field, fields
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from retrieval import encoding, indexing, labelled, selectors, versions
from retrieval.answers import LLMClient, translate_to_french
from retrieval.hybrid import MODES as SEARCH_MODES
from retrieval.hybrid import SearchHit, fuse
from retrieval.models import ModelVersion
from retrieval.passages import EntryData, Passage, is_known_question
from retrieval.preprocess import ProcessedQuery, preprocess_query
from retrieval.vector_index import VectorIndex


@dataclass
class RetrievedEntry:
    """A search hit with the entry it points to."""

    hit: SearchHit
    entry: EntryData


@dataclass
class SearchResult:
    query: str
    processed: ProcessedQuery | None
    version: ModelVersion
    mode: str
    index_revision: int
    hits: list[RetrievedEntry]
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def hits_with_entries(self) -> list[tuple[SearchHit, EntryData]]:
        return [(item.hit, item.entry) for item in self.hits]


def llm_client() -> LLMClient | None:
    """The configured OpenAI-compatible LLM, or None when LLM_BASE_URL or LLM_MODEL is unset."""
    if not (settings.LLM_BASE_URL and settings.LLM_MODEL):
        return None
    return LLMClient(base_url=settings.LLM_BASE_URL, model=settings.LLM_MODEL, api_key=settings.LLM_API_KEY, timeout=settings.LLM_TIMEOUT_SECONDS)


def check_query(query: str) -> str:
    text = (query or "").strip()
    if not text:
        raise ValidationError(_("The question is empty."), code="empty")
    if len(text) > settings.QUERY_MAX_CHARS:
        raise ValidationError(
            _("The question exceeds %(limit)s characters.") % {"limit": settings.QUERY_MAX_CHARS}, code="too_long"
        )
    return text


def search(
    *,
    query: str,
    top_k: int = 10,
    version: ModelVersion | None = None,
    mode: str = "hybrid",
    preprocess: bool = True,
    exclude_known_questions: bool = False,
) -> SearchResult:
    """Hybrid (or dense-only / lexical-only) search of the validated glossary with a version's model (the champion's
    by default).

    ``exclude_known_questions`` leaves the known-question passages (retrieval.labelled) out of the ranking: what
    evaluating a model needs, or a held-out question would be answered by its own text.
    """
    text = check_query(query)
    if mode not in SEARCH_MODES:
        raise ValidationError(_("Unknown search mode: %(mode)s.") % {"mode": mode}, code="mode")
    if not 1 <= top_k <= 100:
        raise ValidationError(_("top_k must be between 1 and 100."), code="top_k")
    timings: dict[str, float] = {}
    started = time.perf_counter()
    requested = version
    version = versions.servable_version(version=version or versions.champion_ensure())
    if requested is not None and requested.pk != version.pk and requested.status != ModelVersion.Status.CHAMPION:
        raise ValidationError(_("Version %(version)s is broken: its files are damaged.") % {"version": requested}, code="broken")
    served = indexing.served_index_get(version=version)
    timings["index"] = elapsed_ms(started)

    step = time.perf_counter()
    processed = None
    final = text
    if preprocess:
        llm = llm_client()
        processed = preprocess_query(
            text,
            vocabulary=served.vocabulary,
            translate=(lambda value: translate_to_french(value, llm=llm)) if llm else None,
        )
        final = processed.final
    timings["preprocess"] = elapsed_ms(step)

    candidates = max(top_k * 5, 50)
    exact = served.terms.match(text, processed.corrected if processed else text, language=processed.language if processed else None)
    known = labelled.known_questions_of(version_id=version.pk, revision=served.revision, passages=served.vectors.passages)
    dense: list[tuple[Passage, float]] = []
    if mode != "lexical":
        step = time.perf_counter()
        query_vector = encoding.encode_search_queries(version, [final])[0]
        if exclude_known_questions and known.count:
            dense = [item for item in served.vectors.search(query_vector, top_k=candidates + known.count) if not is_known_question(item[0])][:candidates]
        else:
            dense = served.vectors.search(query_vector, top_k=candidates)
        dense += _exact_passages_missing(served.vectors, query_vector, exact, dense, exclude_known_questions=exclude_known_questions)
        timings["dense"] = elapsed_ms(step)
    # Known questions (an expert's answers to earlier questions) are matched in every mode: a close one ranks its
    # entry first lexically, the question itself puts its entry first of all.
    matches = known.matches(text, processed.corrected if processed else text) if known.count and not exclude_known_questions else []
    lexical: list[tuple[int, float]] = []
    if mode != "dense":
        step = time.perf_counter()
        lexical = labelled.with_known_questions(served.lexical.search(final, top_k=candidates), matches)
        timings["lexical"] = elapsed_ms(step)
    hits = fuse(dense=dense, lexical=lexical, exact_entry_ids=exact, answered_entry_ids=labelled.answered_entries(matches), top_k=top_k, mode=mode)

    # An entry deleted or unvalidated since the index revision was loaded is not shown.
    entries = selectors.validated_entry_data(entry_ids=[hit.entry_id for hit in hits])
    retrieved = [RetrievedEntry(hit=hit, entry=entries[hit.entry_id]) for hit in hits if hit.entry_id in entries]
    timings["total"] = elapsed_ms(started)
    return SearchResult(
        query=text, processed=processed, version=version, mode=mode, index_revision=served.revision, hits=retrieved, timings_ms=timings
    )


def _exact_passages_missing(
    index: VectorIndex, query_vector, exact_entry_ids: set[int], dense: list[tuple[Passage, float]], *, exclude_known_questions: bool = False
) -> list[tuple[Passage, float]]:
    """Scored passages of exactly matched entries the dense top list missed, so their hits show a passage."""
    missing = exact_entry_ids - {passage.entry_id for passage, _ in dense}
    if not missing:
        return []
    rows = [
        int(row) for row in index.rows_of_entries(missing)
        if not (exclude_known_questions and is_known_question(index.passages[row]))
    ]
    if not rows:
        return []
    scores = index.matrix[rows] @ query_vector
    return [(index.passages[row], float(score)) for row, score in zip(rows, scores)]


def elapsed_ms(since: float) -> float:
    """Milliseconds since ``since`` (a ``time.perf_counter()`` reading), as the timings show them."""
    return round((time.perf_counter() - since) * 1000, 2)


def _float_or_none(value: float | None) -> float | None:
    return None if value is None else float(value)


def hit_as_dict(item: RetrievedEntry) -> dict[str, Any]:
    """A hit as JSON (question log, flags, API), with the types and key order of retrieval.serializers.HitSerializer:
    the API sends it as it is (an exact-match-only hit has a fused score of 0.0, not 0)."""
    hit, passage = item.hit, item.hit.passage
    return {
        "entry_id": hit.entry_id,
        "term": item.entry.term,
        "domain": item.entry.domain,
        # Homonyms ("CAF" x 2) are told apart by their definition and domain in flag forms and lists.
        "definition": item.entry.definition,
        "passage_type": passage.passage_type if passage else None,
        "passage_position": passage.position if passage else None,
        "passage_text": passage.text if passage else item.entry.definition,
        "dense_score": _float_or_none(hit.dense_score),
        "lexical_score": _float_or_none(hit.lexical_score),
        "dense_rank": hit.dense_rank,
        "lexical_rank": hit.lexical_rank,
        "fused_score": float(hit.fused_score),
        "rank": hit.rank,
        "exact_match": hit.exact_match,
        "answered": hit.answered,
    }


_PROCESSED_FIELDS = tuple(item.name for item in fields(ProcessedQuery))


def processed_query_as_dict(processed: ProcessedQuery | None) -> dict[str, Any]:
    """The pre-processing as JSON: ``dataclasses.asdict``'s dict (the fields in order, the lists and the dict copied),
    built without its recursive deep copy of every value, which cost as much as encoding the whole response."""
    if processed is None:
        return {}
    data = {name: getattr(processed, name) for name in _PROCESSED_FIELDS}
    data["corrections"] = [list(pair) for pair in processed.corrections]
    data["expansions"] = list(processed.expansions)
    data["steps"] = dict(processed.steps)
    return data


def search_payload(result: SearchResult) -> dict[str, Any]:
    """A search result as JSON: the API's response body and ``manage.py search --json``. Shaped and typed as
    retrieval.serializers.SearchResultSerializer documents it, so that the API sends it without running the serializer
    (tests/retrieval/test_api.py checks that the serializer would change nothing)."""
    return {
        "query": result.query,
        "processed": processed_query_as_dict(result.processed) or None,
        "version": result.version.display_name,
        "version_number": result.version.number,
        "mode": result.mode,
        "index_revision": result.index_revision,
        "hits": [hit_as_dict(item) for item in result.hits],
        "timings_ms": result.timings_ms,
    }
