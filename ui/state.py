"""State that survives moving between pages.

Streamlit forgets a widget's value when a page that does not draw that widget runs, so a value
typed on one page would be gone when the user comes back (and the sidebar's model box would be
empty on every second page). Each value that must outlive a page lives under a plain session-state
key, which Streamlit never drops; the widget is re-seeded from it on every run."""

from __future__ import annotations

from typing import Callable

import streamlit as st

_SHADOW = "_kept_"


def _shadow(key: str) -> str:
    return _SHADOW + key


def kept(widget: Callable, *args, key: str, **kwargs):
    """Draw ``widget(*args, key=key, **kwargs)`` and keep its value across page changes.

    The value a page sets programmatically (``st.session_state[key] = …`` before the widget) wins
    over the remembered one, as it would for a plain widget."""
    if key not in st.session_state and _shadow(key) in st.session_state:
        st.session_state[key] = st.session_state[_shadow(key)]
    if key in st.session_state:
        # The state holds the value; passing a default as well makes Streamlit warn on the page.
        for name in ("value", "index", "default"):
            kwargs.pop(name, None)
    value = widget(*args, key=key, **kwargs)
    st.session_state[_shadow(key)] = value
    return value


def remembered(key: str, default=None):
    """The last value of a widget drawn with :func:`kept` (on any page), or ``default``."""
    if key in st.session_state:
        return st.session_state[key]
    return st.session_state.get(_shadow(key), default)


def set_value(key: str, value) -> None:
    """Set a kept widget's value from code; it shows on the next run of whichever page draws it."""
    st.session_state[_shadow(key)] = value
    if key in st.session_state:
        del st.session_state[key]


def forget(*keys: str) -> None:
    """Drop kept widgets' values (e.g. a choice that is not among a changed list of options)."""
    for key in keys:
        st.session_state.pop(key, None)
        st.session_state.pop(_shadow(key), None)
