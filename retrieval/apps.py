from datetime import timedelta

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RetrievalConfig(AppConfig):
    name = "retrieval"
    verbose_name = _("Recherche")

    def ready(self) -> None:
        from django.urls import reverse

        from jobs.kinds import JobKind, register
        from retrieval import indexing, signals, tasks  # noqa: F401  (signals connects the glossary receivers)

        # One encode call with no progress in between: past the hard time limit nothing still runs it. Restarted,
        # not failed, when its worker died: a build is idempotent and must not leave entries out of search.
        register(JobKind(
            name=indexing.INDEX_BUILD_KIND, label=_("Construction d'index"),
            stale_after=timedelta(seconds=tasks.INDEX_BUILD_TIME_LIMIT_S + 600), send=indexing.index_build_send,
            url=lambda job: reverse("evaluation:version-list"), restartable=True,
        ))
