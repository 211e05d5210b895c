"""Compare two runs: bias neurons per layer as mirrored histograms (the migration view), the overlap
of their neuron sets, and the correlation of two head-scoring runs."""


import numpy as np
import pandas as pd
import streamlit as st

from bias_lab import plots
from bias_lab.errors import BiasLabError
from bias_lab.neurons.run import load_ig2_run
from bias_lab.neurons import compare_layer_distributions, select_bias_neurons, shallow_deep_edge
from bias_lab.run_labels import describe_run, short_model
from bias_lab.store import RunStore
from ui import downloads
from ui.shell import sidebar

st.set_page_config(page_title="Compare · bias lab", layout="wide")
sidebar()
st.title("Compare")
st.caption("Two models or two runs side by side — works from stored runs alone.")



def ig2_label(record) -> str:
    """What the run is (model, dimension and pair, modifier type, target, prompts), then its id."""
    return f"{describe_run(record).removeprefix('ig2 · ')} · {record.id}"


def heads_label(record) -> str:
    """Model, performance and bias metric (or that it has no bias scores), then its id."""
    missing = "" if record.config.get("bias") else " · no bias scores"
    return f"{describe_run(record).removeprefix('heads · ')}{missing} · {record.id}"


def second_default(records: list, first) -> int:
    """The second run's default: another run, of another model if there is one."""
    others = [i for i, r in enumerate(records) if r.id != first.id]
    other_models = [i for i in others if records[i].model != first.model]
    return (other_models or others or [0])[0]


def pick_two(records: list, label, keys: tuple[str, str], titles: tuple[str, str], columns):
    labels = {label(r): r for r in records}
    names = list(labels)
    first = labels[columns[0].selectbox(titles[0], names, index=0, key=keys[0])]
    second = labels[columns[1].selectbox(titles[1], names, index=second_default(records, first), key=keys[1])]
    return first, second


store = RunStore()
ig2_runs = [r for r in store.list(kind="ig2", status="complete") if (r.artifact_dir / "run.json").is_file()]
st.subheader("Bias neurons per layer")
if len(ig2_runs) < 2:
    st.info("Needs two finished IG2 runs (e.g. the same JUT on two models).")
else:
    first, second = pick_two(ig2_runs, ig2_label, ("cmp_first", "cmp_second"), ("First run", "Second run"),
                             st.columns(2))
    if first.id == second.id:
        st.info("the same run on both sides: choose two different runs")
    else:
        try:
            runs = [load_ig2_run(first.artifact_dir), load_ig2_run(second.artifact_dir)]
            names = [f"first: {short_model(first.model)} ({first.id[-6:]})",
                     f"second: {short_model(second.model)} ({second.id[-6:]})"]
            tables = {name: select_bias_neurons(result.scores, result.prompts) for name, result in zip(names, runs)}
        except BiasLabError as error:
            st.error(str(error))
        else:
            layers = max(result.num_layers for result in runs)
            edge = shallow_deep_edge(layers)
            per_layer, summary = compare_layer_distributions(tables, layers, edge=edge)
            downloads.figure(plots.migration_histogram(per_layer, x_label="bias neurons (count; right: first run, "
                                                                           "left: second run)"),
                             "neuron_migration", "cmp_migration")
            st.caption(f"shallow = the first {edge} layer{'s' if edge > 1 else ''}, deep = the last {edge} "
                       f"(a quarter of {layers})")
            downloads.table(summary, "migration_summary", "cmp_summary", column_config={
                "shallow_share": st.column_config.NumberColumn("shallow share", format="percent"),
                "deep_share": st.column_config.NumberColumn("deep share", format="percent")})
            sets = [set(zip(t["layer"], t["neuron"])) for t in tables.values()]
            union = sets[0] | sets[1]
            overlap = len(sets[0] & sets[1])
            st.session_state["cmp_overlap"] = overlap
            if not union:
                st.write("neither run has bias neurons after selection: no overlap to measure")
            else:
                st.write(f"shared bias neurons: {overlap} of {len(union)} (Jaccard {overlap / len(union):.2f}; "
                         f"first run {len(sets[0])}, second run {len(sets[1])})")
            if runs[0].num_layers != runs[1].num_layers:
                st.caption(f"the models differ in depth ({runs[0].num_layers} and {runs[1].num_layers} layers): "
                           "shared neurons are only meaningful between models of the same shape")

st.subheader("Head scores")
head_runs = [r for r in store.list(kind="heads", status="complete") if (r.artifact_dir / "head_scores.parquet").is_file()]
if len(head_runs) < 2:
    st.info("Needs two finished head-scoring runs.")
else:
    pick = st.columns(3)
    first, second = pick_two(head_runs, heads_label, ("cmp_heads_first", "cmp_heads_second"),
                             ("First heads run", "Second heads run"), pick[:2])
    with_bias = all(r.config.get("bias") for r in (first, second))
    column = pick[2].selectbox("Score", ("bias_delta", "perf_delta") if with_bias else ("perf_delta", "bias_delta"),
                               key="cmp_heads_column")
    st.session_state["cmp_head_correlation"] = None
    if first.id == second.id:
        st.info("the same run on both sides: choose two different runs")
    else:
        a = pd.read_parquet(first.artifact_dir / "head_scores.parquet")
        b = pd.read_parquet(second.artifact_dir / "head_scores.parquet")
        merged = a.merge(b, on=["layer", "head"], suffixes=("_first", "_second"))
        metric = "bias" if column.startswith("bias") else "perf"
        if merged.empty:
            st.error("the two runs share no (layer, head): are they of models with the same shape?")
        else:
            left, right = merged[f"{column}_first"].astype(float), merged[f"{column}_second"].astype(float)
            missing = [f"{which} run ({record.id})" for which, record, values in
                       (("first", first, left), ("second", second, right)) if values.isna().all()]
            both = merged[left.notna() & right.notna()]
            constant = [f"{which} run ({record.id})" for which, record, values in
                        (("first", first, both[f"{column}_first"]), ("second", second, both[f"{column}_second"]))
                        if len(both) >= 2 and np.ptp(values.astype(float).to_numpy()) == 0]
            if missing:
                why = ("has no bias scores (it was scored without --bias)" if metric == "bias"
                       else "has no performance scores (it was scored with --perf none)")
                st.warning(f"no correlation of {column}: the {' and the '.join(missing)} {why}"
                           + ("; compare perf_delta instead, or runs scored with --bias" if metric == "bias" else ""))
            elif len(both) < 2:
                st.warning(f"no correlation of {column}: it needs at least 2 heads scored in both runs, "
                           f"they share {len(both)}")
            elif constant:
                st.warning(f"no correlation of {column}: it is the same for every shared head in the "
                           f"{' and the '.join(constant)}, so a correlation is undefined")
            else:
                correlation = float(both[f"{column}_first"].astype(float).corr(both[f"{column}_second"].astype(float)))
                st.session_state["cmp_head_correlation"] = correlation
                st.metric(f"Pearson correlation of {column} over {len(both)} shared heads", f"{correlation:.3f}")
                names = {first.config.get(metric), second.config.get(metric)}
                if len(names) > 1:
                    st.caption(f"the runs measure {metric} with different metrics ({' and '.join(map(str, names))})")
            downloads.table(merged, "head_scores_compared", "cmp_heads_table")
