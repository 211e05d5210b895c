"""Per-head ablation scores: the performance and bias metrics with each head ablated, and their
deltas from the unablated model."""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import pandas as pd

from ..errors import BiasLabError
from ..interventions import HeadAblation, InterventionSpec, intervene
from ..progress import CancelToken, report
from .metrics import HeadMetric
from .prefix import PrefixCache, PrefixMiss

if TYPE_CHECKING:
    from ..models import LoadedModel

HEAD_COLUMNS = ["layer", "head", "perf", "perf_delta", "bias", "bias_delta", "importance"]


@dataclass
class HeadScores:
    table: pd.DataFrame
    baseline: dict
    seconds: float


def _measure(loaded, metric: HeadMetric | None, cache: PrefixCache | None, start: int) -> float:
    if metric is None:
        return float("nan")
    if cache is None or not metric.cacheable:
        return metric(loaded)
    try:
        with cache.replay(start):
            return metric(loaded)
    except PrefixMiss:
        return metric(loaded)


def ablated_value(loaded: LoadedModel, metric: HeadMetric | None, heads: list[tuple[int, int]], *,
                  cache: PrefixCache | None = None) -> float:
    """The metric with a set of heads ablated (from the lowest ablated layer on, if cached)."""
    spec = InterventionSpec(heads=tuple(HeadAblation(l, h) for l, h in heads))
    start = min((l for l, _ in heads), default=0)
    with intervene(loaded, spec):
        return _measure(loaded, metric, cache, start)


def _layer_values(loaded, metric: HeadMetric | None, layer: int, cache: PrefixCache | None,
                  per_pass: int, cancel: CancelToken | None) -> list[float]:
    """The metric with each head of ``layer`` ablated, ``per_pass`` ablations sharing a pass."""
    from .batched import ReplicatedAblation

    heads = list(range(loaded.num_heads))
    if metric is None:
        return [float("nan")] * len(heads)
    values: list[float] = []
    for start in range(0, len(heads), per_pass):
        if cancel is not None:
            cancel.check()
        chunk = heads[start:start + per_pass]
        if len(chunk) > 1 and metric.ablate_many is not None:
            values.extend(metric.ablate_many(loaded, [[(layer, head)] for head in chunk]))
            continue
        if len(chunk) > 1 and metric.cacheable:
            try:
                values.extend(ReplicatedAblation(loaded, cache, layer, chunk).values(metric))
                continue
            except PrefixMiss:
                pass  # the metric batches differently from pass to pass: score these heads one by one
        values.extend(ablated_value(loaded, metric, [(layer, head)], cache=cache) for head in chunk)
    return values


def score_heads(loaded: LoadedModel, perf: HeadMetric | None, bias: HeadMetric | None = None, *, layers: list[int] | None = None,
                use_prefix_cache: bool = True, ablations_per_pass: int | None = None, run=None,
                progress: Callable | None = None, cancel: CancelToken | None = None) -> HeadScores:
    """Ablate every head of ``layers`` (default all) one at a time.

    Layers below the ablated one come from a recorded pass (``use_prefix_cache``), and
    ``ablations_per_pass`` heads of a layer are ablated in one replicated pass — by default all of
    them on a GPU and one on a CPU, where the larger batches were measured slower
    (bench/RESULTS.md).
    ``importance`` is the ablation importance: how much the performance metric worsens without the
    head (``perf_delta``). Without a performance metric (``perf=None``: an encoder has no LM to
    score) the perf columns are NaN and importance is how much bias falls without the head
    (``-bias_delta``). With ``run`` (a store run), each layer is a resumable unit."""
    if perf is None and bias is None:
        raise BiasLabError("scoring heads needs a performance or a bias metric (or both)")
    if ablations_per_pass is None:
        ablations_per_pass = loaded.num_heads if loaded.device.type in ("cuda", "mps") else 1
    per_pass = ablations_per_pass
    if per_pass < 1:
        raise BiasLabError(f"ablations per pass {per_pass} must be at least 1")
    layers = list(range(loaded.num_layers)) if layers is None else layers
    for layer in layers:
        if not 0 <= layer < loaded.num_layers:
            raise BiasLabError(f"layer {layer} is out of range, valid layers are 0–{loaded.num_layers - 1}")
    started = time.perf_counter()
    # Generation-based metrics never repeat a pass: recording one would only cost memory.
    cacheable = all(metric.cacheable for metric in (perf, bias) if metric is not None)
    cache = PrefixCache(loaded) if use_prefix_cache and cacheable else None
    with loaded.lock:
        with cache.record() if cache is not None else nullcontext():
            base_perf = perf(loaded) if perf is not None else float("nan")
            base_bias = bias(loaded) if bias is not None else float("nan")
        baseline = {"perf": base_perf, "bias": base_bias, "perf_metric": perf.name if perf is not None else None,
                    "bias_metric": bias.name if bias is not None else None}
        total = len(layers) * loaded.num_heads
        done = 0
        collected: list[dict] = []
        for layer in layers:
            unit = f"layer{layer:03d}"
            if run is not None and run.is_done(unit):
                done += loaded.num_heads
                continue
            perf_values = _layer_values(loaded, perf, layer, cache, per_pass, cancel)
            bias_values = _layer_values(loaded, bias, layer, cache, per_pass, cancel)
            rows = [{"layer": layer, "head": head, "perf": p, "perf_delta": p - base_perf, "bias": b,
                     "bias_delta": b - base_bias, "importance": p - base_perf if perf is not None else base_bias - b}
                    for head, (p, b) in enumerate(zip(perf_values, bias_values))]
            done += loaded.num_heads
            report(progress, done, total, f"layer {layer}")
            if run is not None:
                run.save_unit(unit, pd.DataFrame(rows, columns=HEAD_COLUMNS))
            collected.extend(rows)
        if cache is not None:
            cache.clear()
    # With a run, layers finished before an interruption come from their stored units.
    table = run.rows(order=[f"layer{layer:03d}" for layer in layers]) if run is not None \
        else pd.DataFrame(collected, columns=HEAD_COLUMNS)
    return HeadScores(table.reset_index(drop=True), baseline, time.perf_counter() - started)
