"""Runs: browse the run store."""

import streamlit as st

from bias_lab.errors import BiasLabError
from bias_lab.run_labels import describe, describe_run
from bias_lab.store import STATUSES, RunStore
from ui.shell import sidebar
from ui.state import forget, kept, remembered

st.set_page_config(page_title="Runs · bias lab", layout="wide")
sidebar()
st.title("Runs")
st.caption("Every long computation is stored as a run; its artifacts live in its folder.")

try:
    store = RunStore()
except (BiasLabError, OSError) as error:
    st.error(f"cannot open the run store: {error}")
    st.stop()

kinds = sorted({record.kind for record in store.list()})
left, right = st.columns(2)
status = kept(left.selectbox, "Status", ("any",) + STATUSES, key="runs_status")
kind = kept(right.selectbox, "Kind", ["any"] + kinds, key="runs_kind")
frame = store.frame(status=None if status == "any" else status, kind=None if kind == "any" else kind)
if frame.empty:
    st.info("No runs yet. Long computations started from the CLI or the other pages appear here.")
else:
    records = {record.id: record for record in store.list()}
    frame.insert(2, "what", frame["id"].map(lambda run_id: describe(records[run_id]) if run_id in records else ""))
    st.dataframe(frame, hide_index=True, width="stretch")
    st.download_button("Download as CSV", frame.to_csv(index=False), "runs.csv", "text/csv", on_click="ignore")
    if remembered("runs_show") not in frame["id"].tolist():
        forget("runs_show")
    chosen = kept(st.selectbox, "Show run", frame["id"].tolist(), key="runs_show",
                  format_func=lambda run_id: f"{run_id} · {describe_run(records[run_id])}" if run_id in records else run_id)
    if chosen:
        st.json(store.get(chosen).to_dict())
