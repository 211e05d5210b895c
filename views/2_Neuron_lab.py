"""Neuron lab: scale neurons live and watch the prediction at [MASK] and the demographic gap."""

import hashlib

import pandas as pd
import streamlit as st

from bias_lab import plots
from bias_lab.assets import page_defaults
from bias_lab.errors import BiasLabError
from bias_lab.interventions import InterventionSpec, NeuronEdit
from bias_lab.neurons.live import parse_neurons, predict_mask, prediction_table, random_neuron_text
from ui import downloads
from ui.format import metric_with_change
from ui.intervention import apply_spec, current_spec
from ui.shell import sidebar
from ui.state import kept

SLIDER_LIMIT = 6  # up to this many neurons get a slider each; more get one slider and a table

st.set_page_config(page_title="Neuron lab · bias lab", layout="wide")
st.title("Neuron lab")
st.caption("Suppress (×0) or amplify (×2) FFN neurons at the mask and see the prediction change — "
           "one forward pass per change, no re-attribution.")

loaded = sidebar(need_model=True)
spec = current_spec()
if loaded.kind != "masked":
    st.error(f"the Neuron lab needs a masked language model; {loaded.source!r} is loaded as {loaded.kind!r}: "
             "choose one such as bert-base-uncased in the sidebar")
    st.stop()

DEFAULTS = page_defaults("neuron_lab")  # assets/app/defaults.json
prompt = kept(st.text_input, "Prompt (use [MASK] once)", value=DEFAULTS["prompt"], key="lab_prompt")
left, right, third = st.columns(3)
d1 = kept(left.text_input, "Demographic 1", value=DEFAULTS["pair"][0], key="lab_d1").strip()
d2 = kept(right.text_input, "Demographic 2", value=DEFAULTS["pair"][1], key="lab_d2").strip()
top_k = int(kept(third.number_input, "Top-k", min_value=1, max_value=50, value=10, key="lab_top_k"))

if "lab_pending_neurons" in st.session_state:
    st.session_state["lab_neurons"] = st.session_state.pop("lab_pending_neurons")
typed = kept(st.text_input, "Neurons (layer:neuron, comma-separated) — or send them here from the Bias neurons page",
             ", ".join(f"{e.layer}:{e.neuron}" for e in spec.neurons), key="lab_neurons")
if st.button("Random neurons (same count)", key="lab_random",
             help="the same number of neurons drawn at random: the baseline a bias neuron must beat"):
    draw = int(st.session_state.get("lab_draw", 0))
    st.session_state["lab_draw"] = draw + 1
    st.session_state["lab_pending_neurons"] = random_neuron_text(loaded, typed, draw)
    st.rerun()

try:
    chosen = parse_neurons(typed)
    chosen.validate(loaded)
except BiasLabError as error:
    st.error(str(error))
    st.stop()
active_scales = {(e.layer, e.neuron): e.scale for e in spec.neurons}


def neuron_scales() -> list[NeuronEdit]:
    """A slider per neuron for a few; for many, one slider for all and a table of overrides."""
    if len(chosen.neurons) <= SLIDER_LIMIT:
        return [NeuronEdit(e.layer, e.neuron, st.slider(
            f"L{e.layer}:{e.neuron} scale", 0.0, 3.0, float(active_scales.get((e.layer, e.neuron), 0.0)), 0.1,
            key=f"lab_scale_{e.layer}_{e.neuron}")) for e in chosen.neurons]
    common = st.slider(f"Scale of all {len(chosen.neurons)} neurons", 0.0, 3.0,
                       float(active_scales.get((chosen.neurons[0].layer, chosen.neurons[0].neuron), 0.0)), 0.1,
                       key="lab_scale_all")
    table = pd.DataFrame({"layer": [e.layer for e in chosen.neurons], "neuron": [e.neuron for e in chosen.neurons],
                          "override": [None] * len(chosen.neurons)}).astype({"override": "float64"})
    with st.expander("Per-neuron overrides (blank = the scale of all)"):
        # The table's state belongs to this list of neurons: a new list starts without overrides.
        listing = hashlib.sha1(typed.encode()).hexdigest()[:10]
        edited = st.data_editor(table, key=f"lab_overrides_{listing}", hide_index=True, disabled=["layer", "neuron"],
                                column_config={"override": st.column_config.NumberColumn(
                                    "scale", min_value=0.0, max_value=3.0, step=0.1)})
    return [NeuronEdit(int(row.layer), int(row.neuron), common if pd.isna(row.override) else float(row.override))
            for row in edited.itertuples()]


@st.fragment
def live_panel() -> None:
    """Only this part reruns when a scale moves: one forward pass, the sidebar untouched."""
    edits = neuron_scales()
    live = InterventionSpec(tuple(edits), spec.heads, "mask", spec.mask)
    try:
        # The unmodified prediction changes only with the prompt, so a slider move costs one forward pass.
        key = (loaded.source, str(loaded.device), prompt, d1, d2, top_k)
        if st.session_state.get("lab_before_key") != key:
            st.session_state["lab_before"] = predict_mask(loaded, prompt, d1, d2, None, top_k=top_k)
            st.session_state["lab_before_key"] = key
        before = st.session_state["lab_before"]
        after = predict_mask(loaded, prompt, d1, d2, live, top_k=top_k)
    except BiasLabError as error:
        st.error(str(error))
        return
    columns = st.columns(3)
    metric_with_change(columns[0], f"P({d1})", after.p_d1, before.p_d1)
    metric_with_change(columns[1], f"P({d2})", after.p_d2, before.p_d2)
    metric_with_change(columns[2], "gap |P(d1) − P(d2)|", after.gap, before.gap, lower_is_better=True)
    shown = ", ".join(f"L{e.layer}:{e.neuron} ×{e.scale:g}" for e in edits[:SLIDER_LIMIT])
    parts = ([f"{shown}{' …' if len(edits) > SLIDER_LIMIT else ''} at the mask"] if edits else []) \
        + ([f"{len(spec.heads)} heads ablated"] if spec.heads else []) + (["the mask on"] if spec.mask else [])
    st.caption("after = the model with " + ", ".join(parts) if parts else
               "after = the model as loaded: type neurons above (or send them from the Bias neurons page)")
    tables = st.columns(2)
    for column, title, prediction, name in ((tables[0], "Before", before, "before"), (tables[1], "After", after, "after")):
        with column:
            st.subheader(title)
            downloads.table(prediction.top, f"predictions_{name}", f"lab_{name}", column_config={
                "probability": st.column_config.NumberColumn("probability", format="%.3e")})
    downloads.figure(plots.gap_before_after(before.gap, after.gap), "gap_before_after", "lab_gap")
    with st.expander("P(d1), P(d2) and the gap at full precision"):
        downloads.table(prediction_table(before, after), "gap_before_after", "lab_gap_numbers")
    if st.button("Make these edits the active intervention", key="lab_apply"):
        apply_spec(InterventionSpec(tuple(edits), spec.heads, "mask", spec.mask),
                   f"{len(edits)} neuron edit{'s' if len(edits) != 1 else ''} are the active intervention "
                   "(see the sidebar): every page now computes with them.")


live_panel()
