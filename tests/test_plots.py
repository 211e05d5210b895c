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


GRID = pd.DataFrame({"layer": [0, 0, 1, 1, 2, 2], "head": [0, 1, 0, 1, 0, 1],
                     "bias_delta": [0.1, -0.2, 0.0, 0.3, 0.5, -0.1],
                     "status": ["kept", "pruned", "protected", "kept", "kept", "pruned"]})


def test_categorical_head_grid_has_a_legend_entry_per_status_and_no_colour_bar():
    figure = plots.pruned_head_grid(GRID)
    entries = [t for t in figure.data if t.showlegend]
    assert [t.name for t in entries] == ["kept (3)", "protected (1)", "pruned (2)"]
    assert [t.legendgroup for t in entries] == ["kept", "protected", "pruned"]
    heatmaps = [t for t in figure.data if t.type == "heatmap"]
    assert len(heatmaps) == 3 and not any(t.showscale for t in heatmaps)
    colors = {t.legendgroup: t.marker.color for t in entries}
    assert len(set(colors.values())) == 3
    for heatmap in heatmaps:  # each status's cells, in its legend entry's colour
        assert heatmap.colorscale[0][1] == colors[heatmap.legendgroup]
        cells = np.argwhere(~np.isnan(np.asarray(heatmap.z, dtype=float)))
        pivot = GRID.pivot(index="layer", columns="head", values="status").values
        assert all(pivot[r, c] == heatmap.legendgroup for r, c in cells)
    # surviving heads: only two statuses, both with a legend entry
    alive = GRID.assign(status=["kept", "pruned"] * 3)
    assert [t.name for t in plots.pruned_head_grid(alive).data if t.showlegend] == ["kept (3)", "pruned (3)"]


def test_layer_and_head_axes_have_integer_ticks():
    per_layer = pd.DataFrame({"layer": [0, 1, 2], "count": [1, 2, 3], "model": ["a"] * 3})
    density = pd.DataFrame({"layer": [0, 1, 2], "module": ["value"] * 3, "kept": [5, 10, 10], "total": [10] * 3})
    for figure in (plots.head_grid(GRID, "bias_delta", "Bias change", "Δ bias"), plots.pruned_head_grid(GRID)):
        assert figure.layout.xaxis.dtick == 1 and figure.layout.yaxis.dtick == 1
        assert figure.layout.xaxis.tickformat == "d" and figure.layout.yaxis.tickformat == "d"
    for figure in (plots.neurons_per_layer_bars(per_layer), plots.density_bars({"m": density})):
        assert figure.layout.xaxis.dtick == 1 and figure.layout.xaxis.tickformat == "d"
    assert plots.migration_histogram(per_layer).layout.yaxis.dtick == 1
    assert plots.attribution_heatmap(np.zeros((3, 8))).layout.yaxis.dtick == 1
    # a 48-layer model: still whole numbers, but not 48 crowded labels
    many = pd.DataFrame({"layer": range(48), "count": 1})
    assert plots.neurons_per_layer_bars(many).layout.xaxis.dtick == 2


def test_long_titles_wrap_and_get_a_margin():
    title = "Bias change when the head is removed (click a head to ablate it live below) in a rather long run name"
    for figure in (plots.head_grid(GRID, "bias_delta", title, "Δ bias"), plots.pruned_head_grid(GRID, title),
                   plots.density_bars({"m": pd.DataFrame({"layer": [0], "kept": [1], "total": [2]})}, title)):
        lines = figure.layout.title.text.split("<br>")
        assert len(lines) >= 2 and max(len(line) for line in lines) <= 70
        assert " ".join(lines) == title
        assert figure.layout.margin.t >= 40 + 24 * len(lines)
    short = plots.pruned_head_grid(GRID, "FASP at α = 0.1, γ = 0.3")
    assert short.layout.title.text == "FASP at α = 0.1, γ = 0.3" and short.layout.margin.t >= 60


def test_pareto_front_is_drawn_with_a_single_point():
    one = pd.DataFrame({"perf": [1.0], "bias": [2.0], "method": ["original"], "run": ["r1"]})
    figure = plots.tradeoff_scatter(one, "perf", "bias", "method", "run")
    front = [t for t in figure.data if t.name == "Pareto front"][0]
    assert list(front.x) == [1.0] and list(front.y) == [2.0] and "markers" in front.mode
    several = pd.DataFrame({"perf": [1.0, 2.0, 3.0], "bias": [3.0, 1.0, 2.0], "method": ["a", "b", "b"],
                            "run": ["x", "y", "z"]})
    front = [t for t in plots.tradeoff_scatter(several, "perf", "bias", "method", "run").data
             if t.name == "Pareto front"][0]
    assert list(front.x) == [1.0, 2.0] and "lines" in front.mode


def test_axis_titles_name_the_metric():
    points = pd.DataFrame({"mlm": [1.0, 2.0], "ss": [3.0, 1.0], "method": ["a", "b"], "run": ["x", "y"]})
    figure = plots.tradeoff_scatter(points, "mlm", "ss", "method", "run", x_label="mlm-loss", y_label="|SS − 50|")
    assert figure.layout.xaxis.title.text == "mlm-loss" and figure.layout.yaxis.title.text == "|SS − 50|"
    assert "mlm-loss" in figure.data[0].hovertemplate
    per_layer = pd.DataFrame({"layer": [0, 1], "count": [1, 2], "model": ["a", "a"]})
    density = pd.DataFrame({"layer": [0], "kept": [1], "total": [2]})
    figures = {"neurons": plots.neurons_per_layer_bars(per_layer, x_label="encoder layer", y_label="neurons"),
               "migration": plots.migration_histogram(per_layer, x_label="encoder layer", y_label="neurons"),
               "heatmap": plots.attribution_heatmap(np.zeros((2, 2)), x_label="encoder layer", y_label="neurons"),
               "grid": plots.head_grid(GRID, "bias_delta", "t", "Δ", x_label="encoder layer", y_label="neurons"),
               "status": plots.pruned_head_grid(GRID, x_label="encoder layer", y_label="neurons"),
               "density": plots.density_bars({"m": density}, x_label="encoder layer", y_label="neurons")}
    for name, figure in figures.items():
        assert (figure.layout.xaxis.title.text, figure.layout.yaxis.title.text) == ("encoder layer", "neurons"), name


def test_before_after_figures_show_the_summaries():
    before = {"intrasentence": {"overall": {"ss": 55.0}, "gender": {"ss": 60.0}, "race": {"ss": 40.0}}}
    after = {"intrasentence": {"overall": {"ss": 50.0}, "gender": {"ss": 52.0}, "race": {"ss": 49.0}}}
    figure = plots.stereoset_domains({"before": before, "after": after})
    assert [t.name for t in figure.data] == ["before", "after"]
    assert list(figure.data[0].x) == ["gender", "race"] and list(figure.data[0].y) == [60.0, 40.0]
    assert list(figure.data[1].y) == [52.0, 49.0]
    assert figure.layout.shapes[0].y0 == 50  # the unbiased line
    assert figure.layout.xaxis.title.text == "domain" and figure.layout.yaxis.title.text == "SS (%)"
    seat = plots.seat_effect_sizes({"before": {"tests": {"w6": {"effect_size": 0.5}, "w7": {"effect_size": -0.2}}}})
    assert [t.name for t in seat.data] == ["before"]
    assert list(seat.data[0].x) == ["w6", "w7"] and list(seat.data[0].y) == [0.5, -0.2]
    assert seat.layout.title.text and seat.layout.yaxis.title.text == "effect size (d)"
    gap = plots.gap_before_after(0.25, 0.125)
    assert list(gap.data[0].x) == ["before", "after"] and list(gap.data[0].y) == [0.25, 0.125]
    assert gap.layout.title.text and gap.layout.yaxis.title.text and gap.layout.yaxis.exponentformat == "e"


def test_iterative_pruning_curve_has_a_bias_axis_only_with_bias():
    curve = pd.DataFrame({"pruned": [0, 2, 4], "perf": [1.0, 1.2, 1.5], "bias": [0.3, 0.2, 0.25]})
    figure = plots.iterative_pruning_curve(curve, perf_label="mlm-loss", bias_label="ig2-gap")
    assert [t.name for t in figure.data] == ["performance", "bias"] and figure.data[1].yaxis == "y2"
    assert list(figure.data[1].y) == [0.3, 0.2, 0.25]
    assert figure.layout.yaxis.title.text == "mlm-loss" and figure.layout.yaxis2.title.text == "ig2-gap"
    assert figure.layout.xaxis.title.text == "heads pruned (count)" and figure.layout.title.text
    no_bias = plots.iterative_pruning_curve(curve.assign(bias=float("nan")))
    assert [t.name for t in no_bias.data] == ["performance"]


def test_tradeoff_of_stored_runs_names_each_point():
    points = pd.DataFrame({"run": ["r1", "r2"], "model": ["m", "m"], "method": ["original", "BNS"],
                           "data": ["dev.json, first 2"] * 2, "performance": [10.0, 12.0], "bias": [5.0, 1.0]})
    figure = plots.tradeoff_runs(points, "stereoset: 100 − LMS vs |SS − 50|", x_label="100 − LMS", y_label="|SS − 50|")
    named = {t.name: t for t in figure.data}
    assert list(named["original"].text) == ["r1 · m · dev.json, first 2"]
    assert list(named["BNS"].text) == ["r2 · m · dev.json, first 2"]
    assert list(named["Pareto front"].x) == [10.0, 12.0]
    assert figure.layout.xaxis.title.text == "100 − LMS" and figure.layout.yaxis.title.text == "|SS − 50|"


def test_tradeoff_point_of_two_runs_names_both():
    points = pd.DataFrame({"run": ["t1 + p1", "s1"], "model": ["m", "m"], "method": ["original", "BNS"],
                           "data": ["p.jsonl | wiki.txt", "dev.json"], "performance": [30.0, 12.0], "bias": [0.5, 0.2],
                           "bias_run": ["t1", "s1"], "performance_run": ["p1", "s1"],
                           "bias_metric": ["toxicity", "stereoset"],
                           "performance_metric": ["perplexity", "stereoset-lms"],
                           "bias_data": ["p.jsonl", "dev.json"], "performance_data": ["wiki.txt", "dev.json"]})
    figure = plots.tradeoff_runs(points, "perplexity vs mean toxicity", x_label="perplexity", y_label="mean toxicity")
    named = {t.name: t for t in figure.data}
    assert list(named["original"].text) == ["bias: run t1 (toxicity, p.jsonl)<br>performance: run p1 (perplexity, "
                                            "wiki.txt)<br>m"]
    assert list(named["BNS"].text) == ["s1 · m · dev.json"]  # one run gives both


def test_group_toxicity_bars_before_and_after_side_by_side():
    groups = pd.DataFrame({"model": ["before", "before", "after", "after"], "axis": ["gender"] * 4,
                           "group": ["men", "women"] * 2, "label": ["gender/men", "gender/women"] * 2,
                           "mean_toxicity": [0.1, 0.6, 0.2, 0.25], "count": [2, 2, 2, 2]})
    figure = plots.group_toxicity_bars(groups)
    assert [t.name for t in figure.data] == ["before", "after"] and figure.layout.barmode == "group"
    assert [list(level) for level in figure.data[0].x] == [["gender", "gender"], ["men", "women"]]
    assert list(figure.data[0].y) == [0.1, 0.6] and list(figure.data[1].y) == [0.2, 0.25]
    assert list(figure.data[0].customdata) == [2, 2]
    assert figure.layout.title.text and "mean toxicity" in figure.layout.yaxis.title.text
    assert figure.layout.xaxis.title.text == "axis / group"
    no_axis = plots.group_toxicity_bars(groups.assign(axis=""))
    assert list(no_axis.data[0].x) == ["men", "women"] and no_axis.layout.xaxis.title.text == "group"
    gaps = pd.DataFrame({"model": ["before", "before", "after"], "axis": ["gender", "religion", "gender"],
                         "gap": [0.5, 0.2, 0.05]})
    bars = plots.axis_gap_bars(gaps)
    assert [t.name for t in bars.data] == ["before", "after"]
    assert list(bars.data[0].x) == ["gender", "religion"] and list(bars.data[0].y) == [0.5, 0.2]
    assert list(bars.data[1].y) == [0.05]
    assert bars.layout.yaxis.title.text == "toxicity gap Σ|axis − group|"  # the metric table's name


def test_axis_name_reads_the_metric_table():
    assert plots.axis_name("toxicity-gap", "bias") == "toxicity gap Σ|axis − group|"
    assert plots.axis_name("mlm-loss", "performance") == "masked-LM loss"
    assert plots.axis_name(None, "performance") == "performance"
    assert plots.axis_name("retired-metric", "bias") == "retired-metric"
