import numpy as np
import pandas as pd

from bias_lab import plots


def test_figures_have_titles_and_axis_labels():
    grid = pd.DataFrame({"layer": [0, 0, 1, 1], "head": [0, 1, 0, 1], "bias_delta": [0.1, -0.2, 0.0, 0.3],
                         "status": ["kept", "pruned", "protected", "kept"]})
    per_layer = pd.DataFrame({"layer": [0, 1, 0, 1], "count": [1, 2, 3, 0], "model": ["a", "a", "b", "b"]})
    density = pd.DataFrame({"layer": [0, 0, 1], "module": ["query", "value", "query"], "kept": [5, 10, 10],
                            "total": [10, 10, 10]})
    figures = [plots.attribution_heatmap(np.zeros((2, 4))), plots.neurons_per_layer_bars(per_layer[:2]),
               plots.migration_histogram(per_layer), plots.head_grid(grid, "bias_delta", "Bias change", "Δ bias"),
               plots.pruned_head_grid(grid), plots.density_bars({"m": density}),
               plots.tradeoff_scatter(pd.DataFrame({"ppl": [1, 2, 3], "bias": [3, 1, 2], "method": ["a", "b", "b"],
                                                    "run": ["x", "y", "z"]}), "ppl", "bias", "method", "run")]
    for figure in figures:
        layout = figure.layout
        assert layout.title.text and layout.xaxis.title.text and layout.yaxis.title.text
    bars = plots.density_bars({"m": density})
    assert list(bars.data[0].y) == [75.0, 100.0]


def test_pareto_front():
    points = pd.DataFrame({"perf": [1.0, 2.0, 3.0, 2.5], "bias": [5.0, 2.0, 1.0, 3.0]})
    assert plots.pareto_front(points, "perf", "bias").index.tolist() == [0, 1, 2]
