"""Answering a question: search, an answer composed from the hits (retrieval.answers: extractive, generative when an
LLM is configured, or the list of senses of an ambiguous acronym), and the question log that records it all."""
from __future__ import annotations

import time
from dataclasses import asdict

from django.conf import settings
from django.utils.translation import get_language

from retrieval.answers import Answer, ambiguous_answer, ambiguous_senses, extractive_answer, generative_answer
from retrieval.models import ModelVersion, QuestionLog
from retrieval import search
from retrieval.search import RetrievedEntry, elapsed_ms, hit_as_dict, processed_query_as_dict


def _uncertainty(hits: list[RetrievedEntry]) -> tuple[float | None, float | None]:
    """Best dense score and its lead over the second entry: small leads are what active learning asks about."""
    scores = [item.hit.dense_score for item in hits if item.hit.dense_score is not None]
    if not scores:
        return None, None
    return scores[0], (scores[0] - scores[1]) if len(scores) > 1 else None


def answer_question(*, question: str, user, version: ModelVersion | None = None) -> tuple[Answer, QuestionLog]:
    """Search, answer (generative when an LLM is configured, else extractive) and log everything."""
    started = time.perf_counter()
    result = search.search(query=question, version=version, top_k=settings.ANSWER_TOP_K)
    llm = search.llm_client()
    threshold = settings.ANSWER_MIN_SCORE
    # Several senses of the asked acronym and nothing in the question to choose: say so, list them (issue #12).
    senses = ambiguous_senses(question=result.query, hits_with_entries=result.hits_with_entries)
    # The answer's fixed words follow the asker's UI language (issue #17).
    language = get_language() or settings.LANGUAGE_CODE
    if senses:
        answer = ambiguous_answer(senses=senses, hits_with_entries=result.hits_with_entries, language=language)
    elif llm is not None:
        answer = generative_answer(
            question=result.query, hits_with_entries=result.hits_with_entries, llm=llm, threshold=threshold, language=language
        )
    else:
        answer = extractive_answer(hits_with_entries=result.hits_with_entries, threshold=threshold, language=language)
    top_score, margin = _uncertainty(result.hits)
    log = QuestionLog.objects.create(
        user=user if getattr(user, "is_authenticated", False) else None,
        question=result.query,
        processed_query=processed_query_as_dict(result.processed),
        version=result.version,
        mode=result.mode,
        hits=[hit_as_dict(item) for item in result.hits],
        answer_text=answer.text,
        answer_mode=answer.mode,
        fallback_reason=answer.fallback_reason or "",
        sources=[asdict(source) for source in answer.sources],
        latency_ms=elapsed_ms(started),
        no_answer=answer.mode == "none",
        top_score=top_score,
        score_margin=margin,
        ambiguous_senses=[asdict(sense) for sense in senses],
    )
    return answer, log
