"""The active intervention: kept in session state, shareable as a URL query parameter and as a
JSON download, shown in the sidebar as chips that remove their edit when clicked."""

from __future__ import annotations

import streamlit as st

from bias_lab.errors import BiasLabError
from bias_lab.interventions import InterventionSpec

_KEY = "intervention_spec"


def current_spec() -> InterventionSpec:
    if _KEY not in st.session_state:
        shared = st.query_params.get("spec")
        spec = InterventionSpec()
        if shared:
            try:
                spec = InterventionSpec.from_json(shared)
            except BiasLabError as error:
                st.sidebar.error(f"the intervention in the URL is not valid: {error}")
        st.session_state[_KEY] = spec
    return st.session_state[_KEY]


def set_spec(spec: InterventionSpec) -> None:
    st.session_state[_KEY] = spec
    if spec.is_empty:
        st.query_params.pop("spec", None)
    else:
        st.query_params["spec"] = spec.to_json(separators=(",", ":"))


def sidebar_intervention(loaded) -> InterventionSpec:
    """Chips of the active edits (click to remove) and the spec as a JSON download."""
    spec = current_spec()
    sidebar = st.sidebar
    sidebar.header("Intervention")
    if spec.is_empty:
        sidebar.caption("none — the model as loaded")
        return spec
    try:
        spec.validate(loaded)
    except BiasLabError as error:
        sidebar.error(str(error))
    for index, edit in enumerate(spec.neurons):
        if sidebar.button(f"✕ neuron L{edit.layer}:{edit.neuron} ×{edit.scale:g}", key=f"chip_neuron_{index}"):
            set_spec(InterventionSpec(spec.neurons[:index] + spec.neurons[index + 1:], spec.heads, spec.position, spec.mask))
            st.rerun()
    for index, head in enumerate(spec.heads):
        if sidebar.button(f"✕ head L{head.layer}H{head.head}", key=f"chip_head_{index}"):
            set_spec(InterventionSpec(spec.neurons, spec.heads[:index] + spec.heads[index + 1:], spec.position, spec.mask))
            st.rerun()
    if spec.mask and sidebar.button(f"✕ mask {spec.mask}", key="chip_mask"):
        set_spec(InterventionSpec(spec.neurons, spec.heads, spec.position, None))
        st.rerun()
    sidebar.download_button("Download intervention (JSON)", spec.to_json(indent=2), "intervention.json",
                            "application/json")
    if sidebar.button("Clear intervention", key="chip_clear"):
        set_spec(InterventionSpec())
        st.rerun()
    return spec
