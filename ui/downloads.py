"""Download buttons for every figure (HTML always, PNG on request) and every table (CSV).

Download clicks do not rerun the page (``on_click="ignore"``), so nothing on it is recomputed or
lost by saving a file."""

from __future__ import annotations

import hashlib

import streamlit as st


def figure(fig, name: str, key: str, *, selectable: bool = False):
    """Draw ``fig`` with its downloads; with ``selectable`` a click on a point reruns the page and
    the chart's selection event is returned."""
    if selectable:
        event = st.plotly_chart(fig, key=f"{key}_chart", on_select="rerun", selection_mode="points")
    else:
        event = st.plotly_chart(fig, key=f"{key}_chart")
    left, right = st.columns(2)
    html = fig.to_html(include_plotlyjs="cdn")
    left.download_button("Download figure (HTML)", html, f"{name}.html", "text/html", key=f"{key}_html",
                         on_click="ignore")
    png_key = f"{key}_png_bytes"
    # The PNG belongs to the figure it was made from: a changed figure needs a new one.
    fingerprint = hashlib.sha1(fig.to_json().encode()).hexdigest()  # to_html has a random element id
    prepared = st.session_state.get(png_key)
    if prepared is not None and st.session_state.get(f"{png_key}_of") == fingerprint:
        right.download_button("Download figure (PNG)", prepared, f"{name}.png", "image/png", key=f"{key}_png",
                              on_click="ignore")
    elif right.button("Prepare PNG", key=f"{key}_png_prepare"):
        # Rendering a PNG starts a headless browser (kaleido): seconds, so only on request.
        try:
            st.session_state[png_key] = fig.to_image(format="png", scale=2)
        except Exception as error:
            right.error(f"PNG export needs kaleido and Chrome/Chromium ({type(error).__name__}); "
                        "use the HTML download or the figure's camera icon")
        else:
            st.session_state[f"{png_key}_of"] = fingerprint
            st.rerun()
    return event


def table(frame, name: str, key: str, *, column_config: dict | None = None) -> None:
    """The table on the page (``column_config`` formats it there) and its full numbers as CSV."""
    st.dataframe(frame, hide_index=True, key=f"{key}_table", column_config=column_config)
    st.download_button("Download table (CSV)", frame.to_csv(index=False), f"{name}.csv", "text/csv", key=f"{key}_csv",
                       on_click="ignore")
