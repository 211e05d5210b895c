"""Presenter mode: for showing the dashboard to a room — larger type, the sidebar collapsed and
fewer controls (advanced settings folded into an expander).

The mode lives under one plain session-state key (``presenter_mode``), so it is remembered across
pages and reruns. Any page turns it on with one call after ``st.set_page_config``::

    from ui import presenter
    presenter.presenter()          # a toggle in the sidebar + the mode applied to this page

or, to place the toggle itself (the Lesson page puts it above the lesson)::

    presenter.apply()              # larger type, sidebar collapsed when on
    presenter.toggle(column)       # the switch, drawn where the page wants it

and ``with presenter.settings():`` around advanced inputs shows them inline normally and in a
closed "Settings" expander in presenter mode.

The sidebar is collapsed through ``st.set_page_config(initial_sidebar_state=…)``, which Streamlit
applies whenever the value changes during a session (a sidebar the person opened or closed by
hand stays as they left it); it stays reachable through its arrow, so nothing is hidden for good.
"""

from __future__ import annotations

import streamlit as st

KEY = "presenter_mode"
_APPLIED = "_presenter_applied"

# Larger type for a projector: body text, headings, metrics, buttons and tables.
MARKER = "bias-lab-presenter"  # in the injected style, so tests (and people) can tell it is on
CSS = """
<style>
/* bias-lab-presenter */
[data-testid="stMainBlockContainer"] { max-width: 1500px; }
[data-testid="stMain"] [data-testid="stMarkdownContainer"] p,
[data-testid="stMain"] [data-testid="stMarkdownContainer"] li { font-size: 1.4rem; line-height: 1.6; }
[data-testid="stMain"] h1 { font-size: 3.2rem; }
[data-testid="stMain"] h2 { font-size: 2.4rem; }
[data-testid="stMain"] h3 { font-size: 1.9rem; }
[data-testid="stMain"] [data-testid="stMetricValue"] { font-size: 3rem; }
[data-testid="stMain"] [data-testid="stMetricLabel"] p { font-size: 1.3rem; }
[data-testid="stMain"] [data-testid="stCaptionContainer"] { font-size: 1.1rem; }
[data-testid="stMain"] button p { font-size: 1.25rem; }
[data-testid="stMain"] [data-testid="stWidgetLabel"] p { font-size: 1.2rem; }
[data-testid="stMain"] input, [data-testid="stMain"] textarea { font-size: 1.2rem; }
</style>
"""


def is_on() -> bool:
    """Whether presenter mode is on (for this browser session, on every page)."""
    return bool(st.session_state.get(KEY, False))


def set_on(on: bool) -> None:
    st.session_state[KEY] = bool(on)


def _store(widget_key: str) -> None:
    set_on(st.session_state[widget_key])


def toggle(where=None, *, key: str = "presenter_toggle", label: str = "Presenter mode") -> bool:
    """The presenter switch (in ``where``: a column, ``st.sidebar``…; default the page), seeded from
    the remembered mode; a change takes effect in the same run, since its callback runs first."""
    where = where if where is not None else st
    st.session_state[key] = is_on()  # re-seed: the widget shows the truth, whichever page set it
    where.toggle(label, key=key, on_change=_store, args=(key,),
                 help="Larger type, sidebar collapsed, advanced settings folded away — for a projector")
    return is_on()


def apply() -> bool:
    """Apply the mode to this page: larger type and the sidebar collapsed when on, expanded again
    after it is turned off. Call after ``st.set_page_config``; returns whether the mode is on."""
    on = is_on()
    previous = st.session_state.get(_APPLIED)
    if on or previous:
        # Sent when on (every page of the session then opens collapsed) and once when switched off.
        st.set_page_config(initial_sidebar_state="collapsed" if on else "expanded")
    st.session_state[_APPLIED] = on
    if on:
        st.html(CSS)  # style only: Streamlit adds it without taking space on the page
    return on


def presenter(where=None) -> bool:
    """The one call for any page: the switch (default: in the sidebar) and the mode applied."""
    on = apply()
    toggle(where if where is not None else st.sidebar)
    return on


def settings(label: str = "Settings"):
    """A container for advanced inputs: inline normally, a closed expander in presenter mode."""
    return st.expander(label, expanded=False) if is_on() else st.container()
