from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TrainingAppConfig(AppConfig):
    name = "training"
    verbose_name = _("Entraînement")

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from retrieval.models import PromotionEvent
        from training import workbench

        post_save.connect(workbench.refresh_on_new_champion, sender=PromotionEvent, dispatch_uid="training-queue-refresh-on-champion")
