from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TrainingAppConfig(AppConfig):
    name = "training"
    verbose_name = _("Entraînement")

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from glossary.services import entries_bulk_created
        from retrieval.models import PromotionEvent
        from training.workbench import refresh

        post_save.connect(refresh.refresh_on_new_champion, sender=PromotionEvent, dispatch_uid="training-queue-refresh-on-champion")
        # An import commits many entries at once: their drafts and duplicates belong in the review queue.
        entries_bulk_created.connect(refresh.refresh_after_import, dispatch_uid="training-queue-refresh-after-import")
