"""Runs: browse the run store; carry runs between machines as bundles."""

import streamlit as st

from bias_lab.bundles import bundle_bytes, import_bundle
from bias_lab.errors import BiasLabError
from bias_lab.runs import run_choices, run_kinds, runs_table
from bias_lab.store import STATUSES, RunStore
from bias_lab.sweeps.status import STATES, sweep_status
from ui.shell import offer_lesson_runs, sidebar
from ui.state import forget, kept, remembered, set_value

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
    st.info("No runs yet. Long computations started from the CLI or the other pages appear here; "
            "runs made on another machine can be imported below.")
    offer_lesson_runs()
else:
    st.dataframe(frame, hide_index=True, width="stretch")
    st.download_button("Download as CSV", frame.to_csv(index=False), "runs.csv", "text/csv", on_click="ignore")
    if remembered("runs_show") not in frame["id"].tolist():
        forget("runs_show")
    labels = run_choices(store, frame["id"].tolist())
    chosen = kept(st.selectbox, "Show run", frame["id"].tolist(), key="runs_show", format_func=labels.get)
    if chosen:
        st.json(store.get(chosen).to_dict())

sweeps = [record.id for record in store.list(kind="sweep")]
if sweeps:
    st.header("Sweeps")
    st.caption("A sweep (`bias-lab sweep SWEEP.yaml`) runs a grid of jobs, each an ordinary run listed above, split "
               "into units; here are its units done, running and failed (`bias-lab sweep status RUN` shows the same).")
    if remembered("runs_sweep") not in sweeps:
        forget("runs_sweep")
    sweep_labels = run_choices(store, sweeps)
    chosen_sweep = kept(st.selectbox, "Sweep", sweeps, key="runs_sweep", format_func=sweep_labels.get)

    def show_sweep(refresh: float | None) -> None:
        status = sweep_status(chosen_sweep, store)
        if status.refresh_s != refresh:  # it started or stopped running: redraw with(out) the timer
            st.rerun()
        counts = status.counts
        for column, state in zip(st.columns(len(STATES)), STATES):
            column.metric(state.capitalize(), counts[state])
        st.progress(status.fraction_done, text=status.line())
        if refresh:
            st.caption(f"Refreshing every {refresh:g} s while the sweep runs (last update {status.updated_at}).")
        for state in ("running", "failed"):
            if counts[state]:
                st.subheader(f"{state.capitalize()} units")
                st.dataframe(status.view(state), hide_index=True, width="stretch")

    refresh_s = sweep_status(chosen_sweep, store).refresh_s
    st.fragment(show_sweep, run_every=refresh_s)(refresh_s)

st.header("Bundles")
st.caption("A bundle (.zip) carries runs — their rows and folders, with a sha256 of every file — to another "
           "machine, e.g. from a GPU server to a laptop (`bias-lab runs export` / `bias-lab runs import` do the "
           "same). Paths recorded inside a run (its data file, a model folder) stay as they were.")
bundle_left, bundle_right = st.columns(2)

with bundle_left:
    st.subheader("Export")
    incomplete = kept(st.checkbox, "Include runs that are not complete", key="runs_bundle_incomplete")
    offered = frame if incomplete or frame.empty else frame[frame["status"] == "complete"]
    ids = offered["id"].tolist()
    if not ids:
        st.caption("No runs to bundle" + ("" if incomplete else " (only complete runs, unless the box is ticked)")
                   + " among those listed above.")
    else:
        wanted = [run_id for run_id in remembered("runs_bundle", []) if run_id in ids]
        if wanted != remembered("runs_bundle", []):
            set_value("runs_bundle", wanted)  # drop runs the filters hide now
        labels = run_choices(store, ids)
        chosen_runs = kept(st.multiselect, "Runs to bundle", ids, key="runs_bundle", format_func=labels.get)
        # A prepared bundle belongs to the runs it was made from, as they were then.
        fingerprint = tuple((run_id, offered.loc[offered["id"] == run_id, "updated_at"].iloc[0])
                            for run_id in chosen_runs)
        prepared = st.session_state.get("runs_bundle_prepared")
        if prepared is not None and prepared[0] != fingerprint:
            st.session_state.pop("runs_bundle_prepared")
            prepared = None
        if prepared is not None:
            name = f"{chosen_runs[0]}.zip" if len(chosen_runs) == 1 else f"bias-lab-{len(chosen_runs)}-runs.zip"
            st.download_button("Download bundle (.zip)", prepared[1], name, "application/zip", key="runs_bundle_zip",
                               on_click="ignore")
            st.caption(prepared[2])
        elif chosen_runs and st.button("Prepare bundle", key="runs_bundle_prepare"):
            try:
                with st.spinner("Writing the bundle…"):
                    data, summary = bundle_bytes(chosen_runs, include_incomplete=incomplete, store=store)
            except (BiasLabError, OSError) as error:
                st.error(str(error))
            else:
                st.session_state["runs_bundle_prepared"] = (fingerprint, data, summary.line())
                st.rerun()

with bundle_right:
    st.subheader("Import")
    uploaded = st.file_uploader("Import a bundle (.zip)", type=["zip"], key="runs_bundle_upload")
    if uploaded is None:
        st.session_state.pop("runs_imported", None)
    else:
        done = st.session_state.get("runs_imported")
        if done is None or done[0] != uploaded.file_id:  # each upload is imported once
            try:
                with st.spinner("Checking and importing the bundle…"):
                    summary = import_bundle(uploaded, store=store)
            except BiasLabError as error:
                st.session_state["runs_imported"] = (uploaded.file_id, "error", [str(error)])
            else:
                st.session_state["runs_imported"] = (uploaded.file_id, "success" if summary.imported else "info",
                                                     summary.lines())
            st.rerun()  # the table above shows the new runs
        _, outcome, lines = st.session_state["runs_imported"]
        {"error": st.error, "success": st.success, "info": st.info}[outcome]("  \n".join(lines))
