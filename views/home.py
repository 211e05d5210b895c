"""Home: what bias lab is, the loaded model, and what each page does."""

import pandas as pd
import streamlit as st

from bias_lab.metrics import BENCHMARKS, either
from ui.navigation import has_page
from ui.shell import sidebar

st.set_page_config(page_title="bias lab", layout="wide")
st.title("bias lab")
st.write("Find where social bias lives inside a transformer language model, and switch it off live.")

loaded = sidebar()
if loaded is not None:
    st.subheader(f"Loaded model: {loaded.source}")
    summary = loaded.summary()
    st.dataframe(pd.DataFrame({"fact": list(summary), "value": [str(v) for v in summary.values()]}),
                 hide_index=True, width="stretch")

st.subheader("Pages")
st.markdown(
    ("- **Lesson** — the guided tour for a class: six short steps from asking the model what it puts at the mask "
     "to what switching bias off costs, each with one computation on the loaded model.\n" if has_page("Lesson") else "")
    + "- **Bias neurons** — run Integrated Gap Gradients on a demographic pair, a classroom prompt set or a typed "
    "prompt (or open a stored run): where the gap lives, layer by neuron, which neurons are bias neurons, and one "
    "click to take them to the Neuron lab.\n"
    "- **Neuron lab** — the live demo: scale neurons at the mask from ×0 to ×3 and watch the predictions and the gap "
    "change, against random neurons.\n"
    "- **Heads** — what removing each attention head does to performance and bias; FASP sliders choose heads to "
    "prune; ablate a head live.\n"
    "- **Pruning masks** — masks learned with frozen weights: densities per layer, surviving heads, and a switch "
    "that puts a mask on the live model.\n"
    f"- **Evaluate** — {either(b.title for b in BENCHMARKS.values())} before and after the active intervention.\n"
    "- **Compare** — two runs side by side: bias neurons per layer (migration), their overlap, head-score correlation.\n"
    "- **Trade-off** — every stored evaluation as performance vs bias, by method, with the Pareto front.\n"
    "- **Runs** — every stored computation with its status, config and summary."
)
