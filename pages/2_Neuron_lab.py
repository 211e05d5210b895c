"""Neuron lab: scale neurons live and watch the prediction at [MASK] and the demographic gap."""

import plotly.graph_objects as go
import streamlit as st

from bias_lab.errors import BiasLabError
from bias_lab.interventions import InterventionSpec, NeuronEdit
from bias_lab.live import parse_neurons, predict_mask
from ui import downloads
from ui.intervention import current_spec, set_spec
from ui.shell import sidebar

st.set_page_config(page_title="Neuron lab · bias lab", layout="wide")
st.title("Neuron lab")
st.caption("Suppress (×0) or amplify (×2) FFN neurons at the mask and see the prediction change — "
           "one forward pass per change, no re-attribution.")

loaded = sidebar(need_model=True)
spec = current_spec()
if loaded.kind != "masked":
    st.error(f"the Neuron lab needs a masked language model; {loaded.source!r} is loaded as {loaded.kind!r}")
    st.stop()

prompt = st.text_input("Prompt (use [MASK] once)", "The gender of this lazy person is [MASK].", key="lab_prompt")
left, right, third = st.columns(3)
d1 = left.text_input("Demographic 1", "female", key="lab_d1")
d2 = right.text_input("Demographic 2", "male", key="lab_d2")
top_k = third.number_input("Top-k", min_value=1, max_value=50, value=10, key="lab_top_k")

default_neurons = ", ".join(f"{e.layer}:{e.neuron}" for e in spec.neurons)
if "lab_pending_neurons" in st.session_state:
    st.session_state["lab_neurons"] = st.session_state.pop("lab_pending_neurons")
typed = st.text_input("Neurons (layer:neuron, comma-separated) — or send them here from the Bias neurons page",
                      default_neurons, key="lab_neurons")
if st.button("Random neurons (same count)", key="lab_random"):
    count = max(1, len([p for p in typed.split(",") if p.strip()]))
    import torch

    generator = torch.Generator().manual_seed(int(st.session_state.get("lab_draw", 0)))
    st.session_state["lab_draw"] = int(st.session_state.get("lab_draw", 0)) + 1
    flat = torch.randperm(loaded.num_layers * loaded.ffn_width, generator=generator)[:count].tolist()
    st.session_state["lab_pending_neurons"] = ", ".join(f"{i // loaded.ffn_width}:{i % loaded.ffn_width}" for i in flat)
    st.rerun()

try:
    chosen = parse_neurons(typed)
    chosen.validate(loaded)
except BiasLabError as error:
    st.error(str(error))
    st.stop()

scales = {(e.layer, e.neuron): e.scale for e in spec.neurons}
edits = []
for edit in chosen.neurons:
    value = st.slider(f"L{edit.layer}:{edit.neuron} scale", 0.0, 3.0, float(scales.get((edit.layer, edit.neuron), 0.0)),
                      0.1, key=f"lab_scale_{edit.layer}_{edit.neuron}")
    edits.append(NeuronEdit(edit.layer, edit.neuron, value))
live = InterventionSpec(tuple(edits), spec.heads, "mask", spec.mask)

try:
    # The unmodified prediction changes only with the prompt, so a slider move costs one forward pass.
    key = (loaded.source, str(loaded.device), prompt, d1.strip(), d2.strip(), int(top_k))
    if st.session_state.get("lab_before_key") != key:
        st.session_state["lab_before"] = predict_mask(loaded, prompt, d1.strip(), d2.strip(), None, top_k=int(top_k))
        st.session_state["lab_before_key"] = key
    before = st.session_state["lab_before"]
    after = predict_mask(loaded, prompt, d1.strip(), d2.strip(), live, top_k=int(top_k))
except BiasLabError as error:
    st.error(str(error))
    st.stop()

columns = st.columns(3)
columns[0].metric(f"P({d1})", f"{after.p_d1:.4f}", f"{after.p_d1 - before.p_d1:+.4f}")
columns[1].metric(f"P({d2})", f"{after.p_d2:.4f}", f"{after.p_d2 - before.p_d2:+.4f}")
columns[2].metric("gap |P(d1) − P(d2)|", f"{after.gap:.4f}", f"{after.gap - before.gap:+.4f}", delta_color="inverse")
st.session_state["lab_after_gap"] = after.gap

figure = go.Figure(go.Bar(x=["before", "after"], y=[before.gap, after.gap], marker_color=["#888", "#d62728"]))
figure.update_layout(title="Demographic gap at the mask, before and after", yaxis_title="|P(d1) − P(d2)| (probability)",
                     xaxis_title="model", height=320)
downloads.figure(figure, "gap_before_after", "lab_gap")
tables = st.columns(2)
with tables[0]:
    st.subheader("Before")
    downloads.table(before.top, "predictions_before", "lab_before")
with tables[1]:
    st.subheader("After")
    downloads.table(after.top, "predictions_after", "lab_after")
if st.button("Make these edits the active intervention", key="lab_apply"):
    set_spec(InterventionSpec(tuple(edits), spec.heads, "mask", spec.mask))
    st.rerun()
