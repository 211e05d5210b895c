"""Heads: per-head ablation effects, fairness-aware pruning (FASP) and live head ablation."""

import streamlit as st

from bias_lab import plots
from bias_lab.assets import page_defaults
from bias_lab.errors import BiasLabError
from bias_lab.heads.analyses import curve_table, fits_model, grid_shape, status_counts
from bias_lab.heads.runs import HeadImportanceResult, HeadScoresResult
from bias_lab.heads.selection import fasp, pruned_spec
from bias_lab.interventions import HeadAblation, InterventionSpec
from bias_lab.neurons.live import predict_mask, prediction_table
from bias_lab.runs import run_label
from bias_lab.store import RunStore
from ui import downloads
from ui.format import metric_with_change
from ui.grid_click import clickable_cells, clicked_head
from ui.intervention import apply_spec, current_spec
from ui.shell import choose_stored_run, sidebar
from ui.state import kept

st.set_page_config(page_title="Heads · bias lab", layout="wide")
st.title("Attention heads")
st.caption("What each head does to performance and to bias when it is removed; FASP protects the heads "
           "language modelling needs and prunes those that carry bias.")

loaded = sidebar()
store = RunStore()
scores = choose_stored_run(HeadScoresResult, "Head-scoring run", "heads_run",
                           "No head-scoring run yet: run `bias-lab heads score --model M --perf mlm-loss --perf-data "
                           "TEXT --bias ig2-gap --bias-data PROMPTS.jsonl --out DIR`, then come back.", store,
                           prefer_model=loaded.source if loaded is not None else None)
table, has_bias, has_perf = scores.table, scores.has_bias, scores.has_perf
# Axes and colour bars name the metrics as the metric table does (e.g. 'toxicity gap Σ|axis − group|').
perf_name = plots.axis_name(scores.config.get("perf"), "performance")
bias_name = plots.axis_name(scores.config.get("bias"), "bias")
fits = fits_model(table, loaded)
if loaded is not None and not fits and not table.empty:
    run_layers, run_heads = grid_shape(table)
    st.warning(f"This run scored the heads of a model of {run_layers} layers × {run_heads} heads; the loaded model "
               f"{loaded.source} has {loaded.num_layers} layers × {loaded.num_heads} heads. The grids are the run's; "
               "the live ablation "
               "below acts on the loaded model, and FASP's heads cannot become its intervention — load the run's "
               "model in the sidebar, or pick a run of this model.")
elif fits and loaded.kind == "masked":
    st.caption("Click a head in a grid to ablate it live below.")
else:
    st.caption("The grids come from the stored run; live ablation needs a masked language model in the sidebar.")

grids = st.columns(2)
clicked = None
for column, metric, name, present in ((grids[0], "perf", perf_name, has_perf), (grids[1], "bias", bias_name, has_bias)):
    if not present:
        column.info(f"This run has no {metric} scores (scored "
                    + ("with --perf none)." if metric == "perf" else "without --bias)."))
        continue
    with column:
        grid = plots.head_grid(table, f"{metric}_delta", f"Change in {name} when the head is removed", f"Δ {name}")
        event = downloads.figure(clickable_cells(grid, table, f"{metric}_delta", f"Δ {name}"), f"{metric}_delta_grid",
                                 f"heads_{metric}", selectable=True)
        clicked = clicked_head(event) or clicked
if clicked is not None and clicked != st.session_state.get("heads_last_click"):
    # A new click picks the head; an unchanged selection must not undo what was typed since.
    st.session_state["heads_last_click"] = clicked
    st.session_state["heads_layer"], st.session_state["heads_head"] = clicked

if has_bias and not has_perf:
    st.info("FASP protects the heads performance needs, so it needs a run with performance scores.")
elif has_bias:
    st.subheader("FASP")
    sliders = st.columns(2)
    alpha = kept(sliders[0].slider, "α: share of heads pruned", 0.0, 0.5, 0.1, 0.01, key="heads_alpha")
    gamma = kept(sliders[1].slider, "γ: share of heads protected for performance", 0.0, 0.9, 0.3, 0.05,
                 key="heads_gamma")
    try:
        grid = fasp(table, alpha, gamma)
    except BiasLabError as error:
        st.error(str(error))
        st.stop()
    counts = status_counts(grid)
    st.write(f"pruned {counts['pruned']}, protected {counts['protected']}, kept {counts['kept']}")
    downloads.figure(plots.pruned_head_grid(grid, f"FASP at α = {alpha}, γ = {gamma}"), "fasp_grid", "heads_fasp")
    downloads.table(grid, "fasp_grid", "heads_fasp_table")
    if not counts["pruned"]:
        st.caption("No head is pruned at this α: raise α to choose heads for the intervention.")
    if st.button("Make the pruned heads the active intervention", key="heads_apply",
                 disabled=not counts["pruned"] or not fits):
        spec = current_spec()
        pruned = pruned_spec(grid)
        apply_spec(InterventionSpec(spec.neurons, pruned.heads, spec.position, spec.mask),
                   f"{counts['pruned']} heads ablated in the active intervention (see the sidebar).")

st.subheader("Ablate a head live")
if loaded is not None and loaded.kind == "masked":
    picks = st.columns(5)
    for key, size in (("heads_layer", loaded.num_layers), ("heads_head", loaded.num_heads)):
        if not 0 <= int(st.session_state.get(key, 0)) < size:
            st.session_state[key] = size - 1  # a click on a grid of another model's shape
    st.session_state.setdefault("heads_layer", loaded.num_layers - 1)  # the state is the widget's only default
    st.session_state.setdefault("heads_head", 0)
    layer = picks[0].number_input("Layer", 0, loaded.num_layers - 1, key="heads_layer")
    head = picks[1].number_input("Head", 0, loaded.num_heads - 1, key="heads_head")
    defaults = page_defaults("heads")  # assets/app/defaults.json
    prompt = kept(picks[2].text_input, "Prompt", value=defaults["prompt"], key="heads_prompt")
    d1 = kept(picks[3].text_input, "d1", value=defaults["pair"][0], key="heads_d1").strip()
    d2 = kept(picks[4].text_input, "d2", value=defaults["pair"][1], key="heads_d2").strip()
    try:
        before = predict_mask(loaded, prompt, d1, d2)
        after = predict_mask(loaded, prompt, d1, d2, InterventionSpec(heads=(HeadAblation(int(layer), int(head)),)))
    except BiasLabError as error:
        st.error(str(error))
    else:
        st.caption(f"head L{int(layer)}H{int(head)} ablated at every position; before = the model as loaded")
        metrics = st.columns(3)
        metric_with_change(metrics[0], f"P({d1})", after.p_d1, before.p_d1)
        metric_with_change(metrics[1], f"P({d2})", after.p_d2, before.p_d2)
        metric_with_change(metrics[2], "gap |P(d1) − P(d2)|", after.gap, before.gap, lower_is_better=True)
        with st.expander("P(d1), P(d2) and the gap at full precision"):
            downloads.table(prediction_table(before, after), "head_ablation", "heads_live_numbers")
elif loaded is not None:
    st.info(f"live ablation shows predictions at [MASK]; {loaded.source!r} is loaded as {loaded.kind!r}, "
            "not as a masked language model")

curves = HeadImportanceResult.curve_runs(store)
if curves:
    st.subheader("Iterative pruning")
    curve_labels = {run_label(r): r for r in curves}
    curve_record = curve_labels[kept(st.selectbox, "Importance run", list(curve_labels), key="heads_curve")]
    try:
        curve = HeadImportanceResult.load(curve_record.artifact_dir).curve
    except BiasLabError as error:
        st.error(str(error))
        st.stop()
    downloads.figure(plots.iterative_pruning_curve(curve, perf_label=plots.axis_name(curve_record.config.get("perf"),
                                                                                     "performance"),
                                                   bias_label=plots.axis_name(curve_record.config.get("bias"), "bias")),
                     "iterative_pruning", "heads_iterative")
    downloads.table(curve_table(curve), "iterative_pruning", "heads_iterative_table")
