"""The models and query encoders a process loaded, and encoding with a model version.

A web or worker process loads each model once (an LRU of ``MODEL_CACHE_SIZE``), each version's ONNX query
encoders once, and keeps the vectors of recent queries (``query_cache``). Documents are always encoded by torch;
queries by the encoder that passed its check for the version (``query_encoder_variant``).
"""
from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
from django.conf import settings

from retrieval import artifacts, selectors
from retrieval.catalogue import ModelSpec, with_pinned
from retrieval.models import ModelVersion

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

MODEL_CACHE_SIZE = 2

_lock = threading.RLock()
_models: OrderedDict[tuple, "SentenceTransformer"] = OrderedDict()
# What each version loads (its spec and adapter folder), once one of its models loaded: no catalogue read per encode.
_load_targets: OrderedDict[tuple, tuple[ModelSpec, str | None]] = OrderedDict()
LOAD_TARGET_CACHE_SIZE = 16
# ONNX query encoders by (version id, variant, folder), and those this process found damaged.
ENCODER_CACHE_SIZE = 4
_encoders: OrderedDict[tuple, object] = OrderedDict()
_failed_encoders: set[tuple[int, str]] = set()
_query_cache = None

logger = logging.getLogger(__name__)


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
    artifacts.verify_artifacts(version)
    spec = version_spec(version)
    if version.adapter_path:
        return spec, artifacts.local_artifact_dir(version.adapter_path)
    if version.merged_path:
        return replace(spec, path=artifacts.local_artifact_dir(version.merged_path)), None
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
        raise artifacts.ArtifactCorrupted(f"encoder {variant} of {version} already refused by this process")
    with _lock:
        if key in _encoders:
            _encoders.move_to_end(key)
            return _encoders[key]
    folder = check["folder"]
    needed = {path: digest for path, digest in check.get("checksums", {}).items()
              if not path.endswith(".onnx") or path == f"{folder}/{ONNX_FILES[variant]}"}
    artifacts.verify_files(needed)
    encoder = OnnxQueryEncoder(artifacts.local_artifact_dir(folder), variant=variant, intra_op_threads=default_intra_op_threads())
    encoder.query_prompt = version_spec(version).query_prompt
    with _lock:
        _encoders[key] = encoder
        while len(_encoders) > ENCODER_CACHE_SIZE:
            _encoders.popitem(last=False)
    return encoder


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


def clear_query_cache() -> None:
    """Forget every cached query vector (the vectors of another database's versions, in tests)."""
    with _lock:
        if _query_cache is not None:
            _query_cache.clear()


def clear() -> None:
    """Drop every loaded model and encoder and the query cache (tests, and after a catalogue change)."""
    global _query_cache
    with _lock:
        _models.clear()
        _load_targets.clear()
        _encoders.clear()
        _failed_encoders.clear()
        _query_cache = None
