"""What the promotion gate stores (pure, no Django): the question tiers it asked the candidate and the champion (per
kind of question, through the product's search), its reasons as codes, and its decision (``GateRecord``, on the
evaluation run and the version). The keys stay those the gate has always written ("r1", "reason_codes", ...).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from evaluation.stored import Stored, dict_of, dump_each, dump_stored, load_stored

# ---- questions asked through the product's search, per kind (the gate's tiers) -----------------------------------

@dataclass(frozen=True)
class QuestionScores(Stored):
    """Questions of one kind (or all) asked through the product's search: Hit@1, Hit@10, MRR@10 (fractions).

    Stored under the keys the gate has always written: "r1", "r10", "mrr10"."""

    questions: int = 0
    hit_at_1: float = 0.0
    hit_at_10: float = 0.0
    mrr_at_10: float = 0.0

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> QuestionScores:
        return load_stored(cls, data, keys=_QUESTION_KEYS)

    def to_dict(self) -> dict[str, Any]:
        return dump_stored(self, keys=_QUESTION_KEYS)


_QUESTION_KEYS = {"hit_at_1": "r1", "hit_at_10": "r10", "mrr_at_10": "mrr10"}


@dataclass(frozen=True)
class WrongAnswer(Stored):
    """A question whose right entry did not come first (``rank`` None: not in the top ten)."""

    text: str = ""
    kind: str | None = None
    rank: int | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> WrongAnswer:
        return load_stored(cls, data)

    def to_dict(self) -> dict[str, Any]:
        return dump_stored(self)


@dataclass(frozen=True)
class QuestionTier(Stored):
    """One set of questions (held-out real questions, canaries) asked to a version: overall and per kind."""

    version: int | None = None  # the version's number (0 = base)
    mode: str = ""
    exclude_known_questions: bool = True
    overall: QuestionScores = field(default_factory=QuestionScores)
    by_kind: dict[str, QuestionScores] = field(default_factory=dict)
    unresolved: list[dict[str, Any]] = field(default_factory=list)  # {"line", "message"} of a query file's refused lines
    wrong: list[WrongAnswer] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> QuestionTier:
        return load_stored(
            cls, data, overall=QuestionScores.from_dict, by_kind=dict_of(QuestionScores.from_dict),
            wrong=lambda items: [WrongAnswer.from_dict(item) for item in items],
        )

    def to_dict(self) -> dict[str, Any]:
        return dump_stored(self, overall=QuestionScores.to_dict, by_kind=dump_each, wrong=lambda items: [item.to_dict() for item in items])


# ---- the gate's decision ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Reason(Stored):
    """Why the gate decided as it did: a code and its parameters, rendered in the reader's language
    (``evaluation.gate.render_reason``)."""

    code: str = ""
    params: Mapping[str, object] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Reason:
        return load_stored(cls, data, params=dict)

    def to_dict(self) -> dict[str, Any]:
        return dump_stored(self, params=dict)


CANDIDATE, CHAMPION = "candidate", "champion"


@dataclass(frozen=True)
class KindRow:
    """One kind of question of one tier, champion vs candidate (the gate's table on the report page)."""

    tier: str
    kind: str  # a question kind, or "all"
    questions: int
    before: float | None  # the champion's Hit@1
    after: float

    @property
    def delta(self) -> float | None:
        return None if self.before is None else self.after - self.before


@dataclass(frozen=True)
class GateRecord(Stored):
    """The promotion gate's decision on a version, as stored on its evaluation run and on the version."""

    decision: str = ""  # "promote" | "keep"
    promote: bool = False
    reasons: list[str] = field(default_factory=list)  # sentences in the installation's language (older readers)
    reason_codes: list[Reason] = field(default_factory=list)
    deciding_tier: str | None = None
    tier_deltas: dict[str, float] = field(default_factory=dict)
    kind_deltas: dict[str, dict[str, float]] = field(default_factory=dict)
    tiers: dict[str, dict[str, QuestionTier]] = field(default_factory=dict)  # {"candidate"|"champion": {tier: ...}}
    kind_tolerance: float | None = None
    min_real_questions: int | None = None
    question_mode: str | None = None
    primary: str = ""
    mode: str = ""
    margin: float | None = None
    domain_tolerance: float | None = None
    primary_delta: float | None = None
    domain_deltas: dict[str, float] = field(default_factory=dict)
    template_reasons: list[str] = field(default_factory=list)  # sentences in the installation's language (older readers)
    template_reason_codes: list[Reason] = field(default_factory=list)  # the template gate's own reasons (codes)
    champion_version_id: int | None = None
    champion_version: str | None = None
    champion_evaluation_id: int | None = None
    test_set_hash: str = ""
    decided_at: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> GateRecord:
        return load_stored(
            cls, data, reason_codes=lambda items: [Reason.from_dict(item) for item in items],
            template_reason_codes=lambda items: [Reason.from_dict(item) for item in items],
            tiers=dict_of(dict_of(QuestionTier.from_dict)),
        )

    def to_dict(self) -> dict[str, Any]:
        return dump_stored(
            self, reason_codes=lambda items: [item.to_dict() for item in items],
            template_reason_codes=lambda items: [item.to_dict() for item in items],
            tiers=lambda sides: {side: dump_each(tiers) for side, tiers in sides.items()},
        )

    def kind_rows(self) -> list[KindRow]:
        """Per tier the candidate was asked and per kind (then "all"): questions, champion and candidate Hit@1."""
        candidate, champion = self.tiers.get(CANDIDATE, {}), self.tiers.get(CHAMPION, {})
        rows = []
        for tier, mine in candidate.items():
            theirs = champion.get(tier)
            for kind, scores in [*sorted(mine.by_kind.items()), ("all", mine.overall)]:
                before = None
                if theirs is not None:
                    before = theirs.overall if kind == "all" else theirs.by_kind.get(kind)
                rows.append(KindRow(tier, kind, scores.questions, before.hit_at_1 if before else None, scores.hit_at_1))
        return rows


def gate_of(data: Mapping[str, Any] | None) -> GateRecord | None:
    """A stored decision, None when there is none (``{}``: the version was never gated)."""
    return GateRecord.from_dict(data) if data else None
