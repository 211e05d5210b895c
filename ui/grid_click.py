"""Clicks on a layer × head grid: a heatmap cell gives Streamlit no selection event, so an
invisible marker sits on every cell; a click selects that marker and names the head."""

from __future__ import annotations

import pandas as pd


def clickable_cells(figure, grid: pd.DataFrame, value: str, label: str):
    """Add one transparent, clickable marker per (layer, head) of ``grid``; hovering it shows the value."""
    figure.add_scatter(
        x=grid["head"], y=grid["layer"], mode="markers", showlegend=False, name="heads",
        marker={"size": 18, "color": "rgba(0,0,0,0)", "symbol": "square"},
        customdata=grid[value], hovertemplate=f"layer %{{y}}, head %{{x}}: {label} %{{customdata:.4g}}<extra></extra>")
    figure.update_layout(clickmode="event+select", dragmode=False, hovermode="closest")
    # The markers would widen the autorange past the cells (axis ticks at −1 and beyond the last head).
    figure.update_xaxes(range=[grid["head"].min() - 0.5, grid["head"].max() + 0.5])
    figure.update_yaxes(range=[grid["layer"].min() - 0.5, grid["layer"].max() + 0.5])
    return figure


def clicked_head(event) -> tuple[int, int] | None:
    """(layer, head) of the clicked cell in a ``st.plotly_chart`` selection event, if any."""
    if event is None:
        return None
    selection = event.get("selection") if isinstance(event, dict) else getattr(event, "selection", None)
    points = (selection or {}).get("points", []) if isinstance(selection, dict) else getattr(selection, "points", [])
    for point in points or []:
        if "x" in point and "y" in point:
            return int(point["y"]), int(point["x"])
    return None
