"""What the app shows about head-method runs: whether a head table fits a model, how many heads a
FASP grid prunes, the correlation of two head-scoring runs (or why there is none), and the
iterative-pruning curve as a table."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..models import LoadedModel
from ..store import RunRecord
from .runs import HeadScoresResult

STATUSES = ("pruned", "protected", "kept")


def grid_shape(table: pd.DataFrame) -> tuple[int, int]:
    """(layers, heads) a head table covers, counted from index 0."""
    return int(table["layer"].max()) + 1, int(table["head"].max()) + 1


def fits_model(table: pd.DataFrame, loaded: LoadedModel | None) -> bool:
    """Whether every (layer, head) of a head table exists in ``loaded`` (False without a model)."""
    if loaded is None or table.empty:
        return False
    layers, heads = grid_shape(table)
    return layers <= loaded.num_layers and heads <= loaded.num_heads


def status_counts(grid: pd.DataFrame) -> dict[str, int]:
    """Heads per status of a head grid (FASP: pruned, protected, kept — each present, 0 if none)."""
    counts = grid["status"].value_counts()
    return {**{status: 0 for status in STATUSES}, **{str(k): int(v) for k, v in counts.items()}}


def heads_run_label(record: RunRecord) -> str:
    """A head-scoring run's picker label: model, performance and bias metric (or that it has no bias
    scores), then its id."""
    from ..runs import run_label

    text = run_label(record, kind=False)
    if record.config.get("bias"):
        return text
    described, _, run_id = text.rpartition(" · ")
    return f"{described} · no bias scores · {run_id}"


def _metric_name(column: str) -> str:
    return "bias" if column.startswith("bias") else "perf"


@dataclass(frozen=True)
class HeadCorrelation:
    """The Pearson correlation of one score column over the heads two runs share, or why there is
    none (``problem``); ``note`` says when the runs measure the metric differently."""

    column: str
    merged: pd.DataFrame      # the heads both runs scored: <column>_first, <column>_second, …
    shared: int               # heads scored in both runs (both values present)
    value: float | None
    problem: str | None = None
    note: str | None = None

    def table(self) -> pd.DataFrame:
        """One row: the column, the shared heads and the correlation (full precision); empty
        without a correlation."""
        if self.value is None:
            return pd.DataFrame(columns=["score", "shared_heads", "pearson_r"])
        return pd.DataFrame({"score": [self.column], "shared_heads": [self.shared], "pearson_r": [self.value]})


def head_score_correlation(first: HeadScoresResult, second: HeadScoresResult, column: str, *,
                           names: tuple[str, str] = ("first run", "second run")) -> HeadCorrelation:
    """Pearson correlation of ``column`` (bias_delta, perf_delta, …) over the (layer, head) both runs
    scored. A run without that metric, fewer than two shared heads or a column that is constant
    over them give no number but a ``problem`` naming the run (``names``), never a NaN."""
    merged = first.table.merge(second.table, on=["layer", "head"], suffixes=("_first", "_second"))
    metric = _metric_name(column)
    if merged.empty:
        return HeadCorrelation(column, merged, 0, None,
                               "the two runs share no (layer, head): are they of models with the same shape?")
    left, right = merged[f"{column}_first"].astype(float), merged[f"{column}_second"].astype(float)
    both = (left.notna() & right.notna()).to_numpy()
    shared = int(both.sum())
    missing = [name for name, values in zip(names, (left, right)) if values.isna().all()]
    if missing:
        why = ("has no bias scores (it was scored without --bias)" if metric == "bias"
               else "has no performance scores (it was scored with --perf none)")
        return HeadCorrelation(column, merged, shared, None,
                               f"no correlation of {column}: the {' and the '.join(missing)} {why}"
                               + ("; compare perf_delta instead, or runs scored with --bias" if metric == "bias" else ""))
    if shared < 2:
        return HeadCorrelation(column, merged, shared, None,
                               f"no correlation of {column}: it needs at least 2 heads scored in both runs, "
                               f"they share {shared}")
    constant = [name for name, values in zip(names, (left[both], right[both])) if np.ptp(values.to_numpy()) == 0]
    if constant:
        return HeadCorrelation(column, merged, shared, None,
                               f"no correlation of {column}: it is the same for every shared head in the "
                               f"{' and the '.join(constant)}, so a correlation is undefined")
    value = float(np.corrcoef(left[both].to_numpy(), right[both].to_numpy())[0, 1])
    used = [result.config.get(metric) for result in (first, second)]
    note = None
    if len(set(used)) > 1:
        note = f"the runs measure {metric} with different metrics ({' and '.join(map(str, dict.fromkeys(used)))})"
    return HeadCorrelation(column, merged, shared, value, None, note)


def curve_table(curve: pd.DataFrame) -> pd.DataFrame:
    """An iterative-pruning curve for a table or a CSV file: each step's pruned heads as JSON text."""
    return curve.assign(heads=curve["heads"].map(lambda heads: heads if isinstance(heads, str) else json.dumps(heads)))
