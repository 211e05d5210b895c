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
    sync_spec_url()


def sync_spec_url() -> None:
    """The active spec in the URL (``?spec=``): a page change clears the URL, so every page writes it."""
    spec = st.session_state.get(_KEY)
    if spec is None or spec.is_empty:
        if "spec" in st.query_params:
            del st.query_params["spec"]
        return
    shared = spec.to_json(separators=(",", ":"))
    if st.query_params.get("spec") != shared:
        st.query_params["spec"] = shared


def apply_spec(spec: InterventionSpec, message: str) -> None:
    """Make ``spec`` the active intervention and redraw the page, so the sidebar shows it at once;
    ``message`` is shown as a toast after the redraw."""
    set_spec(spec)
    st.session_state["flash_message"] = message
    st.rerun()


def show_flash() -> None:
    """The confirmation of the last :func:`apply_spec`, as a toast: the buttons that apply an edit sit
    low on long pages, where a message at the top would be out of sight, and a message inserted above
    the page would shift every element under the pointer while the redraw is still running."""
    message = st.session_state.pop("flash_message", None)
    if message:
        st.toast(message, icon=":material/check_circle:", duration="long")


_WHERE = {"mask": "at the mask", "last": "at the last token", "all": "at every token"}


def describe(spec: InterventionSpec) -> str:
    """One line for the active spec, e.g. '66 neurons ×0 at the mask · 3 heads ablated · mask run/mask.safetensors'."""
    if spec.is_empty:
        return "none — the model as loaded"
    parts = []
    if spec.neurons:
        scales = " ".join(sorted({f"×{e.scale:g}" for e in spec.neurons}))
        parts.append(f"{_count(len(spec.neurons), 'neuron')} {scales} {_WHERE[spec.position]}")
    if spec.heads:
        parts.append(f"{_count(len(spec.heads), 'head')} ablated")
    if spec.mask:
        parts.append(f"mask {'/'.join(spec.mask.replace(chr(92), '/').split('/')[-2:])}")
    return " · ".join(parts)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'s' if number != 1 else ''}"


_CHIP_LIMIT = 6  # more edits than this get one summary chip instead of a chip each


def sidebar_intervention(loaded) -> InterventionSpec:
    """Chips of the active edits (click to remove) and the spec as a JSON download."""
    spec = current_spec()
    sync_spec_url()
    sidebar = st.sidebar
    sidebar.header("Intervention")
    sidebar.caption(describe(spec))
    if spec.is_empty:
        return spec
    try:
        spec.validate(loaded)
    except BiasLabError as error:
        sidebar.error(str(error))
    if len(spec.neurons) > _CHIP_LIMIT:
        scales = " ".join(sorted({f"×{e.scale:g}" for e in spec.neurons}))
        if sidebar.button(f"✕ {len(spec.neurons)} neurons {scales}", key="chip_neurons_all",
                          help="remove all neuron edits"):
            set_spec(InterventionSpec((), spec.heads, spec.position, spec.mask))
            st.rerun()
    else:
        for index, edit in enumerate(spec.neurons):
            if sidebar.button(f"✕ neuron L{edit.layer}:{edit.neuron} ×{edit.scale:g}", key=f"chip_neuron_{index}"):
                set_spec(InterventionSpec(spec.neurons[:index] + spec.neurons[index + 1:], spec.heads, spec.position,
                                          spec.mask))
                st.rerun()
    if len(spec.heads) > _CHIP_LIMIT:
        if sidebar.button(f"✕ {len(spec.heads)} heads ablated", key="chip_heads_all", help="remove all head ablations"):
            set_spec(InterventionSpec(spec.neurons, (), spec.position, spec.mask))
            st.rerun()
    else:
        for index, head in enumerate(spec.heads):
            if sidebar.button(f"✕ head L{head.layer}H{head.head}", key=f"chip_head_{index}"):
                set_spec(InterventionSpec(spec.neurons, spec.heads[:index] + spec.heads[index + 1:], spec.position,
                                          spec.mask))
                st.rerun()
    if spec.mask and sidebar.button(f"✕ mask {spec.mask}", key="chip_mask"):
        set_spec(InterventionSpec(spec.neurons, spec.heads, spec.position, None))
        st.rerun()
    sidebar.download_button("Download intervention (JSON)", spec.to_json(indent=2), "intervention.json",
                            "application/json", on_click="ignore")
    if sidebar.button("Clear intervention", key="chip_clear"):
        set_spec(InterventionSpec())
        st.rerun()
    return spec
