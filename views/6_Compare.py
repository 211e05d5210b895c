"""Compare two runs: bias neurons per layer as mirrored histograms (the migration view), the overlap
of their neuron sets, and the correlation of two head-scoring runs."""

import streamlit as st

from bias_lab import plots
from bias_lab.errors import BiasLabError
from bias_lab.heads.analyses import head_score_correlation, heads_run_label
from bias_lab.heads.runs import HeadScoresResult
from bias_lab.neurons import compare_layer_distributions, select_bias_neurons, shallow_deep_edge
from bias_lab.neurons.analyses import neuron_overlap
from bias_lab.neurons.run import IG2Result
from bias_lab.run_labels import short_model
from bias_lab.runs import other_run_index, run_label
from bias_lab.store import RunStore
from ui import downloads
from ui.shell import sidebar

st.set_page_config(page_title="Compare · bias lab", layout="wide")
sidebar()
st.title("Compare")
st.caption("Two models or two runs side by side — works from stored runs alone.")


def pick_two(records: list, label, keys: tuple[str, str], titles: tuple[str, str], columns):
    labels = {label(r): r for r in records}
    names = list(labels)
    first = labels[columns[0].selectbox(titles[0], names, index=0, key=keys[0])]
    second = labels[columns[1].selectbox(titles[1], names, index=other_run_index(records, first), key=keys[1])]
    return first, second


store = RunStore()
ig2_runs = IG2Result.finished_runs(store)
st.subheader("Bias neurons per layer")
if len(ig2_runs) < 2:
    st.info("Needs two finished IG2 runs (e.g. the same JUT on two models: `bias-lab neurons attribute`).")
else:
    first, second = pick_two(ig2_runs, lambda r: run_label(r, kind=False), ("cmp_first", "cmp_second"),
                             ("First run", "Second run"), st.columns(2))
    if first.id == second.id:
        st.info("the same run on both sides: choose two different runs")
    else:
        try:
            runs = [IG2Result.load(first.artifact_dir), IG2Result.load(second.artifact_dir)]
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
            overlap = neuron_overlap(*tables.values())
            if overlap.jaccard is None:
                st.write("neither run has bias neurons after selection: no overlap to measure")
            else:
                st.write(f"shared bias neurons: {overlap.shared} of {overlap.union} (Jaccard {overlap.jaccard:.2f}; "
                         f"first run {overlap.first}, second run {overlap.second})")
            if runs[0].num_layers != runs[1].num_layers:
                st.caption(f"the models differ in depth ({runs[0].num_layers} and {runs[1].num_layers} layers): "
                           "shared neurons are only meaningful between models of the same shape")

st.subheader("Head scores")
head_runs = HeadScoresResult.finished_runs(store)
if len(head_runs) < 2:
    st.info("Needs two finished head-scoring runs (`bias-lab heads score`).")
else:
    pick = st.columns(3)
    first, second = pick_two(head_runs, heads_run_label, ("cmp_heads_first", "cmp_heads_second"),
                             ("First heads run", "Second heads run"), pick[:2])
    with_bias = all(r.config.get("bias") for r in (first, second))
    column = pick[2].selectbox("Score", ("bias_delta", "perf_delta") if with_bias else ("perf_delta", "bias_delta"),
                               key="cmp_heads_column")
    if first.id == second.id:
        st.info("the same run on both sides: choose two different runs")
    else:
        try:
            results = HeadScoresResult.load(first.artifact_dir), HeadScoresResult.load(second.artifact_dir)
        except BiasLabError as error:
            st.error(str(error))
            st.stop()
        correlation = head_score_correlation(*results, column,
                                             names=(f"first run ({first.id})", f"second run ({second.id})"))
        if correlation.merged.empty:
            st.error(correlation.problem)
        else:
            if correlation.problem:
                st.warning(correlation.problem)
            else:
                st.metric(f"Pearson correlation of {column} over {correlation.shared} shared heads",
                          f"{correlation.value:.3f}")
                downloads.table(correlation.table(), "head_score_correlation", "cmp_heads_correlation")
                if correlation.note:
                    st.caption(correlation.note)
            downloads.table(correlation.merged, "head_scores_compared", "cmp_heads_table")
