"""What every source of the review queue shares: the candidate it proposes, its scan, and the strategy interface.

A source is one small object (``ReviewSource``) that knows, for its kind of item: how to find candidates and
score them (``scan``), which decisions apply and how the buttons say them (``decisions``, ``labels``), whether
an item still applies when it is served (``still_applies``), what a decision changes (``apply``, returning an
undo record) and how to put it back (``revert``). The services dispatch to it; nothing else branches on the
source.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from glossary.models import Entry
from retrieval import serving
from retrieval.models import ModelVersion
from retrieval.passages import DEFINITION
from training.models import ReviewDecision, ReviewItem

Source = ReviewItem.Source
Decision = ReviewDecision.Decision

# Bounds that keep a refresh to seconds on a CPU, whatever the size of the glossary and of the log.
MAX_ITEMS_PER_SOURCE = 500
# Cosine of two definition passages from which they say the same thing: under different terms, and (a lower
# bar) under the same term, where near-identical meanings are duplicates rather than homonyms.
DUPLICATE_THRESHOLD = 0.92
SAME_TERM_DUPLICATE_THRESHOLD = 0.85
SHOWN_CANDIDATES = 9
# The keyboard: each decision's key (choices take 1-9, one per candidate).
DECISION_KEYS = {Decision.ACCEPT: "a", Decision.REJECT: "r", Decision.SAME: "m", Decision.SKIP: "s"}


@dataclass
class ItemCandidate:
    """What a source proposes for the queue (plain data; the refresh turns it into a ReviewItem)."""

    key: str
    source: str
    score: float
    payload: dict[str, Any]
    signals: dict[str, float] = field(default_factory=dict)
    domain_id: int | None = None
    entry_id: int | None = None
    other_entry_id: int | None = None
    flag_id: int | None = None
    question_log_id: int | None = None
    negative_id: int | None = None


@dataclass
class SourceScan:
    """A source's items; ``checked_keys`` lists what a partial scan looked at (None: the whole source)."""

    candidates: list[ItemCandidate]
    checked_keys: set[str] | None = None


@dataclass
class ScanContext:
    """What a scan may need: the serving version, and its served index (loaded once, only if a source asks)."""

    version: ModelVersion
    _load_served: Callable[[], serving.ServedIndex] | None = None
    _served: serving.ServedIndex | None = None

    @property
    def served(self) -> serving.ServedIndex:
        if self._served is None:
            if self._load_served is None:
                from retrieval import indexing

                self._served = indexing.served_index_get(version=self.version)
            else:
                self._served = self._load_served()
        return self._served


class ReviewSource:
    """One source of the review queue (a strategy): subclasses set the class attributes and override the hooks."""

    source: ClassVar[str]
    # The decisions that make sense here (the UI shows exactly these; the service refuses the others), and
    # what each one means for this source, as the buttons say it (skip is labelled once for all sources).
    decisions: ClassVar[tuple[str, ...]]
    labels: ClassVar[dict[str, Any]]

    def scan(self, context: ScanContext) -> SourceScan:
        raise NotImplementedError

    def still_applies(self, item: ReviewItem) -> bool:
        """Whether what the item asks about is still undecided elsewhere (another page may have settled it)."""
        return True

    def apply(self, *, item: ReviewItem, decision: str, candidate_id: int | None, record: ReviewDecision, user) -> dict:
        """Make the decision training material (or a glossary change); returns what ``revert`` needs."""
        raise NotImplementedError

    def revert(self, effect: dict, user) -> None:
        """Undo what ``apply`` did, from the record it returned."""
        raise NotImplementedError

    def choosable(self, item: ReviewItem) -> list[dict]:
        """The candidates a "choose" decision may pick."""
        return list(item.payload.get("candidates") or [])

    def check(self, item: ReviewItem, decision: str, candidate_id: int | None) -> None:
        """Refuse a decision that does not fit this item (``ValidationError``)."""
        if decision not in self.decisions:
            raise ValidationError(
                _("The decision “%(decision)s” does not apply to a “%(source)s” item.") % {"decision": decision, "source": item.get_source_display()},
                code="invalid_decision",
            )
        if decision == Decision.CHOOSE and candidate_id not in {candidate["entry_id"] for candidate in self.choosable(item)}:
            raise ValidationError(_("Choose one of the suggested entries."), code="invalid_candidate")

    def display(self, item: ReviewItem) -> dict[str, Any]:
        """Extra, read-only context the item panel shows for this source (e.g. the entry a flag's correction names)."""
        return {}


def hit_candidates(hits: list[dict]) -> list[dict]:
    """Logged search hits as the candidates an expert chooses from."""
    return [
        {
            "entry_id": hit["entry_id"],
            "term": hit.get("term", ""),
            "domain": hit.get("domain", ""),
            "passage_type": hit.get("passage_type"),
            "text": hit.get("passage_text", ""),
            "score": hit.get("dense_score"),
            "lexical_score": hit.get("lexical_score"),
        }
        for hit in hits[:SHOWN_CANDIDATES]
    ]


def entry_candidate(entry: Entry, *, score: float | None = None) -> dict:
    """An entry (its definition passage) as a candidate."""
    return {
        "entry_id": entry.pk,
        "term": entry.term,
        "domain": entry.domain.name if entry.domain_id else "",
        "passage_type": DEFINITION,
        "text": entry.definition,
        "score": score,
        "lexical_score": None,
        "status": entry.status,
    }


def indexed_definitions(served: serving.ServedIndex):
    """(entry ids, vectors) of the definition passages of the served index."""
    rows = [row for row, passage in enumerate(served.vectors.passages) if passage.passage_type == DEFINITION]
    return [served.vectors.passages[row].entry_id for row in rows], served.vectors.matrix[rows]
