"""The sidebar every page shows: the model picker, the active intervention, and the run store."""

from __future__ import annotations

import streamlit as st

from bias_lab.store import RunStore
from ui.intervention import current_spec, show_flash, sidebar_intervention, sync_spec_url
from ui.session import sidebar_model


def sidebar(*, need_model: bool = False):
    """Draw the shared sidebar; return the loaded model (None when it could not be loaded).

    With ``need_model`` the page stops after explaining why there is no model."""
    loaded = sidebar_model()
    if loaded is not None:
        sidebar_intervention(loaded)
    else:
        current_spec()  # a spec shared in the URL is kept even while no model loads
        sync_spec_url()
    show_flash()
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


def link_to(page: str, label: str) -> None:
    """A link to another page; when the page runs on its own (tests, a single script) it is a hint."""
    from streamlit.errors import StreamlitAPIException

    try:
        st.page_link(page, label=label)
    except StreamlitAPIException:
        st.caption(f"{label}: choose it in the sidebar's page list")


def offer_lesson_runs() -> None:
    """On an empty store: the Lesson's example runs are one click away (its step 6 creates them)."""
    from streamlit.errors import StreamlitAPIException

    label = "Create the lesson's example runs (Lesson, step 6) →"
    try:
        st.page_link("views/0_Lesson.py", label=label, query_params={"step": "6"})
    except StreamlitAPIException:
        st.caption(f"{label}: open the Lesson in the sidebar's page list")


def choose_stored_run(result_class, label: str, key: str, empty_hint: str, store=None, *,
                      prefer_model: str | None = None):
    """A select box over the finished runs of one kind (newest first); returns the chosen run loaded
    through its result class. First shown, it selects the newest run of ``prefer_model`` (the model
    in the sidebar), else the newest run; after that it keeps the user's choice. With no such run, or one that cannot be read, the
    page says so and stops."""
    from bias_lab.errors import BiasLabError
    from bias_lab.runs import run_label

    from .state import kept

    runs = result_class.finished_runs(store)
    if not runs:
        st.info(empty_hint)
        st.stop()
    labels = {run_label(r, created=True): r for r in runs}
    of_model = [index for index, run in enumerate(runs) if prefer_model and run.model == prefer_model]
    chosen = labels[kept(st.selectbox, label, list(labels), key=key, index=of_model[0] if of_model else 0)]
    try:
        return result_class.load(chosen.artifact_dir)
    except BiasLabError as error:
        st.error(str(error))
        st.stop()
