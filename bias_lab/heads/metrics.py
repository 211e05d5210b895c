"""The performance and bias metrics of head scoring and iterative pruning: each is a
:class:`HeadMetric`, a name and a function of the loaded model (hooks included) returning one
number — the metric table's reduction (:mod:`bias_lab.metrics`) of :func:`evaluate` on fixed data,
so a head's baseline is the very number a stored evaluation shows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..metrics import BENCHMARKS, check_metric_kind, metric
from ..models import LoadedModel


@dataclass
class HeadMetric:
    name: str
    function: Callable[[LoadedModel], float]
    # False when the metric's forward passes do not repeat (generation samples new inputs): head
    # scoring then neither records nor replays the lower layers, nor replicates batches.
    cacheable: bool = True
    # Optional: the metric under several head ablations at once, e.g. one generation whose rows
    # carry different ablations — (loaded, [[(layer, head), …], …]) → one value per ablation.
    ablate_many: Callable[[LoadedModel, list], list[float]] | None = None

    def __call__(self, loaded: LoadedModel) -> float:
        return float(self.function(loaded))


def head_metric(loaded: LoadedModel, name: str, data, *, role: str, **options) -> HeadMetric:
    """The metric ``name`` of ``role`` on ``data``, the data prepared once (prompts tokenized,
    masked tokens drawn) so that every ablation is scored on the same inputs."""
    from .. import evaluation

    chosen = metric(name, role)
    check_metric_kind(loaded, name, role=role)
    entry = evaluation.benchmark_entry(chosen.benchmark)
    prepared = entry.prepared(loaded, data, **options)
    evaluate = evaluation.evaluate

    def many(owner: LoadedModel, head_variants: list) -> list[float]:
        with owner.lock:
            return [chosen.value(summary) for summary in entry.variant_summaries(owner, prepared, head_variants)]

    return HeadMetric(name, lambda owner: chosen.value(evaluate(owner, chosen.benchmark, prepared, **options).summary),
                      cacheable=entry.prefix_cacheable, ablate_many=many if entry.variants else None)


def benchmark_of(entry):
    return BENCHMARKS[entry.benchmark]


def bias_metric(loaded: LoadedModel, name: str, data, **options) -> HeadMetric:
    """A bias benchmark reduced to one number that is 0 for an unbiased model."""
    return head_metric(loaded, name, data, role="bias", **options)


def perf_metric(loaded: LoadedModel, name: str, data, **options) -> HeadMetric:
    """A performance metric (lower is better); scoring without one is ``perf=None`` (bias only)."""
    return head_metric(loaded, name, data, role="performance", **options)


def metrics_for(loaded: LoadedModel, *, perf: str | None, perf_data=None, bias: str | None = None, bias_data=None,
                limit: int | None = None, bias_limit: int | None = None, batch_size: int | None = None,
                seed: int = 0, labels: dict | None = None,
                generation: dict | None = None) -> tuple[HeadMetric | None, HeadMetric | None]:
    """``(perf, bias)`` head metrics named as in the metric table, their data loaded from
    ``perf_data`` / ``bias_data`` (files, folders or dataset ids); ``perf`` None or 'none' scores bias
    only. The model's kind is checked against both before any data is read. ``labels`` names the
    choices in messages (the CLI's flags: perf, perf_data, bias, bias_data); ``generation`` holds
    the classifier and generation options of metrics that generate text (toxicity, toxicity-gap)."""
    from ..errors import BiasLabError
    from ..evaluation import load_benchmark_data

    labels = {"perf": "performance metric", "perf_data": "performance data", "bias": "bias metric",
              "bias_data": "bias data", **(labels or {})}
    perf = None if perf in (None, "none") else perf
    for name, role, key in ((perf, "performance", "perf"), (bias, "bias", "bias")):
        if name is not None:
            metric(name, role)
            check_metric_kind(loaded, name, role=role, label=labels[key])
    chosen = []
    for name, role, key, source, count in ((perf, "performance", "perf", perf_data, limit),
                                           (bias, "bias", "bias", bias_data, bias_limit)):
        if name is None:
            chosen.append(None)
            continue
        entry = metric(name, role)
        if entry.data_hint and not source:
            raise BiasLabError(f"{labels[key]} {name} needs {labels[key + '_data']}: {entry.data_hint}")
        data = load_benchmark_data(entry.benchmark, source, limit=count)
        options = {"batch_size": batch_size, **({"seed": seed} if benchmark_of(entry).seeded else {})}
        if benchmark_of(entry).variants:
            options.update({"seed": seed, **(generation or {})})
        chosen.append(head_metric(loaded, name, data, role=role, **options))
    return chosen[0], chosen[1]
