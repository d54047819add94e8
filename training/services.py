"""Writes of the training capability: the frozen split, runs (request, lock, cancel, execute), screening."""
from __future__ import annotations

import hashlib
import logging
import shutil
import socket
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from glossary.models import Entry
from retrieval import selectors as retrieval_selectors
from retrieval import serving
from retrieval import services as retrieval_services
from retrieval.models import ModelVersion
from retrieval.passages import Passage, entry_passages
from training import selectors
from training.builder import attach_negatives, build_pairs, select_training_pairs, to_dataset
from training.mining import MiningQuery, mine_hard_negatives
from training.models import DataSnapshot, Equivalence, NegativeCandidate, TrainingConfig, TrainingRun
from training.signals import version_trained
from training.snapshot import pairs_from_jsonl, snapshot_of
from training.split import SplitConcept, assert_no_leak, assign_splits

logger = logging.getLogger("lexique.training")

DEFAULT_CONFIG_NAME = "défaut"
# A run whose worker has not reported for this long is considered dead (crash, OOM, machine lost).
STALE_AFTER = timedelta(minutes=int(getattr(settings, "TRAINING_STALE_MINUTES", 15)))


class TrainingAlreadyRunning(ValidationError):
    def __init__(self, run: TrainingRun):
        self.run = run
        super().__init__(_("Un entraînement est déjà en cours (n° %(id)s).") % {"id": run.pk}, code="already_running")


class RunCancelled(Exception):
    """The maintainer cancelled the run while it was working."""


# ---- frozen split --------------------------------------------------------------------------------------

def split_assign_all(*, test_ratio: float = 0.1, seed: int = 13) -> dict[int, str]:
    """Give every unassigned entry its side of the frozen split; existing sides never move."""
    concepts = [
        SplitConcept(
            entry_id=entry.pk,
            stable_key=f"{entry.term_key}\x1f{entry.definition_key_hash}",
            domain=entry.domain.name if entry.domain_id else None,
            kind=entry.kind,
            split=entry.split,
        )
        for entry in Entry.objects.select_related("domain").only("pk", "term_key", "definition_key_hash", "kind", "split", "domain__name")
    ]
    assignments = assign_splits(concepts, test_ratio=test_ratio, seed=seed)
    with transaction.atomic():
        for side in ("train", "test"):
            ids = [entry_id for entry_id, value in assignments.items() if value == side]
            # Only unassigned rows: a concurrent assignment (or pin) is never overwritten.
            Entry.objects.filter(pk__in=ids, split="").update(split=side)
    return assignments


# ---- configs and requests ----------------------------------------------------------------------------

def training_config_default_get() -> TrainingConfig:
    config = TrainingConfig.objects.filter(is_default=True).first()
    if config:
        return config
    config, _created = TrainingConfig.objects.get_or_create(name=DEFAULT_CONFIG_NAME, defaults={"is_default": True})
    return config


def config_values(config: TrainingConfig, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    values = {
        field.name: getattr(config, field.name)
        for field in TrainingConfig._meta.concrete_fields
        if field.name not in ("id", "name", "is_default", "updated_at")
    }
    for key, value in (overrides or {}).items():
        if key not in values:
            raise ValidationError(_("Paramètre d'entraînement inconnu : %(key)s.") % {"key": key})
        if value is not None:
            values[key] = value
    return values


def training_run_request(
    *, user=None, trigger: str = TrainingRun.Trigger.BUTTON, config: TrainingConfig | None = None, overrides: dict[str, Any] | None = None
) -> TrainingRun:
    """Queue a training run; refuse when one is already going (one training at a time)."""
    training_runs_fail_stale()
    config = config or training_config_default_get()
    values = config_values(config, overrides)
    try:
        with transaction.atomic():
            run = TrainingRun.objects.create(
                trigger=trigger, config=config, config_values=values, requested_by=user, lock="training",
                parent_version=retrieval_selectors.champion_version_get(),
            )
    except IntegrityError:
        active = selectors.active_run_get()
        if active is None:  # it finished in between: try once more
            return training_run_request(user=user, trigger=trigger, config=config, overrides=overrides)
        raise TrainingAlreadyRunning(active) from None
    _log(run, f"Demandé par {user or 'le planificateur'} ({trigger}).")
    transaction.on_commit(lambda: _enqueue(run.pk))
    return run


def _enqueue(run_id: int) -> None:
    from training.tasks import run_training

    try:
        result = run_training.delay(run_id)
        TrainingRun.objects.filter(pk=run_id).update(task_id=result.id or "")
    except Exception as error:  # the broker is down: say so on the run rather than leave it queued forever
        logger.exception("Could not enqueue training run %s", run_id)
        _finish(TrainingRun.objects.get(pk=run_id), TrainingRun.Status.FAILED, error=f"File d'attente indisponible : {error}")


def training_run_cancel(*, run: TrainingRun, user=None) -> TrainingRun:
    run.refresh_from_db()
    if not run.is_active:
        raise ValidationError(_("Cet entraînement est déjà terminé."))
    if run.status == TrainingRun.Status.QUEUED:
        _log(run, f"Annulé par {user} avant son démarrage.")
        return _finish(run, TrainingRun.Status.CANCELLED, error="")
    TrainingRun.objects.filter(pk=run.pk).update(cancel_requested=True)
    _log(run, f"Annulation demandée par {user}.")
    run.refresh_from_db()
    return run


def training_runs_fail_stale(*, worker: str | None = None) -> int:
    """Fail active runs whose worker stopped reporting (or, at a worker's start, the runs it held)."""
    now = timezone.now()
    stale = TrainingRun.objects.filter(status__in=TrainingRun.ACTIVE).exclude(status=TrainingRun.Status.QUEUED)
    if worker:
        stale = stale.filter(worker=worker)
    else:
        stale = stale.filter(heartbeat_at__lt=now - STALE_AFTER)
    count = 0
    for run in stale:
        reason = (
            _("Le worker %(worker)s a redémarré pendant l'entraînement.") % {"worker": worker}
            if worker
            else _("Le worker ne donne plus signe de vie depuis %(minutes)s minutes.") % {"minutes": int(STALE_AFTER.total_seconds() // 60)}
        )
        _finish(run, TrainingRun.Status.FAILED, error=reason)
        count += 1
    return count


def _log(run: TrainingRun, message: str) -> None:
    line = f"[{timezone.now():%Y-%m-%d %H:%M:%S}] {message}\n"
    run.log = (run.log or "") + line
    TrainingRun.objects.filter(pk=run.pk).update(log=run.log)
    logger.info("run %s: %s", run.pk, message)


def _set(run: TrainingRun, **fields: Any) -> None:
    fields.setdefault("heartbeat_at", timezone.now())
    for name, value in fields.items():
        setattr(run, name, value)
    TrainingRun.objects.filter(pk=run.pk).update(**fields)


def _finish(run: TrainingRun, status: str, *, error: str = "", keep_version: bool = False) -> TrainingRun:
    """End a run: terminal status, lock released; a version it made is never left in service if it failed
    (unless ``keep_version``: the weights are sound and only a later stage, e.g. evaluation, failed)."""
    _set(run, status=status, error=error, finished_at=timezone.now(), lock=None)
    if status != TrainingRun.Status.SUCCEEDED and run.model_version_id and not keep_version:
        version = ModelVersion.objects.get(pk=run.model_version_id)
        if version.status == ModelVersion.Status.READY:
            version.status = ModelVersion.Status.FAILED
            version.save(update_fields=["status"])
    if error:
        _log(run, f"Échec : {error}" if status == TrainingRun.Status.FAILED else error)
    return run


def training_run_heartbeat(*, run_id: int, message: str = "") -> None:
    """Progress of a later stage (evaluation) on the run it took over: logged, and the run is not taken for dead."""
    run = TrainingRun.objects.get(pk=run_id)
    _set(run)
    if message:
        _log(run, message)


def training_run_finish(*, run_id: int, status: str, message: str = "", keep_version: bool = False) -> TrainingRun:
    """Close a run that evaluation took over (called by the evaluation capability).

    ``keep_version``: a failed evaluation leaves the trained version ready (never promoted), to be evaluated again.
    """
    run = TrainingRun.objects.get(pk=run_id)
    if message:
        _log(run, message)
    return _finish(run, status, error=message if status == TrainingRun.Status.FAILED else "", keep_version=keep_version)


# ---- execution -----------------------------------------------------------------------------------------

def training_run_execute(*, run_id: int, worker: str = "") -> TrainingRun:
    """The whole cycle of one run: split, pairs, mining, LoRA fine-tuning, artifacts, model version."""
    run = TrainingRun.objects.select_related("parent_version").get(pk=run_id)
    if run.status != TrainingRun.Status.QUEUED:
        logger.info("run %s is %s: nothing to do", run.pk, run.status)
        return run
    workdir = Path(tempfile.mkdtemp(prefix=f"run-{run.pk}-", dir=_workdir_root()))
    try:
        _set(run, status=TrainingRun.Status.MINING, started_at=timezone.now(), worker=worker or socket.gethostname())
        _log(run, "Démarrage : partition, données d'entraînement et minage des négatifs.")
        _execute(run, workdir)
    except RunCancelled:
        _finish(run, TrainingRun.Status.CANCELLED, error=_("Annulé à la demande."))
    except Exception as error:
        logger.exception("training run %s failed", run.pk)
        _finish(run, TrainingRun.Status.FAILED, error=f"{type(error).__name__}: {error}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    run.refresh_from_db()
    return run


def _workdir_root() -> str:
    root = Path(settings.VAR_DIR) / "training"
    root.mkdir(parents=True, exist_ok=True)
    return str(root)


def _check_cancel(run: TrainingRun) -> None:
    if TrainingRun.objects.filter(pk=run.pk, cancel_requested=True).exists():
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
    spec = retrieval_selectors.model_spec_get(name=base_model)

    split_assign_all(seed=values["seed"])
    test_ids = selectors.test_entry_ids()
    concepts = selectors.train_concepts()
    if not concepts:
        raise ValidationError(_("Aucune entrée validée côté entraînement : rien à apprendre."))
    train_ids = {concept.entry_id for concept in concepts}
    assert_no_leak(train_ids, test_ids)
    flags = selectors.training_flags(train_entry_ids=train_ids)
    all_pairs = build_pairs(concepts=concepts, flags=flags, test_entry_ids=test_ids)
    earlier = _earlier_pairs(parent, test_ids)
    earlier_keys = {(pair.anchor, pair.positive) for pair in earlier}
    new_pairs = [pair for pair in all_pairs if (pair.anchor, pair.positive) not in earlier_keys]
    pairs = select_training_pairs(
        new_pairs, earlier, replay_ratio=values["replay_ratio"], seed=values["seed"], max_pairs=values["max_pairs"], test_entry_ids=test_ids
    )
    if not pairs:
        raise ValidationError(_("Aucune nouvelle donnée d'entraînement depuis la version %(v)s.") % {"v": parent})
    _log(run, f"{len(pairs)} paires ({len(new_pairs)} nouvelles, {len(earlier)} antérieures disponibles), {len(flags)} signalements.")
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
        query_vectors=serving.encode_queries_with(mining_version, [query.anchor for query in queries]),
        passages=passages,
        passage_vectors=serving.encode_documents_with(mining_version, [passage.text for passage in passages]),
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
    _log(run, f"Minage : {len(mined.triplets)} ancres avec négatifs, {suspects} candidats envoyés à l'examen des experts.")
    _check_cancel(run)

    snapshot = _store_snapshot(pairs)
    _set(run, snapshot=snapshot, status=TrainingRun.Status.TRAINING, stats={"pairs": len(pairs), "new_pairs": len(new_pairs), "suspects": suspects})
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
            _set(run, progress_step=int(state.get("step") or 0), progress_total=int(state.get("total") or 0), current_loss=state.get("loss"))

    def should_stop() -> bool:
        return TrainingRun.objects.filter(pk=run.pk, cancel_requested=True).exists()

    result = finetune(
        spec=spec, base_path_or_model=base_path, train_dataset=dataset, config=config, output_dir=str(workdir),
        progress=progress, should_stop=should_stop,
    )
    if result.stopped_early:
        raise RunCancelled()
    timings["training_s"] = round(time.perf_counter() - t0, 2)
    _log(run, f"Entraînement : {result.steps} étapes, perte {result.train_loss:.4f}, {result.samples_per_s:.1f} exemples/s sur {result.device}.")

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
        "peak_rss_mb": result.peak_rss_mb,
    }
    serving.artifact_storage().save(f"{prefix}/model_card.json", ContentFile(_json_bytes(card)))
    version = retrieval_services.model_version_create(
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
    )
    _set(run, model_version=version, timings=timings, progress_step=result.steps, progress_total=max(result.steps, run.progress_total))
    _log(run, f"Version {version} créée (données {snapshot.content_hash[:12]}).")
    if version_trained.has_listeners():
        _set(run, status=TrainingRun.Status.EVALUATING)
        version_trained.send(sender=TrainingRun, run=run, version=version)
    else:
        _finish(run, TrainingRun.Status.SUCCEEDED)


def _parent_weights(parent: ModelVersion | None) -> str | None:
    if parent and parent.merged_path:
        return serving.local_artifact_dir(parent.merged_path)
    return None


def _earlier_pairs(parent: ModelVersion | None, test_ids: set[int]):
    """The pairs the parent version was trained on (for replay), minus anything now on the test side."""
    if not parent or not parent.data_snapshot_hash:
        return []
    snapshot = DataSnapshot.objects.filter(content_hash=parent.data_snapshot_hash).exclude(artifact_path="").first()
    if not snapshot:
        return []
    with serving.artifact_storage().open(snapshot.artifact_path, "rb") as handle:
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
    storage = serving.artifact_storage()
    if not storage.exists(path):
        storage.save(path, ContentFile(snap.jsonl_bytes))
    return DataSnapshot.objects.create(content_hash=snap.content_hash, total=snap.total, counts=snap.counts(), artifact_path=path)


def _upload_folder(folder: Path, prefix: str) -> dict[str, str]:
    storage = serving.artifact_storage()
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


# ---- expert screening ----------------------------------------------------------------------------------

def screening_decide(*, candidate: NegativeCandidate, decision: str, user) -> NegativeCandidate:
    """Record an expert's screening: "different" keeps the negative, "same" records an equivalence."""
    if decision not in (NegativeCandidate.Decision.DIFFERENT, NegativeCandidate.Decision.SAME):
        raise ValidationError(_("Décision inconnue : %(d)s.") % {"d": decision})
    with transaction.atomic():
        current = NegativeCandidate.objects.select_for_update().get(pk=candidate.pk)
        if current.decision != NegativeCandidate.Decision.PENDING:
            raise ValidationError(_("Ce candidat a déjà été examiné (%(d)s).") % {"d": current.get_decision_display()}, code="already_decided")
        current.decision = decision
        current.decided_by = user
        current.decided_at = timezone.now()
        current.save(update_fields=["decision", "decided_by", "decided_at"])
        if decision == NegativeCandidate.Decision.SAME:
            first, second = sorted((current.anchor_entry_id, current.negative_entry_id))
            Equivalence.objects.get_or_create(entry_a_id=first, entry_b_id=second, defaults={"decided_by": user})
    return current


# ---- schedule ------------------------------------------------------------------------------------------

def scheduled_retrain() -> TrainingRun | None:
    """The nightly trigger: train only when enough new validated material arrived since the last run."""
    config = training_config_default_get()
    material = selectors.new_material_count()
    if material["total"] < config.min_new_material:
        logger.info("Scheduled retrain skipped: %s new items < threshold %s", material["total"], config.min_new_material)
        return None
    try:
        return training_run_request(trigger=TrainingRun.Trigger.SCHEDULE, config=config)
    except TrainingAlreadyRunning:
        return None
