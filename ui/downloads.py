"""Download buttons for every figure (HTML always, PNG on request) and every table (CSV)."""

from __future__ import annotations

import streamlit as st


def figure(fig, name: str, key: str) -> None:
    st.plotly_chart(fig, key=f"{key}_chart")
    left, right = st.columns(2)
    left.download_button("Download figure (HTML)", fig.to_html(include_plotlyjs="cdn"), f"{name}.html", "text/html",
                         key=f"{key}_html")
    png_key = f"{key}_png_bytes"
    if png_key in st.session_state:
        right.download_button("Download figure (PNG)", st.session_state[png_key], f"{name}.png", "image/png",
                              key=f"{key}_png")
    elif right.button("Prepare PNG", key=f"{key}_png_prepare"):
        # Rendering a PNG starts a headless browser (kaleido): seconds, so only on request.
        try:
            st.session_state[png_key] = fig.to_image(format="png", scale=2)
        except Exception as error:
            right.error(f"PNG export needs kaleido and Chrome/Chromium ({type(error).__name__}); "
                        "use the HTML download or the figure's camera icon")
        else:
            st.rerun()


def table(frame, name: str, key: str) -> None:
    st.dataframe(frame, hide_index=True, key=f"{key}_table")
    st.download_button("Download table (CSV)", frame.to_csv(index=False), f"{name}.csv", "text/csv", key=f"{key}_csv")
