from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RetrievalConfig(AppConfig):
    name = "retrieval"
    verbose_name = _("Recherche")

    def ready(self) -> None:
        from retrieval import signals  # noqa: F401  (connects the glossary signal receivers)
