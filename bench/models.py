"""The default embedding model, loaded once per bench process."""
from __future__ import annotations

from functools import lru_cache

from retrieval.catalogue import DEFAULT_MODEL_NAME, ModelSpec, get_spec


@lru_cache(maxsize=1)
def default_model():
    """(model, spec) of the catalogue's default model, on the CPU."""
    from retrieval.embedding import load_model

    spec: ModelSpec = get_spec(DEFAULT_MODEL_NAME)
    return load_model(spec, device="cpu"), spec
