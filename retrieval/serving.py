"""Process-wide caches of what search needs: loaded models and loaded indexes.

A web or worker process loads each model once (an LRU of ``MODEL_CACHE_SIZE``) and each version's index
once. Before every search it reads the version's index revision (a cheap query, cached for
``settings.INDEX_REVISION_CHECK_SECONDS``); when the revision moved it applies only the new entry deltas to
the index it holds, or loads the full artifact when that changed. The lexical index, the exact-term lookup and
the pre-processing vocabulary come from the validated glossary entries and are rebuilt together with the
vector index (from the entries held in memory, re-reading only the changed ones), so the three always describe
the same glossary.
"""
from __future__ import annotations

import copy
import hashlib
import logging
import posixpath
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from django.conf import settings
from django.core.files.storage import storages

from glossary.text import fold
from retrieval import selectors
from retrieval.catalogue import ModelSpec, with_pinned
from retrieval.lexical import OVERLAY_MAX_ENTRIES, LexicalIndex, lexical_document, tokenize
from retrieval.models import IndexState, ModelVersion
from retrieval.passages import EntryData
from retrieval.preprocess import LayeredVocabulary, Vocabulary, build_vocabulary
from retrieval.vector_index import EntryDelta, FaissVectorIndex, VectorIndex

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

MODEL_CACHE_SIZE = 2
# How many versions' indexes a process keeps (the champion, one being promoted, one being compared).
INDEX_CACHE_SIZE = 3

_lock = threading.RLock()
_models: OrderedDict[tuple, "SentenceTransformer"] = OrderedDict()
# What each version loads (its spec and adapter folder), once one of its models loaded: no catalogue read per encode.
_load_targets: OrderedDict[tuple, tuple[ModelSpec, str | None]] = OrderedDict()
LOAD_TARGET_CACHE_SIZE = 16
_indexes: OrderedDict[int, "ServedIndex"] = OrderedDict()
_revision_checks: dict[int, tuple[float, "IndexRevision"]] = {}
# Versions whose artifact files this process found intact (checked once: model files are large).
_verified_versions: set[int] = set()
# ONNX query encoders by (version id, variant, folder), and those this process found damaged.
ENCODER_CACHE_SIZE = 4
_encoders: OrderedDict[tuple, object] = OrderedDict()
_failed_encoders: set[tuple[int, str]] = set()
_query_cache = None

logger = logging.getLogger(__name__)


class ArtifactCorrupted(Exception):
    """A file of a model version is missing from the artifact store or differs from its recorded checksum."""


# ---- artifacts on local disk ------------------------------------------------------------------------

def artifact_storage():
    return storages["artifacts"]


def local_artifact_dir(storage_path: str) -> str:
    """A local folder holding the artifact folder ``storage_path`` (models load from disk, not from S3)."""
    storage = artifact_storage()
    try:
        return storage.path(storage_path)
    except NotImplementedError:
        pass
    target = Path(settings.MODEL_CACHE_DIR) / storage_path
    marker = target / ".complete"
    if not marker.exists():
        _download_folder(storage, storage_path, target)
        marker.touch()
    return str(target)


def _download_folder(storage, prefix: str, target: Path) -> None:
    folders, files = storage.listdir(prefix)
    target.mkdir(parents=True, exist_ok=True)
    for name in files:
        with storage.open(f"{prefix}/{name}", "rb") as source, open(target / name, "wb") as out:
            for chunk in iter(lambda: source.read(1024 * 1024), b""):
                out.write(chunk)
    for folder in folders:
        _download_folder(storage, f"{prefix}/{folder}", target / folder)


def verify_artifacts(version: ModelVersion) -> None:
    """Check, once per process, every file in ``version.artifact_checksums`` (storage path -> sha256).

    Raises ArtifactCorrupted naming each missing or altered file: a version is never served from damaged weights.
    """
    if version.pk in _verified_versions or not version.artifact_checksums:
        return
    storage = artifact_storage()
    problems = []
    for path, expected in sorted(version.artifact_checksums.items()):
        if not storage.exists(path):
            problems.append(f"{path}: missing")
            continue
        digest = hashlib.sha256()
        with storage.open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1024 * 1024), b""):
                digest.update(chunk)
        if digest.hexdigest() != expected:
            problems.append(f"{path}: checksum differs")
    if problems:
        logger.error("Artifacts of model version %s are damaged: %s", version, "; ".join(problems))
        raise ArtifactCorrupted(f"Files of version {version} are damaged: " + "; ".join(problems))
    _verified_versions.add(version.pk)


# ---- models -----------------------------------------------------------------------------------------

def version_spec(version: ModelVersion) -> ModelSpec:
    """The spec ``version`` encodes with: the prompts and settings it pinned when created, over where the catalogue
    finds its base model's weights now (a model moved to a local folder keeps serving its versions).

    A version that pins nothing (an unsaved one, as the leaderboard builds for catalogue models) takes the catalogue's.
    """
    location = selectors.model_spec_get(name=version.base_model)
    return with_pinned(location, version.model_spec) if version.model_spec else location


def version_load_target(version: ModelVersion) -> tuple[ModelSpec, str | None]:
    """The spec (with the version's pinned prompts) and the local adapter folder that make ``version``.

    A version with a LoRA adapter loads base + adapter (merging is known to drift silently); a version that
    only has merged weights loads that folder with its pinned prompts. Its files are checked first.
    """
    verify_artifacts(version)
    spec = version_spec(version)
    if version.adapter_path:
        return spec, local_artifact_dir(version.adapter_path)
    if version.merged_path:
        return replace(spec, path=local_artifact_dir(version.merged_path)), None
    return spec, None


def _version_key(version: ModelVersion) -> tuple | None:
    # The creation time too: a test database may give a new version the primary key of a deleted one.
    return (version.pk, version.created_at) if version.pk is not None and version.model_spec else None


def model_for_version(version: ModelVersion) -> tuple["SentenceTransformer", ModelSpec]:
    """The version's loaded model and its spec; after the first load, neither the database nor the catalogue is read."""
    key = _version_key(version)
    with _lock:
        target = _load_targets.get(key) if key is not None else None
        if target is not None:
            _load_targets.move_to_end(key)
    if target is None:
        target = version_load_target(version)
    spec, adapter = target
    model = cached_model(spec, adapter_path=adapter)
    if key is not None:
        # Remembered once the model loaded: a catalogue path fixed after a failed load is read again next time.
        with _lock:
            _load_targets[key] = target
            while len(_load_targets) > LOAD_TARGET_CACHE_SIZE:
                _load_targets.popitem(last=False)
    return model, spec


def cached_model(spec: ModelSpec, *, adapter_path: str | None = None) -> "SentenceTransformer":
    # Imported here: sentence-transformers takes seconds to import, and most requests never encode.
    from retrieval.embedding import load_model

    # The prompts and normalisation are part of the key: one cached model object serves one pinned spec.
    key = (
        spec.name, spec.path, spec.trust_remote_code, spec.max_seq_length, spec.query_prompt, spec.document_prompt,
        spec.normalize_embeddings, adapter_path,
    )
    with _lock:
        if key in _models:
            _models.move_to_end(key)
            return _models[key]
        model = load_model(spec, adapter_path=adapter_path)
        _models[key] = model
        while len(_models) > MODEL_CACHE_SIZE:
            _models.popitem(last=False)
        return model


def encode_queries_with(version: ModelVersion, texts: Sequence[str]) -> np.ndarray:
    """Query vectors from the version's torch model, with its pinned query prompt, uncached: what training and
    evaluation measure, and the reference the ONNX variants are checked against."""
    from retrieval.embedding import encode_queries

    model, spec = model_for_version(version)
    return encode_queries(model, spec, texts)


def encode_search_queries(version: ModelVersion, texts: Sequence[str]) -> np.ndarray:
    """Query vectors for search: from the process's query cache, else from the encoder that serves the version's
    queries (``query_encoder_variant``), with its pinned query prompt. Read-only arrays."""
    variant = query_encoder_variant(version)
    folder = (version.encoder_check or {}).get("folder", "")
    return query_cache().get_or_encode(
        version_key=(version.pk, version.created_at, folder), variant=variant, texts=texts, encode=lambda batch: _encode_queries(version, variant, batch)
    )


def query_encoder_variant(version: ModelVersion) -> str:
    """"torch", "onnx" or "onnx-int8": the forced backend (QUERY_ENCODER) if it passed its check on this version,
    else the fastest variant that passed; torch when none did or none was built."""
    from retrieval.encoders import choose_variant

    check = version.encoder_check or {}
    return choose_variant(
        check.get("variants", {}), forced=getattr(settings, "QUERY_ENCODER", "auto"), available=lambda _variant: bool(check.get("folder"))
    )


def _encode_queries(version: ModelVersion, variant: str, texts: Sequence[str]) -> np.ndarray:
    from retrieval.encoders import TORCH

    if variant != TORCH:
        try:
            encoder = onnx_encoder(version, variant)
        except Exception:
            # Damaged or missing export files: this process serves torch; the log says why.
            logger.exception("ONNX query encoder %s of %s cannot be loaded; serving torch", variant, version)
            _failed_encoders.add((version.pk, variant))
        else:
            return encoder.encode(list(texts), prompt=encoder.query_prompt)
    return encode_queries_with(version, texts)


def onnx_encoder(version: ModelVersion, variant: str):
    """The version's ONNX query encoder, loaded once per process after its files' checksums are verified."""
    from retrieval.encoders import ONNX_FILES, OnnxQueryEncoder, default_intra_op_threads

    check = version.encoder_check or {}
    key = (version.pk, variant, check.get("folder", ""))
    if (version.pk, variant) in _failed_encoders:
        raise ArtifactCorrupted(f"encoder {variant} of {version} already refused by this process")
    with _lock:
        if key in _encoders:
            _encoders.move_to_end(key)
            return _encoders[key]
    folder = check["folder"]
    needed = {path: digest for path, digest in check.get("checksums", {}).items()
              if not path.endswith(".onnx") or path == f"{folder}/{ONNX_FILES[variant]}"}
    _verify_files(needed)
    encoder = OnnxQueryEncoder(local_artifact_dir(folder), variant=variant, intra_op_threads=default_intra_op_threads())
    encoder.query_prompt = version_spec(version).query_prompt
    with _lock:
        _encoders[key] = encoder
        while len(_encoders) > ENCODER_CACHE_SIZE:
            _encoders.popitem(last=False)
    return encoder


def _verify_files(checksums: dict[str, str]) -> None:
    storage = artifact_storage()
    for path, expected in sorted(checksums.items()):
        if not storage.exists(path):
            raise ArtifactCorrupted(f"{path}: missing")
        digest = hashlib.sha256()
        with storage.open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1024 * 1024), b""):
                digest.update(chunk)
        if digest.hexdigest() != expected:
            raise ArtifactCorrupted(f"{path}: checksum differs")


def query_cache():
    """This process's query-embedding cache (QUERY_CACHE_SIZE vectors, shared by its threads)."""
    global _query_cache
    from retrieval.embedding import QueryEmbeddingCache

    size = getattr(settings, "QUERY_CACHE_SIZE", 4096)
    with _lock:
        if _query_cache is None or _query_cache.max_size != size:
            _query_cache = QueryEmbeddingCache(size)
        return _query_cache


def forget_encoders(version_id: int) -> None:
    """Drop this process's ONNX encoders and cached query vectors of a version (its check was redone)."""
    with _lock:
        for key in [key for key in _encoders if key[0] == version_id]:
            del _encoders[key]
        _failed_encoders.difference_update({key for key in _failed_encoders if key[0] == version_id})
        if _query_cache is not None:
            _query_cache.clear()


def encode_documents_with(version: ModelVersion, texts: Sequence[str]) -> np.ndarray:
    """Passage vectors from the version's model, with its pinned document prompt."""
    from retrieval.embedding import encode_documents

    model, spec = model_for_version(version)
    return encode_documents(model, spec, texts)


# ---- exact term / acronym / variant matches --------------------------------------------------------

_ELISION = re.compile(r"\b(?:qu|jusqu|lorsqu|puisqu|[cdjlmnst])['’]")
_WORD = re.compile(r"[0-9a-z]+")
_LONGEST_TERM_WORDS = 12


def term_words(text: str) -> tuple[str, ...]:
    """Folded words without French elisions: "l'Ursaf" -> ("ursaf",)."""
    return tuple(_WORD.findall(_ELISION.sub(" ", fold(text))))


class TermLookup:
    """Finds the entries whose term or a variant is written, as a whole phrase, in a query."""

    def __init__(self, names: list[tuple[int, str]]):
        self._entries: dict[tuple[str, ...], set[int]] = {}
        for entry_id, name in names:
            words = term_words(name)
            if words and len(words) <= _LONGEST_TERM_WORDS:
                self._entries.setdefault(words, set()).add(entry_id)
        self._longest = max((len(words) for words in self._entries), default=0)

    def match(self, *texts: str, language: str | None = None) -> set[int]:
        """Entries named in any of ``texts``; ``language`` is the query's ("fr", "en" or None if unknown)."""
        found: set[int] = set()
        for text in texts:
            words = term_words(text)
            typed_in_capitals = set(re.findall(r"\b[A-Z0-9]{2,}\b", text))
            for size in range(1, min(self._longest, len(words)) + 1):
                for start in range(len(words) - size + 1):
                    phrase = words[start:start + size]
                    ids = self._entries.get(phrase)
                    if ids and (size > 1 or _names_a_term(phrase[0], typed_in_capitals=typed_in_capitals, language=language)):
                        found |= ids
        return found


class LayeredTermLookup:
    """A full build's lookup without the entries changed since (``hidden``), plus a lookup of their current
    names (``extra``): the cost of the changes, nothing of the base copied."""

    def __init__(self, base: TermLookup, *, hidden: set[int], extra: TermLookup):
        self.base, self.hidden, self.extra = base, hidden, extra

    def match(self, *texts: str, language: str | None = None) -> set[int]:
        return (self.base.match(*texts, language=language) - self.hidden) | self.extra.match(*texts, language=language)


def _names_a_term(word: str, *, typed_in_capitals: set[str], language: str | None) -> bool:
    """Whether a lone word names a glossary term rather than being an ordinary word of the sentence.

    Users type acronyms in lower case ("l'ursaf"), so a lower-case word counts, except a French stop word
    ("ce" is not CE) or any lower-case word of an English query ("is" is not IS); capitals always count.
    """
    if word.upper() in typed_in_capitals:
        return True
    return language != "en" and bool(tokenize(word))


# ---- served indexes ---------------------------------------------------------------------------------

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
    storage = artifact_storage()
    deltas = []
    for revision in range(after + 1, until + 1):
        with storage.open(delta_path(artifact_path, revision), "rb") as handle:
            deltas.append(EntryDelta.from_bytes(handle.read()))
    return deltas


def load_vector_index(artifact_path: str, *, base_revision: int, revision: int, index_class: type[VectorIndex] = VectorIndex) -> VectorIndex:
    """The index at ``revision``: the full artifact, then the deltas written since."""
    with artifact_storage().open(artifact_path, "rb") as handle:
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


def forget(version_id: int) -> None:
    """Make this process re-read the version's revision at its next search (after it changed the index)."""
    _revision_checks.pop(version_id, None)


def forget_indexes() -> None:
    """Drop every index this process holds (tests; a database restored from a backup)."""
    with _lock:
        _indexes.clear()
        _revision_checks.clear()
        if _query_cache is not None:
            _query_cache.clear()


def clear() -> None:
    """Drop every cached model and index of this process (tests, and after a catalogue change)."""
    global _query_cache
    with _lock:
        _models.clear()
        _load_targets.clear()
        _verified_versions.clear()
        _encoders.clear()
        _failed_encoders.clear()
        _query_cache = None
    forget_indexes()
