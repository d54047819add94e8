"""The expert workbench: the review queue's sources, its refresh, leases, decisions and their undo.

* ``sources/`` one strategy object per source of the queue (open flags, uncertain questions, suspected false
  negatives, badly retrieved entries, likely duplicates, drafts): scan, decisions and labels, apply, revert;
* ``refresh`` requesting and running a refresh, bounding what is offered, ordering (``training.queue``);
* ``leases`` one item per expert at a time; ``selectors`` reads only; ``services`` decide, skip, undo.

This module re-exports the names the views, the API, the tasks and the tests use.
"""
from training.workbench.adjudication import disputed_items, review_item_adjudicate, votes_shown
from training.workbench.agreement import agreement_chart, agreement_report
from training.workbench.effects import ReviewConflict
from training.workbench.experts import expert_list, expert_stats
from training.workbench.leases import LEASE, review_item_next, review_item_release
from training.workbench.overlap import overlap_settings, required_decisions, review_overlap_set
from training.workbench.refresh import (
    refresh_after_import, review_items_upsert, review_queue_bound, review_queue_first_use, review_queue_refresh_due,
    review_queue_refresh_execute, review_queue_refresh_request, review_queue_reorder,
)
from training.workbench.selectors import (
    item_actions, item_display, last_refresh, pending_decision_counts, last_undoable_decision, refresh_in_progress, review_item_list, review_items_available, workbench_counters,
)
from training.workbench.services import review_decision_undo, review_item_decide
from training.workbench.sources import SOURCES, ItemCandidate, SourceScan
from training.workbench.sources.drafts import draft_items
from training.workbench.sources.duplicates import duplicate_items
from training.workbench.sources.flags import flag_items
from training.workbench.sources.negatives import negative_items
from training.workbench.sources.questions import QUESTION_MIN_UNCERTAINTY, uncertain_question_items
from training.workbench.sources.self_retrieval import self_retrieval_items

# Which decisions make sense for each source (the UI shows exactly these; the service refuses others).
ALLOWED_DECISIONS: dict[str, tuple[str, ...]] = {source: strategy.decisions for source, strategy in SOURCES.items()}

__all__ = [
    "ALLOWED_DECISIONS", "LEASE", "agreement_chart", "agreement_report", "expert_list", "expert_stats", "disputed_items", "overlap_settings", "pending_decision_counts", "required_decisions", "review_item_adjudicate",
    "review_overlap_set", "votes_shown", "QUESTION_MIN_UNCERTAINTY", "SOURCES", "ItemCandidate", "ReviewConflict", "SourceScan", "draft_items",
    "duplicate_items", "flag_items", "item_actions", "item_display", "last_refresh", "last_undoable_decision", "negative_items",
    "refresh_after_import", "refresh_in_progress", "review_decision_undo", "review_item_decide", "review_item_list",
    "review_item_next", "review_item_release", "review_items_available", "review_items_upsert", "review_queue_bound", "review_queue_first_use",
    "review_queue_refresh_due", "review_queue_refresh_execute", "review_queue_refresh_request", "review_queue_reorder", "self_retrieval_items",
    "uncertain_question_items", "workbench_counters",
]
