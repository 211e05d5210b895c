"""Evaluate: a benchmark on the model as loaded and under the active intervention, side by side."""

import hashlib

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
import torch

from bias_lab.data.seat import default_seat_tests, seat_test_names
from bias_lab.errors import BiasLabError
from bias_lab.evaluation import BENCHMARKS, check_reach, evaluate, load_benchmark_data
from bias_lab.evaluation.record import headline, record_evaluation
from bias_lab.heads.metrics import BENCHMARK_KINDS, LM_KINDS, kinds_text
from bias_lab.models import kind_phrase
from ui import downloads
from ui.intervention import current_spec, describe
from ui.jobs import run_job
from ui.session import current_model_settings
from ui.shell import sidebar
from ui.state import forget, kept, remembered

DATA_HINTS = {"stereoset": "default McGill-NLP/stereoset, or /data/stereoset/dev.json",
              "crows": "default nyu-mll/crows_pairs, or /data/crows_pairs_anonymized.csv",
              "seat": "a folder of SEAT .jsonl tests, e.g. /data/seat",
              "winobias": "the WinoBias folder, e.g. /data/winobias",
              "perplexity": "default wikitext, or a text file"}

st.set_page_config(page_title="Evaluate · bias lab", layout="wide")
st.title("Evaluate")
st.caption("StereoSet, CrowS-Pairs, SEAT, WinoBias or perplexity — before (the model as loaded) and after (with the "
           "active intervention from the sidebar). Results are stored as runs for the Trade-off page.")

loaded = sidebar(need_model=True)
spec = current_spec()
usable = [b for b in BENCHMARKS if loaded.kind in BENCHMARK_KINDS[b]]
if len(usable) < len(BENCHMARKS):
    st.caption(f"{loaded.source!r} is {kind_phrase(loaded.kind)}: it can run {', '.join(usable)} "
               f"(the others need {kinds_text(LM_KINDS)})")
if remembered("eval_benchmark") not in usable:
    forget("eval_benchmark")
columns = st.columns(4)
benchmark = kept(columns[0].selectbox, "Benchmark", usable, key="eval_benchmark")
# Each benchmark keeps its own data path: a StereoSet file is no SEAT folder.
data_path = kept(columns[1].text_input, "Data (file, folder or HF dataset id)", key=f"eval_data_{benchmark}",
                 placeholder=DATA_HINTS[benchmark]).strip()
limit = kept(columns[2].number_input, "At most N items (0 = all)", min_value=0, value=200, key="eval_limit",
             disabled=benchmark == "seat", help="SEAT scores each test whole: choose tests below instead")
batch_size = kept(columns[3].number_input, "Batch size (0 = automatic)", min_value=0, value=0, key="eval_batch")
limit = None if benchmark == "seat" else int(limit) or None

tests = None
if benchmark == "seat":
    try:
        available = seat_test_names(data_path) if data_path else []
    except BiasLabError as error:
        st.error(str(error))
        st.stop()
    if not available:
        st.info("SEAT needs its folder of sent-bias .jsonl tests: give it in the Data box.")
        st.stop()
    default = default_seat_tests(available)
    # The choice belongs to a folder: another folder starts again from the six gender tests.
    folder_key = hashlib.sha1(data_path.encode()).hexdigest()[:10]
    tests = kept(st.multiselect, "SEAT tests", available, default=default, key=f"eval_seat_tests_{folder_key}",
                 help="default: the six gender tests (weat6–8, word and sentence forms)")
    if not tests:
        st.info("Choose at least one SEAT test.")
        st.stop()

retarget = False
try:
    check_reach(loaded, benchmark, spec)
except BiasLabError as error:
    retarget = kept(st.checkbox, "Re-target the neuron edits to every token for this evaluation", value=False,
                    key="eval_retarget")
    if not retarget:
        st.warning(str(error))
        st.stop()

inputs = (current_model_settings(), spec.to_json(), benchmark, data_path, limit, int(batch_size),
          tuple(tests or ()), retarget)


def run_evaluation(progress, cancel):
    """Before and after, stored as runs; out of memory becomes one line naming the batch size."""
    data = load_benchmark_data(benchmark, data_path or None, tests=tests, limit=limit)
    size = int(batch_size) or None
    options = {"cancel": cancel}
    try:
        before = evaluate(loaded, benchmark, data, batch_size=size, progress=progress, **options)
        after = None
        if not spec.is_empty:
            after = evaluate(loaded, benchmark, data, intervention=spec, batch_size=size, progress=progress,
                             retarget=retarget, **options)
    except (torch.OutOfMemoryError, MemoryError):
        tried = f"batch size {size}" if size else "the automatic batch size (≈4096 tokens per batch)"
        raise BiasLabError(f"out of memory with {tried}: set a smaller batch size") from None
    record_evaluation(before, loaded, None, data=data_path or None, limit=limit)
    if after is not None:
        record_evaluation(after, loaded, spec, data=data_path or None, limit=limit)
    return {"inputs": inputs, "before": before, "after": after}


label = "Run before and after" if not spec.is_empty else "Run (no intervention: before only)"
finished = run_job("eval_job", f"{benchmark} items", run_evaluation, start=st.button(label, key="eval_run"))
if finished is not None:
    st.session_state["eval_results"] = finished

# Results stay until the inputs change: a download or "Prepare PNG" click reruns the page.
results = st.session_state.get("eval_results")
if results is None or results["inputs"] != inputs:
    st.info("Choose the benchmark and its data, then press Run.")
    st.stop()
before, after = results["before"], results["after"]
for note in (after.config.get("notes", []) if after is not None else []):
    st.warning(f"note: {note}")
items = before.config.get("items")
unit = "test" if benchmark == "seat" else "item"
st.caption(f"{benchmark} on {data_path or 'the default data'}: {items} {unit}{'s' if items != 1 else ''}"
           + (f" (first {limit})" if limit else "") + f" · after = {describe(spec) if after else 'no intervention'}")
rows = [{"model": "before", **headline(benchmark, before.summary)}]
if after is not None:
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
elif benchmark == "seat":
    figure = go.Figure()
    for name, result in (("before", before), ("after", after)):
        if result is None:
            continue
        names = list(result.summary["tests"])
        figure.add_bar(x=names, y=[result.summary["tests"][n]["effect_size"] for n in names], name=name)
    figure.update_layout(title="SEAT effect size per test", xaxis_title="test", yaxis_title="effect size (d)",
                         barmode="group")
    downloads.figure(figure, "seat_effect_sizes", "eval_seat")
st.subheader("Items before")
downloads.table(before.items, f"{benchmark}_items_before", "eval_items")
if after is not None:
    st.subheader("Items after")
    downloads.table(after.items, f"{benchmark}_items_after", "eval_items_after")
