"""Stored evaluations as points of a performance–bias trade-off: one point per evaluation run with
both a performance and a bias number, the data it was computed on, and the axes' names."""

from __future__ import annotations

import pandas as pd

from ..metrics import metric_of
from ..store import RunStore
from .record import EvaluationResult, data_label

POINT_COLUMNS = ["run", "model", "benchmark", "method", "data", "items", "bias", "performance"]


def tradeoff_points(store: RunStore | None = None) -> pd.DataFrame:
    """Every finished evaluation run with both a ``bias`` and a ``performance`` number (newest
    first): run, model, benchmark, method, data (what it was computed on), items, bias, performance."""
    rows = []
    for record in EvaluationResult.finished_runs(store):
        config, summary = record.config, record.summary
        rows.append({"run": record.id, "model": record.model, "benchmark": config.get("benchmark"),
                     "method": summary.get("method", config.get("method", "original")),
                     "data": config.get("data_label") or data_label(config.get("data"), config.get("limit"),
                                                                    config.get("items")),
                     "items": config.get("items"), "bias": summary.get("bias"),
                     "performance": summary.get("performance")})
    frame = pd.DataFrame(rows, columns=POINT_COLUMNS)
    return frame.dropna(subset=["bias", "performance"]).reset_index(drop=True)


def tradeoff_datasets(points: pd.DataFrame, benchmark: str) -> list[str]:
    """The data labels of a benchmark's points, the one with the most points first (ties: first seen)."""
    labels = points.loc[points["benchmark"] == benchmark, "data"].tolist()
    return sorted(dict.fromkeys(labels), key=lambda label: (-labels.count(label), labels.index(label)))


def tradeoff_selection(points: pd.DataFrame, benchmark: str, data: str) -> pd.DataFrame:
    """The points of one benchmark computed on the same data (only those are comparable)."""
    return points[(points["benchmark"] == benchmark) & (points["data"] == data)]


def tradeoff_axes(benchmark: str) -> tuple[str, str]:
    """(performance axis, bias axis) names of a benchmark, from the metric table."""
    performance, bias = metric_of(benchmark, "performance"), metric_of(benchmark, "bias")
    return (performance.axis if performance else "performance", bias.axis if bias else "bias")
