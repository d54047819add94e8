from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class GlossaryConfig(AppConfig):
    name = "glossary"
    verbose_name = _("Glossary")

    def ready(self) -> None:
        from glossary import import_jobs, imports
        from jobs.kinds import JobKind, register

        # An import writes in one transaction: one whose worker died wrote nothing, and is run again.
        register(JobKind(
            name=imports.IMPORT_KIND, label=_("Import"), stale_after=import_jobs.stale_after(),
            send=import_jobs.import_send, url=import_jobs.import_url, restartable=True, max_attempts=3,
        ))
