"""Compare two runs: bias neurons per layer as mirrored histograms (the migration view), the overlap
of their neuron sets, and the correlation of two head-scoring runs."""

import pandas as pd
import streamlit as st

from bias_lab import plots
from bias_lab.errors import BiasLabError
from bias_lab.ig2_run import load_ig2_run
from bias_lab.neurons import compare_layer_distributions, select_bias_neurons
from bias_lab.store import RunStore
from ui import downloads
from ui.shell import sidebar

st.set_page_config(page_title="Compare · bias lab", layout="wide")
sidebar()
st.title("Compare")
st.caption("Two models or two runs side by side — works from stored runs alone.")

store = RunStore()
ig2_runs = [r for r in store.list(kind="ig2", status="complete") if (r.artifact_dir / "run.json").is_file()]
st.subheader("Bias neurons per layer")
if len(ig2_runs) < 2:
    st.info("Needs two finished IG2 runs (e.g. the same JUT on two models).")
else:
    labels = {f"{r.id} · {r.model}": r for r in ig2_runs}
    names = list(labels)
    pick = st.columns(2)
    first = labels[pick[0].selectbox("First run", names, index=0, key="cmp_first")]
    second = labels[pick[1].selectbox("Second run", names, index=1, key="cmp_second")]
    try:
        runs = [load_ig2_run(first.artifact_dir), load_ig2_run(second.artifact_dir)]
    except BiasLabError as error:
        st.error(str(error))
        st.stop()
    tables = {f"{r.id} ({r.model})": select_bias_neurons(result.scores, result.prompts)
              for r, result in zip((first, second), runs)}
    layers = max(result.num_layers for result in runs)
    per_layer, summary = compare_layer_distributions(tables, layers)
    downloads.figure(plots.migration_histogram(per_layer), "neuron_migration", "cmp_migration")
    downloads.table(summary, "migration_summary", "cmp_summary")
    sets = [set(zip(t["layer"], t["neuron"])) for t in tables.values()]
    union = sets[0] | sets[1]
    overlap = len(sets[0] & sets[1])
    st.session_state["cmp_overlap"] = overlap
    st.write(f"shared bias neurons: {overlap} of {len(union)} (Jaccard {overlap / len(union) if union else 0:.2f})")

st.subheader("Head scores")
head_runs = [r for r in store.list(kind="heads", status="complete") if (r.artifact_dir / "head_scores.parquet").is_file()]
if len(head_runs) < 2:
    st.info("Needs two finished head-scoring runs.")
else:
    labels = {f"{r.id} · {r.model} · {r.config.get('bias')}": r for r in head_runs}
    names = list(labels)
    pick = st.columns(3)
    first = labels[pick[0].selectbox("First heads run", names, index=0, key="cmp_heads_first")]
    second = labels[pick[1].selectbox("Second heads run", names, index=1, key="cmp_heads_second")]
    column = pick[2].selectbox("Score", ("bias_delta", "perf_delta"), key="cmp_heads_column")
    a = pd.read_parquet(first.artifact_dir / "head_scores.parquet")
    b = pd.read_parquet(second.artifact_dir / "head_scores.parquet")
    merged = a.merge(b, on=["layer", "head"], suffixes=("_first", "_second"))
    if merged.empty:
        st.error("the two runs share no (layer, head): are they of models with the same shape?")
    else:
        correlation = merged[f"{column}_first"].corr(merged[f"{column}_second"])
        st.session_state["cmp_head_correlation"] = correlation
        st.metric(f"Pearson correlation of {column}", f"{correlation:.3f}")
        downloads.table(merged, "head_scores_compared", "cmp_heads_table")
