"""Writes of the evaluation capability: evaluate a version, run evaluations, apply the promotion gate, benchmark.

The corpus is the passages of the validated test-side entries of the frozen split; the queries are built from
those entries (``evaluation.queries.build_queries``) plus the flagged questions whose correct entry is on the
test side, or come from a user's query file. Every report carries the fingerprint of its test set.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _, gettext_noop

from config.stored_messages import english, stored
from evaluation import selectors
from evaluation.protocols import PROTOCOLS, evaluate_rankings, relevant_keys
from evaluation.queries import EvalConcept, EvalQuery, QueryFileError, build_queries, group_by_term, normalise_query, parse_query_file
from evaluation.ragas_report import LLMJudge, RagasSample, ragas_report
from evaluation.rankings import dense_ranking, fingerprint, fused_ranking, rows_by_entry
from evaluation.reports import MRR_AT_10, EvaluationReport, ModeReport
from evaluation.similarity import pair_retrieval_accuracy, triplet_separation
from retrieval import artifacts, encoding
from retrieval import search as retrieval_search
from retrieval.hybrid import MODES
from retrieval.lexical import LexicalIndex, lexical_document
from retrieval.models import ModelVersion
from retrieval.passages import EntryData, Passage, definition_passage_text, passages_of
from retrieval.preprocess import build_vocabulary, preprocess_query
from training import services as training_services
from training.snapshot import pairs_from_jsonl

logger = logging.getLogger("lexique.evaluation")

DEFAULT_MODES = ("dense", "hybrid")
# Worst queries kept per protocol in a stored report, and passages listed above each one's right answer.
STORED_WORST = 20
STORED_RANKED_ABOVE = 10
# Triplets of the latest training snapshot used for the separation test (enough for a stable share).
SNAPSHOT_TRIPLET_LIMIT = 1000
# Questions answered by the LLM for the judged RAGAS metrics (each costs several LLM calls).
LLM_JUDGE_SAMPLES = 50


# ---- the test set -------------------------------------------------------------------------------------

@dataclass
class TestSet:
    entries: list[EntryData]
    concepts: list[EvalConcept]
    passages: list[Passage]
    queries: list[EvalQuery]
    reference_answers: dict[str, str]  # normalised example question -> its answer in the glossary
    test_set_hash: str

    @property
    def passages_by_entry(self) -> dict[int, list[str]]:
        keys: dict[int, list[str]] = {}
        for passage in self.passages:
            keys.setdefault(passage.entry_id, []).append(passage.key)
        return keys


def _test_side() -> tuple[list[EntryData], list[EvalConcept], dict[str, str]]:
    """The test side of the glossary, every entry given its side of the frozen split first (by training, which owns it)."""
    training_services.split_assign_all()
    return selectors.test_side()


def test_set_build(*, queries: Sequence[EvalQuery] | None = None) -> TestSet:
    """The corpus of test-side passages and the queries (built from the test side unless given)."""
    entries, concepts, answers = _test_side()
    if queries is None:
        flagged = selectors.flagged_test_questions(entry_ids={concept.entry_id for concept in concepts})
        queries = build_queries(concepts, flagged=flagged)
    passages = [passage for entry in entries for passage in passages_of(entry)]
    return TestSet(
        entries=entries, concepts=concepts, passages=passages, queries=list(queries), reference_answers=answers,
        test_set_hash=fingerprint(queries, passages),
    )


def queries_from_file(*, data: bytes | str) -> tuple[list[EvalQuery], list[QueryFileError]]:
    """Queries of a user's JSONL file over the test side; the lines that cannot be used are returned, not dropped."""
    _entries, concepts, _answers = _test_side()
    return parse_query_file(data, concepts_by_term=group_by_term(concepts))


def query_as_dict(query: EvalQuery) -> dict[str, Any]:
    data = asdict(query)
    data["entry_ids"] = sorted(query.entry_ids)
    data["definition_entry_ids"] = sorted(query.definition_entry_ids)
    return data


def query_from_dict(data: dict[str, Any]) -> EvalQuery:
    return EvalQuery(**{**data, "entry_ids": frozenset(data["entry_ids"]), "definition_entry_ids": frozenset(data["definition_entry_ids"])})


# ---- evaluating one version ---------------------------------------------------------------------------

def _number(value: float | None) -> float | None:
    """NaN (no row to judge) is stored as null: JSON has no NaN."""
    return None if value is None or math.isnan(value) else float(value)


def _passage_label(key: str, terms: dict[int, str]) -> str:
    """"12:context:2" -> "URSSAF (context 2)": what a maintainer reads in the worst-queries table (a stored
    message, shown in the reader's language)."""
    entry_id, passage_type, position = key.split(":")
    term = terms.get(int(entry_id), entry_id)
    if passage_type == "definition":
        return stored(gettext_noop("%(term)s (definition)"), term=term)
    return stored(gettext_noop("%(term)s (context %(position)s)"), term=term, position=position)


def _stored_report(report: ModeReport, *, terms: dict[int, str]) -> ModeReport:
    """The report as stored: no per-query rows; the worst queries with labels of what ranked above."""
    protocols = {
        name: protocol.for_storage(label=lambda key: _passage_label(key, terms), keep=STORED_WORST, above=STORED_RANKED_ABOVE)
        for name, protocol in report.protocols.items()
    }
    return replace(report, protocols=protocols)


@dataclass(frozen=True)
class EvaluationResult:
    """What ``evaluate_version`` measured (an evaluation run stores each part)."""

    report: EvaluationReport
    similarity: dict[str, Any]
    ragas: dict[str, Any]
    test_set_hash: str
    query_count: int
    passage_count: int


def evaluate_version(
    *,
    version: ModelVersion,
    queries: list[EvalQuery] | None = None,
    modes: Sequence[str] = DEFAULT_MODES,
    protocols: Sequence[str] = PROTOCOLS,
    similarity: bool = True,
    ragas: bool = True,
    log: Callable[[str], None] | None = None,
) -> EvaluationResult:
    """Benchmark ``version`` on the test set: the report per mode, the similarity tests and the RAGAS report.

    dense ranks passages by cosine with the raw query (the model alone); lexical and hybrid apply the serving
    pre-processing (spelling, acronym expansion; no translation) with the vocabulary of the whole glossary, then
    BM25 over the test entries, fused with the dense ranking for hybrid (``evaluation.rankings``).
    """
    log = log or (lambda message: logger.info("%s", english(message)))
    unknown = [mode for mode in modes if mode not in MODES]
    if unknown or not modes:
        raise ValidationError(_("Unknown modes: %(modes)s.") % {"modes": ", ".join(unknown) or "-"})
    if not protocols or any(protocol not in PROTOCOLS for protocol in protocols):
        raise ValidationError(_("Protocols expected among: %(p)s.") % {"p": ", ".join(PROTOCOLS)})
    test_set = test_set_build(queries=queries)
    if not test_set.passages:
        raise ValidationError(_("No validated entry in the test split: nothing to evaluate."))
    if not test_set.queries:
        raise ValidationError(_("No test query."))
    log(stored(gettext_noop("Test set %(hash)s: %(queries)s queries, %(passages)s passages."),
               hash=test_set.test_set_hash[:12], queries=len(test_set.queries), passages=len(test_set.passages)))

    passage_vectors = encoding.encode_documents_with(version, [passage.text for passage in test_set.passages])
    texts = [query.text for query in test_set.queries]
    raw_scores = encoding.encode_queries_with(version, texts) @ passage_vectors.T if "dense" in modes else None

    rankings: dict[str, dict[str, list[str]]] = {}
    hits_by_mode: dict[str, dict[str, list]] = {}
    if raw_scores is not None:
        rankings["dense"] = {text: dense_ranking(raw_scores[row], test_set.passages) for row, text in enumerate(texts)}
    fused_modes = [mode for mode in modes if mode != "dense"]
    if fused_modes:
        vocabulary = build_vocabulary(selectors.vocabulary_rows())
        finals = [preprocess_query(text, vocabulary=vocabulary).final for text in texts]
        lexical_index = LexicalIndex.build([lexical_document(entry) for entry in test_set.entries])
        entry_rows = rows_by_entry(test_set.passages)
        processed_scores = None
        if "hybrid" in fused_modes:
            processed_scores = encoding.encode_queries_with(version, finals) @ passage_vectors.T
        for mode in fused_modes:
            rankings[mode], hits_by_mode[mode] = {}, {}
            for row, (text, final) in enumerate(zip(texts, finals)):
                keys, hits = fused_ranking(
                    passages=test_set.passages, entry_rows=entry_rows, lexical=lexical_index.search(final, top_k=len(test_set.entries)),
                    scores=processed_scores[row] if processed_scores is not None else None, mode=mode,
                )
                rankings[mode][text], hits_by_mode[mode][text] = keys, hits

    terms = {entry.id: entry.term for entry in test_set.entries}
    report = {}
    for mode in modes:
        judged = evaluate_rankings(test_set.queries, rankings[mode], test_set.passages_by_entry, protocols=protocols)
        report[mode] = _stored_report(judged, terms=terms)
        log(stored(gettext_noop("Mode %(mode)s: %(scores)s"), mode=mode, scores=", ".join(
            f"{protocol} {MRR_AT_10.label} {(MRR_AT_10.of(judged.protocols[protocol].overall) or 0) * 100:.1f}" for protocol in protocols
        )))

    similarity_part: dict[str, Any] = {}
    ragas_part: dict[str, Any] = {}
    if similarity:
        similarity_part = similarity_tests(version=version, test_set=test_set, passage_vectors=passage_vectors)
        log(stored(gettext_noop("Similarity tests finished.")))
    if ragas:
        ragas_mode = "hybrid" if "hybrid" in modes else modes[0]
        ragas_part = ragas_of(test_set=test_set, rankings=rankings[ragas_mode], hits=hits_by_mode.get(ragas_mode, {}), mode=ragas_mode)
        log(stored(gettext_noop("RAGAS report (%(mode)s) finished."), mode=ragas_mode))
    return EvaluationResult(
        report=EvaluationReport(report), similarity=similarity_part, ragas=ragas_part,
        test_set_hash=test_set.test_set_hash, query_count=len(test_set.queries), passage_count=len(test_set.passages),
    )


def similarity_tests(*, version: ModelVersion, test_set: TestSet, passage_vectors: np.ndarray) -> dict[str, Any]:
    """Term -> definition and question -> definition top-1 among the test definitions; triplet separation on the
    negatives experts screened as different and on the latest training snapshot's mined negatives."""
    definition_rows = [row for row, passage in enumerate(test_set.passages) if passage.position == 0]
    definitions = passage_vectors[definition_rows]
    concepts = test_set.concepts
    term_vectors = encoding.encode_queries_with(version, [concept.term for concept in concepts])
    questions = [(question, index) for index, concept in enumerate(concepts) for question in concept.examples]
    question_vectors = encoding.encode_queries_with(version, [question for question, _ in questions])
    result: dict[str, Any] = {
        "term_to_definition": {
            "accuracy": _number(pair_retrieval_accuracy(query_vectors=term_vectors, candidate_vectors=definitions, positive_indices=list(range(len(concepts))))),
            "count": len(concepts),
        },
        "question_to_definition": {
            "accuracy": _number(pair_retrieval_accuracy(query_vectors=question_vectors, candidate_vectors=definitions, positive_indices=[index for _, index in questions])),
            "count": len(questions),
        },
    }
    screened = [
        (anchor, definition_passage_text(term=term, definition=definition), negative)
        for anchor, term, definition, negative in selectors.screened_negatives()
    ]
    result["screened_negatives"] = _separation(version, screened)
    snapshot = selectors.latest_snapshot()
    triplets: list[tuple[str, str, str]] = []
    if snapshot is not None:
        with artifacts.artifact_storage().open(snapshot.artifact_path, "rb") as handle:
            pairs = pairs_from_jsonl(handle.read())
        triplets = [(pair.anchor, pair.positive, negative) for pair in pairs for negative in pair.negatives][:SNAPSHOT_TRIPLET_LIMIT]
    result["snapshot_negatives"] = {**_separation(version, triplets), "snapshot": snapshot.content_hash if snapshot else None}
    return result


def _separation(version: ModelVersion, triplets: list[tuple[str, str, str]]) -> dict[str, Any]:
    if not triplets:
        return {"separation": None, "count": 0}
    anchors, positives, negatives = zip(*triplets)
    return {
        "separation": _number(
            triplet_separation(
                anchor_vectors=encoding.encode_queries_with(version, list(anchors)),
                positive_vectors=encoding.encode_documents_with(version, list(positives)),
                negative_vectors=encoding.encode_documents_with(version, list(negatives)),
            )
        ),
        "count": len(triplets),
    }


def _judge() -> LLMJudge | None:
    if not (settings.LLM_BASE_URL and settings.LLM_MODEL):
        return None
    return LLMJudge(base_url=settings.LLM_BASE_URL, model=settings.LLM_MODEL, api_key=settings.LLM_API_KEY, timeout=settings.LLM_TIMEOUT_SECONDS)


def ragas_of(*, test_set: TestSet, rankings: dict[str, list[str]], hits: dict[str, list], mode: str) -> dict[str, Any]:
    """The RAGAS report of the retrieval of each test question (term-only queries are keywords, not questions).

    Retrieved = the first ``ANSWER_TOP_K`` passages, as the assistant would use them; reference = the passages of
    the right entries (Concept relevance). With an LLM configured, the first ``LLM_JUDGE_SAMPLES`` questions are
    also answered (grounded, as the assistant does) and judged.
    """
    texts = {passage.key: passage.text for passage in test_set.passages}
    by_entry = test_set.passages_by_entry
    entries = {entry.id: entry for entry in test_set.entries}
    judge = _judge()
    llm = retrieval_search.llm_client() if judge else None
    top_k = settings.ANSWER_TOP_K
    samples = []
    for query in test_set.queries:
        if query.source == "term":
            continue
        retrieved = rankings[query.text][:top_k]
        reference = sorted(relevant_keys(query, "concept", by_entry))
        answer = None
        if llm is not None and len(samples) < LLM_JUDGE_SAMPLES and hits.get(query.text):
            from retrieval.answers import generative_answer

            hits_with_entries = [(hit, entries[hit.entry_id]) for hit in hits[query.text][:top_k]]
            answer = generative_answer(question=query.text, hits_with_entries=hits_with_entries, llm=llm, threshold=settings.ANSWER_MIN_SCORE).text
        samples.append(
            RagasSample(
                question=query.text, retrieved_ids=retrieved, reference_ids=reference,
                retrieved_contexts=[texts[key] for key in retrieved], reference_contexts=[texts[key] for key in reference],
                answer=answer, reference_answer=test_set.reference_answers.get(normalise_query(query.text)),
            )
        )
    if not samples:
        return {"samples": 0, "mode": mode, "metrics": {}, "notes": [stored(gettext_noop("No test question (only terms)."))]}
    report = ragas_report(samples, judge=judge).as_dict()
    report["mode"] = mode
    report["top_k"] = top_k
    for summary in report["metrics"].values():
        summary["mean"] = _number(summary["mean"])
    return report
