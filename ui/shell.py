"""The sidebar every page shows: the model picker, the active intervention, and the run store."""

from __future__ import annotations

import streamlit as st

from bias_lab.store import RunStore
from ui.intervention import sidebar_intervention
from ui.session import sidebar_model


def sidebar(*, need_model: bool = False):
    """Draw the shared sidebar; return the loaded model (None when it could not be loaded).

    With ``need_model`` the page stops after explaining why there is no model."""
    loaded = sidebar_model()
    if loaded is not None:
        sidebar_intervention(loaded)
    try:
        store = RunStore()
        runs = store.list()
        running = sum(r.status == "running" for r in runs)
        st.sidebar.header("Run store")
        st.sidebar.caption(f"{len(runs)} runs ({running} running) in {store.home} — see the Runs page")
    except Exception as error:  # an unreadable store must not take the page down
        st.sidebar.error(f"cannot read the run store: {error}")
    if need_model and loaded is None:
        st.stop()
    return loaded
