"""Stored evaluations as points of a performance–bias trade-off.

Every finished evaluation run gives the numbers of the metric table for its benchmark: a bias
number (0 = unbiased), a performance number (lower is better), or both (StereoSet: |SS − 50| and
100 − LMS). A **point** pairs a bias metric with a performance metric for one model under one
intervention: the bias number of one run and the performance number of another run of the same
model under the same intervention (toxicity with perplexity, CrowS-Pairs with mlm-loss …); when
both metrics come from the same benchmark, one run gives both itself. A point's data is the data
of both runs ('bias data | performance data'; one label when one run gives both), and only points
on the same data are comparable. Where several runs would make the same point (the same model,
intervention and data of each), the newest runs make it.

Run metrics of the table (``RUN_METRICS``) join as performance numbers too: each mask of a finished
GLUE run (``bias-lab glue``) gives its GLUE average (higher is better) for the model under that mask,
paired with bias runs of the same model under the same mask file."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..interventions import InterventionSpec
from ..metrics import METRICS, ROLES, RUN_METRICS, all_metrics, metric_of
from ..store import RunStore
from .generations import generates_text
from .record import EvaluationResult, data_label

POINT_COLUMNS = ["run", "model", "benchmark", "method", "data", "items", "bias", "performance", "bias_metric",
                 "performance_metric", "bias_run", "performance_run", "bias_data", "performance_data"]
VALUE_COLUMNS = ["run", "model", "benchmark", "method", "intervention", "data", "items", "metric", "role", "value"]


def _mask_key(path: str) -> str:
    """A mask file as compared between runs: its absolute path when it exists (a spec may name it
    relative to where the command ran), else as stored."""
    found = Path(path).expanduser()
    return str(found.resolve()) if found.exists() else path


def intervention_key(spec: dict | None) -> str:
    """A stored intervention as a comparable text ('' for none: the model as loaded)."""
    if not spec:
        return ""
    try:
        parsed = InterventionSpec.from_dict(spec)
    except Exception:  # an old or foreign spec: compared as stored
        return json.dumps(spec, sort_keys=True)
    if parsed.is_empty:
        return ""
    data = parsed.to_dict()
    if data.get("mask"):
        data["mask"] = _mask_key(data["mask"])
    return json.dumps(data, sort_keys=True)


def run_data_label(config: dict) -> str:
    """What a stored evaluation was computed on: its data label (file and item limit) and, for a
    benchmark that generates text, the classifier and the generation settings — toxicity scored by
    another classifier, or of longer texts, is not comparable."""
    label = config.get("data_label") or data_label(config.get("data"), config.get("limit"), config.get("items"))
    if not generates_text(config.get("benchmark", "")):
        return label
    from ..toxicity import DEFAULT_TOXICITY_CLASSIFIER

    options = {**{k: v for k, v in config.items() if k != "options"}, **(config.get("options") or {})}
    parts = [f"classifier {options.get('classifier') or DEFAULT_TOXICITY_CLASSIFIER}"]
    if options.get("label"):
        parts[0] += f" ({options['label']})"
    if options.get("max_new_tokens") is not None:
        parts.append(f"{options['max_new_tokens']} new tokens")
    if options.get("samples") is not None:
        parts.append(f"{options['samples']} sample{'s' if options['samples'] != 1 else ''}")
    seeds = options.get("seeds") or ([options["seed"]] if options.get("seed") is not None else [])
    if seeds:
        parts.append(("seed " if len(seeds) == 1 else "seeds ") + ", ".join(str(s) for s in seeds))
    return f"{label} · {', '.join(parts)}"


def glue_data_label(config: dict) -> str:
    """What a GLUE average was computed on: the tasks (dev splits), the data and the fine-tuning
    settings — averages of other tasks or another fine-tuning are not comparable."""
    tasks = ", ".join(config.get("tasks") or [])
    parts = [f"GLUE {tasks} (dev)", str(config["data"]) if config.get("data") else "nyu-mll/glue"]
    limits = [f"first {config[key]} {what}" for key, what in (("train_limit", "train"), ("eval_limit", "dev"))
              if config.get(key)]
    settings = (f"{config.get('epochs')} epochs, lr {config.get('lr')}, batch {config.get('batch_size')}, "
                f"seed {config.get('seed')}" + (", scores trained" if config.get("train_scores") else ""))
    return " · ".join([*parts, *limits, settings])


def glue_values(store: RunStore | None = None) -> list[dict]:
    """The ``glue-average`` rows of :func:`metric_values`: one per mask of each finished GLUE run."""
    from ..finetune.glue_run import GlueResult
    from ..finetune.names import UNMASKED

    found = RUN_METRICS["glue-average"]
    rows = []
    for record in GlueResult.finished_runs(store):
        for entry in record.summary.get("averages", []):
            mask = entry.get("mask")
            unmasked = mask in (None, UNMASKED)
            value = entry.get("average")
            if value is None or value != value:  # NaN: no task was averaged
                continue
            rows.append({"run": record.id, "model": record.model, "benchmark": "glue",
                         "method": "original" if unmasked else "mask",
                         "intervention": "" if unmasked else intervention_key({"mask": mask}),
                         "data": glue_data_label(record.config), "items": None, "metric": found.name,
                         "role": found.role, "value": float(value)})
    return rows


def metric_values(store: RunStore | None = None) -> pd.DataFrame:
    """One row per finished evaluation run and metric of the table its benchmark gives, newest run
    first: run, model, benchmark, method, intervention (:func:`intervention_key`), data
    (:func:`run_data_label`), items, metric, role, value — then one ``glue-average`` row per mask of
    each finished GLUE run."""
    rows = []
    for record in EvaluationResult.finished_runs(store):
        config, summary = record.config, record.summary
        benchmark = config.get("benchmark")
        for role in ROLES:
            found = metric_of(benchmark, role)
            value = summary.get(role)
            if found is None or value is None:
                continue
            rows.append({"run": record.id, "model": record.model, "benchmark": benchmark,
                         "method": summary.get("method", config.get("method", "original")),
                         "intervention": intervention_key(config.get("intervention")), "data": run_data_label(config),
                         "items": config.get("items"), "metric": found.name, "role": role, "value": float(value)})
    rows.extend(glue_values(store))
    return pd.DataFrame(rows, columns=VALUE_COLUMNS)


def metric_choices(values: pd.DataFrame) -> tuple[list[str], list[str]]:
    """(bias metrics, performance metrics) that stored runs give, in the metric table's order."""
    present = set(values["metric"])
    every = all_metrics()
    return ([name for name, m in every.items() if m.role == "bias" and name in present],
            [name for name, m in every.items() if m.role == "performance" and name in present])


def metric_label(name: str) -> str:
    """How a select box names a metric: its axis name from the table and its name,
    e.g. '|SS − 50| (stereoset)'."""
    found = all_metrics().get(name)
    return f"{found.axis} ({name})" if found is not None and found.axis != name else name


def metric_axes(bias: str, performance: str) -> tuple[str, str]:
    """(performance axis, bias axis) names of two metrics, from the metric table."""
    every = all_metrics()
    return (every[performance].axis if performance in every else performance,
            every[bias].axis if bias in every else bias)


def metric_direction(name: str) -> str:
    """How an axis says which way is better: '0 = unbiased', 'lower is better', 'higher is better'."""
    found = all_metrics().get(name)
    return found.direction if found is not None else ""


def higher_is_better(name: str) -> bool:
    found = all_metrics().get(name)
    return bool(found is not None and found.higher_is_better)


def _same_benchmark(bias: str, performance: str) -> bool:
    return bias in METRICS and performance in METRICS and METRICS[bias].benchmark == METRICS[performance].benchmark


def pair_points(values: pd.DataFrame, bias: str, performance: str) -> pd.DataFrame:
    """The points of a bias metric against a performance metric (see the module's docstring),
    newest first, as :data:`POINT_COLUMNS`."""
    keep = ["run", "model", "benchmark", "method", "intervention", "data", "items", "value"]
    of_bias = values.loc[values["metric"] == bias, keep].reset_index(drop=True)
    of_performance = values.loc[values["metric"] == performance, keep].reset_index(drop=True)
    of_bias["order"], of_performance["order"] = range(len(of_bias)), range(len(of_performance))
    # The same intervention: the same stored spec and the same method (which it names; runs stored
    # without a spec still differ by method).
    on = ["run"] if _same_benchmark(bias, performance) else ["model", "method", "intervention"]
    pairs = of_bias.merge(of_performance, on=on, suffixes=("_b", "_p"))
    for column in ("run", "model", "method", "intervention"):
        if column in on:
            pairs[f"{column}_b"] = pairs[f"{column}_p"] = pairs[column]
    pairs = pairs.sort_values(["order_b", "order_p"], kind="stable")
    pairs = pairs.drop_duplicates(["model_b", "method_b", "intervention_b", "data_b", "data_p"], keep="first")
    same = pairs["run_b"] == pairs["run_p"]
    points = pd.DataFrame({
        "run": pairs["run_b"].where(same, pairs["run_b"] + " + " + pairs["run_p"]),
        "model": pairs["model_b"],
        "benchmark": pairs["benchmark_b"].where(same, pairs["benchmark_b"] + " + " + pairs["benchmark_p"]),
        "method": pairs["method_b"],
        "data": pairs["data_b"].where(same, pairs["data_b"] + " | " + pairs["data_p"]),
        "items": pairs["items_b"], "bias": pairs["value_b"], "performance": pairs["value_p"],
        "bias_metric": bias, "performance_metric": performance, "bias_run": pairs["run_b"],
        "performance_run": pairs["run_p"], "bias_data": pairs["data_b"], "performance_data": pairs["data_p"]})
    return points.reindex(columns=POINT_COLUMNS).reset_index(drop=True)


def tradeoff_points(store: RunStore | None = None, *, bias: str | None = None, performance: str | None = None,
                    values: pd.DataFrame | None = None) -> pd.DataFrame:
    """Trade-off points of stored evaluations (``values``: :func:`metric_values`, read from the
    store when not given). With a ``bias`` and a ``performance`` metric: their points
    (:func:`pair_points`). Without: every run that gives both numbers itself (StereoSet), each
    point under its benchmark's own metrics."""
    values = metric_values(store) if values is None else values
    if bias is not None and performance is not None:
        return pair_points(values, bias, performance)
    frames = [pair_points(values, b, p) for b in METRICS for p in METRICS
              if METRICS[b].role == "bias" and METRICS[p].role == "performance" and _same_benchmark(b, p)
              and (bias in (None, b)) and (performance in (None, p))]
    frames = [frame for frame in frames if not frame.empty]
    if not frames:
        return pd.DataFrame(columns=POINT_COLUMNS)
    return pd.concat(frames, ignore_index=True)


def default_metrics(values: pd.DataFrame) -> tuple[str, str] | None:
    """The (bias, performance) metrics with the most points (ties: the metric table's order);
    None when no pair of stored runs makes a point."""
    biases, performances = metric_choices(values)
    counts = [((b, p), len(pair_points(values, b, p))) for b in biases for p in performances]
    counts = [(pair, count) for pair, count in counts if count]
    if not counts:
        return None
    return max(counts, key=lambda item: item[1])[0]


def tradeoff_datasets(points: pd.DataFrame, benchmark: str | None = None) -> list[str]:
    """The data labels of the points (of one benchmark, when given), the one with the most points
    first (ties: first seen)."""
    chosen = points if benchmark is None else points.loc[points["benchmark"] == benchmark]
    labels = chosen["data"].tolist()
    return sorted(dict.fromkeys(labels), key=lambda label: (-labels.count(label), labels.index(label)))


def tradeoff_selection(points: pd.DataFrame, benchmark: str | None, data: str) -> pd.DataFrame:
    """The points computed on the same data (only those are comparable); of one benchmark when
    ``benchmark`` is given."""
    chosen = points["data"] == data
    if benchmark is not None:
        chosen &= points["benchmark"] == benchmark
    return points[chosen]


def tradeoff_axes(benchmark: str) -> tuple[str, str]:
    """(performance axis, bias axis) names of a benchmark, from the metric table."""
    performance, bias = metric_of(benchmark, "performance"), metric_of(benchmark, "bias")
    return (performance.axis if performance else "performance", bias.axis if bias else "bias")


__all__ = ["POINT_COLUMNS", "VALUE_COLUMNS", "default_metrics", "glue_data_label", "glue_values", "higher_is_better",
           "intervention_key", "metric_axes", "metric_choices", "metric_direction", "metric_label", "metric_values",
           "pair_points", "run_data_label", "tradeoff_axes", "tradeoff_datasets", "tradeoff_points",
           "tradeoff_selection"]
