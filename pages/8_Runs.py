"""Runs: browse the run store."""

import streamlit as st

from bias_lab.errors import BiasLabError
from bias_lab.store import STATUSES, RunStore
from ui.shell import sidebar

st.set_page_config(page_title="Runs · bias lab", layout="wide")
sidebar()
st.title("Runs")
st.caption("Every long computation is stored as a run; its artifacts live in its folder.")

try:
    store = RunStore()
except (BiasLabError, OSError) as error:
    st.error(f"cannot open the run store: {error}")
    st.stop()

left, right = st.columns(2)
status = left.selectbox("Status", ("any",) + STATUSES)
kind = right.text_input("Kind", placeholder="any")
frame = store.frame(status=None if status == "any" else status, kind=kind.strip() or None)
if frame.empty:
    st.info("No runs yet. Long computations started from the CLI or the other pages appear here.")
else:
    st.dataframe(frame, hide_index=True, width="stretch")
    st.download_button("Download as CSV", frame.to_csv(index=False), "runs.csv", "text/csv")
    chosen = st.selectbox("Show run", frame["id"].tolist())
    if chosen:
        st.json(store.get(chosen).to_dict())
