"""bias lab dashboard — home page. Run with: streamlit run app.py --server.address 127.0.0.1"""

import pandas as pd
import streamlit as st

from ui.session import sidebar_model

st.set_page_config(page_title="bias lab", page_icon="⚖️", layout="wide")
st.title("bias lab")
st.write("Find where social bias lives inside a transformer language model, and switch it off live.")

loaded = sidebar_model()
if loaded is not None:
    st.subheader(f"Loaded model: {loaded.source}")
    summary = loaded.summary()
    st.dataframe(pd.DataFrame({"fact": list(summary), "value": [str(v) for v in summary.values()]}),
                 hide_index=True, width="stretch")

st.subheader("Pages")
st.markdown(
    "- **Runs** — every stored computation (attributions, head scores, masks, evaluations) with its status, "
    "config and summary.\n"
    "- **Neuron lab** — the live demo: scale FFN neurons at the mask (×0 … ×3) and watch the top predictions and "
    "the demographic gap change, against the same number of random neurons."
)
