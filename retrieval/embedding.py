"""Loading embedding models (optionally with a LoRA adapter) and encoding with a spec's prompts.

Pure module: no Django import. Every caller (training, evaluation, serving) encodes through
``encode_queries`` / ``encode_documents`` with the spec a model version pinned (``retrieval.catalogue``), so
the pinned prompts and normalisation are applied the same way everywhere.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import numpy as np
from huggingface_hub.errors import HfHubHTTPError
from sentence_transformers import SentenceTransformer

from retrieval.catalogue import ModelSpec, resolve_path

logger = logging.getLogger(__name__)

# What hub, file-system and loading failures look like: OSError covers missing files and offline hub
# misses (LocalEntryNotFoundError, EnvironmentError), ValueError unreadable configs, ImportError a
# missing bundled package or remote-code dependency.
_LOAD_ERRORS = (OSError, ValueError, ImportError, HfHubHTTPError)


class ModelUnavailableError(RuntimeError):
    """The model (or its adapter) cannot be loaded on this machine; the message says how to provide it."""


def _unavailable_message(spec: ModelSpec, path: str, error: Exception) -> str:
    return (
        f"The model “{spec.name}” ({path}) is not available on this machine "
        f"(HF_HUB_OFFLINE={os.environ.get('HF_HUB_OFFLINE', '0')}). To provide it: download it on a connected "
        "machine (for example `huggingface-cli download "
        f"{spec.path}`), copy the folder to this server, then record that folder's local path in the model "
        f"catalogue (administration or settings). Detail: {error}"
    )


def load_model(spec: ModelSpec, *, adapter_path: str | None = None, device: str | None = None) -> SentenceTransformer:
    """Load the base model of ``spec`` and, when given, the LoRA adapter folder saved by ``save_pretrained``."""
    try:
        path = resolve_path(spec)
    except ImportError as error:
        raise ModelUnavailableError(_unavailable_message(spec, spec.path, error)) from error
    try:
        model = SentenceTransformer(path, device=device, trust_remote_code=spec.trust_remote_code)
    except _LOAD_ERRORS as error:
        logger.warning("Model %s unavailable at %s: %s", spec.name, path, error)
        raise ModelUnavailableError(_unavailable_message(spec, path, error)) from error
    if spec.max_seq_length:
        model.max_seq_length = spec.max_seq_length
    if adapter_path:
        if not os.path.isdir(adapter_path):
            raise ModelUnavailableError(
                f"The LoRA adapter of the model “{spec.name}” cannot be found: {adapter_path} "
                "(a folder is expected, as save_pretrained writes it)."
            )
        try:
            model.load_adapter(adapter_path)
        except _LOAD_ERRORS as error:
            raise ModelUnavailableError(
                f"The LoRA adapter {adapter_path} cannot be loaded on “{spec.name}”: {error}"
            ) from error
    return model


def _encode(model: SentenceTransformer, texts: Sequence[str], *, prompt: str, normalize: bool, batch_size: int) -> np.ndarray:
    if not texts:
        return np.zeros((0, model.get_embedding_dimension()), dtype=np.float32)
    # An explicit prompt (even "") overrides any default prompt stored with the model: the pinned spec decides.
    vectors = model.encode(
        list(texts),
        prompt=prompt,
        batch_size=batch_size,
        normalize_embeddings=normalize,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    return np.ascontiguousarray(vectors, dtype=np.float32)


def encode_queries(model: SentenceTransformer, spec: ModelSpec, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
    """Float32 vectors of queries (L2-normalised unless the spec says otherwise), prefixed with the spec's query prompt."""
    return _encode(model, texts, prompt=spec.query_prompt, normalize=spec.normalize_embeddings, batch_size=batch_size)


def encode_documents(model: SentenceTransformer, spec: ModelSpec, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
    """Float32 vectors of passages (L2-normalised unless the spec says otherwise), prefixed with the spec's document prompt."""
    return _encode(model, texts, prompt=spec.document_prompt, normalize=spec.normalize_embeddings, batch_size=batch_size)


# ---- query-embedding cache ----------------------------------------------------------------------------

def normalise_query_text(text: str) -> str:
    """The cache key of a query: Unicode NFC and collapsed white space (case is kept: cased models see it)."""
    import unicodedata

    return " ".join(unicodedata.normalize("NFC", text).split())


class QueryEmbeddingCache:
    """A bounded LRU of query vectors, keyed by (version, encoder variant, normalised text).

    One per process, shared by its threads: most traffic repeats a few hundred questions, and a repeated question
    needs no forward pass. Vectors are stored read-only so a caller cannot alter a cached one.
    """

    def __init__(self, max_size: int):
        import threading
        from collections import OrderedDict

        self.max_size = max(0, int(max_size))
        self._items: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get_or_encode(self, *, version_key: object, variant: str, texts: Sequence[str], encode) -> np.ndarray:
        """Vectors of ``texts``, encoding (in one batch, via ``encode(list_of_texts)``) only those not cached."""
        keys = [(version_key, variant, normalise_query_text(text)) for text in texts]
        found: dict[int, np.ndarray] = {}
        with self._lock:
            for position, key in enumerate(keys):
                vector = self._items.get(key)
                if vector is not None:
                    self._items.move_to_end(key)
                    found[position] = vector
            self.hits += len(found)
            self.misses += len(keys) - len(found)
        missing = [position for position in range(len(keys)) if position not in found]
        if missing:
            # Encoded outside the lock: a forward pass must not block the other threads' cache hits.
            vectors = encode([keys[position][2] for position in missing])
            with self._lock:
                for row, position in enumerate(missing):
                    vector = np.array(vectors[row], dtype=np.float32)
                    vector.flags.writeable = False
                    found[position] = vector
                    if self.max_size:
                        self._items[keys[position]] = vector
                        self._items.move_to_end(keys[position])
                while len(self._items) > self.max_size:
                    self._items.popitem(last=False)
        if not keys:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([found[position] for position in range(len(keys))])

    def stats(self) -> dict[str, float | int]:
        with self._lock:
            total = self.hits + self.misses
            return {"hits": self.hits, "misses": self.misses, "size": len(self._items), "max_size": self.max_size,
                    "hit_rate": round(self.hits / total, 4) if total else 0.0}

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.hits = self.misses = 0
