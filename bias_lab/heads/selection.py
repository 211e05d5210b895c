"""Which heads to prune: FASP (Zayed et al. 2023) and baselines, as sets and as intervention specs.

FASP with N heads: protect the ⌊γN⌋ heads whose removal raises perplexity (the performance
metric) most; among the rest, prune the ⌊αN⌋ whose removal lowers bias most."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from ..errors import BiasLabError
from ..interventions import HeadAblation, InterventionSpec

if TYPE_CHECKING:
    from ..models import LoadedModel

RULES = ("fasp", "random", "magnitude", "performance", "bias")


def _check_fraction(name: str, value: float) -> None:
    if not 0 <= value <= 1:
        raise BiasLabError(f"{name} {value} must be between 0 and 1")


def _ordered(table: pd.DataFrame, column: str, ascending: bool) -> pd.DataFrame:
    # Ties are broken by head position, so a selection is reproducible.
    return table.sort_values([column, "layer", "head"], ascending=[ascending, True, True], kind="mergesort")


def fasp(table: pd.DataFrame, alpha: float, gamma: float, *, perf: str = "perf", bias: str = "bias") -> pd.DataFrame:
    """The head grid with a ``status`` column: protected, pruned or kept."""
    _check_fraction("alpha", alpha)
    _check_fraction("gamma", gamma)
    n = len(table)
    protect, prune = math.floor(gamma * n + 1e-9), math.floor(alpha * n + 1e-9)
    if protect + prune > n:
        raise BiasLabError(f"alpha {alpha} + gamma {gamma} select more than the {n} heads")
    result = table.copy()
    result["status"] = "kept"
    protected = _ordered(result, perf, ascending=False).index[:protect]
    result.loc[protected, "status"] = "protected"
    candidates = result[result["status"] == "kept"]
    pruned = _ordered(candidates, bias, ascending=True).index[:prune]
    result.loc[pruned, "status"] = "pruned"
    return result


def baseline(table: pd.DataFrame, rule: str, alpha: float, *, seed: int = 0, magnitudes: pd.Series | None = None,
             perf: str = "perf", bias: str = "bias") -> pd.DataFrame:
    """Prune ⌊αN⌋ heads by a baseline rule: ``random``, ``magnitude`` (smallest weight norm),
    ``performance`` (whose removal hurts performance least), ``bias`` (whose removal lowers bias most)."""
    _check_fraction("alpha", alpha)
    count = math.floor(alpha * len(table) + 1e-9)
    result = table.copy()
    result["status"] = "kept"
    if rule == "random":
        chosen = result.sample(n=count, random_state=seed).index
    elif rule == "magnitude":
        if magnitudes is None:
            raise BiasLabError("the magnitude baseline needs the heads' weight norms (head_magnitudes(loaded))")
        result["magnitude"] = magnitudes.to_numpy()
        chosen = _ordered(result, "magnitude", ascending=True).index[:count]
    elif rule == "performance":
        chosen = _ordered(result, perf, ascending=True).index[:count]
    elif rule == "bias":
        chosen = _ordered(result, bias, ascending=True).index[:count]
    else:
        raise BiasLabError(f"unknown rule {rule!r}: use one of {', '.join(RULES)}")
    result.loc[chosen, "status"] = "pruned"
    return result


def select(table: pd.DataFrame, rule: str, *, alpha: float, gamma: float = 0.0, **options) -> pd.DataFrame:
    if rule == "fasp":
        return fasp(table, alpha, gamma)
    return baseline(table, rule, alpha, **options)


def pruned_spec(grid: pd.DataFrame) -> InterventionSpec:
    pruned = grid[grid["status"] == "pruned"].sort_values(["layer", "head"])
    return InterventionSpec(heads=tuple(HeadAblation(int(r.layer), int(r.head)) for r in pruned.itertuples()))


def head_magnitudes(loaded: LoadedModel, norm: float = 2.0) -> pd.Series:
    """Norm of each head's slice of the attention output projection's weight (layer-major order)."""
    from ..families import input_columns

    values = []
    size = loaded.head_size
    for layer in range(loaded.num_layers):
        projection = loaded.adapter.attn_out(layer)
        for head in range(loaded.num_heads):
            block = projection.weight.detach()[input_columns(projection, slice(head * size, (head + 1) * size))]
            values.append(float(torch.linalg.vector_norm(block.float(), ord=norm)))
    return pd.Series(values)


def grid_matrix(grid: pd.DataFrame, value: str = "status") -> pd.DataFrame:
    """Layers × heads view of any column of a head table (for the dashboard's grid)."""
    return grid.pivot(index="layer", columns="head", values=value)


def effect_correlations(table: pd.DataFrame, columns: list[str], method: str = "pearson") -> pd.DataFrame:
    """Correlation of per-head effects across bias measures (FASP Fig. 4)."""
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise BiasLabError(f"no column {missing[0]!r} in the head table: available are {', '.join(table.columns)}")
    return table[columns].corr(method=method)


def fasp_grid_sets(table: pd.DataFrame, alphas, gammas) -> pd.DataFrame:
    """Every (α, γ) of a grid with its pruned heads (as a sorted tuple of (layer, head))."""
    rows = []
    for gamma in gammas:
        for alpha in alphas:
            if math.floor(alpha * len(table) + 1e-9) + math.floor(gamma * len(table) + 1e-9) > len(table):
                continue
            grid = fasp(table, alpha, gamma)
            pruned = tuple(sorted((int(r.layer), int(r.head)) for r in grid[grid["status"] == "pruned"].itertuples()))
            rows.append({"alpha": alpha, "gamma": gamma, "pruned": pruned, "count": len(pruned)})
    return pd.DataFrame(rows)


def default_alphas() -> list[float]:
    return [round(a, 2) for a in np.arange(0.0, 0.201, 0.02)]


def default_gammas() -> list[float]:
    return [round(g, 1) for g in np.arange(0.2, 0.701, 0.1)]


def fasp_tradeoff(loaded: LoadedModel, table: pd.DataFrame, perf, bias, alphas=None, gammas=None, *, progress=None,
                  cancel=None) -> pd.DataFrame:
    """Every (α, γ) of a FASP grid with the performance and bias of the model pruned that way —
    the data of the trade-off plot. Grid points that prune the same heads are evaluated once."""
    from ..progress import report
    from .ablation import ablated_value

    sets = fasp_grid_sets(table, alphas if alphas is not None else default_alphas(),
                          gammas if gammas is not None else default_gammas())
    measured: dict[tuple, tuple[float, float]] = {}
    unique = list(dict.fromkeys(sets["pruned"]))
    with loaded.lock:
        for number, pruned in enumerate(unique):
            if cancel is not None:
                cancel.check()
            measured[pruned] = (ablated_value(loaded, perf, list(pruned)),
                                ablated_value(loaded, bias, list(pruned)) if bias is not None else float("nan"))
            report(progress, number + 1, len(unique))
    sets["perf"] = [measured[p][0] for p in sets["pruned"]]
    sets["bias"] = [measured[p][1] for p in sets["pruned"]]
    sets["pruned"] = sets["pruned"].map(lambda heads: [list(h) for h in heads])
    return sets
