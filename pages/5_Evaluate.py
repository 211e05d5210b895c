"""Evaluate: a benchmark on the model as loaded and under the active intervention, side by side."""

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
import torch

from bias_lab.errors import BiasLabError
from bias_lab.evaluation import BENCHMARKS, evaluate, load_benchmark_data
from bias_lab.evaluation.record import headline, record_evaluation
from ui import downloads
from ui.intervention import current_spec
from ui.shell import sidebar

st.set_page_config(page_title="Evaluate · bias lab", layout="wide")
st.title("Evaluate")
st.caption("StereoSet, CrowS-Pairs, SEAT, WinoBias or perplexity — before (the model as loaded) and after (with the "
           "active intervention from the sidebar). Results are stored as runs for the Trade-off page.")

loaded = sidebar(need_model=True)
spec = current_spec()
columns = st.columns(4)
benchmark = columns[0].selectbox("Benchmark", BENCHMARKS, key="eval_benchmark")
data_path = columns[1].text_input("Data (file, folder or HF dataset id)", key="eval_data",
                                  placeholder="e.g. /data/stereoset/dev.json")
limit = columns[2].number_input("At most N items (0 = all)", min_value=0, value=200, key="eval_limit")
batch_size = columns[3].number_input("Batch size (0 = automatic)", min_value=0, value=0, key="eval_batch")

if not st.button("Run", key="eval_run"):
    st.stop()
try:
    data = load_benchmark_data(benchmark, data_path.strip() or None, limit=int(limit) or None)
    if limit and benchmark == "stereoset":
        data.intrasentence = data.intrasentence[: int(limit)]
    elif limit and benchmark in ("crows", "winobias"):
        data = data[: int(limit)]
    bar = st.progress(0.0, text="before …")
    size = int(batch_size) or None
    before = evaluate(loaded, benchmark, data, batch_size=size,
                      progress=lambda d, t, m="": bar.progress(min(d / max(t, 1), 1.0), text="before …"))
    after = None
    if not spec.is_empty:
        after = evaluate(loaded, benchmark, data, intervention=spec, batch_size=size,
                         progress=lambda d, t, m="": bar.progress(min(d / max(t, 1), 1.0), text="after …"))
except BiasLabError as error:
    st.error(str(error))
    st.stop()
except (torch.OutOfMemoryError, MemoryError):
    tried = f"batch size {int(batch_size)}" if batch_size else "the automatic batch size (≈4096 tokens per batch)"
    st.error(f"out of memory with {tried}: set a smaller batch size")
    st.stop()
record_evaluation(before, loaded, None, data=data_path or None)
rows = [{"model": "before", **headline(benchmark, before.summary)}]
if after is not None:
    record_evaluation(after, loaded, spec, data=data_path or None)
    rows.append({"model": "after", **headline(benchmark, after.summary)})
summary = pd.DataFrame(rows)
st.session_state["eval_summary"] = summary
downloads.table(summary, f"{benchmark}_summary", "eval_summary")
if benchmark == "stereoset":
    figure = go.Figure()
    for name, result in (("before", before), ("after", after)):
        if result is None:
            continue
        domains = [d for d in result.summary["intrasentence"] if d != "overall"]
        figure.add_bar(x=domains, y=[result.summary["intrasentence"][d]["ss"] for d in domains], name=name)
    figure.add_hline(y=50, line_dash="dash", annotation_text="unbiased (SS 50)")
    figure.update_layout(title="StereoSet SS per domain", xaxis_title="domain", yaxis_title="SS (%)", barmode="group")
    downloads.figure(figure, "stereoset_domains", "eval_domains")
downloads.table(before.items, f"{benchmark}_items_before", "eval_items")
