"""The training app's models: learning (configs, runs, snapshots, negatives screening, equivalences) and the expert
workbench (review queue, decisions, labels, guides)."""
from training.models.learning import DataSnapshot, Equivalence, LLMQuestionSet, NegativeCandidate, TrainingConfig, TrainingRun
from training.models.review import Guideline, QuestionLabel, QueueRefresh, ReviewDecision, ReviewItem, ReviewSourceSetting

__all__ = [
    "DataSnapshot", "Equivalence", "Guideline", "LLMQuestionSet", "NegativeCandidate", "QuestionLabel", "QueueRefresh", "ReviewDecision",
    "ReviewItem", "ReviewSourceSetting", "TrainingConfig", "TrainingRun",
]
