"""Evaluation listens to training: every trained version is evaluated, then judged by the promotion gate."""
from __future__ import annotations

from evaluation import services
from evaluation.models import EvaluationRun


def evaluate_trained_version(sender, *, run, version, **kwargs) -> None:
    """``training.signals.version_trained`` receiver: queue the evaluation that will close the training run."""
    services.evaluation_run_request(
        version=version, user=run.requested_by, trigger=EvaluationRun.Trigger.AUTO, training_run_id=run.pk
    )
