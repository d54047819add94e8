"""Execution of a training run (the ``training`` step of a cycle): split, pairs, mining, LoRA fine-tuning,
artifacts, model version. The lifecycle (claim, heartbeat, log, finish) goes through ``jobs.runner``."""
from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.utils.translation import gettext as _, gettext_noop

from config.stored_messages import stored
from jobs import runner
from jobs.models import Job
from retrieval import selectors as retrieval_selectors
from retrieval import artifacts, encoding
from retrieval import versions as retrieval_versions
from retrieval.models import ModelVersion
from retrieval.passages import Passage, entry_passages
from training import selectors
from training.builder import (
    EXPERT_SOURCES, SOURCE_LLM_QUESTION, ConceptData, attach_negatives, build_pairs, select_training_pairs, to_dataset,
)
from training.llm_questions import LLMQuestionsResult, generate_llm_questions
from training.mining import MiningQuery, mine_hard_negatives
from training.models import DataSnapshot, NegativeCandidate, TrainingRun
from training.questions import GeneratedQuestion
from training.services import llm_questions_store, split_assign_all
from training.snapshot import pairs_from_jsonl, snapshot_of
from training.split import assert_no_leak

logger = logging.getLogger("lexique.training")

# A run whose worker has not reported for this long is considered dead (crash, OOM, machine lost).
STALE_AFTER = timedelta(minutes=int(getattr(settings, "TRAINING_STALE_MINUTES", 15)))
WORKDIR_PREFIX = "run-"


class RunCancelled(Exception):
    """The maintainer cancelled the run while it was working."""


def _log(run: TrainingRun, message: str) -> None:
    runner.job_log(job=run.job, message=message)


def _set(run: TrainingRun, **fields: Any) -> None:
    """Save result fields of the run; every call is also a heartbeat of its job."""
    for name, value in fields.items():
        setattr(run, name, value)
    if fields:
        TrainingRun.objects.filter(pk=run.pk).update(**fields)
    runner.job_heartbeat(job=run.job)


def training_run_failed(job: Job) -> None:
    """A failed or cancelled training never leaves the version it made in service (``on_failed`` of the kind)."""
    run = TrainingRun.objects.filter(job=job).select_related("model_version").first()
    version = run.model_version if run else None
    if version is not None and version.status == ModelVersion.Status.READY:
        version.status = ModelVersion.Status.FAILED
        version.save(update_fields=["status"])


# ---- execution -----------------------------------------------------------------------------------------

def training_run_execute(*, run_id: int, worker: str = "") -> TrainingRun:
    """The whole training step of one run; on success the cycle goes on (training.pipeline)."""
    from training import pipeline

    run = TrainingRun.objects.select_related("parent_version", "job").get(pk=run_id)
    if not runner.job_claim(job=run.job, worker=worker):
        return run
    # The work folder goes whatever happens; one left by a killed worker is removed by the orphan sweep.
    workdir = Path(tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}{run.pk}-", dir=_workdir_root()))
    try:
        _set(run, stage=TrainingRun.Stage.MINING)
        _log(run, stored(gettext_noop("Starting: split, training data and negative mining.")))
        _execute(run, workdir)
    except RunCancelled:
        runner.job_cancelled(job=run.job, message=stored(gettext_noop("Cancelled on request.")))
    except Exception as error:
        logger.exception("training run %s failed", run.pk)
        runner.job_fail(job=run.job, error=f"{type(error).__name__}: {error}")
    else:
        pipeline.step_succeeded(job=run.job)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        TrainingRun.objects.filter(pk=run.pk).update(stage="")
    run.refresh_from_db()
    return run


# A work folder untouched for this long belongs to no live run. The age matters as well as the database: another
# installation (or test session) sharing VAR_DIR has runs this database does not know about.
ORPHAN_WORKDIR_AGE_S = 3600


def training_workdirs_sweep() -> int:
    """Remove the work folders of runs that are not running (left by a killed worker): they hold gigabytes."""
    root = Path(_workdir_root())
    running = set(TrainingRun.objects.filter(job__status=Job.Status.RUNNING).values_list("pk", flat=True))
    oldest = time.time() - ORPHAN_WORKDIR_AGE_S
    removed = 0
    for folder in root.glob(f"{WORKDIR_PREFIX}*"):
        number = folder.name[len(WORKDIR_PREFIX):].split("-", 1)[0]
        if folder.is_dir() and folder.stat().st_mtime < oldest and not (number.isdigit() and int(number) in running):
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed


def _workdir_root() -> str:
    root = Path(settings.VAR_DIR) / "training"
    root.mkdir(parents=True, exist_ok=True)
    return str(root)


def _check_cancel(run: TrainingRun) -> None:
    if runner.cancel_requested(job=run.job):
        raise RunCancelled()


def _execute(run: TrainingRun, workdir: Path) -> None:
    from training.finetune import FinetuneConfig, finetune, merge_and_verify

    values = run.config_values
    timings: dict[str, float] = {}
    started = time.perf_counter()
    parent = run.parent_version or retrieval_selectors.champion_version_get()
    base_model = values.get("base_model") or parent.base_model
    if base_model != parent.base_model:
        parent = None  # another base model: start from its own weights
    # Trained and pinned with the parent's prompts when continuing it (it keeps the spec it was created with), else
    # with the catalogue's as they are now: the new version is served with the spec it learnt with.
    spec = encoding.version_spec(parent) if parent else retrieval_selectors.model_spec_get(name=base_model)

    split_assign_all(seed=values["seed"])
    test_ids = selectors.test_entry_ids()
    concepts = selectors.train_concepts()
    if not concepts:
        raise ValidationError(_("No validated entry in the training split: nothing to learn."))
    train_ids = {concept.entry_id for concept in concepts}
    assert_no_leak(train_ids, test_ids)
    flags = selectors.training_flags(train_entry_ids=train_ids)
    t0 = time.perf_counter()
    llm_questions, llm_result = _llm_questions(run, concepts, per_entry=values.get("llm_questions_per_entry") or 0)
    if llm_result is not None:
        timings["llm_questions_s"] = round(time.perf_counter() - t0, 2)
    _check_cancel(run)
    all_pairs = build_pairs(concepts=concepts, flags=flags, test_entry_ids=test_ids, llm_questions=llm_questions)
    earlier = _earlier_pairs(parent, test_ids)
    earlier_keys = {(pair.anchor, pair.positive) for pair in earlier}
    new_pairs = [pair for pair in all_pairs if (pair.anchor, pair.positive) not in earlier_keys]
    pairs = select_training_pairs(
        new_pairs, earlier, replay_ratio=values["replay_ratio"], seed=values["seed"], max_pairs=values["max_pairs"], test_entry_ids=test_ids
    )
    if not pairs:
        raise ValidationError(_("No new training data since version %(v)s.") % {"v": parent})
    _log(run, stored(gettext_noop("%(pairs)s pairs (%(new)s new, %(earlier)s earlier ones available), %(flags)s flags."),
                     pairs=len(pairs), new=len(new_pairs), earlier=len(earlier), flags=len(flags)))
    timings["build_s"] = round(time.perf_counter() - started, 2)
    _check_cancel(run)

    # Mining with the serving version: what the current model confuses is what it must learn.
    t0 = time.perf_counter()
    mining_version = parent or retrieval_selectors.champion_version_get()
    passages: list[Passage] = [
        passage
        for concept in concepts
        for passage in entry_passages(entry_id=concept.entry_id, term=concept.term, definition=concept.definition, contexts=concept.contexts)
    ]
    keyed = [pair for pair in pairs if pair.positive_key]
    queries = [MiningQuery(anchor=pair.anchor, positive_key=pair.positive_key, entry_id=pair.entry_id) for pair in keyed]
    mined = mine_hard_negatives(
        queries=queries,
        query_vectors=encoding.encode_queries_with(mining_version, [query.anchor for query in queries]),
        passages=passages,
        passage_vectors=encoding.encode_documents_with(mining_version, [passage.text for passage in passages]),
        entries=selectors.mining_entries(entry_ids=train_ids),
        equivalent_pairs=selectors.equivalent_pairs(),
        decisions=selectors.screening_decisions(),
        num_negatives=values["num_negatives"],
        range_min=values["mining_range_min"],
        relative_margin=values["mining_relative_margin"],
    )
    pairs = attach_negatives(pairs, mined.triplets, test_entry_ids=test_ids)
    suspects = _record_suspects(run, mined.suspects)
    timings["mining_s"] = round(time.perf_counter() - t0, 2)
    _log(run, stored(gettext_noop("Mining: %(anchors)s anchors with negatives, %(suspects)s candidates sent to the experts' screening."),
                     anchors=len(mined.triplets), suspects=suspects))
    _check_cancel(run)

    snapshot = _store_snapshot(pairs)
    # The labelled questions this run trains on: the pipeline marks them (and their flags) "used by run N".
    trained_questions = selectors.labelled_questions_trained(pairs=[(pair.anchor, pair.entry_id) for pair in pairs if pair.source in EXPERT_SOURCES])
    stats = {"pairs": len(pairs), "new_pairs": len(new_pairs), "suspects": suspects, "labelled_question_ids": trained_questions}
    if llm_result is not None:
        stats["llm_questions"] = {**llm_result.stats(), "used": sum(pair.source == SOURCE_LLM_QUESTION for pair in pairs)}
    _set(run, snapshot=snapshot, stage=TrainingRun.Stage.TRAINING, stats=stats)
    dataset = to_dataset(pairs, num_negatives=values["num_negatives"], seed=values["seed"], test_entry_ids=test_ids)

    t0 = time.perf_counter()
    config = FinetuneConfig(
        lora_r=values["lora_r"], lora_alpha=values["lora_alpha"], lora_dropout=values["lora_dropout"],
        target_modules=tuple(values["target_modules"] or ()), loss=values["loss"], learning_rate=values["learning_rate"],
        epochs=values["epochs"], batch_size=values["batch_size"], warmup_ratio=values["warmup_ratio"],
        max_steps=values["max_steps"], seed=values["seed"],
    )
    # A fine-tuned parent is continued from its merged weights; otherwise training starts from the base model.
    base_path = _parent_weights(parent) or spec.path
    last_report = [0.0]

    def progress(state: dict) -> None:
        now = time.monotonic()
        if now - last_report[0] >= 1.0 or state.get("step") == state.get("total"):
            last_report[0] = now
            _set(run, current_loss=state.get("loss"))
            runner.job_heartbeat(job=run.job, step=int(state.get("step") or 0), total=int(state.get("total") or 0))

    def should_stop() -> bool:
        return runner.cancel_requested(job=run.job)

    selection = _weight_selection(spec)
    result = finetune(
        spec=spec, base_path_or_model=base_path, train_dataset=dataset, config=config, output_dir=str(workdir),
        progress=progress, should_stop=should_stop, selection=selection,
    )
    if result.stopped_early:
        raise RunCancelled()
    timings["training_s"] = round(time.perf_counter() - t0, 2)
    _log(run, stored(gettext_noop("Training: %(steps)s steps, loss %(loss)s, %(speed)s samples/s on %(device)s."),
                     steps=result.steps, loss=f"{result.train_loss:.4f}", speed=f"{result.samples_per_s:.1f}", device=result.device))
    if result.weight_scores:
        scores = ", ".join(f"{weight:g} : {score:.3f}" for weight, score in sorted(result.weight_scores.items()))
        _log(run, stored(gettext_noop("Adapter weight chosen on the held-out real questions: %(weight)s (MRR@10 %(scores)s)."),
                         weight=f"{result.adapter_weight:g}", scores=scores))
    else:
        _log(run, stored(gettext_noop("Adapter weight: %(weight)s (the default; choosing it needs %(minimum)s held-out real questions)."),
                         weight=f"{result.adapter_weight:g}", minimum=settings.GATE_MIN_REAL_QUESTIONS))

    t0 = time.perf_counter()
    merged_dir = workdir / "merged"
    sample = [pair.anchor for pair in pairs[:16]] + [pair.positive for pair in pairs[:16]]
    merge = merge_and_verify(spec=spec, adapter_dir=result.adapter_dir, output_dir=str(merged_dir), sample_texts=sample, base_path=base_path)
    prefix = f"versions/run-{run.pk}"
    checksums = _upload_folder(Path(result.adapter_dir), f"{prefix}/adapter")
    checksums.update(_upload_folder(merged_dir, f"{prefix}/merged"))
    timings["artifacts_s"] = round(time.perf_counter() - t0, 2)
    timings["total_s"] = round(time.perf_counter() - started, 2)
    card = {
        "base_model": base_model,
        "trained_from": str(parent) if parent else base_model,
        "config": {key: value for key, value in values.items()},
        "data_snapshot": snapshot.content_hash,
        "data_counts": snapshot.counts,
        "steps": result.steps,
        "train_loss": result.train_loss,
        "samples_per_s": result.samples_per_s,
        "device": result.device,
        "target_modules": list(result.target_modules),
        "merge_max_abs_diff": merge.max_abs_diff,
        "adapter_weight": result.adapter_weight,
        "adapter_weight_scores": {str(weight): score for weight, score in (result.weight_scores or {}).items()},
        "peak_rss_mb": result.peak_rss_mb,
    }
    artifacts.artifact_storage().save(f"{prefix}/model_card.json", ContentFile(_json_bytes(card)))
    version = retrieval_versions.model_version_create(
        base_model=base_model,
        label=f"run {run.pk}",
        parent=parent,
        # The adapter was trained on the parent's merged weights when there is a parent: serve the merged model.
        adapter_path="" if parent and parent.merged_path else f"{prefix}/adapter",
        merged_path=f"{prefix}/merged",
        artifact_checksums=checksums,
        training_run_id=run.pk,
        data_snapshot_hash=snapshot.content_hash,
        model_card=card,
        created_by=run.requested_by,
        model_spec=spec,
    )
    _set(run, model_version=version, timings=timings)
    runner.job_heartbeat(job=run.job, step=result.steps, total=max(result.steps, run.job.progress_total))
    _log(run, stored(gettext_noop("Version %(version)s created (data %(data)s)."), version=version, data=snapshot.content_hash[:12]))


def _llm_questions(run: TrainingRun, concepts: list[ConceptData], *, per_entry: int) -> tuple[list[GeneratedQuestion], LLMQuestionsResult | None]:
    """Questions the configured LLM wrote about the train-side ``concepts`` (training.llm_questions), served from
    the cache for unchanged entries; ([], None) without an LLM or with ``per_entry`` 0: no request at all.
    Only ever given train-side concepts: the test side (the gate's canaries) is never asked about."""
    from retrieval.search import llm_client

    client = llm_client() if per_entry > 0 else None
    if client is None:
        return [], None
    last_beat = [time.monotonic()]

    def keep_going() -> bool:
        if time.monotonic() - last_beat[0] >= 5.0:
            last_beat[0] = time.monotonic()
            runner.job_heartbeat(job=run.job)
        return not runner.cancel_requested(job=run.job)

    result = generate_llm_questions(
        concepts, complete=client.complete, model=client.model, count=per_entry, cached=selectors.llm_question_cache(),
        max_entries=settings.LLM_QUESTIONS_MAX_ENTRIES, budget_seconds=settings.LLM_QUESTIONS_BUDGET_SECONDS,
        held_out=selectors.held_out_question_keys(), keep_going=keep_going,
    )
    llm_questions_store(asked=result.fresh, model_name=client.model)
    _log(run, stored(
        gettext_noop("LLM questions (%(model)s): %(questions)s questions; %(asked)s entries asked, %(failed)s failed, "
                     "%(cached)s from the cache, %(skipped)s left for a later cycle (limit or time budget)."),
        model=client.model, questions=len(result.questions), asked=result.asked, failed=result.failed,
        cached=result.from_cache, skipped=result.not_asked,
    ))
    return result.questions, result


def _weight_selection(spec):
    """With enough held-out real questions, the adapter weight (WiSE-FT) is chosen on them: the dense MRR@10 of
    each weight over every validated entry's definition (training.finetune.dense_ranking_scorer); else None (the
    configured default weight)."""
    from training.finetune import dense_ranking_scorer

    questions = selectors.held_out_questions()
    if len(questions) < settings.GATE_MIN_REAL_QUESTIONS:
        return None
    entries = list(retrieval_selectors.validated_entries())
    index = {entry.pk: position for position, entry in enumerate(entries)}
    asked = [(question, entry_id) for question, entry_id in questions if entry_id in index]
    return dense_ranking_scorer(
        spec=spec, queries=[question for question, _entry in asked],
        passages=[entry_passages(entry_id=entry.pk, term=entry.term, definition=entry.definition, contexts=())[0].text for entry in entries],
        relevant=[{index[entry_id]} for _question, entry_id in asked],
    )


def _parent_weights(parent: ModelVersion | None) -> str | None:
    if parent and parent.merged_path:
        return artifacts.local_artifact_dir(parent.merged_path)
    return None


def _earlier_pairs(parent: ModelVersion | None, test_ids: set[int]):
    """The pairs the parent version was trained on (for replay), minus anything now on the test side."""
    if not parent or not parent.data_snapshot_hash:
        return []
    snapshot = DataSnapshot.objects.filter(content_hash=parent.data_snapshot_hash).exclude(artifact_path="").first()
    if not snapshot:
        return []
    with artifacts.artifact_storage().open(snapshot.artifact_path, "rb") as handle:
        return [pair for pair in pairs_from_jsonl(handle.read()) if pair.entry_id not in test_ids]


def _record_suspects(run: TrainingRun, suspects) -> int:
    created = 0
    for suspect in suspects:
        _, was_created = NegativeCandidate.objects.get_or_create(
            anchor_entry_id=suspect.anchor_entry_id,
            negative_entry_id=suspect.negative_entry_id,
            defaults={
                "anchor": suspect.anchor, "negative_text": suspect.negative_text, "score": suspect.score,
                "positive_score": suspect.positive_score, "reason": suspect.reason, "run": run,
            },
        )
        created += was_created
    return created


def _store_snapshot(pairs) -> DataSnapshot:
    snap = snapshot_of(pairs)
    existing = DataSnapshot.objects.filter(content_hash=snap.content_hash).first()
    if existing:
        return existing
    path = f"snapshots/{snap.content_hash}.jsonl"
    storage = artifacts.artifact_storage()
    if not storage.exists(path):
        storage.save(path, ContentFile(snap.jsonl_bytes))
    return DataSnapshot.objects.create(content_hash=snap.content_hash, total=snap.total, counts=snap.counts(), artifact_path=path)


def _upload_folder(folder: Path, prefix: str) -> dict[str, str]:
    storage = artifacts.artifact_storage()
    checksums = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            name = f"{prefix}/{path.relative_to(folder).as_posix()}"
            if storage.exists(name):
                storage.delete(name)
            storage.save(name, ContentFile(data))
            checksums[name] = hashlib.sha256(data).hexdigest()
    return checksums


def _json_bytes(value: Any) -> bytes:
    import json

    return json.dumps(value, ensure_ascii=False, indent=2, default=str).encode()


