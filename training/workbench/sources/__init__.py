"""The registry of review-queue sources: one strategy object per ``ReviewItem.Source``, in scan order."""
from __future__ import annotations

from training.models import ReviewItem
from training.workbench.sources.base import ItemCandidate, ReviewSource, ScanContext, SourceScan
from training.workbench.sources.drafts import DraftSource
from training.workbench.sources.duplicates import DuplicateSource
from training.workbench.sources.flags import FlagSource
from training.workbench.sources.negatives import NegativeSource
from training.workbench.sources.questions import QuestionSource
from training.workbench.sources.self_retrieval import SelfRetrievalSource

SOURCES: dict[str, ReviewSource] = {
    strategy.source: strategy
    for strategy in (FlagSource(), QuestionSource(), NegativeSource(), SelfRetrievalSource(), DuplicateSource(), DraftSource())
}
assert set(SOURCES) == set(ReviewItem.Source.values), "every ReviewItem.Source needs its strategy"


def source_of(item: ReviewItem) -> ReviewSource:
    return SOURCES[item.source]


__all__ = ["SOURCES", "ItemCandidate", "ReviewSource", "ScanContext", "SourceScan", "source_of"]
