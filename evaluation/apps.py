from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class EvaluationConfig(AppConfig):
    name = "evaluation"
    verbose_name = _("Évaluation")

    def ready(self) -> None:
        from evaluation.receivers import evaluate_trained_version
        from training.signals import version_trained

        version_trained.connect(evaluate_trained_version, dispatch_uid="evaluation.evaluate_trained_version")
