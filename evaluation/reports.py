"""Typed evaluation reports, with one metric vocabulary, serialised in one place (pure, no Django).

An evaluation report says, for each search mode ("dense", "hybrid", "lexical") and each relevance protocol
("concept", "def_only"; ``evaluation.protocols``), the mean ranking metrics overall and per domain, kind of question
and query source, and the worst queries. The promotion gate asks the product's search real and canary questions and
keeps, per kind of question, the same kind of numbers; what it stores is in ``evaluation.gate_records``.

Metric names say what they are (definitions in ``evaluation.metrics``): ``hit_at_k`` (a relevant passage in the top
k; what the earlier prototype called "R@k"), ``recall_at_k`` (the share of the relevant passages in the top k),
``mrr_at_10``, ``ndcg_at_10``, ``map_at_10``. Users read them under one set of labels (``metric_label``: "Hit@1",
"Recall@10", "MRR@10", "nDCG@10", "MAP@10"), on the pages, in the commands and in the benchmarks.

The JSON stored on the rows (``EvaluationRun.report`` and ``.gate``, ``ModelVersion.metrics``, ``Leaderboard.rows``)
and served by the API keeps the keys it has always had ("hit@1", "r1", ...). ``from_dict`` reads what any version
stored; ``to_dict`` writes the same document back (``evaluation.stored``): a key an older version did not write stays
absent, a key this code does not know is kept.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from evaluation.stored import Stored, dict_of, dump_each, dump_stored, load_stored

# ---- the metric vocabulary ------------------------------------------------------------------------------------

_FAMILY_LABELS = {"hit": "Hit", "recall": "Recall", "mrr": "MRR", "ndcg": "nDCG", "map": "MAP"}
PROTOCOL_LABELS = {"concept": "Concept", "def_only": "Def-only"}


def metric_label(key: str) -> str:
    """What users read for a metric: "hit@1" -> "Hit@1", "ndcg@10" -> "nDCG@10" (unknown names unchanged)."""
    family, at, cutoff = key.partition("@")
    return f"{_FAMILY_LABELS.get(family, family)}@{cutoff}" if at else key


def metric_field(key: str) -> str:
    """The attribute of a metric on ``RankingMetrics``: "hit@1" -> "hit_at_1"."""
    family, at, cutoff = key.partition("@")
    return f"{family}_at_{cutoff}" if at else key


def protocol_label(protocol: str) -> str:
    return PROTOCOL_LABELS.get(protocol, protocol)


@dataclass(frozen=True)
class Metric:
    """One ranking metric: ``key`` in stored reports, CSV and the API ("hit@1"), ``label`` for users ("Hit@1")."""

    key: str

    @property
    def label(self) -> str:
        return metric_label(self.key)

    @property
    def field(self) -> str:
        return metric_field(self.key)

    def of(self, metrics: RankingMetrics | None) -> float | None:
        return metrics.get(self.key) if metrics is not None else None


HIT_AT_1, HIT_AT_5, HIT_AT_10 = Metric("hit@1"), Metric("hit@5"), Metric("hit@10")
RECALL_AT_10 = Metric("recall@10")
MRR_AT_10, NDCG_AT_10, MAP_AT_10 = Metric("mrr@10"), Metric("ndcg@10"), Metric("map@10")
# The columns of a protocol's table on the report page (and of the Bercy benchmark).
REPORT_METRICS = (HIT_AT_1, HIT_AT_5, HIT_AT_10, MRR_AT_10, NDCG_AT_10)
# The two numbers a version is known by (the versions page, the leaderboard, the active-learning benchmark).
KEY_METRICS = (HIT_AT_1, MRR_AT_10)
# What questions asked through the product's search report per kind (gate_records.QuestionScores), and the sigles
# benchmarks.
QUESTION_METRICS = (HIT_AT_1, HIT_AT_10, MRR_AT_10)


def metric_labels(metrics: tuple[Metric, ...] = REPORT_METRICS) -> dict[str, str]:
    """``{key: label}`` of ``metrics``, in order (what the report page's tables show)."""
    return {metric.key: metric.label for metric in metrics}


@dataclass(frozen=True)
class Column:
    """One protocol's metric as a column of a table: "Def-only Hit@1"."""

    protocol: str
    metric: Metric

    @property
    def title(self) -> str:
        return f"{protocol_label(self.protocol)} {self.metric.label}"

    def of(self, overall: Mapping[str, RankingMetrics]) -> float | None:
        return self.metric.of(overall.get(self.protocol))


def metric_path(path: str) -> Column:
    """A "protocol.metric" path (``GATE_PRIMARY_METRIC``, e.g. "def_only.mrr@10") as a column."""
    protocol, separator, key = path.partition(".")
    if not separator or not key:
        raise ValueError(f"a metric path is 'protocol.metric', e.g. 'def_only.mrr@10'; got {path!r}")
    return Column(protocol, Metric(key))


# ---- ranking metrics ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RankingMetrics:
    """Mean ranking metrics of a set of queries, fractions in 0..1; None: not measured.

    The fields are those of the product's cut-offs (``evaluation.metrics.DEFAULT_KS`` and ``DEFAULT_CUTOFF``);
    metrics at other cut-offs are kept by key in ``other``.
    """

    hit_at_1: float | None = None
    hit_at_5: float | None = None
    hit_at_10: float | None = None
    hit_at_20: float | None = None
    recall_at_1: float | None = None
    recall_at_5: float | None = None
    recall_at_10: float | None = None
    recall_at_20: float | None = None
    mrr_at_10: float | None = None
    ndcg_at_10: float | None = None
    map_at_10: float | None = None
    other: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, float] | None) -> RankingMetrics:
        """From ``{"hit@1": 0.5, "mrr@10": 0.61, ...}`` (``evaluation.metrics.ranking_metrics`` and stored reports)."""
        known = _METRIC_FIELDS
        values = {metric_field(key): value for key, value in (data or {}).items() if metric_field(key) in known}
        other = {key: value for key, value in (data or {}).items() if metric_field(key) not in known}
        return cls(**values, other=other)

    def to_dict(self) -> dict[str, float]:
        return dict(self.items())

    def items(self) -> Iterator[tuple[str, float]]:
        """(key, value) of each measured metric, in display order."""
        for name in _METRIC_FIELDS:
            value = getattr(self, name)
            if value is not None:
                yield _METRIC_KEYS[name], value
        yield from self.other.items()

    def get(self, key: str) -> float | None:
        """The metric stored under ``key`` ("hit@1"); None when it was not measured."""
        name = metric_field(key)
        return getattr(self, name) if name in _METRIC_FIELDS else self.other.get(key)

    def __bool__(self) -> bool:
        return any(True for _ in self.items())

    def minus(self, other: RankingMetrics) -> RankingMetrics:
        """Each metric measured on both sides: this one's value minus ``other``'s."""
        return RankingMetrics.from_dict({
            key: value - theirs for key, value in self.items() if (theirs := other.get(key)) is not None
        })


_METRIC_FIELDS = tuple(item.name for item in fields(RankingMetrics) if item.name != "other")
_METRIC_KEYS = {name: "{}@{}".format(*name.split("_at_")) for name in _METRIC_FIELDS}

# Overall metrics per mode and protocol: {"dense": {"def_only": RankingMetrics, ...}, ...}.
Overall = dict[str, dict[str, RankingMetrics]]


def overall_from_dict(data: Mapping[str, Mapping[str, Mapping[str, float]]] | None) -> Overall:
    return {mode: {protocol: RankingMetrics.from_dict(values) for protocol, values in protocols.items()} for mode, protocols in (data or {}).items()}


def overall_to_dict(overall: Overall) -> dict[str, dict[str, dict[str, float]]]:
    return {mode: {protocol: metrics.to_dict() for protocol, metrics in protocols.items()} for mode, protocols in overall.items()}


# ---- the benchmark report on the frozen test set --------------------------------------------------------------

@dataclass(frozen=True)
class GroupReport(Stored):
    """The queries of one domain, kind of question or query source, and their mean metrics."""

    queries: int = 0
    metrics: RankingMetrics = field(default_factory=RankingMetrics)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> GroupReport:
        return load_stored(cls, data, metrics=RankingMetrics.from_dict)

    def to_dict(self) -> dict[str, Any]:
        return dump_stored(self, metrics=RankingMetrics.to_dict)


@dataclass(frozen=True)
class QueryResult(Stored):
    """One query judged under one protocol; stored only among the worst queries."""

    text: str = ""
    source: str = ""
    domain: str | None = None
    kind: str | None = None
    relevant: tuple[str, ...] = ()
    first_relevant_rank: int | None = None  # 1-based rank in the whole ranking; None when no relevant passage came back
    ranked_above: tuple[str, ...] = ()  # the passages ranked above the first relevant one (all of them when none did)
    metrics: RankingMetrics = field(default_factory=RankingMetrics)
    ranked_above_labels: tuple[str, ...] = ()  # what a maintainer reads for ``ranked_above`` (stored reports)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> QueryResult:
        return load_stored(cls, data, relevant=tuple, ranked_above=tuple, ranked_above_labels=tuple, metrics=RankingMetrics.from_dict)

    def to_dict(self) -> dict[str, Any]:
        return dump_stored(self, relevant=list, ranked_above=list, ranked_above_labels=list, metrics=RankingMetrics.to_dict)


# The breakdowns of a protocol's queries, with what users read for each.
BREAKDOWNS = (("by_domain", "domain"), ("by_kind", "kind"), ("by_source", "source"))


@dataclass(frozen=True)
class ProtocolReport(Stored):
    """The queries of one mode judged under one protocol: overall, per domain, kind and source, the worst ones."""

    overall: RankingMetrics = field(default_factory=RankingMetrics)
    by_domain: dict[str, GroupReport] = field(default_factory=dict)
    by_kind: dict[str, GroupReport] = field(default_factory=dict)
    by_source: dict[str, GroupReport] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # queries without any relevant passage: they cannot be judged
    worst: list[QueryResult] = field(default_factory=list)
    # Every query's result: while evaluating only, never stored.
    per_query: list[QueryResult] = field(default_factory=list, metadata={"stored": False})
    judged: int = 0
    skipped_count: int = 0

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> ProtocolReport:
        groups = dict_of(GroupReport.from_dict)
        return load_stored(
            cls, data, overall=RankingMetrics.from_dict, by_domain=groups, by_kind=groups, by_source=groups,
            skipped=list, worst=lambda items: [QueryResult.from_dict(item) for item in items],
        )

    def to_dict(self) -> dict[str, Any]:
        return dump_stored(
            self, overall=RankingMetrics.to_dict, by_domain=dump_each, by_kind=dump_each, by_source=dump_each, skipped=list,
            worst=lambda items: [item.to_dict() for item in items],
        )

    def groups(self) -> Iterator[tuple[str, str, GroupReport]]:
        """(breakdown "domain" | "kind" | "source", group name, group) of every breakdown, in order."""
        for attribute, breakdown in BREAKDOWNS:
            for name, group in getattr(self, attribute).items():
                yield breakdown, name, group

    def group_metric(self, breakdown: str, metric: Metric) -> dict[str, float]:
        """``metric`` for each group of ``breakdown`` ("by_domain", "by_kind", "by_source") that measured it."""
        return {
            name: value for name, group in getattr(self, breakdown).items()
            if (value := group.metrics.get(metric.key)) is not None
        }

    def for_storage(self, *, label: Callable[[str], str], keep: int, above: int) -> ProtocolReport:
        """What is stored: no per-query rows, the first ``keep`` skipped and worst queries, each with the first
        ``above`` passages ranked above its right answer and their labels."""
        return replace(
            self,
            per_query=[],
            skipped=self.skipped[:keep],
            worst=[
                replace(item, ranked_above=item.ranked_above[:above], ranked_above_labels=tuple(label(key) for key in item.ranked_above[:above]))
                for item in self.worst[:keep]
            ],
        )


@dataclass(frozen=True)
class ModeReport(Stored):
    """The report of one search mode: every protocol's judgement of the same queries."""

    queries: int = 0
    ks: tuple[int, ...] = ()
    cutoff: int = 0
    protocols: dict[str, ProtocolReport] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> ModeReport:
        return load_stored(cls, data, ks=tuple, protocols=dict_of(ProtocolReport.from_dict))

    def to_dict(self) -> dict[str, Any]:
        return dump_stored(self, ks=list, protocols=dump_each)

    def overall(self) -> dict[str, RankingMetrics]:
        return {protocol: report.overall for protocol, report in self.protocols.items()}

    def metric(self, column: Column) -> float | None:
        """The overall value of ``column`` (a protocol's metric); None when it was not measured."""
        protocol = self.protocols.get(column.protocol)
        return column.metric.of(protocol.overall if protocol else None)

    def domain_metric(self, column: Column) -> dict[str, float]:
        """The value of ``column`` for each domain that measured it."""
        protocol = self.protocols.get(column.protocol)
        return protocol.group_metric("by_domain", column.metric) if protocol else {}


@dataclass(frozen=True)
class EvaluationReport:
    """Every mode's report of one evaluation (``EvaluationRun.report``: ``{mode: ModeReport}``)."""

    modes: dict[str, ModeReport] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> EvaluationReport:
        return cls({mode: ModeReport.from_dict(report) for mode, report in (data or {}).items()})

    def to_dict(self) -> dict[str, Any]:
        return dump_each(self.modes)

    def __bool__(self) -> bool:
        return bool(self.modes)

    def __contains__(self, mode: str) -> bool:
        return mode in self.modes

    def __getitem__(self, mode: str) -> ModeReport:
        return self.modes[mode]

    def get(self, mode: str) -> ModeReport | None:
        return self.modes.get(mode)

    def items(self):
        return self.modes.items()

    def overall(self) -> Overall:
        """Overall metrics per mode and protocol (what a version and a leaderboard row keep)."""
        return {mode: report.overall() for mode, report in self.modes.items()}

    def tables(self) -> Iterator[tuple[str, str, ProtocolReport]]:
        """(mode, protocol, report) of every table of the report, in order."""
        for mode, report in self.modes.items():
            for protocol, data in report.protocols.items():
                yield mode, protocol, data


@dataclass(frozen=True)
class EvaluationSummary(Stored):
    """What a version keeps of its latest evaluation (``ModelVersion.metrics["evaluation"]``)."""

    run_id: int | None = None
    finished_at: str | None = None
    test_set_hash: str = ""
    queries: int = 0
    overall: Overall = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> EvaluationSummary:
        return load_stored(cls, data, overall=overall_from_dict)

    def to_dict(self) -> dict[str, Any]:
        return dump_stored(self, overall=overall_to_dict)


@dataclass(frozen=True)
class LeaderboardRow(Stored):
    """A base model or a version on a leaderboard: its overall metrics per mode and protocol, or why it was skipped."""

    name: str = ""
    kind: str = "model"  # "model" | "version"
    version_id: int | None = None
    skipped: bool = False
    reason: str = ""
    metrics: Overall = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> LeaderboardRow:
        return load_stored(cls, data, metrics=overall_from_dict)

    def to_dict(self) -> dict[str, Any]:
        return dump_stored(self, metrics=overall_to_dict)

    def metric(self, mode: str, column: Column) -> float | None:
        return column.of(self.metrics.get(mode, {}))


