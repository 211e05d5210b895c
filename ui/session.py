"""The sidebar model picker and the cached model, shared by every page."""

from __future__ import annotations

import streamlit as st

from bias_lab.device import DEVICE_CHOICES, device_description
from bias_lab.errors import BiasLabError
from bias_lab.models import LoadedModel, default_model, load_model


@st.cache_resource(show_spinner="Loading model…", max_entries=2)
def cached_model(source: str, device: str, dtype: str) -> LoadedModel:
    return load_model(source, device=device, dtype=dtype)


def _format_bytes(count: int | None) -> str:
    return "—" if count is None else f"{count / 2**30:.1f} GiB"


def sidebar_model() -> LoadedModel | None:
    """Draw the model picker; return the loaded model, or None after explaining why it failed."""
    sidebar = st.sidebar
    sidebar.header("Model")
    if "pending_model_source" in st.session_state:
        # A folder typed into the fallback box becomes the model for every page.
        st.session_state["model_source"] = st.session_state.pop("pending_model_source")
    if "model_source" not in st.session_state:
        st.session_state["model_source"] = default_model()
    source = sidebar.text_input("Hub id or local folder", key="model_source",
                                help="e.g. bert-base-uncased, roberta-base, gpt2, or /path/to/saved/model")
    device = sidebar.selectbox("Device", DEVICE_CHOICES, key="device")
    dtype = sidebar.selectbox("Precision", ("float32", "bfloat16", "float16"), key="dtype")
    try:
        loaded = cached_model(source.strip(), device, dtype)
    except BiasLabError as error:
        st.error(str(error))
        folder = st.text_input("Load from a local folder instead", key="local_model_folder",
                               placeholder="/path/to/bert-base-uncased (a folder with config.json)")
        if folder.strip():
            try:
                loaded = cached_model(folder.strip(), device, dtype)
            except BiasLabError as folder_error:
                st.error(str(folder_error))
                return None
            st.session_state["pending_model_source"] = folder.strip()
            st.rerun()
        return None
    facts = device_description(loaded.device)
    sidebar.caption(
        f"{loaded.family} · {loaded.kind} · {loaded.num_layers} layers × {loaded.num_heads} heads · "
        f"{loaded.memory_bytes / 2**20:.0f} MB on {facts['name']}"
        + (f" ({_format_bytes(facts['free_memory_bytes'])} free)" if facts["free_memory_bytes"] else "")
    )
    return loaded
