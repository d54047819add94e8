"""Every read of the evaluation app: the test side of the glossary, evaluation runs, reports, history."""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import QuerySet

from config.stored_messages import render_all
from evaluation.queries import EvalConcept, normalise_query
from glossary.models import Entry
from jobs.models import Job
from retrieval import selectors as retrieval_selectors
from retrieval.catalogue import ModelSpec, looks_like_model_location, resolve_path
from retrieval.passages import EntryData
from retrieval.models import Flag, ModelVersion, PromotionEvent
from training import selectors as training_selectors
from training.models import DataSnapshot, NegativeCandidate
from evaluation.models import EvaluationRun, Leaderboard
from evaluation.gate_records import GateRecord, gate_of
from evaluation.reports import HIT_AT_1, MRR_AT_10, Column, EvaluationReport, LeaderboardRow, RankingMetrics

# The metrics shown for each version, in dense mode.
KEY_COLUMNS = (Column("def_only", HIT_AT_1), Column("def_only", MRR_AT_10), Column("concept", HIT_AT_1), Column("concept", MRR_AT_10))
# The differences shown for each version (vs its parent, vs the champion).
DELTA_COLUMNS = (Column("def_only", MRR_AT_10), Column("concept", HIT_AT_1))
KEY_PROTOCOLS = ("def_only", "concept")
KEY_MODE = "dense"


# ---- the test side of the glossary --------------------------------------------------------------------

def test_entries() -> QuerySet[Entry]:
    """Validated test-side entries: the evaluation corpus."""
    return training_selectors.test_side_entries()


def test_side() -> tuple[list[EntryData], list[EvalConcept], dict[str, str]]:
    """The validated test-side entries, as plain data and as evaluation concepts, and the reference answers of their
    example questions (normalised question -> answer). Entries not yet given a side are not in it: the services that
    build a test set assign the frozen split first (training.services.split_assign_all)."""
    entries, concepts, answers = [], [], {}
    for entry in test_entries():
        domain = entry.domain.name if entry.domain_id else None
        examples = [item for item in entry.examples or () if (item.get("question") or "").strip()]
        entries.append(
            EntryData(
                id=entry.pk, term=entry.term, definition=entry.definition, kind=entry.kind,
                variants=tuple(entry.variants or ()), contexts=tuple(entry.contexts or ()), domain=domain or "",
            )
        )
        concepts.append(
            EvalConcept(
                entry_id=entry.pk, term=entry.term, kind=entry.kind, domain=domain, definition=entry.definition,
                contexts=tuple(entry.contexts or ()), examples=tuple(item["question"] for item in examples),
            )
        )
        for item in examples:
            if item.get("answer"):
                answers[normalise_query(item["question"])] = item["answer"]
    return entries, concepts, answers


def flagged_test_questions(*, entry_ids: set[int]) -> list[tuple[str, int]]:
    """(question, correct entry) of the flags not dismissed whose correct entry is on the test side."""
    rows = (
        Flag.objects.exclude(status=Flag.Status.DISMISSED)
        .filter(correct_entry_id__in=entry_ids)
        .order_by("pk")
        .values_list("question_log__question", "correct_entry_id")
    )
    return [(question, entry_id) for question, entry_id in rows if question and question.strip()]


def vocabulary_rows() -> list[tuple[str, str, list[str], str]]:
    """(term, kind, variants, definition) of the whole validated glossary, for the query pre-processing."""
    return list(retrieval_selectors.validated_entries().values_list("term", "kind", "variants", "definition"))


def screened_negatives() -> list[tuple[str, str, str, str]]:
    """(anchor, anchor term, anchor definition, negative text) of the negatives experts judged really different."""
    return list(
        NegativeCandidate.objects.filter(decision=NegativeCandidate.Decision.DIFFERENT)
        .order_by("pk")
        .values_list("anchor", "anchor_entry__term", "anchor_entry__definition", "negative_text")
    )


def latest_snapshot() -> DataSnapshot | None:
    return DataSnapshot.objects.exclude(artifact_path="").order_by("-created_at", "-pk").first()


# ---- evaluation runs ----------------------------------------------------------------------------------

def evaluation_run_list(*, version: ModelVersion | None = None) -> QuerySet[EvaluationRun]:
    qs = EvaluationRun.objects.select_related("version", "job", "job__requested_by")
    return qs.filter(version=version) if version is not None else qs


def evaluation_run_get(*, run_id: int) -> EvaluationRun:
    return evaluation_run_list().get(pk=run_id)


def latest_evaluation(*, version: ModelVersion, test_set_hash: str | None = None, mode: str | None = None) -> EvaluationRun | None:
    """The version's latest succeeded evaluation, on a given test set and with a given mode when asked."""
    qs = EvaluationRun.objects.filter(version=version, job__status=EvaluationRun.Status.SUCCEEDED)
    if test_set_hash is not None:
        qs = qs.filter(test_set_hash=test_set_hash)
    for run in qs.order_by("-job__finished_at", "-pk"):
        if mode is None or mode in run.report:
            return run
    return None


def latest_evaluations(*, versions: list[ModelVersion]) -> dict[int, EvaluationRun]:
    """The latest succeeded evaluation of each version that has one, by version id."""
    latest: dict[int, EvaluationRun] = {}
    runs = EvaluationRun.objects.filter(version__in=versions, job__status=EvaluationRun.Status.SUCCEEDED).order_by("-job__finished_at", "-pk")
    for run in runs:
        latest.setdefault(run.version_id, run)
    return latest


def active_evaluation(*, version: ModelVersion) -> EvaluationRun | None:
    return EvaluationRun.objects.filter(version=version, job__status__in=[EvaluationRun.Status.QUEUED, EvaluationRun.Status.RUNNING]).first()


def leaderboard_latest() -> Leaderboard | None:
    """The latest finished leaderboard: what the page shows while a newer one is still being computed."""
    return Leaderboard.objects.select_related("job").exclude(job__status__in=Job.ACTIVE).order_by("-created_at", "-pk").first()


def leaderboard_active() -> Leaderboard | None:
    """The leaderboard queued or being computed, if any (one at a time: ``leaderboard.LEADERBOARD_LOCK``)."""
    return Leaderboard.objects.select_related("job").filter(job__status__in=Job.ACTIVE).order_by("-created_at", "-pk").first()


@dataclass(frozen=True)
class LeaderboardPlan:
    """What a leaderboard computed from the page evaluates, and the catalogue models it leaves out."""

    model_names: list[str]  # catalogue base models whose weights are on this machine
    absent_models: list[str]  # catalogue models this machine would have to download: not evaluated
    versions: list[ModelVersion]  # the champion, then the ready versions


def model_on_this_machine(spec: ModelSpec) -> bool:
    """Whether the model's weights can be loaded without the network: a bundled package, a local directory or a
    copy in the Hugging Face cache. Checked without loading it (a page asks)."""
    try:
        path = resolve_path(spec)
    except ImportError:
        return False
    if os.path.isdir(path):
        return True
    if not looks_like_model_location(path) or os.path.isabs(path):
        return False
    from huggingface_hub import try_to_load_from_cache

    try:
        return any(isinstance(try_to_load_from_cache(path, name), str) for name in ("modules.json", "config.json"))
    except ValueError:  # a name the hub would refuse (HFValidationError): nothing of it can be cached
        return False


def leaderboard_plan() -> LeaderboardPlan:
    """The defaults of the page's button: the catalogue's models on this machine, the champion and the ready versions."""
    available, absent = [], []
    for name, spec in sorted(retrieval_selectors.catalogue_specs().items()):
        (available if model_on_this_machine(spec) else absent).append(name)
    champion = retrieval_selectors.champion_version_get()
    ready = ModelVersion.objects.filter(status=ModelVersion.Status.READY).exclude(pk=champion.pk).order_by("number")
    return LeaderboardPlan(model_names=available, absent_models=absent, versions=[champion, *ready])


def leaderboard_list() -> QuerySet[Leaderboard]:
    return Leaderboard.objects.order_by("-created_at", "-pk")


def leaderboard_rows(board: Leaderboard) -> list[LeaderboardRow]:
    return [LeaderboardRow.from_dict(row) for row in board.rows]


# ---- reading reports ----------------------------------------------------------------------------------

def report_of(run: EvaluationRun) -> EvaluationReport:
    return EvaluationReport.from_dict(run.report)


def key_metrics(run: EvaluationRun | None) -> dict[str, RankingMetrics]:
    """The overall metrics of each key protocol in dense mode (nothing measured without a run)."""
    report = report_of(run).get(KEY_MODE) if run else None
    overall = report.overall() if report else {}
    return {protocol: overall.get(protocol, RankingMetrics()) for protocol in KEY_PROTOCOLS}


def comparable_run(*, version: ModelVersion | None, test_set_hash: str) -> EvaluationRun | None:
    """The latest evaluation of ``version`` on the same test set (None when there is none to compare with)."""
    if version is None or not test_set_hash:
        return None
    return latest_evaluation(version=version, test_set_hash=test_set_hash)


def metric_deltas(run: EvaluationRun | None, other: EvaluationRun | None) -> dict[str, RankingMetrics]:
    """Key metrics of ``run`` minus those of ``other``; nothing where either is missing or the test sets differ."""
    if run is None or other is None or run.test_set_hash != other.test_set_hash:
        return key_metrics(None)
    mine, theirs = key_metrics(run), key_metrics(other)
    return {protocol: mine[protocol].minus(theirs[protocol]) for protocol in mine}


@dataclass
class VersionRow:
    version: ModelVersion
    evaluation: EvaluationRun | None
    metrics: dict[str, RankingMetrics]  # by protocol (KEY_PROTOCOLS)
    delta_parent: dict[str, RankingMetrics]
    delta_champion: dict[str, RankingMetrics]
    gate: GateRecord | None
    active_evaluation: EvaluationRun | None


def version_rows() -> list[VersionRow]:
    """Every version with its key metrics, its deltas vs its parent (or base) and vs the champion, and its gate."""
    champion = retrieval_selectors.champion_version_get()
    versions = list(retrieval_selectors.model_version_list())
    base = next((version for version in versions if version.number == 0), None)
    latest = latest_evaluations(versions=versions)
    active = {run.version_id: run for run in EvaluationRun.objects.filter(job__status__in=[EvaluationRun.Status.QUEUED, EvaluationRun.Status.RUNNING])}
    rows = []
    for version in versions:
        run = latest.get(version.pk)
        reference = version.parent or (base if version.number != 0 else None)
        rows.append(
            VersionRow(
                version=version,
                evaluation=run,
                metrics=key_metrics(run),
                delta_parent=metric_deltas(run, comparable_run(version=reference, test_set_hash=run.test_set_hash) if run else None),
                delta_champion=metric_deltas(run, comparable_run(version=champion, test_set_hash=run.test_set_hash) if run and version.pk != champion.pk else None),
                gate=gate_of(version.metrics.get("gate")),
                active_evaluation=active.get(version.pk),
            )
        )
    return rows


@dataclass
class ChampionPoint:
    at: datetime
    event: PromotionEvent
    metrics: dict[str, RankingMetrics]  # by protocol (KEY_PROTOCOLS)
    glossary_size: int
    annotations: int


def champion_history() -> list[ChampionPoint]:
    """Each change of champion, oldest first, with the champion's key metrics (its latest evaluation) and the
    glossary size and number of expert annotations (flags + screening decisions) at that moment."""
    events = list(retrieval_selectors.promotion_event_list().order_by("at", "id"))
    latest = latest_evaluations(versions=[event.version for event in events])
    points = []
    for event in events:
        points.append(
            ChampionPoint(
                at=event.at,
                event=event,
                metrics=key_metrics(latest.get(event.version_id)),
                glossary_size=Entry.history.as_of(event.at).filter(status=Entry.Status.VALIDATED).count(),
                annotations=Flag.objects.filter(created_at__lte=event.at).count()
                + NegativeCandidate.objects.exclude(decision=NegativeCandidate.Decision.PENDING).filter(decided_at__lte=event.at).count(),
            )
        )
    return points


# ---- report downloads ---------------------------------------------------------------------------------

def report_payload(run: EvaluationRun) -> dict[str, Any]:
    """Everything an evaluation measured, as one JSON document (download and API), in the reader's language."""
    version = run.version
    return render_all({
        "evaluation_id": run.pk,
        "version": {"id": version.pk, "number": version.number, "name": version.display_name, "base_model": version.base_model,
                    "parent": version.parent.display_name if version.parent else None, "data_snapshot_hash": version.data_snapshot_hash},
        "status": run.status,
        "trigger": run.trigger,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "test_set_hash": run.test_set_hash,
        "query_source": run.query_source,
        "query_count": run.query_count,
        "passage_count": run.passage_count,
        "query_errors": run.query_errors,
        "modes": run.modes,
        "protocols": run.protocols,
        "report": report_of(run).to_dict(),
        "similarity": run.similarity,
        "ragas": run.ragas,
        "gate": gate.to_dict() if (gate := gate_of(run.gate)) else run.gate,
    })


CSV_HEADER = ("section", "mode", "protocol", "group_type", "group", "queries", "metric", "value")


def report_csv_rows(run: EvaluationRun) -> list[tuple]:
    """One row per number of the report: metrics overall and per domain, kind and query source, then the
    similarity tests and the RAGAS metrics. Values are fractions (0..1)."""
    rows: list[tuple] = []
    for mode, protocol, data in report_of(run).tables():
        for metric, value in data.overall.items():
            rows.append(("benchmark", mode, protocol, "overall", "", data.judged, metric, value))
        for group_type, group, values in data.groups():
            for metric, value in values.metrics.items():
                rows.append(("benchmark", mode, protocol, group_type, group, values.queries, metric, value))
    for name, values in run.similarity.items():
        value = values.get("accuracy", values.get("separation"))
        rows.append(("similarity", "dense", "", "", name, values.get("count"), "accuracy" if "accuracy" in values else "separation", value))
    for metric, summary in run.ragas.get("metrics", {}).items():
        rows.append(("ragas", run.ragas.get("mode", ""), "", "", "", summary.get("computed"), metric, summary.get("mean")))
    return rows
