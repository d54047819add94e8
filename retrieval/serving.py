"""The indexes a process serves search from, one per model version, kept up to date.

Each version's index is loaded once per process. Before every search the process reads the version's index
revision (a cheap query, cached for ``settings.INDEX_REVISION_CHECK_SECONDS``); when the revision moved it
applies only the new entry deltas to the index it holds, or loads the full artifact when that changed. The lexical
index, the exact-term lookup and the pre-processing vocabulary come from the validated glossary entries and are
rebuilt together with the vector index (from the entries held in memory, re-reading only the changed ones), so the
three always describe the same glossary. Models and query encoders: retrieval.encoding; artifact files:
retrieval.artifacts.
"""
from __future__ import annotations

import copy
import posixpath
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace

from django.conf import settings

from config.recent import RecentReads
from retrieval import artifacts, encoding, selectors
from retrieval.lexical import OVERLAY_MAX_ENTRIES, LexicalIndex, lexical_document
from retrieval.models import IndexState, ModelVersion
from retrieval.passages import EntryData
from retrieval.preprocess import LayeredVocabulary, Vocabulary, build_vocabulary
from retrieval.terms import LayeredTermLookup, TermLookup
from retrieval.vector_index import EntryDelta, FaissVectorIndex, VectorIndex

# How many versions' indexes a process keeps (the champion, one being promoted, one being compared).
INDEX_CACHE_SIZE = 3

_lock = threading.RLock()
_indexes: OrderedDict[int, "ServedIndex"] = OrderedDict()
_revision_checks: dict[int, tuple[float, "IndexRevision"]] = {}
# The versions that references ("champion", "v3") named when last read, by reference, and how many are kept.
VERSION_REF_CACHE_SIZE = 32
_version_refs: RecentReads[ModelVersion] = RecentReads(VERSION_REF_CACHE_SIZE)


@dataclass
class ServedIndex:
    version_id: int
    revision: int
    vectors: VectorIndex
    lexical: LexicalIndex
    terms: TermLookup | LayeredTermLookup
    vocabulary: Vocabulary | LayeredVocabulary
    entry_count: int
    artifact_path: str = ""
    # The glossary side as of its last full build, and the entries changed since (None: no longer indexed).
    base_entries: dict[int, EntryData] = field(default_factory=dict)
    overlay: dict[int, EntryData | None] = field(default_factory=dict)
    base_terms: TermLookup | None = None
    base_vocabulary: Vocabulary | None = None

    def entry(self, entry_id: int) -> EntryData | None:
        """The entry as this index serves it (None when it does not hold it)."""
        if entry_id in self.overlay:
            return self.overlay[entry_id]
        return self.base_entries.get(entry_id)


@dataclass(frozen=True)
class IndexRevision:
    revision: int
    artifact_path: str
    base_revision: int


def delta_path(artifact_path: str, revision: int) -> str:
    """Where revision ``revision``'s entry delta lies: next to the full artifact it applies to."""
    return posixpath.join(posixpath.dirname(artifact_path), f"d{revision}.npz")


def read_deltas(artifact_path: str, *, after: int, until: int) -> list[EntryDelta]:
    """The entry deltas of revisions ``after + 1`` to ``until`` (FileNotFoundError when one was folded away)."""
    storage = artifacts.artifact_storage()
    deltas = []
    for revision in range(after + 1, until + 1):
        with storage.open(delta_path(artifact_path, revision), "rb") as handle:
            deltas.append(EntryDelta.from_bytes(handle.read()))
    return deltas


def load_vector_index(artifact_path: str, *, base_revision: int, revision: int, index_class: type[VectorIndex] = VectorIndex) -> VectorIndex:
    """The index at ``revision``: the full artifact, then the deltas written since."""
    with artifacts.artifact_storage().open(artifact_path, "rb") as handle:
        index = index_class.from_bytes(handle.read())
    for delta in read_deltas(artifact_path, after=base_revision, until=revision):
        delta.apply_to(index)
    return index


def _revision_of(version_id: int, *, fresh: bool = False) -> IndexRevision | None:
    """The version's index revision, read at most every INDEX_REVISION_CHECK_SECONDS (``fresh``: read it now)."""
    ttl = getattr(settings, "INDEX_REVISION_CHECK_SECONDS", 1.0)
    now = time.monotonic()
    cached = _revision_checks.get(version_id)
    if cached and now - cached[0] < ttl and not fresh:
        return cached[1]
    row = IndexState.objects.filter(version_id=version_id).exclude(artifact_path="").values_list("revision", "artifact_path", "base_revision").first()
    if row is None:
        _revision_checks.pop(version_id, None)
        return None
    current = IndexRevision(*row)
    _revision_checks[version_id] = (now, current)
    return current


def vector_index_class() -> type[VectorIndex]:
    """The exact numpy scan by default; ``VECTOR_INDEX=faiss`` serves approximate HNSW search for very large glossaries."""
    return FaissVectorIndex if settings.VECTOR_INDEX == "faiss" else VectorIndex


def served_index(version: ModelVersion) -> ServedIndex | None:
    """The version's index as this process serves it, caught up when its revision moved; None when never built."""
    for attempt in range(3):
        current = _revision_of(version.pk)
        if current is None:
            return None
        try:
            return _served_at(version.pk, current)
        except FileNotFoundError:
            # The worker folded the deltas into a new full artifact after this process read the revision (and
            # deleted them): read the revision again.
            if attempt == 2:
                raise
            forget(version.pk)
    raise AssertionError("unreachable")


def _served_at(version_id: int, current: IndexRevision) -> ServedIndex:
    with _lock:
        cached = _indexes.get(version_id)
        if cached is not None and cached.revision == current.revision:
            _indexes.move_to_end(version_id)
            return cached
        served = None
        if cached is not None and cached.artifact_path == current.artifact_path and cached.revision < current.revision:
            try:
                served = _caught_up(cached, current)
            except FileNotFoundError:
                served = None  # the deltas were folded into a new full artifact meanwhile: load that
                current = _revision_of(version_id, fresh=True) or current
        if served is None:
            vectors = load_vector_index(
                current.artifact_path, base_revision=current.base_revision, revision=current.revision, index_class=vector_index_class()
            )
            served = _glossary_side(version_id=version_id, revision=current.revision, artifact_path=current.artifact_path, vectors=vectors)
        _indexes[version_id] = served
        _indexes.move_to_end(version_id)
        while len(_indexes) > INDEX_CACHE_SIZE:
            _indexes.popitem(last=False)
        return served


def _names(entry: EntryData) -> list[tuple[int, str]]:
    return [(entry.id, name) for name in (entry.term, *entry.variants)]


def _caught_up(cached: ServedIndex, current: IndexRevision) -> ServedIndex:
    """``cached`` with the deltas written since its revision applied: work proportional to the edits, without
    re-reading the full artifact or the whole glossary. The glossary side keeps its full build and lays the
    changed entries over it (BM25, term lookup, vocabulary), until OVERLAY_MAX_ENTRIES entries changed: then it
    is rebuilt from the entries held in memory."""
    deltas = read_deltas(current.artifact_path, after=cached.revision, until=current.revision)
    # The matrix and passage list are shared, not copied: an edit that keeps the number of passages overwrites
    # the entry's rows in place (a search running meanwhile sees the old or the new rows of that one entry);
    # any other change makes new arrays, leaving the cached index as it was.
    vectors = copy.copy(cached.vectors)
    for delta in deltas:
        delta.apply_to(vectors)
    changed = {delta.entry_id for delta in deltas}
    indexed_now = {delta.entry_id for delta in deltas if delta.passages}
    fresh = selectors.validated_entry_data(entry_ids=indexed_now, detail=False)
    overlay = {**cached.overlay, **{entry_id: fresh.get(entry_id) for entry_id in changed}}
    if cached.base_terms is None or cached.base_vocabulary is None or len(overlay) > OVERLAY_MAX_ENTRIES:
        entries = {entry_id: entry for entry_id, entry in cached.base_entries.items() if entry_id not in overlay}
        entries.update((entry_id, entry) for entry_id, entry in overlay.items() if entry is not None)
        return _served(version_id=cached.version_id, revision=current.revision, artifact_path=current.artifact_path, vectors=vectors, entries=entries)
    current_overlay = [entry for entry in overlay.values() if entry is not None]
    added = sum(1 for entry_id, entry in overlay.items() if entry is not None and entry_id not in cached.base_entries)
    gone = sum(1 for entry_id, entry in overlay.items() if entry is None and entry_id in cached.base_entries)
    return replace(
        cached,
        revision=current.revision,
        vectors=vectors,
        lexical=cached.lexical.with_changes(changed=[lexical_document(entry) for entry in fresh.values()], removed=changed - fresh.keys()),
        terms=LayeredTermLookup(cached.base_terms, hidden=set(overlay), extra=TermLookup([name for entry in current_overlay for name in _names(entry)])),
        vocabulary=LayeredVocabulary(
            cached.base_vocabulary, build_vocabulary([(entry.term, entry.kind, entry.variants, entry.definition) for entry in current_overlay])
        ),
        entry_count=len(cached.base_entries) + added - gone,
        overlay=overlay,
    )


def _glossary_side(*, version_id: int, revision: int, artifact_path: str, vectors: VectorIndex) -> ServedIndex:
    """Lexical index, exact-term lookup and vocabulary of the entries the vector index holds."""
    indexed_ids = {passage.entry_id for passage in vectors.passages}
    entries = selectors.validated_entry_data(entry_ids=indexed_ids, detail=False)
    return _served(version_id=version_id, revision=revision, artifact_path=artifact_path, vectors=vectors, entries=entries)


def _served(*, version_id: int, revision: int, artifact_path: str, vectors: VectorIndex, entries: dict[int, EntryData]) -> ServedIndex:
    ordered = [entries[entry_id] for entry_id in sorted(entries)]
    terms = TermLookup([name for entry in ordered for name in _names(entry)])
    vocabulary = build_vocabulary([(entry.term, entry.kind, entry.variants, entry.definition) for entry in ordered])
    return ServedIndex(
        version_id=version_id,
        revision=revision,
        vectors=vectors,
        lexical=LexicalIndex.build([lexical_document(entry) for entry in ordered]),
        terms=terms,
        vocabulary=vocabulary,
        entry_count=len(ordered),
        artifact_path=artifact_path,
        base_entries=entries,
        base_terms=terms,
        base_vocabulary=vocabulary,
    )


def version_for_search(*, ref: str) -> ModelVersion:
    """The version ``ref`` names (retrieval.selectors.model_version_get), read at most every
    INDEX_REVISION_CHECK_SECONDS by this process, as the version's index revision is: after a promotion elsewhere
    the API searches with the new champion within that delay. A version saved or deleted in this process is read
    again at once (retrieval.signals). A copy each time: what one search changes on it, the next does not see."""
    version = _version_refs.get(
        str(ref).strip().lower(), seconds=getattr(settings, "INDEX_REVISION_CHECK_SECONDS", 1.0), read=lambda: selectors.model_version_get(ref=ref)
    )
    return copy.copy(version)


def forget_versions() -> None:
    """Make this process read again which version each reference names (a version was saved or deleted)."""
    _version_refs.forget()


def forget(version_id: int) -> None:
    """Make this process re-read the version's revision at its next search (after it changed the index)."""
    _revision_checks.pop(version_id, None)


def forget_indexes() -> None:
    """Drop every index this process holds (tests; a database restored from a backup)."""
    with _lock:
        _indexes.clear()
        _revision_checks.clear()
    _version_refs.forget()
    encoding.clear_query_cache()


def clear() -> None:
    """Drop every cached model, encoder and index of this process (tests, and after a catalogue change)."""
    encoding.clear()
    artifacts.forget_verified()
    forget_indexes()
