"""Trade-off: every stored evaluation as a point (performance vs bias), coloured by method, with the
Pareto front; hover shows the run."""

import pandas as pd
import streamlit as st

from bias_lab import plots
from bias_lab.store import RunStore
from ui import downloads
from ui.shell import sidebar

st.set_page_config(page_title="Trade-off · bias lab", layout="wide")
sidebar()
st.title("Performance–bias trade-off")
st.caption("Each point is a stored evaluation (Evaluate page or `bias-lab evaluate`): lower is better on both axes.")

records = [r for r in RunStore().list(kind="evaluate", status="complete") if "bias" in r.summary or
           "performance" in r.summary]
frame = pd.DataFrame([{"run": r.id, "model": r.model, "benchmark": r.config.get("benchmark"),
                       "method": r.summary.get("method", r.config.get("method", "original")),
                       "bias": r.summary.get("bias"), "performance": r.summary.get("performance")} for r in records],
                     columns=["run", "model", "benchmark", "method", "bias", "performance"])
points = frame.dropna(subset=["bias", "performance"])
if points.empty:
    st.info("No evaluation with both a performance and a bias number yet — StereoSet gives both "
            "(performance = 100 − LMS, bias = |SS − 50|). Run some on the Evaluate page.")
    st.stop()
benchmarks = sorted(points["benchmark"].unique())
benchmark = st.selectbox("Benchmark", benchmarks, key="trade_benchmark")
chosen = points[points["benchmark"] == benchmark]
st.session_state["trade_points"] = len(chosen)
figure = plots.tradeoff_scatter(chosen.assign(label=chosen["run"] + " · " + chosen["model"]), "performance", "bias",
                                "method", "label", title=f"{benchmark}: performance vs bias",
                                x_label="performance (lower is better)", y_label="bias (0 = unbiased)")
downloads.figure(figure, "tradeoff", "trade_scatter")
downloads.table(chosen, "tradeoff_points", "trade_table")
