from datetime import timedelta

from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


def champion_after_migrate(sender, *, apps=None, **kwargs) -> None:
    """``migrate`` leaves every installation with a champion to read: "base" (number 0) until something is promoted.

    ``flush`` sends post_migrate too (as if the database were migrated from scratch), so an emptied database has its
    champion again. Skipped while retrieval's tables are not at the current state (a migration backwards).
    """
    from django.apps import apps as global_apps

    try:
        historical = (apps or global_apps).get_model("retrieval", "ModelVersion")
    except LookupError:
        return
    if "model_spec" not in {field.name for field in historical._meta.get_fields()}:
        return
    from retrieval.versions import champion_ensure

    champion_ensure()


class RetrievalConfig(AppConfig):
    name = "retrieval"
    verbose_name = _("Search")

    def ready(self) -> None:
        from django.urls import reverse

        from jobs.kinds import JobKind, register
        from retrieval import indexing, signals, tasks  # noqa: F401  (signals connects the glossary receivers)

        post_migrate.connect(champion_after_migrate, sender=self, dispatch_uid="retrieval-champion-after-migrate")
        # One encode call with no progress in between: past the hard time limit nothing still runs it. Restarted,
        # not failed, when its worker died: a build is idempotent and must not leave entries out of search.
        register(JobKind(
            name=indexing.INDEX_BUILD_KIND, label=_("Index build"),
            stale_after=timedelta(seconds=tasks.INDEX_BUILD_TIME_LIMIT_S + 600), send=indexing.index_build_send,
            url=lambda job: reverse("evaluation:version-list"), restartable=True,
        ))
