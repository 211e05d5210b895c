"""Trade-off: every stored evaluation as a point (performance vs bias), coloured by method, with the
Pareto front; hover shows the run and the data it was computed on."""

import streamlit as st

from bias_lab import plots
from bias_lab.evaluation.tradeoff import tradeoff_axes, tradeoff_datasets, tradeoff_points, tradeoff_selection
from bias_lab.store import RunStore
from ui import downloads
from ui.shell import sidebar
from ui.state import forget, kept, remembered

st.set_page_config(page_title="Trade-off · bias lab", layout="wide")
sidebar()
st.title("Performance–bias trade-off")
st.caption("Each point is a stored evaluation (Evaluate page or `bias-lab evaluate BENCHMARK`): lower is better on "
           "both axes. Only points computed on the same data are plotted together.")

points = tradeoff_points(RunStore())
if points.empty:
    st.info("No evaluation with both a performance and a bias number yet — StereoSet gives both "
            "(performance = 100 − LMS, bias = |SS − 50|). Run some on the Evaluate page.")
    st.stop()
choices = st.columns(2)
benchmark = kept(choices[0].selectbox, "Benchmark", sorted(points["benchmark"].unique()), key="trade_benchmark")
datasets = tradeoff_datasets(points, benchmark)
if remembered("trade_data") not in datasets:
    forget("trade_data")
dataset = kept(choices[1].selectbox, "Data", datasets, key="trade_data",
               help="points computed on different data (another file, or another item limit) are not comparable")
chosen = tradeoff_selection(points, benchmark, dataset)
if len(datasets) > 1:
    others = int((points["benchmark"] == benchmark).sum()) - len(chosen)
    st.caption(f"{others} other {benchmark} point(s) were computed on other data: choose it above.")
performance_name, bias_name = tradeoff_axes(benchmark)
figure = plots.tradeoff_runs(chosen, f"{benchmark}: {performance_name} vs {bias_name}",
                             x_label=f"{performance_name} (lower is better)", y_label=f"{bias_name} (0 = unbiased)")
downloads.figure(figure, "tradeoff", "trade_scatter")
downloads.table(chosen, "tradeoff_points", "trade_table")
