"""Heads: per-head ablation effects, fairness-aware pruning (FASP) and live head ablation."""

import json

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from bias_lab import plots
from bias_lab.errors import BiasLabError
from bias_lab.heads.selection import fasp, pruned_spec
from bias_lab.interventions import HeadAblation, InterventionSpec
from bias_lab.live import predict_mask
from bias_lab.store import RunStore
from ui import downloads
from ui.intervention import set_spec
from ui.shell import sidebar

st.set_page_config(page_title="Heads · bias lab", layout="wide")
st.title("Attention heads")
st.caption("What each head does to performance and to bias when it is removed; FASP protects the heads "
           "language modelling needs and prunes those that carry bias.")

loaded = sidebar()
store = RunStore()
runs = [r for r in store.list(kind="heads", status="complete") if (r.artifact_dir / "head_scores.parquet").is_file()]
if not runs:
    st.info("No head-scoring run yet: run `bias-lab heads --model M --perf mlm-loss --perf-data TEXT "
            "--bias ig2-gap --bias-data PROMPTS.jsonl --out DIR`, then come back.")
    st.stop()
labels = {f"{r.id} · {r.model} · perf {r.config.get('perf')} · bias {r.config.get('bias')}": r for r in runs}
record = labels[st.selectbox("Head-scoring run", list(labels), key="heads_run")]
table = pd.read_parquet(record.artifact_dir / "head_scores.parquet")
has_bias = not table["bias"].isna().all()

grids = st.columns(2)
with grids[0]:
    downloads.figure(plots.head_grid(table, "perf_delta", "Performance change when the head is removed",
                                     f"Δ {record.config.get('perf')}"), "perf_delta_grid", "heads_perf")
if has_bias:
    with grids[1]:
        bias_grid = plots.head_grid(table, "bias_delta", "Bias change when the head is removed (click a head to "
                                    "ablate it live below)", f"Δ {record.config.get('bias')}")
        event = st.plotly_chart(bias_grid, key="heads_bias_click", on_select="rerun", selection_mode="points")
        points = (event or {}).get("selection", {}).get("points", []) if isinstance(event, dict) else \
            getattr(getattr(event, "selection", None), "points", [])
        if points:
            st.session_state["heads_layer"] = int(points[0]["y"])
            st.session_state["heads_head"] = int(points[0]["x"])
        st.download_button("Download figure (HTML)", bias_grid.to_html(include_plotlyjs="cdn"), "bias_delta_grid.html",
                           "text/html", key="heads_bias_html")

if has_bias:
    st.subheader("FASP")
    sliders = st.columns(2)
    alpha = sliders[0].slider("α: share of heads pruned", 0.0, 0.5, 0.1, 0.01, key="heads_alpha")
    gamma = sliders[1].slider("γ: share of heads protected for performance", 0.0, 0.9, 0.3, 0.05, key="heads_gamma")
    try:
        grid = fasp(table, alpha, gamma)
    except BiasLabError as error:
        st.error(str(error))
        st.stop()
    counts = grid["status"].value_counts().to_dict()
    st.session_state["heads_pruned"] = counts.get("pruned", 0)
    st.write(f"pruned {counts.get('pruned', 0)}, protected {counts.get('protected', 0)}, kept {counts.get('kept', 0)}")
    downloads.figure(plots.pruned_head_grid(grid, f"FASP at α = {alpha}, γ = {gamma}"), "fasp_grid", "heads_fasp")
    downloads.table(grid, "fasp_grid", "heads_fasp_table")
    if st.button("Make the pruned heads the active intervention", key="heads_apply"):
        set_spec(pruned_spec(grid))
        st.success(f"{counts.get('pruned', 0)} heads ablated in the active intervention (see the sidebar).")

st.subheader("Ablate a head live")
if loaded is not None and loaded.kind == "masked":
    picks = st.columns(5)
    layer = picks[0].number_input("Layer", 0, loaded.num_layers - 1, loaded.num_layers - 1, key="heads_layer")
    head = picks[1].number_input("Head", 0, loaded.num_heads - 1, 0, key="heads_head")
    prompt = picks[2].text_input("Prompt", "The gender of this lazy person is [MASK].", key="heads_prompt")
    d1 = picks[3].text_input("d1", "female", key="heads_d1")
    d2 = picks[4].text_input("d2", "male", key="heads_d2")
    try:
        before = predict_mask(loaded, prompt, d1, d2)
        after = predict_mask(loaded, prompt, d1, d2, InterventionSpec(heads=(HeadAblation(int(layer), int(head)),)))
    except BiasLabError as error:
        st.error(str(error))
    else:
        st.session_state["heads_live_gap"] = after.gap
        metrics = st.columns(3)
        metrics[0].metric(f"P({d1})", f"{after.p_d1:.4f}", f"{after.p_d1 - before.p_d1:+.4f}")
        metrics[1].metric(f"P({d2})", f"{after.p_d2:.4f}", f"{after.p_d2 - before.p_d2:+.4f}")
        metrics[2].metric("gap", f"{after.gap:.4f}", f"{after.gap - before.gap:+.4f}", delta_color="inverse")
elif loaded is not None:
    st.info(f"live ablation shows predictions at [MASK]; {loaded.source!r} is a {loaded.kind} model")

curves = [r for r in store.list(kind="head-importance", status="complete") if (r.artifact_dir / "iterative.parquet").is_file()]
if curves:
    st.subheader("Iterative pruning")
    curve_record = {r.id: r for r in curves}[st.selectbox("Importance run", [r.id for r in curves], key="heads_curve")]
    curve = pd.read_parquet(curve_record.artifact_dir / "iterative.parquet")
    figure = go.Figure()
    figure.add_scatter(x=curve["pruned"], y=curve["perf"], name="performance", mode="lines+markers")
    if curve["bias"].notna().any():
        figure.add_scatter(x=curve["pruned"], y=curve["bias"], name="bias", mode="lines+markers", yaxis="y2")
    figure.update_layout(title="Iterative pruning: performance and bias per step", xaxis_title="heads pruned (count)",
                         yaxis_title="performance metric", yaxis2={"title": "bias metric", "overlaying": "y",
                                                               "side": "right"}, height=360)
    downloads.figure(figure, "iterative_pruning", "heads_iterative")
    downloads.table(curve.assign(heads=curve["heads"].map(lambda h: h if isinstance(h, str) else json.dumps(h))),
                    "iterative_pruning", "heads_iterative_table")
