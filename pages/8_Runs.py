"""Runs: browse the run store."""

import streamlit as st

from bias_lab.errors import BiasLabError
from bias_lab.runs import run_choices, run_kinds, runs_table
from bias_lab.store import STATUSES, RunStore
from ui.shell import sidebar
from ui.state import forget, kept, remembered

st.set_page_config(page_title="Runs · bias lab", layout="wide")
sidebar()
st.title("Runs")
st.caption("Every long computation is stored as a run; its artifacts live in its folder (`bias-lab runs list` "
           "shows the same).")

try:
    store = RunStore()
except (BiasLabError, OSError) as error:
    st.error(f"cannot open the run store: {error}")
    st.stop()

left, right = st.columns(2)
status = kept(left.selectbox, "Status", ("any",) + STATUSES, key="runs_status")
kind = kept(right.selectbox, "Kind", ["any"] + run_kinds(store), key="runs_kind")
frame = runs_table(store, status=None if status == "any" else status, kind=None if kind == "any" else kind)
if frame.empty:
    st.info("No runs yet. Long computations started from the CLI or the other pages appear here.")
else:
    st.dataframe(frame, hide_index=True, width="stretch")
    st.download_button("Download as CSV", frame.to_csv(index=False), "runs.csv", "text/csv", on_click="ignore")
    if remembered("runs_show") not in frame["id"].tolist():
        forget("runs_show")
    labels = run_choices(store, frame["id"].tolist())
    chosen = kept(st.selectbox, "Show run", frame["id"].tolist(), key="runs_show", format_func=labels.get)
    if chosen:
        st.json(store.get(chosen).to_dict())
