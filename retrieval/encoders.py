"""Query encoders other than torch: an ONNX export of a model and its dynamically quantised int8 variant, and
the check that decides whether one may serve.

Pure module: no Django import. Works on a loaded ``SentenceTransformer``, folders and numpy arrays.

Why not sentence-transformers' ``backend="onnx"`` / ``export_dynamic_quantized_onnx_model``: they need
``optimum-onnx``, whose only releases (<= 0.1.0) require ``transformers<4.58`` while Lexique runs transformers 5.x.
So the transformer module is exported with ``torch.onnx`` and quantised with ``onnxruntime.quantization``, into
the same file layout sentence-transformers uses (``onnx/model.onnx``, inputs ``input_ids``/``attention_mask``/
``token_type_ids``, output ``last_hidden_state``): an exported folder loads with ``backend="onnx"`` wherever optimum
is installed. Pooling and normalisation run in numpy here, from the model's own pooling configuration.
"""
from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

TORCH = "torch"
ONNX = "onnx"
ONNX_INT8 = "onnx-int8"
# Fastest first: serving takes the first variant of this order that passed its check (torch always may serve).
VARIANTS_FASTEST_FIRST = (ONNX_INT8, ONNX, TORCH)
BACKEND_CHOICES = ("auto", TORCH, ONNX, ONNX_INT8)

ONNX_FILES = {ONNX: "onnx/model.onnx", ONNX_INT8: "onnx/model_qint8.onnx"}
ENCODER_CONFIG = "lexique_encoder.json"
# A variant serves only if its Hit@1 on the frozen test queries is within this many points of torch's ...
MAX_RECALL_DROP_POINTS = 0.5
# ... and its query vectors point where torch's do (a disagreement the test queries happen not to expose in Hit@1).
MIN_MEAN_COSINE = 0.97
_OPSET = 17
_SUPPORTED_POOLING = ("mean", "cls", "max", "lasttoken")


class UnsupportedModelError(ValueError):
    """The model has a module this exporter does not reproduce outside torch (the check records why)."""


# ---- export ------------------------------------------------------------------------------------------

def pipeline_config(model: "SentenceTransformer") -> dict[str, Any]:
    """What the ONNX path must do after the transformer: pooling mode, prompt handling, normalisation.

    Raises UnsupportedModelError for pipelines it cannot reproduce (a Dense layer, a pooling that drops the
    prompt tokens...): such a model keeps its torch encoder.
    """
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    modules = list(model)
    if not modules or not isinstance(modules[0], Transformer):
        raise UnsupportedModelError(f"first module {type(modules[0]).__name__ if modules else 'missing'}: a Transformer is expected")
    pooling_mode, normalize = None, False
    for module in modules[1:]:
        if isinstance(module, Pooling):
            config = module.get_config_dict()
            mode = config.get("pooling_mode")
            if mode not in _SUPPORTED_POOLING:
                raise UnsupportedModelError(f"pooling “{mode}” not reproduced outside torch")
            if config.get("include_prompt") is False:
                raise UnsupportedModelError("pooling without the prefix tokens (include_prompt=False) not reproduced outside torch")
            pooling_mode = mode
        elif isinstance(module, Normalize):
            normalize = True
        else:
            raise UnsupportedModelError(f"module {type(module).__name__} not reproduced outside torch")
    if pooling_mode is None:
        raise UnsupportedModelError("no pooling module")
    return {
        "pooling_mode": pooling_mode,
        "normalize": normalize,
        "max_seq_length": int(model.max_seq_length or 512),
        "input_names": _input_names(model),
    }


def _input_names(model: "SentenceTransformer") -> list[str]:
    encoded = model[0].tokenizer(["a"], return_tensors="np")
    return [name for name in ("input_ids", "attention_mask", "token_type_ids") if name in encoded]


def export_onnx(model: "SentenceTransformer", folder: str | Path) -> dict[str, str]:
    """Write the fp32 ONNX export and its dynamic int8 quantisation of ``model``'s transformer into ``folder``,
    with the tokenizer and the pipeline configuration. Returns {variant: file path relative to ``folder``}."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    folder = Path(folder)
    (folder / "onnx").mkdir(parents=True, exist_ok=True)
    config = pipeline_config(model)
    transformer = model[0].auto_model.eval()
    names = config["input_names"]

    class _Wrapper(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *inputs):
            return self.inner(**dict(zip(names, inputs))).last_hidden_state

    sample = model[0].tokenizer(["exemple de question", "un autre texte un peu plus long"], padding=True, return_tensors="pt")
    axes = {name: {0: "batch_size", 1: "sequence_length"} for name in [*names, "last_hidden_state"]}
    fp32 = folder / ONNX_FILES[ONNX]
    with torch.no_grad():
        torch.onnx.export(
            _Wrapper(transformer).cpu(),
            tuple(sample[name].cpu() for name in names),
            str(fp32),
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=_OPSET,
            dynamo=False,
        )
    # Per-channel int8 weights of the MatMuls only: measured 0.992 mean cosine to torch on MiniLM (per-tensor:
    # 0.945), at the same speed.
    quantize_dynamic(
        str(fp32), str(folder / ONNX_FILES[ONNX_INT8]), weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=["MatMul"]
    )
    model[0].tokenizer.save_pretrained(str(folder))
    (folder / ENCODER_CONFIG).write_text(json.dumps(config, indent=2), encoding="utf-8")
    return dict(ONNX_FILES)


# ---- encoding through ONNX Runtime -------------------------------------------------------------------

class OnnxQueryEncoder:
    """Encodes texts with an ONNX export: tokenizer, ONNX Runtime session, pooling and normalisation in numpy.

    Thread-safe: the session runs concurrently; only the tokenizer call is serialised (a fast tokenizer is not
    safe to call from several threads at once).
    """

    def __init__(self, folder: str | Path, *, variant: str, intra_op_threads: int = 1):
        import onnxruntime
        from transformers import AutoTokenizer

        folder = Path(folder)
        self.variant = variant
        self.config = json.loads((folder / ENCODER_CONFIG).read_text(encoding="utf-8"))
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = max(1, intra_op_threads)
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(str(folder / ONNX_FILES[variant]), options, providers=["CPUExecutionProvider"])
        self._tokenizer_lock = threading.Lock()
        self.query_prompt = ""  # set by the caller: the pinned query prompt of the version

    def encode(self, texts: Sequence[str], *, prompt: str = "", batch_size: int = 64) -> np.ndarray:
        """L2-normalised (when the model normalises) float32 vectors, like ``SentenceTransformer.encode``."""
        out = []
        for start in range(0, len(texts), batch_size):
            batch = [prompt + text for text in texts[start:start + batch_size]]
            with self._tokenizer_lock:
                features = self.tokenizer(
                    batch, padding=True, truncation=True, max_length=self.config["max_seq_length"], return_tensors="np"
                )
            feed = {name: features[name].astype(np.int64) for name in self.config["input_names"]}
            tokens = self.session.run(None, feed)[0]
            out.append(pool(tokens, features["attention_mask"], mode=self.config["pooling_mode"], normalize=self.config["normalize"]))
        if not out:
            return np.zeros((0, int(self.session.get_outputs()[0].shape[-1] or 0)), dtype=np.float32)
        return np.ascontiguousarray(np.concatenate(out), dtype=np.float32)


def pool(tokens: np.ndarray, attention_mask: np.ndarray, *, mode: str, normalize: bool) -> np.ndarray:
    """Sentence vectors from token vectors, as sentence-transformers' Pooling (+ Normalize) computes them."""
    mask = attention_mask.astype(np.float32)[..., None]
    if mode == "mean":
        vectors = (tokens * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
    elif mode == "cls":
        vectors = tokens[:, 0]
    elif mode == "max":
        vectors = np.where(mask > 0, tokens, -1e9).max(axis=1)
    elif mode == "lasttoken":
        # Padding is on the right for the tokenizers this path serves: the last real token of each row.
        last = attention_mask.sum(axis=1).astype(np.int64) - 1
        vectors = tokens[np.arange(tokens.shape[0]), last]
    else:
        raise UnsupportedModelError(f"pooling “{mode}”")
    if normalize:
        vectors = vectors / np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)
    return vectors.astype(np.float32)


# ---- the check ---------------------------------------------------------------------------------------

@dataclass
class VariantCheck:
    """How one query encoder compares with torch on the frozen test queries (stored on the version)."""

    variant: str
    passed: bool
    reason: str = ""
    queries: int = 0
    cosine_min: float | None = None
    cosine_mean: float | None = None
    recall_at_1_torch: float | None = None
    recall_at_1_variant: float | None = None
    ms_per_query: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def recall_at_1(query_vectors: np.ndarray, passage_vectors: np.ndarray, passage_entry_ids: Sequence[int], relevant: Sequence[set[int] | frozenset[int]]) -> float:
    """Percentage of queries whose nearest passage belongs to one of their relevant entries."""
    if not len(query_vectors):
        return 0.0
    top = np.argmax(query_vectors @ passage_vectors.T, axis=1)
    hits = sum(1 for row, best in enumerate(top) if passage_entry_ids[best] in relevant[row])
    return 100.0 * hits / len(query_vectors)


def compare_variant(
    *,
    variant: str,
    torch_vectors: np.ndarray,
    variant_vectors: np.ndarray,
    passage_vectors: np.ndarray,
    passage_entry_ids: Sequence[int],
    relevant: Sequence[set[int] | frozenset[int]],
    ms_per_query: float | None = None,
    max_recall_drop: float = MAX_RECALL_DROP_POINTS,
    min_mean_cosine: float = MIN_MEAN_COSINE,
) -> VariantCheck:
    """Cosine agreement with torch's query vectors and Hit@1 of both against the same (torch) passage vectors."""
    queries = len(torch_vectors)
    if not queries:
        return VariantCheck(variant, False, "no test query", queries=0)
    if variant_vectors.shape != torch_vectors.shape:
        return VariantCheck(variant, False, f"dimensions {variant_vectors.shape} instead of {torch_vectors.shape}", queries=queries)
    cosines = np.sum(torch_vectors * variant_vectors, axis=1) / np.clip(
        np.linalg.norm(torch_vectors, axis=1) * np.linalg.norm(variant_vectors, axis=1), 1e-12, None
    )
    r1_torch = recall_at_1(torch_vectors, passage_vectors, passage_entry_ids, relevant)
    r1_variant = recall_at_1(variant_vectors, passage_vectors, passage_entry_ids, relevant)
    reasons = []
    if not np.all(np.isfinite(cosines)):
        reasons.append("non-finite vectors")
    elif float(cosines.mean()) < min_mean_cosine:
        reasons.append(f"mean cosine {cosines.mean():.4f} < {min_mean_cosine}")
    if r1_torch - r1_variant > max_recall_drop:
        reasons.append(f"Hit@1 {r1_variant:.2f} against {r1_torch:.2f} with torch (gap > {max_recall_drop} point)")
    return VariantCheck(
        variant=variant,
        passed=not reasons and queries > 0,
        reason="; ".join(reasons) if reasons else ("" if queries else "no test query"),
        queries=queries,
        cosine_min=round(float(np.nanmin(cosines)), 5) if queries else None,
        cosine_mean=round(float(np.nanmean(cosines)), 5) if queries else None,
        recall_at_1_torch=round(r1_torch, 3),
        recall_at_1_variant=round(r1_variant, 3),
        ms_per_query=ms_per_query,
    )


def timed_single_queries(encode: Callable[[list[str]], np.ndarray], texts: Sequence[str], *, sample: int = 20) -> float:
    """Milliseconds per query encoded one at a time (how the web encodes them), for the record only: serving
    order is fixed by VARIANTS_FASTEST_FIRST, not by this noisy figure."""
    picked = list(texts[:sample])
    if not picked:
        return 0.0
    encode(picked[:1])  # first-call allocations
    started = time.perf_counter()
    for text in picked:
        encode([text])
    return round((time.perf_counter() - started) * 1000 / len(picked), 3)


def choose_variant(checks: dict[str, dict[str, Any]], *, forced: str = "auto", available: Callable[[str], bool] = lambda _v: True) -> str:
    """The variant that serves queries: the forced one when it passed its check, else the fastest that passed;
    torch when nothing else did. A variant that failed its check is never chosen, even when forced."""
    passed = [variant for variant in VARIANTS_FASTEST_FIRST if variant == TORCH or (checks.get(variant, {}).get("passed") and available(variant))]
    if forced != "auto":
        return forced if forced in passed else TORCH
    return passed[0]


def default_intra_op_threads() -> int:
    """ONNX Runtime threads per session: ONNX_INTRA_OP_THREADS, else OMP_NUM_THREADS, else 1 (one query at a time
    per web thread; see docs/BENCHMARKS.md)."""
    for name in ("ONNX_INTRA_OP_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    return 1
