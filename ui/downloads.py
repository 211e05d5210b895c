"""Download buttons for every figure (HTML; PNG where a static renderer is installed) and table (CSV)."""

from __future__ import annotations

import streamlit as st


def figure(fig, name: str, key: str) -> None:
    st.plotly_chart(fig, key=f"{key}_chart")
    left, right = st.columns(2)
    left.download_button("Download figure (HTML)", fig.to_html(include_plotlyjs="cdn"), f"{name}.html", "text/html",
                         key=f"{key}_html")
    try:
        png = fig.to_image(format="png")
    except Exception:  # plotly needs kaleido and a browser for PNG; the HTML keeps the full figure
        right.caption("PNG: use the camera icon of the figure's toolbar")
    else:
        right.download_button("Download figure (PNG)", png, f"{name}.png", "image/png", key=f"{key}_png")


def table(frame, name: str, key: str) -> None:
    st.dataframe(frame, hide_index=True, key=f"{key}_table")
    st.download_button("Download table (CSV)", frame.to_csv(index=False), f"{name}.csv", "text/csv", key=f"{key}_csv")
