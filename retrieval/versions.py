"""Model versions: creation (with the base model's spec pinned), metrics, promotion, rollback, broken versions,
and the champion every installation has ("base", number 0, until something is promoted)."""
from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _, gettext_noop

from config.stored_messages import stored
from retrieval import artifacts, indexing, selectors
from retrieval.catalogue import ModelSpec, UnknownModelError, pinned_spec
from retrieval.models import ModelVersion, PromotionEvent

logger = logging.getLogger(__name__)


def _pinned_spec_of(base_model: str, model_spec: ModelSpec | None) -> dict[str, Any]:
    """What a new version pins: ``model_spec`` (what it was trained with) or the catalogue's spec of ``base_model`` now."""
    if model_spec is not None:
        if model_spec.name != base_model:
            raise ValidationError({"base_model": f"model_spec is the spec of {model_spec.name!r}, not of {base_model!r}"})
        return pinned_spec(model_spec)
    try:
        return pinned_spec(selectors.model_spec_get(name=base_model))
    except UnknownModelError as error:
        raise ValidationError({"base_model": str(error)}) from None


def model_version_create(
    *,
    base_model: str,
    label: str = "",
    parent: ModelVersion | None = None,
    adapter_path: str = "",
    merged_path: str = "",
    artifact_checksums: dict[str, str] | None = None,
    training_run_id: int | None = None,
    data_snapshot_hash: str = "",
    metrics: dict[str, Any] | None = None,
    model_card: dict[str, Any] | None = None,
    created_by=None,
    status: str = ModelVersion.Status.READY,
    model_spec: ModelSpec | None = None,
) -> ModelVersion:
    """Record a new version (the training capability calls this once its artifacts are stored).

    The version pins its base model's prompts and encoding settings: those of ``model_spec`` (the spec it was
    trained with) when given, else the catalogue's as they are now.
    """
    pinned = _pinned_spec_of(base_model, model_spec)
    if status not in (ModelVersion.Status.READY, ModelVersion.Status.FAILED, ModelVersion.Status.BROKEN):
        raise ValidationError(_("A new version can only be ready, failed or broken."))
    for _attempt in range(5):
        number = (ModelVersion.objects.aggregate(top=Max("number"))["top"] or 0) + 1
        try:
            with transaction.atomic():
                return ModelVersion.objects.create(
                    number=number,
                    label=label,
                    base_model=base_model,
                    parent=parent,
                    adapter_path=adapter_path,
                    merged_path=merged_path,
                    artifact_checksums=artifact_checksums or {},
                    training_run_id=training_run_id,
                    data_snapshot_hash=data_snapshot_hash,
                    metrics=metrics or {},
                    model_card=model_card or {},
                    model_spec=pinned,
                    created_by=created_by,
                    status=status,
                )
        except IntegrityError:
            continue  # another process took this number
    raise ValidationError(_("Could not assign a version number: try again."))


def _base_version_get_or_create(**defaults: Any) -> ModelVersion:
    """Version "base" (number 0): the default catalogue model, its spec pinned when it is first recorded."""
    name = settings.DEFAULT_EMBEDDING_MODEL
    base = ModelVersion.objects.filter(number=0).first()
    if base is not None:
        return base
    base, _created = ModelVersion.objects.get_or_create(
        number=0, defaults={"base_model": name, "label": "", "model_spec": _pinned_spec_of(name, None), **defaults}
    )
    return base


def champion_ensure() -> ModelVersion:
    """The version that serves; until anything is promoted, the default catalogue model as version "base" (0).

    Run by ``migrate`` (retrieval.apps) so that every installation has a champion to read, and by the services that
    need one (search), so that a champion lost in between is replaced by "base" rather than failing.
    """
    champion = ModelVersion.objects.filter(status=ModelVersion.Status.CHAMPION).first()
    if champion is not None:
        return champion
    try:
        with transaction.atomic():
            base = _base_version_get_or_create(status=ModelVersion.Status.CHAMPION)
    except IntegrityError:
        # Another process created it (or promoted something) at the same moment.
        return ModelVersion.objects.get(status=ModelVersion.Status.CHAMPION)
    if base.status != ModelVersion.Status.CHAMPION:
        # "base" exists but nothing is champion (e.g. the champion was deleted by hand): base serves again.
        base.status = ModelVersion.Status.CHAMPION
        base.save(update_fields=["status"])
    return base


def model_version_set_metrics(*, version: ModelVersion, metrics: dict[str, Any]) -> ModelVersion:
    """Merge ``metrics`` into the version's metrics (evaluation results arrive after creation)."""
    version.metrics = {**version.metrics, **metrics}
    version.save(update_fields=["metrics"])
    return version


def model_version_request_promotion(*, version: ModelVersion, user, reason: str, action: str = PromotionEvent.Action.PROMOTE) -> ModelVersion:
    """Mark the version as being promoted and enqueue the promotion (index build, then the switch)."""
    from retrieval import tasks

    status_before = model_version_mark_promoting(version=version)
    user_id = getattr(user, "pk", None)

    def send() -> None:
        if not tasks.enqueue(tasks.promote_version, version.pk, user_id, reason, action):
            # The broker is down: nothing will promote it, so it must not stay "promoting".
            ModelVersion.objects.filter(pk=version.pk, status=ModelVersion.Status.PROMOTING).update(status=status_before)

    transaction.on_commit(send)
    return version


def model_version_mark_promoting(*, version: ModelVersion) -> str:
    """Check the version may be promoted and mark it "promoting" (glossary edits then reach its index too);
    returns the status it had, to put back when the promotion cannot even be queued."""
    _check_promotable(version)
    status_before = version.status
    version.status = ModelVersion.Status.PROMOTING
    version.save(update_fields=["status"])
    return status_before


def model_version_request_rollback(*, user, reason: str) -> ModelVersion:
    """Enqueue the return of the previous champion."""
    previous = selectors.previous_champion_get()
    if previous is None:
        raise ValidationError(_("No previous champion: nothing to restore."))
    return model_version_request_promotion(version=previous, user=user, reason=reason, action=PromotionEvent.Action.ROLLBACK)


def _check_promotable(version: ModelVersion) -> None:
    if version.status == ModelVersion.Status.CHAMPION:
        raise ValidationError(_("Version %(version)s is already serving.") % {"version": version})
    if version.status not in (ModelVersion.Status.READY, ModelVersion.Status.ARCHIVED, ModelVersion.Status.PROMOTING):
        raise ValidationError(
            _("Version %(version)s cannot be promoted (status: %(status)s).") % {"version": version, "status": version.get_status_display()}
        )


def model_version_promote(*, version: ModelVersion, user, reason: str, action: str = PromotionEvent.Action.PROMOTE) -> PromotionEvent:
    """Build the version's index, then make it the champion in one transaction.

    Until the switch, searches keep using the old champion and its index; after it, the new champion and
    its (already built) index: never a gap, never a version served with another version's index.
    """
    if action not in PromotionEvent.Action.values:
        raise ValidationError(_("Unknown action: %(action)s.") % {"action": action})
    _check_promotable(version)
    if version.status != ModelVersion.Status.PROMOTING:
        # While promoting, glossary edits also reach this version's index (see indexing.index_update_entry).
        version.status = ModelVersion.Status.PROMOTING
        version.save(update_fields=["status"])
    try:
        indexing.index_rebuild(version=version)
    except Exception as error:
        from retrieval.embedding import ModelUnavailableError  # here: the module imports sentence-transformers

        # A model that cannot be loaded will not load next time either; anything else may be retried.
        if isinstance(error, (ModelUnavailableError, artifacts.ArtifactCorrupted)):
            _set_status(version, ModelVersion.Status.BROKEN)
        else:
            _set_status(version, ModelVersion.Status.ARCHIVED if version.promoted_at else ModelVersion.Status.READY)
        raise
    with transaction.atomic():
        version = ModelVersion.objects.select_for_update().get(pk=version.pk)
        previous = ModelVersion.objects.select_for_update().filter(status=ModelVersion.Status.CHAMPION).first()
        if previous is not None:
            previous.status = ModelVersion.Status.ARCHIVED
            previous.save(update_fields=["status"])
        version.status = ModelVersion.Status.CHAMPION
        version.promoted_at = timezone.now()
        version.save(update_fields=["status", "promoted_at"])
        event = PromotionEvent.objects.create(version=version, previous_champion=previous, action=action, user=user, reason=reason)
    logger.info("Champion is now %s (was %s): %s", version, previous, reason)
    return event


def model_version_rollback(*, user, reason: str) -> PromotionEvent:
    """Promote the previous champion again, now (its index is rebuilt first)."""
    previous = selectors.previous_champion_get()
    if previous is None:
        raise ValidationError(_("No previous champion: nothing to restore."))
    return model_version_promote(version=previous, user=user, reason=reason, action=PromotionEvent.Action.ROLLBACK)


def model_version_mark_broken(*, version: ModelVersion, reason: str) -> ModelVersion:
    """Take a version with damaged artifacts out of service; returns the version that serves now.

    A broken champion is replaced at once by the champion before it (if it is still sound) or the base model,
    recorded as a rollback; the replacement's index is then rebuilt in the background.
    """
    with transaction.atomic():
        version = ModelVersion.objects.select_for_update().get(pk=version.pk)
        was_champion = version.status == ModelVersion.Status.CHAMPION
        if version.status != ModelVersion.Status.BROKEN:
            _set_status(version, ModelVersion.Status.BROKEN)
        if not was_champion:
            return selectors.champion_version_get()
        event = PromotionEvent.objects.filter(version=version, previous_champion__isnull=False).select_related("previous_champion").first()
        fallback = event.previous_champion if event else None
        if fallback is None or fallback.status not in (ModelVersion.Status.ARCHIVED, ModelVersion.Status.READY):
            fallback = _base_version_get_or_create()
        fallback.status = ModelVersion.Status.CHAMPION
        fallback.promoted_at = timezone.now()
        fallback.save(update_fields=["status", "promoted_at"])
        PromotionEvent.objects.create(
            version=fallback, previous_champion=version, action=PromotionEvent.Action.ROLLBACK, user=None,
            reason=stored(gettext_noop("Automatic rollback: %(reason)s"), reason=reason),
        )
        indexing.index_rebuild_enqueue(version=fallback)
    logger.error("Model version %s is broken (%s); %s serves instead", version, reason, fallback)
    return fallback


def servable_version(*, version: ModelVersion) -> ModelVersion:
    """``version`` when its artifact files are intact; otherwise it is marked broken and what serves instead is returned."""
    try:
        artifacts.verify_artifacts(version)
    except artifacts.ArtifactCorrupted as error:
        return model_version_mark_broken(version=version, reason=str(error))
    return version


def _set_status(version: ModelVersion, status: str) -> None:
    version.status = status
    version.save(update_fields=["status"])
