"""Plotly figure builders for the dashboard and notebooks: data in, figure out, nothing computed
here that the analyses do not already provide. Every figure has a title (wrapped, never cut off)
and axes named after what they show; layer and head axes carry integer ticks; categorical grids
get a legend, continuous ones a colour bar."""

from __future__ import annotations

import math
import textwrap

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .pruning.masks import overall_density

TITLE_WIDTH = 60  # characters per title line: wider titles wrap (<br>) instead of being cut off


def wrap_title(title: str, width: int = TITLE_WIDTH) -> str:
    """``title`` with ``<br>`` breaks so that no line is longer than ``width`` characters (a word
    longer than that stays whole); existing ``<br>`` breaks are kept."""
    lines = []
    for part in str(title).split("<br>"):
        lines.extend(textwrap.wrap(part, width, break_long_words=False, break_on_hyphens=False) or [""])
    return "<br>".join(lines)


def _layout(figure: go.Figure, title: str, x_label: str, y_label: str, height: int, **extra) -> go.Figure:
    """Title (wrapped, with a top margin that fits its lines), axis titles, height."""
    text = wrap_title(title)
    lines = text.count("<br>") + 1
    figure.update_layout(title={"text": text, "font": {"size": 15}, "xref": "paper", "x": 0, "xanchor": "left",
                                "yref": "container", "y": 1, "yanchor": "top", "pad": {"t": 12}},
                         xaxis_title=x_label, yaxis_title=y_label, height=height + 22 * (lines - 1),
                         # 1e-9, not plotly's SI "1n": gaps and probabilities are not physical units
                         xaxis_exponentformat="e", yaxis_exponentformat="e",
                         margin={"t": 40 + 24 * lines}, **extra)
    return figure


def _integer_dtick(values) -> int:
    """A whole-number tick step that labels every index of a small axis and at most ~24 of a large one."""
    count = len(pd.unique(pd.Series(list(values)).dropna()))
    return max(1, math.ceil(count / 24))


def _integer_axis(axis, values) -> dict:
    return {f"{axis}_tickmode": "linear", f"{axis}_tick0": 0, f"{axis}_dtick": _integer_dtick(values),
            f"{axis}_tickformat": "d"}


def attribution_heatmap(scores: np.ndarray, title: str = "IG2 attribution per neuron", *,
                        x_label: str = "FFN neuron (index)", y_label: str = "layer",
                        colorbar: str = "IG2 score") -> go.Figure:
    """Layers × neurons heatmap of (mean) IG2 scores."""
    scores = np.asarray(scores)
    figure = go.Figure(go.Heatmap(z=scores, colorscale="RdBu", zmid=0, colorbar={"title": colorbar, "exponentformat": "e"}))
    _layout(figure, title, x_label, y_label, 420)
    figure.update_layout(**_integer_axis("yaxis", range(scores.shape[0])), xaxis_tickformat="d")
    return figure


def neurons_per_layer_bars(per_layer: pd.DataFrame, title: str = "Bias neurons per layer", *,
                           x_label: str = "layer", y_label: str = "bias neurons (count)") -> go.Figure:
    figure = go.Figure(go.Bar(x=per_layer["layer"], y=per_layer["count"]))
    _layout(figure, title, x_label, y_label, 320)
    figure.update_layout(**_integer_axis("xaxis", per_layer["layer"]))
    return figure


def migration_histogram(per_layer: pd.DataFrame, title: str = "Bias neurons per layer: two models", *,
                        x_label: str = "bias neurons (count; left: second model)",
                        y_label: str = "layer") -> go.Figure:
    """Mirrored histogram of the per-layer counts of two models (compare_layer_distributions)."""
    models = list(dict.fromkeys(per_layer["model"]))[:2]
    figure = go.Figure()
    for sign, model in zip((1, -1), models):
        part = per_layer[per_layer["model"] == model]
        figure.add_bar(y=part["layer"], x=sign * part["count"], orientation="h", name=model,
                       customdata=part["count"], hovertemplate="layer %{y}: %{customdata}<extra>%{fullData.name}</extra>")
    _layout(figure, title, x_label, y_label, 420, barmode="overlay")
    figure.update_layout(**_integer_axis("yaxis", per_layer["layer"]))
    return figure


def head_grid(grid: pd.DataFrame, value: str, title: str, colorbar: str, *, x_label: str = "head",
              y_label: str = "layer") -> go.Figure:
    """Layers × heads heatmap of one (continuous) column of a head table."""
    matrix = grid.pivot(index="layer", columns="head", values=value)
    figure = go.Figure(go.Heatmap(z=matrix.values, x=matrix.columns, y=matrix.index, colorscale="RdBu", zmid=0
                                  if value.endswith("delta") else None, colorbar={"title": colorbar, "exponentformat": "e"},
                                  hovertemplate="layer %{y}, head %{x}: %{z:.4g}<extra></extra>"))
    _layout(figure, title, x_label, y_label, 420)
    figure.update_layout(**_integer_axis("xaxis", matrix.columns), **_integer_axis("yaxis", matrix.index))
    return figure


STATUS_CODES = {"kept": 0, "protected": 1, "pruned": 2}
STATUS_COLORS = {"kept": "#d9d9d9", "protected": "#2ca02c", "pruned": "#d62728"}
_EXTRA_COLORS = ("#1f77b4", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def pruned_head_grid(grid: pd.DataFrame, title: str = "Heads: kept, protected, pruned", *, x_label: str = "head",
                     y_label: str = "layer", colors: dict[str, str] | None = None) -> go.Figure:
    """Layers × heads grid of a categorical ``status`` column (kept / protected / pruned, or any
    other labels): one trace and one legend entry per status, no colour bar."""
    colors = {**STATUS_COLORS, **(colors or {})}
    present = list(dict.fromkeys(grid["status"]))
    order = [s for s in STATUS_CODES if s in present] + [s for s in present if s not in STATUS_CODES]
    extra = iter(_EXTRA_COLORS * (1 + len(order) // len(_EXTRA_COLORS)))
    labels = grid.pivot(index="layer", columns="head", values="status")
    figure = go.Figure()
    for status in order:
        color = colors.get(status) or next(extra)
        z = np.where(labels.values == status, 1.0, np.nan)
        # The cells: a one-colour heatmap fills them exactly. The legend entry: a marker of the same
        # colour in the same legend group (heatmap legend entries are not drawn by every plotly.js).
        figure.add_trace(go.Heatmap(z=z, x=labels.columns, y=labels.index, zmin=0, zmax=1, showscale=False,
                                    colorscale=[[0, color], [1, color]], name=status, legendgroup=status,
                                    showlegend=False, hoverongaps=False, xgap=1, ygap=1,
                                    hovertemplate=f"layer %{{y}}, head %{{x}}: {status}<extra></extra>"))
        count = int((labels.values == status).sum())
        figure.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=f"{status} ({count})",
                                    legendgroup=status, showlegend=True,
                                    marker={"symbol": "square", "size": 14, "color": color,
                                            "line": {"color": "#888", "width": 1}}))
    _layout(figure, title, x_label, y_label, 420, legend={"title": {"text": "status"}}, plot_bgcolor="white")
    figure.update_layout(**_integer_axis("xaxis", labels.columns), **_integer_axis("yaxis", labels.index))
    return figure


def density_bars(tables: dict[str, pd.DataFrame], title: str = "Weights kept per layer", *, x_label: str = "layer",
                 y_label: str = "density (% of weights kept)") -> go.Figure:
    """Per-layer density (percent kept) of several masks side by side."""
    figure = go.Figure()
    layers = []
    for name, table in tables.items():
        per_layer = table.groupby("layer").apply(overall_density, include_groups=False)
        layers.extend(per_layer.index)
        figure.add_bar(x=per_layer.index, y=per_layer.values, name=name)
    _layout(figure, title, x_label, y_label, 360, barmode="group")
    figure.update_layout(**_integer_axis("xaxis", layers))
    return figure


def pareto_front(points: pd.DataFrame, x: str, y: str, *, maximise_x: bool = False) -> pd.DataFrame:
    """Points not dominated by another with lower-or-equal x and y (both minimised; with
    ``maximise_x``, x is maximised — a performance where higher is better, e.g. the GLUE average)."""
    ordered = points.sort_values([x, y], ascending=[not maximise_x, True])
    front, best = [], np.inf
    for index, row in ordered.iterrows():
        if row[y] < best:
            front.append(index)
            best = row[y]
    return points.loc[front]


def tradeoff_scatter(points: pd.DataFrame, x: str, y: str, color: str, hover: str,
                     title: str = "Performance–bias trade-off", x_label: str = "", y_label: str = "", *,
                     maximise_x: bool = False) -> go.Figure:
    """Points coloured by ``color``, and the Pareto front (lines and markers, so that a front of a
    single point is drawn too; ``maximise_x`` when higher x is better)."""
    figure = go.Figure()
    x_name, y_name = x_label or x, y_label or y
    for group, part in points.groupby(color):
        figure.add_scatter(x=part[x], y=part[y], mode="markers", name=str(group), text=part[hover],
                           hovertemplate="%{text}<br>" + x_name + " %{x:.3f}<br>" + y_name + " %{y:.3f}<extra></extra>")
    front = pareto_front(points, x, y, maximise_x=maximise_x)
    figure.add_scatter(x=front[x], y=front[y], mode="lines+markers", name="Pareto front", line={"dash": "dash"},
                       marker={"symbol": "circle-open", "size": 14, "line": {"width": 2}},
                       hovertemplate="Pareto front<br>" + x_name + " %{x:.3f}<br>" + y_name + " %{y:.3f}<extra></extra>")
    _layout(figure, title, x_name, y_name, 420)
    return figure


def gap_before_after(before: float, after: float, title: str = "Demographic gap at the mask, before and after", *,
                     x_label: str = "model", y_label: str = "|P(d1) − P(d2)| (probability)") -> go.Figure:
    """Two bars: the gap of the model as loaded and under the intervention."""
    figure = go.Figure(go.Bar(x=["before", "after"], y=[before, after], marker_color=["#888", "#d62728"]))
    _layout(figure, title, x_label, y_label, 320)
    return figure


def iterative_pruning_curve(curve: pd.DataFrame, title: str = "Iterative pruning: performance and bias per step", *,
                            perf_label: str = "performance", bias_label: str = "bias",
                            x_label: str = "heads pruned (count)") -> go.Figure:
    """Performance (left axis) and, where the curve has it, bias (right axis) after each pruning step."""
    figure = go.Figure()
    figure.add_scatter(x=curve["pruned"], y=curve["perf"], name="performance", mode="lines+markers")
    if "bias" in curve and curve["bias"].notna().any():
        figure.add_scatter(x=curve["pruned"], y=curve["bias"], name="bias", mode="lines+markers", yaxis="y2")
    _layout(figure, title, x_label, perf_label, 360,
            yaxis2={"title": bias_label, "overlaying": "y", "side": "right", "exponentformat": "e"})
    return figure


def _before_after_bars(series: dict[str, dict[str, float]], title: str, x_label: str, y_label: str) -> go.Figure:
    figure = go.Figure()
    for name, values in series.items():
        figure.add_bar(x=list(values), y=list(values.values()), name=name)
    _layout(figure, title, x_label, y_label, 380, barmode="group")
    return figure


def stereoset_domains(summaries: dict[str, dict], title: str = "StereoSet SS per domain", *,
                      x_label: str = "domain", y_label: str = "SS (%)") -> go.Figure:
    """SS of each domain (intrasentence), one bar group per summary (e.g. before, after), and the
    unbiased 50 as a dashed line."""
    series = {name: {domain: values["ss"] for domain, values in summary["intrasentence"].items() if domain != "overall"}
              for name, summary in summaries.items()}
    figure = _before_after_bars(series, title, x_label, y_label)
    # On a white box: a bar as tall as the line would otherwise run through the label.
    figure.add_hline(y=50, line_dash="dash", annotation_text="unbiased (SS 50)", annotation_position="top left",
                     annotation_bgcolor="rgba(255, 255, 255, 0.85)")
    return figure


def seat_effect_sizes(summaries: dict[str, dict], title: str = "SEAT effect size per test", *,
                      x_label: str = "test", y_label: str = "effect size (d)") -> go.Figure:
    """The effect size of each SEAT test, one bar group per summary (e.g. before, after)."""
    series = {name: {test: values["effect_size"] for test, values in summary["tests"].items()}
              for name, summary in summaries.items()}
    return _before_after_bars(series, title, x_label, y_label)


def _point_label(row) -> str:
    """A trade-off point's hover text: its run (or both runs, with the metric each gives), model and data."""
    bias_run, performance_run = row.get("bias_run"), row.get("performance_run")
    if isinstance(bias_run, str) and isinstance(performance_run, str) and bias_run != performance_run:
        runs = (f"bias: run {bias_run} ({row.get('bias_metric')}, {row.get('bias_data')})<br>"
                f"performance: run {performance_run} ({row.get('performance_metric')}, {row.get('performance_data')})")
        return f"{runs}<br>{row['model']}"
    return f"{row['run']} · {row['model']} · {row['data']}"


def tradeoff_runs(points: pd.DataFrame, title: str, *, x_label: str, y_label: str,
                  maximise_x: bool = False) -> go.Figure:
    """:func:`tradeoff_scatter` of stored evaluations (``tradeoff_points``): performance vs bias by
    method; hovering a point names its run, model and data — a point made of two runs names both,
    with the metric and the data of each. ``maximise_x`` for a performance where higher is better."""
    labels = [_point_label(row) for row in points.to_dict("records")]
    return tradeoff_scatter(points.assign(label=labels), "performance", "bias", "method", "label", title=title,
                            x_label=x_label, y_label=y_label, maximise_x=maximise_x)


def axis_name(metric: str | None, fallback: str) -> str:
    """How a figure names a metric of the table: its axis label (``METRICS[name].axis``, e.g.
    'toxicity gap Σ|axis − group|'); ``fallback`` when there is none, the name when it is unknown."""
    from .metrics import METRICS

    if not metric:
        return fallback
    found = METRICS.get(metric)
    return found.axis if found is not None else str(metric)


def group_toxicity_bars(groups: pd.DataFrame, title: str = "Mean toxicity per group, before and after", *,
                        x_label: str = "group", y_label: str = "mean toxicity (0–1)") -> go.Figure:
    """Mean toxicity of each group, one bar per model (before, after) side by side
    (``group_toxicity``: model, axis, group, mean_toxicity, count). Groups with an axis are
    grouped under it on the x axis (axis, then group); hovering a bar gives its generations."""
    figure = go.Figure()
    has_axes = bool((groups["axis"].astype(str) != "").any()) if len(groups) else False
    for model, part in groups.groupby("model", sort=False):
        x = [part["axis"].astype(str).tolist(), part["group"].astype(str).tolist()] if has_axes \
            else part["group"].astype(str).tolist()
        figure.add_bar(x=x, y=part["mean_toxicity"].tolist(), name=str(model), customdata=part["count"].tolist(),
                       hovertemplate="%{x}: %{y:.4g} (%{customdata} generations)<extra>%{fullData.name}</extra>")
    _layout(figure, title, x_label if not has_axes else f"axis / {x_label}", y_label, 380, barmode="group")
    return figure


def axis_gap_bars(gaps: pd.DataFrame, title: str = "Toxicity gap per axis, before and after", *,
                  x_label: str = "axis", y_label: str | None = None) -> go.Figure:
    """FASP's toxicity gap of each axis, one bar per model (before, after) side by side
    (``axis_gaps``: model, axis, gap); the y axis is named as the metric table names the gap."""
    series = {str(model): dict(zip(part["axis"].astype(str), part["gap"].astype(float)))
              for model, part in gaps.groupby("model", sort=False)}
    return _before_after_bars(series, title, x_label, y_label or axis_name("toxicity-gap", "toxicity gap"))


# --- Compressed models side by side (bias_lab.compression.compare: one row per model, a ``model`` label) ---


def model_metric_bars(table: pd.DataFrame, column: str, title: str | None = None, *, x_label: str = "model",
                      y_label: str | None = None) -> go.Figure:
    """One bar per model: the value of ``column`` (a metric is named by its axis, e.g. '|SS − 50|')."""
    y_label = y_label or axis_name(column, column)
    figure = go.Figure(go.Bar(x=table["model"].astype(str).tolist(), y=table[column].tolist(),
                              hovertemplate="%{x}: %{y:.4g}<extra></extra>"))
    _layout(figure, title or f"{y_label} per model", x_label, y_label, 360)
    return figure


def _labelled_scatter(table: pd.DataFrame, x: str, y: str, title: str, x_label: str, y_label: str) -> go.Figure:
    """One point per model, labelled with the model's name."""
    figure = go.Figure(go.Scatter(x=table[x].tolist(), y=table[y].tolist(), mode="markers+text",
                                  text=table["model"].astype(str).tolist(), textposition="top center",
                                  marker={"size": 11},
                                  hovertemplate="%{text}<br>" + x_label + " %{x:.4g}<br>" + y_label
                                                + " %{y:.4g}<extra></extra>"))
    _layout(figure, title, x_label, y_label, 420)
    return figure


def perplexity_vs_metric(table: pd.DataFrame, column: str, title: str | None = None, *, perplexity: str = "perplexity",
                         x_label: str | None = None, y_label: str | None = None) -> go.Figure:
    """Perplexity (x) against a bias or toxicity metric (y), each model a labelled point."""
    x_label = x_label or axis_name(perplexity, perplexity)
    y_label = y_label or axis_name(column, column)
    return _labelled_scatter(table, perplexity, column, title or f"Perplexity against {y_label}", x_label, y_label)


def parameters_vs_metric(table: pd.DataFrame, column: str, title: str | None = None, *,
                         x_label: str = "parameters (count)", y_label: str | None = None) -> go.Figure:
    """Parameter count (x) against a metric (y), each model a labelled point."""
    y_label = y_label or axis_name(column, column)
    return _labelled_scatter(table, "parameters", column, title or f"Parameters against {y_label}", x_label, y_label)


def generation_length_bars(table: pd.DataFrame, column: str = "avg_generation_length",
                           title: str = "Average generation length per model", *, x_label: str = "model",
                           y_label: str = "average continuation length (tokens)") -> go.Figure:
    """One bar per model: the mean length of its generated continuations."""
    return model_metric_bars(table, column, title, x_label=x_label, y_label=y_label)


def model_grouped_bars(table: pd.DataFrame, columns: dict[str, str], title: str, *, x_label: str = "model",
                       y_label: str = "count") -> go.Figure:
    """Several columns per model side by side (``columns``: column → its name in the legend), e.g.
    the StereoSet choice counts."""
    figure = go.Figure()
    for column, name in columns.items():
        figure.add_bar(x=table["model"].astype(str).tolist(), y=table[column].tolist(), name=name,
                       hovertemplate="%{x}: %{y:.4g}<extra>%{fullData.name}</extra>")
    _layout(figure, title, x_label, y_label, 380, barmode="group")
    return figure


# --- Classifier masks: challenge-set accuracy (bias_lab.finetune.challenge_run) ---


def challenge_accuracy_bars(table: pd.DataFrame, title: str = "Challenge-set accuracy per mask", *,
                            x_label: str = "set / split", y_label: str = "accuracy (0–1)") -> go.Figure:
    """Accuracy of each set and split (grouped on the x axis), one bar per model or mask
    (``accuracy_table``: set, split, one column per name, best)."""
    figure = go.Figure()
    names = [c for c in table.columns if c not in ("set", "split", "best")]
    x = [table["set"].astype(str).tolist(), table["split"].astype(str).tolist()]
    for name in names:
        figure.add_bar(x=x, y=table[name].tolist(), name=str(name),
                       hovertemplate="%{x}: %{y:.3f}<extra>%{fullData.name}</extra>")
    _layout(figure, title, x_label, y_label, 400, barmode="group")
    figure.update_yaxes(range=[0, 1])
    return figure
