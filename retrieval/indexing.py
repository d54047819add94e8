"""Vector indexes of model versions: full builds (a job of kind ``index_build``), one entry's update as a delta,
their artifacts in the artifact store, and the served index search reads (built on first use when missing)."""
from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _, gettext_noop

from config.stored_messages import stored
from glossary.models import Entry
from jobs import runner
from jobs.models import Job
from retrieval import artifacts, encoder_check, encoding, selectors, serving
from retrieval.models import IndexState, ModelVersion
from retrieval.passages import Passage, entry_passages
from retrieval.vector_index import EntryDelta, VectorIndex, compaction_due

logger = logging.getLogger(__name__)

# An entry saved this long before a full build read the glossary is taken as read by it (its transaction
# had long committed), so its queued incremental update can be skipped.
COMMIT_LAG = timedelta(seconds=10)
INDEX_BUILD_KIND = "index_build"


def _passages_of(entry: Entry) -> list[Passage]:
    # Known questions (retrieval.labelled) are passages of their entry: the instant fix of an expert's correction.
    from retrieval.labelled import known_question_texts

    return entry_passages(
        entry_id=entry.pk, term=entry.term, definition=entry.definition, contexts=entry.contexts, questions=known_question_texts(entry_id=entry.pk)
    )


def _load_vector_index(state: IndexState) -> VectorIndex:
    return serving.load_vector_index(state.artifact_path, base_revision=state.base_revision, revision=state.revision)


def _delete_stale_artifacts(folder: str, *, keep_from: int, revision: int) -> None:
    """Drop the full artifacts before ``keep_from`` and every delta before ``revision``, a full artifact (a
    reader still reading those deltas falls back to it)."""
    storage = artifacts.artifact_storage()
    _, files = storage.listdir(folder)
    for name in files:
        number = name[1:-4]
        if not (name.endswith(".npz") and number.isdigit()):
            continue
        if (name.startswith("r") and int(number) < keep_from) or (name.startswith("d") and int(number) < revision):
            storage.delete(f"{folder}/{name}")


def _write_artifact(path: str, data: bytes) -> None:
    storage = artifacts.artifact_storage()
    if storage.exists(path):
        storage.delete(path)  # left over by a transaction that rolled back
    storage.save(path, ContentFile(data))


def _save_revision(state: IndexState, index: VectorIndex, **changes: Any) -> IndexState:
    """Store ``index`` in full as the next revision of ``state`` (locked by the caller) and drop stale artifacts."""
    revision = state.revision + 1
    folder = f"indexes/v{state.version.number}"
    path = f"{folder}/r{revision}.npz"
    _write_artifact(path, index.to_bytes())
    previous_base = state.base_revision
    state.revision = state.base_revision = revision
    state.artifact_path = path
    state.delta_passages = 0
    state.passage_count = len(index.passages)
    state.entry_count = len({passage.entry_id for passage in index.passages})
    state.error = ""
    for name, value in changes.items():
        setattr(state, name, value)
    state.save()
    serving.forget(state.version_id)
    # Keep the previous full artifact: another process may be reading it right now.
    _delete_stale_artifacts(folder, keep_from=previous_base, revision=revision)
    return state


def _save_delta(state: IndexState, delta: EntryDelta) -> IndexState:
    """Store one entry's change as the next revision of ``state`` (locked by the caller): a file the size of the
    entry, whatever the size of the index; fold the deltas into a full artifact when enough have piled up."""
    revision = state.revision + 1
    _write_artifact(serving.delta_path(state.artifact_path, revision), delta.to_bytes())
    state.revision = revision
    state.delta_passages += max(1, len(delta.passages))
    state.entry_count = selectors.validated_entries().count()
    state.error = ""
    state.save()
    serving.forget(state.version_id)
    if compaction_due(delta_passages=state.delta_passages, passage_count=state.passage_count):
        index = _load_vector_index(state)
        state = _save_revision(state, index)
        logger.info("Index of %s: deltas folded into revision %s (%s passages)", state.version, state.revision, state.passage_count)
    return state


def _record_index_failure(version: ModelVersion, error: Exception) -> None:
    IndexState.objects.filter(version=version).update(error=f"{type(error).__name__}: {error}", updated_at=timezone.now())


class IndexIncomplete(RuntimeError):
    """A built index lacks validated entries: it is not published (the previous revision keeps serving)."""


def index_rebuild(*, version: ModelVersion, job: Job | None = None) -> IndexState:
    """Encode every validated entry with the version's model and store the result as the next revision.

    A build is a job (kind ``index_build``): ``job`` when a worker claimed one, else one is recorded for this
    process. Edits committed while encoding are caught up under the lock, and the result is published only if
    it covers every validated entry. A build whose worker died is restarted from scratch (the sweep, or the
    message delivered again): nothing half-built is ever published.
    """
    if job is None:
        job = runner.job_create(kind=INDEX_BUILD_KIND, params={"version_id": version.pk})
        runner.job_claim(job=job)
    state, _created = IndexState.objects.get_or_create(version=version)
    IndexState.objects.filter(pk=state.pk).update(build_job=job, updated_at=timezone.now())
    try:
        read_at = timezone.now()
        entries = list(selectors.validated_entries())
        passages = [passage for entry in entries for passage in _passages_of(entry)]
        runner.job_log(job=job, message=stored(gettext_noop("%(entries)s entries, %(passages)s passages to encode."), entries=len(entries), passages=len(passages)))
        index = VectorIndex.build(passages, encoding.encode_documents_with(version, [passage.text for passage in passages]))
        with transaction.atomic():
            state = IndexState.objects.select_for_update().select_related("version").get(pk=state.pk)
            _catch_up(index, version=version, read={entry.pk: entry.updated_at for entry in entries})
            _check_coverage(index)
            state = _save_revision(state, index, entries_read_at=read_at, built_at=timezone.now())
    except Exception as error:
        _record_index_failure(version, error)
        runner.job_fail(job=job, error=f"{type(error).__name__}: {error}")
        raise
    runner.job_succeed(job=job, message=stored(gettext_noop("Revision %(revision)s: %(passages)s passages."), revision=state.revision, passages=state.passage_count))
    logger.info("Index of %s rebuilt: revision %s, %s passages", version, state.revision, state.passage_count)
    encoder_check.encoders_ensure(version=version)  # ONNX query encoders, built and checked once per version
    return state


def _check_coverage(index: VectorIndex) -> None:
    """Every validated entry (as of now, the caller holds the lock) must be in the index about to be published."""
    indexed = {passage.entry_id for passage in index.passages}
    missing = set(selectors.validated_entries().values_list("pk", flat=True)) - indexed
    if missing:
        raise IndexIncomplete(f"{len(missing)} validated entries missing from the built index (e.g. {sorted(missing)[:5]})")


def index_build_execute(*, version_id: int, job_id: int | None = None, worker: str = "") -> IndexState | None:
    """A worker's index build: the job claimed (once), then ``index_rebuild``."""
    version = ModelVersion.objects.get(pk=version_id)
    job = Job.objects.filter(pk=job_id).first() if job_id else None
    if job is not None and not runner.job_claim(job=job, worker=worker):
        return None
    return index_rebuild(version=version, job=job)


def index_build_send(job: Job) -> str:
    from retrieval import tasks

    return tasks.index_rebuild.delay(job.params["version_id"], job.pk).id


def _catch_up(index: VectorIndex, *, version: ModelVersion, read: dict[int, Any]) -> None:
    """Apply the glossary edits committed while the index was being encoded (the caller holds the lock).

    ``read`` maps each entry the build encoded to its ``updated_at`` then; any other stamp now means an edit.
    """
    current = dict(selectors.validated_entries().values_list("pk", "updated_at"))
    for entry_id in read.keys() - current.keys():
        index.remove_entry(entry_id)
    changed = [entry_id for entry_id, stamp in current.items() if read.get(entry_id) != stamp]
    for entry in selectors.validated_entries().filter(pk__in=changed):
        passages = _passages_of(entry)
        index.upsert_entry(entry.pk, passages, encoding.encode_documents_with(version, [p.text for p in passages]))


def _entry_stamp(entry: Entry | None) -> tuple | None:
    return None if entry is None else (entry.revision, entry.status, entry.updated_at)


def index_update_entry(*, entry_id: int) -> None:
    """Re-embed only this entry's passages in the serving indexes, or remove it when deleted or not validated.

    Updates the champion's index and that of any version being promoted; a version without an index yet
    gets the entry with its first full build.
    """
    for version in selectors.serving_versions():
        try:
            _update_entry_in(version=version, entry_id=entry_id)
        except Exception as error:
            _record_index_failure(version, error)
            raise


def _update_entry_in(*, version: ModelVersion, entry_id: int) -> None:
    state = selectors.index_state_get(version=version)
    if state is None or not state.has_artifact:
        return
    entry = Entry.objects.filter(pk=entry_id).first()
    if entry is not None and state.entries_read_at and entry.updated_at < state.entries_read_at - COMMIT_LAG:
        return  # the last full build already read this very version of the entry

    def encoded(current: Entry | None) -> tuple[list[Passage], Any]:
        if current is None or current.status != Entry.Status.VALIDATED:
            return [], None
        passages = _passages_of(current)
        return passages, encoding.encode_documents_with(version, [p.text for p in passages])

    # Encode outside the lock; re-encode under it only if the entry changed meanwhile.
    passages, vectors = encoded(entry)
    with transaction.atomic():
        state = IndexState.objects.select_for_update().select_related("version").get(pk=state.pk)
        current = Entry.objects.filter(pk=entry_id).first()
        if _entry_stamp(current) != _entry_stamp(entry):
            passages, vectors = encoded(current)
        if passages:
            _save_delta(state, EntryDelta(entry_id, tuple(passages), vectors))
        elif _may_be_indexed(entry_id):
            _save_delta(state, EntryDelta.removal(entry_id))
        # else: neither indexed nor to be indexed, nothing changes


def _may_be_indexed(entry_id: int) -> bool:
    """Whether the entry was ever validated (deleted entries included): only then can an index hold it."""
    return Entry.history.filter(id=entry_id, status=Entry.Status.VALIDATED).exists()


def index_entry_enqueue(*, entry_id: int) -> None:
    """After the current transaction commits, have a worker update the serving indexes for this entry."""
    from retrieval import tasks

    transaction.on_commit(lambda: tasks.enqueue(tasks.index_entry, entry_id))


def index_rebuild_enqueue(*, version: ModelVersion) -> None:
    """Have a worker rebuild the version's index; a build already queued or running for it catches up with
    every edit committed before it publishes, so none is queued twice."""
    try:
        with transaction.atomic():
            job = runner.job_create(kind=INDEX_BUILD_KIND, params={"version_id": version.pk}, lock=f"{INDEX_BUILD_KIND}:{version.pk}")
            state, _created = IndexState.objects.get_or_create(version=version)
            IndexState.objects.filter(pk=state.pk).update(build_job=job)
    except runner.JobLocked:
        return
    runner.enqueue_on_commit(job)


def index_rebuild_after_bulk(*, entry_count: int) -> None:
    """Rebuild (in a worker) every serving index that already exists; a missing one is built on first use."""
    if not entry_count:
        return
    for version in selectors.serving_versions():
        state = selectors.index_state_get(version=version)
        if state is not None and state.has_artifact:
            index_rebuild_enqueue(version=version)


class SearchUnavailableError(RuntimeError):
    """Search cannot run: the version's index cannot be built or loaded (the message says why)."""


def served_index_get(*, version: ModelVersion) -> serving.ServedIndex:
    """The version's served index; when none was ever built, build it now (fine for small glossaries)."""
    served = serving.served_index(version)
    if served is None:
        try:
            index_rebuild(version=version)
        except Exception as error:
            logger.exception("No index for %s and building one failed", version)
            raise SearchUnavailableError(
                _("Search is unavailable: the index of version %(version)s could not be built (%(error)s).")
                % {"version": version, "error": error}
            ) from error
        served = serving.served_index(version)
    return served
