"""Signals the training capability sends; later stages of the loop (evaluation) listen to them."""
from django.dispatch import Signal

# Sent when a run has produced a ready model version: kwargs run, version. A receiver that takes over the
# run (evaluation) must eventually call ``training.services.training_run_finish``.
version_trained = Signal()
