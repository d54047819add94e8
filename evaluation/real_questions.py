"""What users see: real questions asked to a version over the whole validated glossary, per kind of question.

Unlike the frozen-split protocols (evaluation.protocols: test-side passages only, templated queries), each question
goes through the product's own search (retrieval.search.search: pre-processing, exact matches, hybrid fusion)
over the version's serving index, with every validated entry a candidate. A question is answered right at rank r
when one of its entries is the r-th result. Reported per kind (retrieval.question_kinds): Hit@1, Hit@10, MRR@10
(``evaluation.gate_records.QuestionScores``). When a MODEL is judged, known-question passages are left out of the
ranking: a held-out question would otherwise be answered by its own text (``exclude_known_questions``).

The scoring is pure (``score_outcomes``); ``evaluate_real_questions`` runs the searches. The promotion gate reuses
``RealQuestionsResult`` as a ``QuestionTier``.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from evaluation.queries import EvalConcept, QueryFileError, group_by_term, parse_query_file
from evaluation.gate_records import QuestionScores, QuestionTier, WrongAnswer

CUTOFF = 10
NO_KIND = "(aucun)"  # a stored key, like evaluation.protocols.NO_GROUP
ALL = "all"


@dataclass(frozen=True)
class RealQuestion:
    text: str
    entry_ids: frozenset[int]  # the right answers: any of them first is right
    kind: str | None = None
    source: str = "file"


@dataclass(frozen=True)
class QuestionOutcome:
    text: str
    kind: str | None
    entry_ids: tuple[int, ...]
    rank: int | None  # 1-based rank of the first right entry in the top CUTOFF; None when absent
    ranked_entry_ids: tuple[int, ...]


@dataclass
class RealQuestionsResult:
    version: int  # the version's number (0 = base)
    mode: str
    exclude_known_questions: bool
    overall: QuestionScores
    by_kind: dict[str, QuestionScores]
    outcomes: list[QuestionOutcome] = field(default_factory=list)
    unresolved: list[QueryFileError] = field(default_factory=list)

    def tier(self, *, wrong: int = 0) -> QuestionTier:
        """This result as the promotion gate reads and stores a tier of questions, with the first ``wrong`` questions
        not answered first."""
        return QuestionTier(
            version=self.version, mode=self.mode, exclude_known_questions=self.exclude_known_questions,
            overall=self.overall, by_kind=self.by_kind,
            unresolved=[{"line": error.line, "message": error.message} for error in self.unresolved],
            wrong=[WrongAnswer(outcome.text, outcome.kind, outcome.rank) for outcome in self.outcomes if outcome.rank != 1][:wrong],
        )

    def as_dict(self) -> dict[str, Any]:
        """The tier with every question's outcome (the evaluate command's JSON)."""
        data = self.tier().to_dict()
        del data["wrong"]
        data["outcomes"] = [
            {**asdict(outcome), "entry_ids": list(outcome.entry_ids), "ranked_entry_ids": list(outcome.ranked_entry_ids)}
            for outcome in self.outcomes
        ]
        return data


def outcome_of(question: RealQuestion, ranked_entry_ids: Sequence[int], *, cutoff: int = CUTOFF) -> QuestionOutcome:
    top = tuple(ranked_entry_ids[:cutoff])
    rank = next((position for position, entry_id in enumerate(top, start=1) if entry_id in question.entry_ids), None)
    return QuestionOutcome(question.text, question.kind, tuple(sorted(question.entry_ids)), rank, top)


def _metrics(outcomes: Sequence[QuestionOutcome], *, cutoff: int = CUTOFF) -> QuestionScores:
    count = len(outcomes)
    if not count:
        return QuestionScores(0, 0.0, 0.0, 0.0)
    return QuestionScores(
        questions=count,
        hit_at_1=sum(outcome.rank == 1 for outcome in outcomes) / count,
        hit_at_10=sum(outcome.rank is not None and outcome.rank <= cutoff for outcome in outcomes) / count,
        mrr_at_10=sum(1.0 / outcome.rank for outcome in outcomes if outcome.rank is not None and outcome.rank <= cutoff) / count,
    )


def score_outcomes(outcomes: Sequence[QuestionOutcome]) -> tuple[QuestionScores, dict[str, QuestionScores]]:
    """Overall and per-kind Hit@1, Hit@10, MRR@10 (kinds sorted by name; questions without a kind under NO_KIND)."""
    groups: dict[str, list[QuestionOutcome]] = {}
    for outcome in outcomes:
        groups.setdefault(outcome.kind or NO_KIND, []).append(outcome)
    return _metrics(outcomes), {kind: _metrics(groups[kind]) for kind in sorted(groups)}


def real_questions_from_queries(queries: Iterable) -> list[RealQuestion]:
    """Real questions from parsed query-file lines (evaluation.queries.EvalQuery): the named sense is the answer."""
    return [RealQuestion(query.text, query.definition_entry_ids, query.question_kind, query.source) for query in queries]


# ---- the Django side --------------------------------------------------------------------------------

def glossary_concepts() -> list[EvalConcept]:
    """Every validated entry, as the concepts a glossary-scope query file is resolved against."""
    from retrieval import selectors

    return [
        EvalConcept(entry.pk, entry.term, entry.kind, entry.domain.name if entry.domain_id else None, entry.definition, tuple(entry.contexts))
        for entry in selectors.validated_entries()
    ]


def real_questions_from_file(*, data: bytes | str) -> tuple[list[RealQuestion], list[QueryFileError]]:
    """The questions of a JSONL file resolved against the whole validated glossary, and every line that was not.

    An unknown term or entry, a term with several senses and no definition (or entry id) to pick one, a bad JSON
    line: each is reported with its line number and counted, never dropped in silence.
    """
    queries, errors = parse_query_file(data, concepts_by_term=group_by_term(glossary_concepts()), scope="glossary")
    return real_questions_from_queries(queries), errors


def real_questions_from_labelled(*, held_out: bool | None = True) -> list[RealQuestion]:
    """The installation's labelled questions (by default the held-out ones, never trained on)."""
    from retrieval.labelled import labelled_question_list

    questions: dict[str, tuple[set[int], str, str]] = {}
    for item in labelled_question_list(held_out=held_out).filter(entry__status="validated").order_by("id"):
        ids, _kind, _text = questions.setdefault(item.normalised, (set(), item.kind, item.text))
        ids.add(item.entry_id)
    return [RealQuestion(text, frozenset(ids), kind, "labelled") for ids, kind, text in questions.values()]


def evaluate_real_questions(
    *,
    version,
    questions: Sequence[RealQuestion],
    mode: str = "hybrid",
    exclude_known_questions: bool = True,
    unresolved: Sequence[QueryFileError] = (),
) -> RealQuestionsResult:
    """Ask each question to ``version`` through the product's search over its serving index (the whole validated
    glossary) and score the rankings per kind."""
    from retrieval.search import search

    outcomes = []
    for question in questions:
        result = search(query=question.text, top_k=CUTOFF, version=version, mode=mode, exclude_known_questions=exclude_known_questions)
        outcomes.append(outcome_of(question, [item.entry.id for item in result.hits]))
    overall, by_kind = score_outcomes(outcomes)
    return RealQuestionsResult(
        version=version.number, mode=mode, exclude_known_questions=exclude_known_questions, overall=overall, by_kind=by_kind,
        outcomes=outcomes, unresolved=list(unresolved),
    )
