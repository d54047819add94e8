from datetime import timedelta

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TrainingAppConfig(AppConfig):
    name = "training"
    verbose_name = _("Training")

    def ready(self) -> None:
        from celery import current_app
        from django.urls import reverse

        from glossary.services import entries_bulk_created
        from jobs.kinds import JobKind, register
        from training import pipeline, runs, tasks
        from training.workbench import refresh

        # An import commits many entries at once: their drafts and duplicates belong in the review queue.
        entries_bulk_created.connect(refresh.refresh_after_import, dispatch_uid="training-queue-refresh-after-import")
        register(JobKind(
            name=pipeline.TRAIN, label=_("Training"), stale_after=runs.STALE_AFTER,
            send=lambda job: tasks.run_training.delay(job.training_run.pk).id,
            url=lambda job: reverse("training:run-detail", args=[job.training_run.pk]),
            on_failed=runs.training_run_failed,
        ))
        register(JobKind(
            name=pipeline.PROMOTE, label=_("Promotion"), stale_after=timedelta(seconds=tasks.PROMOTION_TIME_LIMIT_S + 600),
            # The default queue: an index build, not a training.
            send=lambda job: tasks.promote_version.apply_async((job.pk,), queue=current_app.conf.task_default_queue).id,
            url=lambda job: reverse("evaluation:version-list"),
            on_failed=pipeline.promotion_failed,
        ))
        register(JobKind(
            name="queue_refresh", label=_("Review queue"), stale_after=refresh.REFRESH_STALE_AFTER,
            send=refresh.review_queue_refresh_send,
            url=lambda job: reverse("training:workbench"),
        ))
