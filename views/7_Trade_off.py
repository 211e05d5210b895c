"""Trade-off: stored evaluations as points (a performance metric vs a bias metric), coloured by
method, with the Pareto front; a point is one run giving both numbers (StereoSet) or two runs of the
same model under the same intervention (e.g. toxicity and perplexity); hover names its runs and data."""

import streamlit as st

from bias_lab import plots
from bias_lab.evaluation.tradeoff import (default_metrics, higher_is_better, metric_axes, metric_choices,
                                          metric_direction, metric_label, metric_values, tradeoff_datasets,
                                          tradeoff_points, tradeoff_selection)
from bias_lab.metrics import all_metrics
from bias_lab.store import RunStore
from ui import downloads
from ui.shell import offer_lesson_runs, sidebar
from ui.state import forget, kept, remembered

st.set_page_config(page_title="Trade-off · bias lab", layout="wide")
sidebar()
st.title("Performance–bias trade-off")
st.caption("Each point is a model under one intervention: its bias number and its performance number from stored "
           "evaluations (Evaluate page or `bias-lab evaluate BENCHMARK`) — one run giving both (StereoSet), or a bias "
           "run (e.g. toxicity) and a performance run (e.g. perplexity) of the same model under the same "
           "intervention; or a GLUE run (`bias-lab glue`: the GLUE average after fine-tuning under each mask) and a "
           "bias run of the same model under the same mask. Bias: lower is better (0 = unbiased); performance: lower "
           "is better, except the GLUE average (higher is better). Only points computed on the same data are plotted "
           "together.")
METRICS = all_metrics()

values = metric_values(RunStore())
defaults = default_metrics(values)
if defaults is None:
    st.info("No evaluation pair with a performance and a bias number yet — StereoSet gives both (performance = "
            "100 − LMS, bias = |SS − 50|); or run a bias benchmark (toxicity, CrowS-Pairs …) and a performance one "
            "(perplexity, mlm-loss) with the same model and intervention. Run some on the Evaluate page, or pair a "
            "GLUE run of masks (`bias-lab glue`) with bias evaluations under the same masks.")
    offer_lesson_runs()
    st.stop()
biases, performances = metric_choices(values)
for key, options in (("trade_bias", biases), ("trade_performance", performances)):
    if remembered(key) not in options:
        forget(key)
choices = st.columns(3)
bias = kept(choices[0].selectbox, "Bias metric", biases, index=biases.index(defaults[0]), key="trade_bias",
            format_func=metric_label, help=" · ".join(f"{name}: {METRICS[name].description}" for name in biases))
performance = kept(choices[1].selectbox, "Performance metric", performances, index=performances.index(defaults[1]),
                   key="trade_performance", format_func=metric_label,
                   help=" · ".join(f"{name}: {METRICS[name].description}" for name in performances))
points = tradeoff_points(values=values, bias=bias, performance=performance)
if points.empty:
    where = (f"run {METRICS[performance].benchmark} on the Evaluate page" if METRICS[performance].benchmark
             else f"run `bias-lab {METRICS[performance].run_kind}`")
    st.info(f"No stored {bias} run pairs with a {performance} run of the same model under the same intervention: "
            f"{where} with the model and intervention of a {bias} run (or the other way round).")
    st.stop()
datasets = tradeoff_datasets(points)
if remembered("trade_data") not in datasets:
    forget("trade_data")
dataset = kept(choices[2].selectbox, "Data", datasets, key="trade_data",
               help="points computed on different data (another file, another item limit, another classifier or "
                    "generation settings) are not comparable")
chosen = tradeoff_selection(points, None, dataset)
if len(datasets) > 1:
    st.caption(f"{len(points) - len(chosen)} other point(s) of these metrics were computed on other data: "
               "choose it above.")
performance_name, bias_name = metric_axes(bias, performance)
figure = plots.tradeoff_runs(chosen, f"{performance_name} vs {bias_name}",
                             x_label=f"{performance_name} ({metric_direction(performance)})",
                             y_label=f"{bias_name} ({metric_direction(bias)})",
                             maximise_x=higher_is_better(performance))
downloads.figure(figure, "tradeoff", "trade_scatter")
downloads.table(chosen, "tradeoff_points", "trade_table")
