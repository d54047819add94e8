"""LoRA fine-tuning of an embedding model and the verified merge of its adapter (no Django).

``finetune`` trains a LoRA adapter with sentence-transformers' trainer on the builder's dataset (exactly the
columns ``anchor``, ``positive``, ``negative_1..n``) with a ranking loss over in-batch and given negatives.
The catalogue's prompts are handed to the trainer per column, so training sees the same query and passage
prefixes as the benchmark and the search. The adapter folder is what a model version stores; ``load_model``
of ``retrieval.embedding`` loads it back onto the base model.

``merge_and_verify`` folds an adapter into the base weights for faster serving, and keeps the merged model only
when it embeds a sample exactly like base + adapter: merging is known to go wrong silently.
"""
from __future__ import annotations

import logging
import os
import resource
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace

import datasets
import numpy as np
import torch
from peft import LoraConfig, PeftModel, TaskType
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.losses import (
    CachedMultipleNegativesRankingLoss,
    MultipleNegativesRankingLoss,
)
from sentence_transformers.sentence_transformer.trainer import SentenceTransformerTrainer
from sentence_transformers.sentence_transformer.training_args import (
    BatchSamplers,
    SentenceTransformerTrainingArguments,
)
from transformers import TrainerCallback

from retrieval.catalogue import ModelSpec
from retrieval.embedding import encode_documents, encode_queries, load_model

logger = logging.getLogger(__name__)

LOSSES = ("mnrl", "cached_mnrl")

# Attention projections by architecture family, most specific first: BERT/XLM-R name them query/key/value,
# Llama/Qwen/Gemma/Mistral q_proj/k_proj/v_proj, GTE/NomicBERT fuse them into qkv_proj, DistilBERT q_lin...
_TARGET_FAMILIES: tuple[tuple[str, ...], ...] = (
    ("query", "key", "value"),
    ("q_proj", "k_proj", "v_proj"),
    ("qkv_proj",),
    ("Wqkv",),
    ("q_lin", "k_lin", "v_lin"),
)


@dataclass(frozen=True)
class FinetuneConfig:
    """Hyperparameters of one LoRA fine-tune.

    The defaults are the ones measured on the Bercy benchmark with MiniLM (``bench/bercy_cycle.py``,
    ``docs/QUALITY.md``): LoRA needs a learning rate about ten times a full fine-tune's, and batches of 32 with
    one hard negative (the concept's own other passage type) learn the task in about 40 steps, which keeps a
    cycle within minutes on two CPU cores.
    """

    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: tuple[str, ...] = ()  # empty: the spec's when the model has them, else detected
    loss: str = "mnrl"  # "mnrl" | "cached_mnrl" (large batches in bounded memory)
    cached_mini_batch_size: int = 32
    learning_rate: float = 1e-3
    epochs: float = 1.0
    batch_size: int = 32
    warmup_ratio: float = 0.1
    weight_decay: float = 0.0
    max_steps: int | None = None  # caps the run (tests, quick trials); None trains the full epochs
    seed: int = 13
    logging_steps: int = 10
    save_checkpoints: bool = False
    # WiSE-FT guard against forgetting: the saved adapter is the trained LoRA delta scaled by this weight
    # (0 = the base model, 1 = the adapter as trained). Tuned on the dev half of the sigles questions
    # (docs/QUALITY.md). With ``merge_weights`` and a ``selection`` scorer, ``finetune`` chooses among them.
    adapter_weight: float = 0.5
    merge_weights: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)


@dataclass(frozen=True)
class FinetuneResult:
    adapter_dir: str
    steps: int
    train_loss: float
    samples_per_s: float
    seconds: float
    peak_rss_mb: float  # the process's peak resident memory so far (Linux ru_maxrss)
    device: str
    target_modules: tuple[str, ...]
    stopped_early: bool  # should_stop() asked to stop: the adapter holds a partial training
    adapter_weight: float = 1.0  # the weight the saved adapter's delta was scaled by
    weight_scores: dict[float, float] | None = None  # the selection score of each tried weight


@dataclass(frozen=True)
class MergeResult:
    ok: bool
    max_abs_diff: float
    output_dir: str


class MergeMismatch(RuntimeError):
    """The merged model does not embed like base + adapter; nothing was saved."""


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def lora_target_modules(model: SentenceTransformer, *, spec: ModelSpec, override: Sequence[str] = ()) -> tuple[str, ...]:
    """The linear layers LoRA adapts: ``override`` if given, else the spec's when the model has them all, else
    the first known family of attention projections found among the model's module names."""
    if override:
        return tuple(override)
    leaf_names = {name.rsplit(".", 1)[-1] for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)}
    if spec.lora_target_modules and set(spec.lora_target_modules) <= leaf_names:
        return tuple(spec.lora_target_modules)
    for family in _TARGET_FAMILIES:
        if set(family) <= leaf_names:
            return family
    raise ValueError(
        f"cannot tell which layers of {spec.name} to adapt with LoRA (linear layers: {sorted(leaf_names)[:30]}); "
        "set lora_target_modules in the model's catalogue entry"
    )


def training_prompts(spec: ModelSpec, columns: Sequence[str]) -> dict[str, str] | None:
    """The trainer's per-column prompts: the query prompt on ``anchor``, the document prompt on the passages."""
    prompts = {
        column: spec.query_prompt if column == "anchor" else spec.document_prompt
        for column in columns
    }
    prompts = {column: prompt for column, prompt in prompts.items() if prompt}
    return prompts or None


class _ProgressCallback(TrainerCallback):
    """Reports progress after each step and at each log, and stops the run when asked (cancellation)."""

    def __init__(self, progress: Callable[[dict], None] | None, should_stop: Callable[[], bool] | None):
        self.progress = progress
        self.should_stop = should_stop
        self.last_loss: float | None = None
        self.stopped = False

    def _report(self, state) -> None:
        if self.progress:
            self.progress({"step": state.global_step, "total": state.max_steps, "loss": self.last_loss, "epoch": state.epoch})

    def on_step_end(self, args, state, control, **kwargs):
        self._report(state)
        if self.should_stop and self.should_stop():
            self.stopped = True
            control.should_training_stop = True
        return control

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.last_loss = float(logs["loss"])
            self._report(state)
        return control


def _load_base(spec: ModelSpec, base_path_or_model: str | SentenceTransformer, device: str) -> SentenceTransformer:
    if isinstance(base_path_or_model, SentenceTransformer):
        return base_path_or_model.to(device)
    return load_model(replace(spec, path=base_path_or_model), device=device)


def finetune(
    *,
    spec: ModelSpec,
    base_path_or_model: str | SentenceTransformer,
    train_dataset: datasets.Dataset,
    config: FinetuneConfig,
    output_dir: str,
    device: str | None = None,
    progress: Callable[[dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    selection: Callable[[SentenceTransformer], float] | None = None,
) -> FinetuneResult:
    """Train a LoRA adapter on ``train_dataset`` and save it (adapter weights and config only) to ``output_dir``.

    ``base_path_or_model`` is a path or hub id (``"package:..."`` for the bundled model, a merged earlier
    version's folder...) loaded with ``spec``'s settings, or an already loaded model (which gets the adapter).
    ``progress`` receives ``{"step", "total", "loss", "epoch"}``; ``should_stop`` is polled after each step and
    ends the run early (the adapter is still saved and ``stopped_early`` is set).
    ``selection`` scores the model (higher is better) on held-out queries (held-out real questions, else a test-side
    canary set: never the data a final report is judged on); with it the adapter weight is chosen among
    ``config.merge_weights``, else ``config.adapter_weight`` is used. The saved adapter holds the weighted delta.
    """
    if config.loss not in LOSSES:
        raise ValueError(f"unknown loss {config.loss!r}; choose one of {LOSSES}")
    columns = list(train_dataset.column_names)
    if columns[:2] != ["anchor", "positive"] or any(not column.startswith("negative_") for column in columns[2:]):
        raise ValueError(f"the training dataset must have exactly anchor, positive, negative_1..n; got {columns}")
    device = device or default_device()
    torch.manual_seed(config.seed)
    model = _load_base(spec, base_path_or_model, device)
    targets = lora_target_modules(model, spec=spec, override=config.target_modules)
    model.add_adapter(
        LoraConfig(
            task_type=TaskType.FEATURE_EXTRACTION,
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=list(targets),
        )
    )
    if config.loss == "cached_mnrl":
        loss = CachedMultipleNegativesRankingLoss(model, mini_batch_size=config.cached_mini_batch_size)
    else:
        loss = MultipleNegativesRankingLoss(model)
    on_gpu = device.startswith("cuda")
    bf16 = on_gpu and torch.cuda.is_bf16_supported()
    args = SentenceTransformerTrainingArguments(
        output_dir=os.path.join(output_dir, "trainer"),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps if config.max_steps else -1,
        per_device_train_batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        warmup_steps=config.warmup_ratio,  # a float below 1 is a ratio of the total steps (transformers 5)
        weight_decay=config.weight_decay,
        seed=config.seed,
        data_seed=config.seed,
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        prompts=training_prompts(spec, columns),
        bf16=bf16,
        fp16=on_gpu and not bf16,
        use_cpu=not on_gpu,
        report_to="none",
        save_strategy="epoch" if config.save_checkpoints else "no",
        logging_steps=config.logging_steps,
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    callback = _ProgressCallback(progress, should_stop)
    trainer = SentenceTransformerTrainer(
        model=model, args=args, train_dataset=train_dataset, loss=loss, callbacks=[callback]
    )
    started = time.perf_counter()
    output = trainer.train()
    seconds = time.perf_counter() - started
    weight, scores = config.adapter_weight, None
    if selection is not None and config.merge_weights:
        weight, scores = choose_merge_weight(model, weights=config.merge_weights, score=selection)
    bake_adapter_weight(model, weight)
    adapter_dir = os.path.join(output_dir, "adapter")
    model.transformers_model.save_pretrained(adapter_dir)
    logger.info("LoRA adapter saved to %s after %s steps (%.1fs)", adapter_dir, trainer.state.global_step, seconds)
    return FinetuneResult(
        adapter_dir=adapter_dir,
        steps=trainer.state.global_step,
        train_loss=float(output.training_loss),
        samples_per_s=float(output.metrics.get("train_samples_per_second", 0.0)),
        seconds=seconds,
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        device=device,
        target_modules=targets,
        stopped_early=callback.stopped,
        adapter_weight=weight,
        weight_scores=scores,
    )


def _lora_layers(model: SentenceTransformer) -> list:
    from peft.tuners.lora import LoraLayer

    layers = [module for module in model.modules() if isinstance(module, LoraLayer)]
    if not layers:
        raise ValueError("the model has no LoRA adapter")
    return layers


def interpolate_adapter(model: SentenceTransformer, weight: float) -> None:
    """Scale the active LoRA delta by ``weight`` in place (reversibly: from the trained scaling each time).

    LoRA adds ``scaling * B @ A`` to each adapted weight, so scaling it by ``weight`` is exactly WiSE-FT
    interpolation between the base weights (0) and the fine-tuned ones (1).
    """
    if weight < 0:
        raise ValueError("the adapter weight must be >= 0")
    for layer in _lora_layers(model):
        trained = layer.__dict__.setdefault("_trained_scaling", dict(layer.scaling))
        for name, value in trained.items():
            layer.scaling[name] = value * weight


def bake_adapter_weight(model: SentenceTransformer, weight: float) -> None:
    """Make ``weight`` part of the adapter's weights (``lora_B`` scaled) with the trained scaling restored, so
    that the saved adapter, and the model merged from it, embed like ``interpolate_adapter(model, weight)``."""
    interpolate_adapter(model, 1.0)
    if weight == 1.0:
        return
    with torch.no_grad():
        for layer in _lora_layers(model):
            for name in layer.scaling:
                layer.lora_B[name].weight.mul_(weight)


def choose_merge_weight(
    model: SentenceTransformer, *, weights: Sequence[float], score: Callable[[SentenceTransformer], float]
) -> tuple[float, dict[float, float]]:
    """The adapter weight with the best ``score`` among ``weights`` (ties: the smaller weight, i.e. the change
    closest to the base model), and every weight's score. The model is left at the trained weight (1)."""
    scores: dict[float, float] = {}
    for weight in weights:
        interpolate_adapter(model, weight)
        scores[float(weight)] = float(score(model))
    interpolate_adapter(model, 1.0)
    best = max(scores.values())
    return min(weight for weight, value in scores.items() if value >= best - 1e-9), scores


def dense_ranking_scorer(
    *, spec: ModelSpec, queries: Sequence[str], passages: Sequence[str], relevant: Sequence[Collection[int]], k: int = 10
) -> Callable[[SentenceTransformer], float]:
    """A ``selection`` scorer: mean reciprocal rank at ``k`` of the passages (indices) ``relevant`` to each query,
    over all ``passages``, with the catalogue's prompts (dense retrieval only)."""
    if len(queries) != len(relevant):
        raise ValueError("one set of relevant passages per query")

    def score(model: SentenceTransformer) -> float:
        query_vectors = encode_queries(model, spec, list(queries))
        passage_vectors = encode_documents(model, spec, list(passages))
        similarities = query_vectors @ passage_vectors.T
        top = np.argsort(-similarities, axis=1)[:, :k]
        total = 0.0
        for row, wanted in zip(top, relevant):
            for rank, index in enumerate(row, start=1):
                if int(index) in wanted:
                    total += 1.0 / rank
                    break
        return total / max(len(queries), 1)

    return score


def _embed_sample(model: SentenceTransformer, spec: ModelSpec, texts: Sequence[str]) -> np.ndarray:
    # Both prompts, as the merged model will serve queries and passages.
    return np.concatenate([encode_queries(model, spec, texts), encode_documents(model, spec, texts)])


def merge_and_verify(
    *,
    spec: ModelSpec,
    adapter_dir: str,
    output_dir: str,
    sample_texts: Sequence[str],
    atol: float = 1e-4,
    base_path: str | None = None,
    device: str | None = None,
) -> MergeResult:
    """Merge the adapter into its base (peft ``merge_and_unload``) and save the merged model to ``output_dir``
    only if it embeds ``sample_texts`` like base + adapter within ``atol``; else raise ``MergeMismatch``.

    ``base_path`` is the model the adapter was trained on when it is not the spec's own path (e.g. a merged
    earlier version).
    """
    if not sample_texts:
        raise ValueError("merge_and_verify needs sample texts to compare the merged model with the adapter")
    device = device or default_device()
    base_spec = replace(spec, path=base_path) if base_path else spec
    with_adapter = load_model(base_spec, adapter_path=adapter_dir, device=device)
    expected = _embed_sample(with_adapter, spec, sample_texts)
    del with_adapter

    merged = load_model(base_spec, device=device)
    transformer_module = merged[0]
    transformer_module.model = PeftModel.from_pretrained(transformer_module.model, adapter_dir).merge_and_unload()
    actual = _embed_sample(merged, spec, sample_texts)
    max_abs_diff = float(np.max(np.abs(expected - actual)))
    if max_abs_diff > atol:
        raise MergeMismatch(
            f"the merged model differs from base + adapter by {max_abs_diff:.2e} (> {atol:.0e}); not saved"
        )
    merged.save(output_dir)
    return MergeResult(ok=True, max_abs_diff=max_abs_diff, output_dir=output_dir)
