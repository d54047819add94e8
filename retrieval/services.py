"""Every write of the retrieval app, and search and answers (views, API, tasks and commands call these)."""
from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import get_language

from glossary.models import Entry
from glossary.services import entry_create
from retrieval import encoder_check, labelled, selectors, serving
from retrieval.answers import Answer, LLMClient, ambiguous_answer, ambiguous_senses, extractive_answer, generative_answer, translate_to_french
from retrieval.catalogue import UnknownModelError
from retrieval.hybrid import MODES as SEARCH_MODES
from retrieval.hybrid import SearchHit, fuse
from jobs import runner
from jobs.models import Job
from retrieval.models import Flag, IndexState, ModelVersion, PromotionEvent, QuestionLog
from retrieval.passages import EntryData, Passage, entry_passages, is_known_question
from retrieval.preprocess import ProcessedQuery, preprocess_query
from retrieval.vector_index import EntryDelta, VectorIndex, compaction_due

logger = logging.getLogger(__name__)

# An entry saved this long before a full build read the glossary is taken as read by it (its transaction
# had long committed), so its queued incremental update can be skipped.
COMMIT_LAG = timedelta(seconds=10)
FLAG_COMMENT_MAX_CHARS = 2000


# ---- model versions ---------------------------------------------------------------------------------

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
) -> ModelVersion:
    """Record a new version (the training capability calls this once its artifacts are stored)."""
    try:
        selectors.model_spec_get(name=base_model)
    except UnknownModelError as error:
        raise ValidationError({"base_model": str(error)}) from None
    if status not in (ModelVersion.Status.READY, ModelVersion.Status.FAILED, ModelVersion.Status.BROKEN):
        raise ValidationError(_("Une nouvelle version ne peut être que prête, échouée ou inutilisable."))
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
                    created_by=created_by,
                    status=status,
                )
        except IntegrityError:
            continue  # another process took this number
    raise ValidationError(_("Impossible d'attribuer un numéro de version : réessayez."))


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
        raise ValidationError(_("Aucune championne précédente : rien à restaurer."))
    return model_version_request_promotion(version=previous, user=user, reason=reason, action=PromotionEvent.Action.ROLLBACK)


def _check_promotable(version: ModelVersion) -> None:
    if version.status == ModelVersion.Status.CHAMPION:
        raise ValidationError(_("La version %(version)s sert déjà.") % {"version": version})
    if version.status not in (ModelVersion.Status.READY, ModelVersion.Status.ARCHIVED, ModelVersion.Status.PROMOTING):
        raise ValidationError(
            _("La version %(version)s ne peut pas être promue (statut : %(status)s).") % {"version": version, "status": version.get_status_display()}
        )


def model_version_promote(*, version: ModelVersion, user, reason: str, action: str = PromotionEvent.Action.PROMOTE) -> PromotionEvent:
    """Build the version's index, then make it the champion in one transaction.

    Until the switch, searches keep using the old champion and its index; after it, the new champion and
    its (already built) index: never a gap, never a version served with another version's index.
    """
    if action not in PromotionEvent.Action.values:
        raise ValidationError(_("Action inconnue : %(action)s.") % {"action": action})
    _check_promotable(version)
    if version.status != ModelVersion.Status.PROMOTING:
        # While promoting, glossary edits also reach this version's index (see index_update_entry).
        version.status = ModelVersion.Status.PROMOTING
        version.save(update_fields=["status"])
    try:
        index_rebuild(version=version)
    except Exception as error:
        from retrieval.embedding import ModelUnavailableError  # here: the module imports sentence-transformers

        # A model that cannot be loaded will not load next time either; anything else may be retried.
        if isinstance(error, (ModelUnavailableError, serving.ArtifactCorrupted)):
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
        raise ValidationError(_("Aucune championne précédente : rien à restaurer."))
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
            fallback, _created = ModelVersion.objects.get_or_create(number=0, defaults={"base_model": settings.DEFAULT_EMBEDDING_MODEL})
        fallback.status = ModelVersion.Status.CHAMPION
        fallback.promoted_at = timezone.now()
        fallback.save(update_fields=["status", "promoted_at"])
        PromotionEvent.objects.create(
            version=fallback, previous_champion=version, action=PromotionEvent.Action.ROLLBACK, user=None,
            reason=_("Retour automatique : %(reason)s") % {"reason": reason},
        )
        index_rebuild_enqueue(version=fallback)
    logger.error("Model version %s is broken (%s); %s serves instead", version, reason, fallback)
    return fallback


def servable_version(*, version: ModelVersion) -> ModelVersion:
    """``version`` when its artifact files are intact; otherwise it is marked broken and what serves instead is returned."""
    try:
        serving.verify_artifacts(version)
    except serving.ArtifactCorrupted as error:
        return model_version_mark_broken(version=version, reason=str(error))
    return version


def _set_status(version: ModelVersion, status: str) -> None:
    version.status = status
    version.save(update_fields=["status"])


# ---- indexes ----------------------------------------------------------------------------------------

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
    storage = serving.artifact_storage()
    _, files = storage.listdir(folder)
    for name in files:
        number = name[1:-4]
        if not (name.endswith(".npz") and number.isdigit()):
            continue
        if (name.startswith("r") and int(number) < keep_from) or (name.startswith("d") and int(number) < revision):
            storage.delete(f"{folder}/{name}")


def _write_artifact(path: str, data: bytes) -> None:
    storage = serving.artifact_storage()
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


INDEX_BUILD_KIND = "index_build"


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
        runner.job_log(job=job, message=f"{len(entries)} entrées, {len(passages)} passages à encoder.")
        index = VectorIndex.build(passages, serving.encode_documents_with(version, [passage.text for passage in passages]))
        with transaction.atomic():
            state = IndexState.objects.select_for_update().select_related("version").get(pk=state.pk)
            _catch_up(index, version=version, read={entry.pk: entry.updated_at for entry in entries})
            _check_coverage(index)
            state = _save_revision(state, index, entries_read_at=read_at, built_at=timezone.now())
    except Exception as error:
        _record_index_failure(version, error)
        runner.job_fail(job=job, error=f"{type(error).__name__}: {error}")
        raise
    runner.job_succeed(job=job, message=f"Révision {state.revision} : {state.passage_count} passages.")
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
        index.upsert_entry(entry.pk, passages, serving.encode_documents_with(version, [p.text for p in passages]))


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
        return passages, serving.encode_documents_with(version, [p.text for p in passages])

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
                _("La recherche est indisponible : l'index de la version %(version)s n'a pas pu être construit (%(error)s).")
                % {"version": version, "error": error}
            ) from error
        served = serving.served_index(version)
    return served


# ---- search and answers -----------------------------------------------------------------------------

@dataclass
class RetrievedEntry:
    """A search hit with the entry it points to."""

    hit: SearchHit
    entry: EntryData
    domain_id: int | None = None


@dataclass
class SearchResult:
    query: str
    processed: ProcessedQuery | None
    version: ModelVersion
    mode: str
    index_revision: int
    hits: list[RetrievedEntry]
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def hits_with_entries(self) -> list[tuple[SearchHit, EntryData]]:
        return [(item.hit, item.entry) for item in self.hits]


def llm_client() -> LLMClient | None:
    """The configured OpenAI-compatible LLM, or None when LLM_BASE_URL or LLM_MODEL is unset."""
    if not (settings.LLM_BASE_URL and settings.LLM_MODEL):
        return None
    return LLMClient(base_url=settings.LLM_BASE_URL, model=settings.LLM_MODEL, api_key=settings.LLM_API_KEY, timeout=settings.LLM_TIMEOUT_SECONDS)


def check_query(query: str) -> str:
    text = (query or "").strip()
    if not text:
        raise ValidationError(_("La question est vide."), code="empty")
    if len(text) > settings.QUERY_MAX_CHARS:
        raise ValidationError(
            _("La question dépasse %(limit)s caractères.") % {"limit": settings.QUERY_MAX_CHARS}, code="too_long"
        )
    return text


def _entry_data(entry: Entry) -> EntryData:
    return EntryData(
        id=entry.pk,
        term=entry.term,
        definition=entry.definition,
        kind=entry.kind,
        variants=tuple(entry.variants),
        contexts=tuple(entry.contexts),
        domain=entry.domain.name if entry.domain else "",
    )


def search(
    *,
    query: str,
    top_k: int = 10,
    version: ModelVersion | None = None,
    mode: str = "hybrid",
    preprocess: bool = True,
    exclude_known_questions: bool = False,
) -> SearchResult:
    """Hybrid (or dense-only / lexical-only) search of the validated glossary with a version's model.

    ``exclude_known_questions`` leaves the known-question passages (retrieval.labelled) out of the ranking: what
    evaluating a model needs, or a held-out question would be answered by its own text.
    """
    text = check_query(query)
    if mode not in SEARCH_MODES:
        raise ValidationError(_("Mode de recherche inconnu : %(mode)s.") % {"mode": mode}, code="mode")
    if not 1 <= top_k <= 100:
        raise ValidationError(_("top_k doit être compris entre 1 et 100."), code="top_k")
    timings: dict[str, float] = {}
    started = time.perf_counter()
    requested = version
    version = servable_version(version=version or selectors.champion_version_get())
    if requested is not None and requested.pk != version.pk and requested.status != ModelVersion.Status.CHAMPION:
        raise ValidationError(_("La version %(version)s est inutilisable : ses fichiers sont endommagés.") % {"version": requested}, code="broken")
    served = served_index_get(version=version)
    timings["index"] = _elapsed_ms(started)

    step = time.perf_counter()
    processed = None
    final = text
    if preprocess:
        llm = llm_client()
        processed = preprocess_query(
            text,
            vocabulary=served.vocabulary,
            translate=(lambda value: translate_to_french(value, llm=llm)) if llm else None,
        )
        final = processed.final
    timings["preprocess"] = _elapsed_ms(step)

    candidates = max(top_k * 5, 50)
    exact = served.terms.match(text, processed.corrected if processed else text, language=processed.language if processed else None)
    known = labelled.known_questions_of(version_id=version.pk, revision=served.revision, passages=served.vectors.passages)
    dense: list[tuple[Passage, float]] = []
    if mode != "lexical":
        step = time.perf_counter()
        query_vector = serving.encode_search_queries(version, [final])[0]
        if exclude_known_questions and known.count:
            dense = [item for item in served.vectors.search(query_vector, top_k=candidates + known.count) if not is_known_question(item[0])][:candidates]
        else:
            dense = served.vectors.search(query_vector, top_k=candidates)
        dense += _exact_passages_missing(served.vectors, query_vector, exact, dense, exclude_known_questions=exclude_known_questions)
        timings["dense"] = _elapsed_ms(step)
    lexical: list[tuple[int, float]] = []
    if mode != "dense":
        step = time.perf_counter()
        lexical = served.lexical.search(final, top_k=candidates)
        if not exclude_known_questions and known.count:
            lexical = labelled.with_known_questions(lexical, known.matches(text, processed.corrected if processed else text))
        timings["lexical"] = _elapsed_ms(step)
    hits = fuse(dense=dense, lexical=lexical, exact_entry_ids=exact, top_k=top_k, mode=mode)

    entries = selectors.entries_by_id(entry_ids=[hit.entry_id for hit in hits])
    # An entry deleted or unvalidated since the index revision was loaded is not shown.
    retrieved = [
        RetrievedEntry(hit=hit, entry=_entry_data(entries[hit.entry_id]), domain_id=entries[hit.entry_id].domain_id)
        for hit in hits
        if hit.entry_id in entries and entries[hit.entry_id].status == Entry.Status.VALIDATED
    ]
    timings["total"] = _elapsed_ms(started)
    return SearchResult(
        query=text, processed=processed, version=version, mode=mode, index_revision=served.revision, hits=retrieved, timings_ms=timings
    )


def _exact_passages_missing(
    index: VectorIndex, query_vector, exact_entry_ids: set[int], dense: list[tuple[Passage, float]], *, exclude_known_questions: bool = False
) -> list[tuple[Passage, float]]:
    """Scored passages of exactly matched entries the dense top list missed, so their hits show a passage."""
    missing = exact_entry_ids - {passage.entry_id for passage, _ in dense}
    if not missing:
        return []
    rows = [
        row for row, passage in enumerate(index.passages)
        if passage.entry_id in missing and not (exclude_known_questions and is_known_question(passage))
    ]
    if not rows:
        return []
    scores = index.matrix[rows] @ query_vector
    return [(index.passages[row], float(score)) for row, score in zip(rows, scores)]


def _elapsed_ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 2)


def hit_as_dict(item: RetrievedEntry) -> dict[str, Any]:
    """A hit as JSON (question log, flags, API)."""
    hit, passage = item.hit, item.hit.passage
    return {
        "entry_id": hit.entry_id,
        "term": item.entry.term,
        "domain": item.entry.domain,
        # Homonyms ("CAF" x 2) are told apart by their definition and domain in flag forms and lists.
        "definition": item.entry.definition,
        "passage_type": passage.passage_type if passage else None,
        "passage_position": passage.position if passage else None,
        "passage_text": passage.text if passage else item.entry.definition,
        "dense_score": hit.dense_score,
        "lexical_score": hit.lexical_score,
        "dense_rank": hit.dense_rank,
        "lexical_rank": hit.lexical_rank,
        "fused_score": hit.fused_score,
        "rank": hit.rank,
        "exact_match": hit.exact_match,
    }


def processed_query_as_dict(processed: ProcessedQuery | None) -> dict[str, Any]:
    if processed is None:
        return {}
    data = asdict(processed)
    data["corrections"] = [list(pair) for pair in processed.corrections]
    return data


def _uncertainty(hits: list[RetrievedEntry]) -> tuple[float | None, float | None]:
    """Best dense score and its lead over the second entry: small leads are what active learning asks about."""
    scores = [item.hit.dense_score for item in hits if item.hit.dense_score is not None]
    if not scores:
        return None, None
    return scores[0], (scores[0] - scores[1]) if len(scores) > 1 else None


def answer_question(*, question: str, user, version: ModelVersion | None = None) -> tuple[Answer, QuestionLog]:
    """Search, answer (generative when an LLM is configured, else extractive) and log everything."""
    started = time.perf_counter()
    result = search(query=question, version=version, top_k=settings.ANSWER_TOP_K)
    llm = llm_client()
    threshold = settings.ANSWER_MIN_SCORE
    # Several senses of the asked acronym and nothing in the question to choose: say so, list them (issue #12).
    senses = ambiguous_senses(question=result.query, hits_with_entries=result.hits_with_entries)
    # The answer's fixed words follow the asker's UI language (issue #17).
    language = get_language() or settings.LANGUAGE_CODE
    if senses:
        answer = ambiguous_answer(senses=senses, hits_with_entries=result.hits_with_entries, language=language)
    elif llm is not None:
        answer = generative_answer(
            question=result.query, hits_with_entries=result.hits_with_entries, llm=llm, threshold=threshold, language=language
        )
    else:
        answer = extractive_answer(hits_with_entries=result.hits_with_entries, threshold=threshold, language=language)
    top_score, margin = _uncertainty(result.hits)
    log = QuestionLog.objects.create(
        user=user if getattr(user, "is_authenticated", False) else None,
        question=result.query,
        processed_query=processed_query_as_dict(result.processed),
        version=result.version,
        mode=result.mode,
        hits=[hit_as_dict(item) for item in result.hits],
        answer_text=answer.text,
        answer_mode=answer.mode,
        fallback_reason=answer.fallback_reason or "",
        sources=[asdict(source) for source in answer.sources],
        latency_ms=_elapsed_ms(started),
        no_answer=answer.mode == "none",
        top_score=top_score,
        score_margin=margin,
        ambiguous_senses=[asdict(sense) for sense in senses],
    )
    return answer, log


# ---- flags ------------------------------------------------------------------------------------------

def flag_create(
    *,
    question_log: QuestionLog,
    user,
    reason: str,
    correct_entry: Entry | None = None,
    new_entry: dict[str, Any] | None = None,
    comment: str = "",
) -> Flag:
    """Record that an answer was wrong; ``new_entry`` (entry_create's arguments) adds the missing entry in place."""
    if reason not in Flag.Reason.values:
        raise ValidationError({"reason": _("Motif inconnu : %(reason)s.") % {"reason": reason}})
    if correct_entry is not None and new_entry:
        raise ValidationError(_("Choisissez la bonne entrée ou créez-en une, pas les deux."))
    if len(comment or "") > FLAG_COMMENT_MAX_CHARS:
        raise ValidationError({"comment": _("Le commentaire dépasse %(limit)s caractères.") % {"limit": FLAG_COMMENT_MAX_CHARS}})
    with transaction.atomic():
        if new_entry:
            correct_entry = entry_create(**{**new_entry, "created_by": user})
        hits = question_log.hits or []
        hit_entry_ids = [hit["entry_id"] for hit in hits]
        if correct_entry is not None and correct_entry.pk in hit_entry_ids:
            above = hit_entry_ids[: hit_entry_ids.index(correct_entry.pk)]
        elif correct_entry is not None:
            above = hit_entry_ids
        else:
            above = []
        domain_id = correct_entry.domain_id if correct_entry is not None else None
        if domain_id is None and hit_entry_ids:
            domain_id = Entry.objects.filter(pk=hit_entry_ids[0]).values_list("domain_id", flat=True).first()
        flag = Flag.objects.create(
            question_log=question_log,
            created_by=user,
            reason=reason,
            correct_entry=correct_entry,
            comment=(comment or "").strip(),
            retrieved=hits,
            wrongly_ranked_entry_ids=above,
            version=question_log.version,
            domain_id=domain_id,
        )
        # A flag with its right entry is a corrected question: served at once as a known question of that entry.
        labelled.labelled_question_from_flag(flag=flag, user=user)
        flag.refresh_from_db()
        return flag


def flag_set_status(*, flag: Flag, status: str, user) -> Flag:
    """Open, used (by a training run) or dismissed."""
    if status not in Flag.Status.values:
        raise ValidationError({"status": _("Statut inconnu : %(status)s.") % {"status": status}})
    flag.status = status
    flag.status_changed_by = user
    flag.status_changed_at = timezone.now()
    flag.save(update_fields=["status", "status_changed_by", "status_changed_at"])
    return flag


def flag_set_correct_entry(*, flag: Flag, correct_entry_id: int | None, wrongly_ranked_entry_ids: list[int], domain_id: int | None) -> Flag:
    """Say which entry answers a flagged question (an expert's decision in the workbench, or its undo)."""
    flag.correct_entry_id = correct_entry_id
    flag.wrongly_ranked_entry_ids = list(wrongly_ranked_entry_ids)
    flag.domain_id = domain_id
    flag.save(update_fields=["correct_entry", "wrongly_ranked_entry_ids", "domain"])
    return flag
