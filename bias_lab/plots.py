"""Plotly figure builders for the dashboard and notebooks: data in, figure out, nothing computed
here that the analyses do not already provide. Every figure has a title and labelled axes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go


def attribution_heatmap(scores: np.ndarray, title: str = "IG2 attribution per neuron") -> go.Figure:
    """Layers × neurons heatmap of (mean) IG2 scores."""
    figure = go.Figure(go.Heatmap(z=scores, colorscale="RdBu", zmid=0, colorbar={"title": "IG2 score"}))
    figure.update_layout(title=title, xaxis_title="FFN neuron (index)", yaxis_title="layer", height=420)
    return figure


def neurons_per_layer_bars(per_layer: pd.DataFrame, title: str = "Bias neurons per layer") -> go.Figure:
    figure = go.Figure(go.Bar(x=per_layer["layer"], y=per_layer["count"]))
    figure.update_layout(title=title, xaxis_title="layer", yaxis_title="bias neurons (count)", height=320)
    return figure


def migration_histogram(per_layer: pd.DataFrame, title: str = "Bias neurons per layer: two models") -> go.Figure:
    """Mirrored histogram of the per-layer counts of two models (compare_layer_distributions)."""
    models = list(dict.fromkeys(per_layer["model"]))[:2]
    figure = go.Figure()
    for sign, model in zip((1, -1), models):
        part = per_layer[per_layer["model"] == model]
        figure.add_bar(y=part["layer"], x=sign * part["count"], orientation="h", name=model)
    figure.update_layout(title=title, barmode="overlay", xaxis_title="bias neurons (count; left: second model)",
                         yaxis_title="layer", height=420)
    return figure


def head_grid(grid: pd.DataFrame, value: str, title: str, colorbar: str) -> go.Figure:
    """Layers × heads heatmap of one column of a head table."""
    matrix = grid.pivot(index="layer", columns="head", values=value)
    figure = go.Figure(go.Heatmap(z=matrix.values, x=matrix.columns, y=matrix.index, colorscale="RdBu", zmid=0
                                  if value.endswith("delta") else None, colorbar={"title": colorbar}))
    figure.update_layout(title=title, xaxis_title="head", yaxis_title="layer", height=420)
    return figure


STATUS_CODES = {"kept": 0, "protected": 1, "pruned": 2}


def pruned_head_grid(grid: pd.DataFrame, title: str = "Heads: kept, protected, pruned") -> go.Figure:
    coded = grid.assign(code=grid["status"].map(STATUS_CODES))
    matrix = coded.pivot(index="layer", columns="head", values="code")
    labels = coded.pivot(index="layer", columns="head", values="status")
    figure = go.Figure(go.Heatmap(z=matrix.values, x=matrix.columns, y=matrix.index, text=labels.values,
                                  hovertemplate="layer %{y}, head %{x}: %{text}<extra></extra>", zmin=0, zmax=2,
                                  colorscale=[[0, "#d9d9d9"], [0.5, "#2ca02c"], [1, "#d62728"]],
                                  colorbar={"title": "status", "tickvals": [0, 1, 2],
                                            "ticktext": ["kept", "protected", "pruned"]}))
    figure.update_layout(title=title, xaxis_title="head", yaxis_title="layer", height=420)
    return figure


def density_bars(tables: dict[str, pd.DataFrame], title: str = "Weights kept per layer") -> go.Figure:
    """Per-layer density (percent kept) of several masks side by side."""
    figure = go.Figure()
    for name, table in tables.items():
        per_layer = table.groupby("layer").apply(lambda t: 100.0 * t["kept"].sum() / t["total"].sum(),
                                                 include_groups=False)
        figure.add_bar(x=per_layer.index, y=per_layer.values, name=name)
    figure.update_layout(title=title, barmode="group", xaxis_title="layer", yaxis_title="density (% of weights kept)",
                         height=360)
    return figure


def pareto_front(points: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """Points not dominated by another with lower-or-equal x and y (both minimised)."""
    ordered = points.sort_values([x, y])
    front, best = [], np.inf
    for index, row in ordered.iterrows():
        if row[y] < best:
            front.append(index)
            best = row[y]
    return points.loc[front]


def tradeoff_scatter(points: pd.DataFrame, x: str, y: str, color: str, hover: str,
                     title: str = "Performance–bias trade-off", x_label: str = "", y_label: str = "") -> go.Figure:
    figure = go.Figure()
    for group, part in points.groupby(color):
        figure.add_scatter(x=part[x], y=part[y], mode="markers", name=str(group), text=part[hover],
                           hovertemplate="%{text}<br>" + x + " %{x:.3f}<br>" + y + " %{y:.3f}<extra></extra>")
    front = pareto_front(points, x, y)
    figure.add_scatter(x=front[x], y=front[y], mode="lines", name="Pareto front", line={"dash": "dash"})
    figure.update_layout(title=title, xaxis_title=x_label or x, yaxis_title=y_label or y, height=420)
    return figure
