"""Celery tasks of the retrieval app: thin wrappers that load rows by id and call one service."""
from __future__ import annotations

import logging

from celery import shared_task
from django.contrib.auth import get_user_model

from retrieval import indexing, versions
from retrieval.models import ModelVersion, PromotionEvent

logger = logging.getLogger(__name__)


def enqueue(task, *args) -> bool:
    """Send a task; when the broker is down, log it instead of failing the user's request (returns False).

    A missed incremental update is repaired by the next full rebuild (``manage.py build_index``).
    """
    try:
        task.delay(*args)
    except Exception:
        logger.exception("Could not enqueue %s%r; run `manage.py build_index` once the broker is back.", task.name, args)
        return False
    return True


@shared_task(name="retrieval.tasks.index_entry", soft_time_limit=300, time_limit=360)
def index_entry(entry_id: int) -> None:
    # The service records a failure on the IndexState of the version it was updating.
    indexing.index_update_entry(entry_id=entry_id)


INDEX_BUILD_TIME_LIMIT_S = 3 * 3600


# acks_late: a build whose worker died is delivered again and restarted from scratch (never half-published).
@shared_task(bind=True, name="retrieval.tasks.index_rebuild", acks_late=True, soft_time_limit=INDEX_BUILD_TIME_LIMIT_S, time_limit=INDEX_BUILD_TIME_LIMIT_S + 300)
def index_rebuild(self, version_id: int, job_id: int | None = None) -> None:
    # The service records a failure on the build's job and on the version's IndexState.
    indexing.index_build_execute(version_id=version_id, job_id=job_id, worker=self.request.hostname or "")


@shared_task(name="retrieval.tasks.promote_version", soft_time_limit=3 * 3600, time_limit=3 * 3600 + 300)
def promote_version(version_id: int, user_id: int | None, reason: str, action: str = PromotionEvent.Action.PROMOTE) -> None:
    # A failed promotion leaves the old champion serving; the service puts the version back to its
    # previous status (or "broken" when its model cannot be loaded) and the index build records its error.
    version = ModelVersion.objects.get(pk=version_id)
    user = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    versions.model_version_promote(version=version, user=user, reason=reason, action=action)
