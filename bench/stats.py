"""Repeated timings and their summaries (medians and percentiles, never single absolute times), and the means of
ranking metrics in percent."""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from evaluation.metrics import aggregate
from evaluation.reports import Metric


def percentiles_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50, p95 and mean of a list of durations in seconds, in milliseconds."""
    values = np.asarray(seconds, dtype=float) * 1000
    if values.size == 0:
        return {"p50": float("nan"), "p95": float("nan"), "mean": float("nan"), "n": 0}
    return {
        "p50": float(np.percentile(values, 50)),
        "p95": float(np.percentile(values, 95)),
        "mean": float(values.mean()),
        "n": int(values.size),
    }


def timed(function: Callable[[], object]) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def repeat_timings(function: Callable[[], object], *, repeat: int, warmup: int = 1) -> list[float]:
    """Durations (seconds) of ``repeat`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        function()
    return [timed(function) for _ in range(repeat)]


def median(values: Sequence[float]) -> float:
    return float(np.median(np.asarray(values, dtype=float))) if len(values) else float("nan")


def ms(value: float) -> str:
    """A duration in milliseconds as reports print it."""
    if value != value:  # NaN
        return "n/a"
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def ratio(value: float) -> str:
    return "n/a" if value != value else f"{value:.2f}"


def percent_means(per_query: Sequence[dict[str, float]], metrics: Sequence[Metric]) -> dict[str, float]:
    """The mean of each of ``metrics`` over per-query metrics (``evaluation.metrics.ranking_metrics``), in percent,
    by metric key ("hit@1"): what the benchmarks' tables show under ``Metric.label``."""
    means = aggregate(per_query)
    return {metric.key: 100 * means[metric.key] for metric in metrics}
