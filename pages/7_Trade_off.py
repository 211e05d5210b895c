"""Trade-off: every stored evaluation as a point (performance vs bias), coloured by method, with the
Pareto front; hover shows the run and the data it was computed on."""

import pandas as pd
import streamlit as st

from bias_lab import plots
from bias_lab.evaluation.record import BIAS_NAME, PERFORMANCE_NAME, data_label
from bias_lab.store import RunStore
from ui import downloads
from ui.shell import sidebar
from ui.state import forget, kept, remembered

st.set_page_config(page_title="Trade-off · bias lab", layout="wide")
sidebar()
st.title("Performance–bias trade-off")
st.caption("Each point is a stored evaluation (Evaluate page or `bias-lab evaluate`): lower is better on both axes. "
           "Only points computed on the same data are plotted together.")

records = [r for r in RunStore().list(kind="evaluate", status="complete") if "bias" in r.summary or
           "performance" in r.summary]
frame = pd.DataFrame([{"run": r.id, "model": r.model, "benchmark": r.config.get("benchmark"),
                       "method": r.summary.get("method", r.config.get("method", "original")),
                       "data": r.config.get("data_label") or data_label(r.config.get("data"), r.config.get("limit"),
                                                                       r.config.get("items")),
                       "items": r.config.get("items"),
                       "bias": r.summary.get("bias"), "performance": r.summary.get("performance")} for r in records],
                     columns=["run", "model", "benchmark", "method", "data", "items", "bias", "performance"])
points = frame.dropna(subset=["bias", "performance"])
if points.empty:
    st.info("No evaluation with both a performance and a bias number yet — StereoSet gives both "
            "(performance = 100 − LMS, bias = |SS − 50|). Run some on the Evaluate page.")
    st.stop()
choices = st.columns(2)
benchmark = kept(choices[0].selectbox, "Benchmark", sorted(points["benchmark"].unique()), key="trade_benchmark")
of_benchmark = points[points["benchmark"] == benchmark]
datasets = of_benchmark["data"].value_counts().index.tolist()  # the data with the most points first
if remembered("trade_data") not in datasets:
    forget("trade_data")
dataset = kept(choices[1].selectbox, "Data", datasets, key="trade_data",
               help="points computed on different data (another file, or another item limit) are not comparable")
chosen = of_benchmark[of_benchmark["data"] == dataset]
if len(datasets) > 1:
    st.caption(f"{len(of_benchmark) - len(chosen)} other {benchmark} point(s) were computed on other data: "
               "choose it above.")
st.session_state["trade_points"] = len(chosen)
performance_name = PERFORMANCE_NAME.get(benchmark, "performance")
bias_name = BIAS_NAME.get(benchmark, "bias")
labels = chosen["run"] + " · " + chosen["model"].astype(str) + " · " + chosen["data"]
figure = plots.tradeoff_scatter(chosen.assign(label=labels), "performance", "bias", "method", "label",
                                title=f"{benchmark}: {performance_name} vs {bias_name}",
                                x_label=f"{performance_name} (lower is better)", y_label=f"{bias_name} (0 = unbiased)")
downloads.figure(figure, "tradeoff", "trade_scatter")
downloads.table(chosen, "tradeoff_points", "trade_table")
