"""Bias neurons: run Integrated Gap Gradients on a JUT, a classroom prompt set or a typed prompt (or
open a stored run), see where the gap lives, select bias neurons and send them to the Neuron lab."""

from pathlib import Path

import streamlit as st

from bias_lab import plots
from bias_lab.assets import page_defaults
from bias_lab.errors import BiasLabError
from bias_lab.neurons import IG2Settings, SelectionSettings, neuron_spec, neurons_per_layer, select_bias_neurons
from bias_lab.neurons.analyses import convergence_deltas, mean_scores, top_neurons
from bias_lab.neurons.prompts import DIMENSIONS, MODIFIER_TYPES, Prompt, ig2_prompts, load_prompt_file
from bias_lab.neurons.run import IG2Result, run_ig2
from bias_lab.runs import run_folder
from bias_lab.store import RunStore
from ui import downloads
from ui.intervention import apply_spec
from ui.jobs import run_job
from ui.shell import choose_stored_run, link_to, sidebar
from ui.state import forget, kept, remembered

st.set_page_config(page_title="Bias neurons · bias lab", layout="wide")
st.title("Bias neurons")
st.caption("Integrated Gap Gradients attributes the probability gap between two demographics at [MASK] to FFN neurons.")

DEFAULTS = page_defaults("bias_neurons")  # assets/app/defaults.json
JUT, CLASSROOM, TYPED = "A JUT of the IG2 prompt set", "A classroom prompt set", "One typed prompt"
PROMPT_SOURCES = (JUT, CLASSROOM, TYPED)
OWN_FILE = "a file of your own"

loaded = sidebar()
store = RunStore()
source = kept(st.radio, "Attributions", ("Open a stored run", "Run IG2 now"), horizontal=True, key="bn_source")
result = None
if source == "Open a stored run":
    result = choose_stored_run(IG2Result, "Run", "bn_run", "No finished IG2 run yet: choose “Run IG2 now”, or run "
                               "`bias-lab neurons attribute …` from the command line.", store,
                               prefer_model=loaded.source if loaded is not None else None)
else:
    if loaded is None:
        st.stop()
    if loaded.kind != "masked":
        st.error(f"IG2 attributes the gap at [MASK], so it needs a masked language model; {loaded.source!r} is "
                 f"loaded as {loaded.kind!r}. Choose one such as bert-base-uncased in the sidebar, or open a stored run.")
        st.stop()
    chosen_prompts = kept(st.radio, "Prompts", PROMPT_SOURCES, horizontal=True, key="bn_prompts")
    if chosen_prompts == TYPED:
        text = kept(st.text_input, "Prompt with [MASK]", value=DEFAULTS["prompt"], key="bn_prompt")
        pair = st.columns(2)
        d1 = kept(pair[0].text_input, "d1", value=DEFAULTS["pair"][0], key="bn_cd1").strip()
        d2 = kept(pair[1].text_input, "d2", value=DEFAULTS["pair"][1], key="bn_cd2").strip()
        prompts = [Prompt("custom", text, d1, d2)]
        description = {"dimension": "custom", "pair": [d1, d2]}
        label = ["custom", text[:40], d1, d2]
    elif chosen_prompts == CLASSROOM:
        sets = DEFAULTS["prompt_sets"]
        columns = st.columns([1, 3])
        name = kept(columns[0].selectbox, "Prompt set", [*sets, OWN_FILE], key="bn_prompt_set",
                    help="short prompt sets written for class (assets/prompts/), or a JSONL file of your own")
        if name == OWN_FILE:
            path = kept(columns[1].text_input, "Prompt file (JSONL: one {\"id\", \"prompt\", \"pair\"} per line)",
                        value=next(iter(sets.values())), key="bn_prompt_file").strip()
        else:
            path = sets[name]
            columns[1].caption(f"Prompt file: `{path}`")
        try:
            prompts = load_prompt_file(path)
        except BiasLabError as error:
            st.error(str(error))
            st.stop()
        pairs = list(dict.fromkeys(f"{p.d1}–{p.d2}" for p in prompts))
        st.caption(f"{len(prompts)} prompts · pairs {', '.join(pairs[:8])}{' …' if len(pairs) > 8 else ''}")
        description = {"dimension": "custom" if name == OWN_FILE else name, "prompts_file": path}
        label = [Path(path).stem]
    else:
        columns = st.columns(4)
        dimension = kept(columns[0].selectbox, "Dimension", list(DIMENSIONS), index=1, key="bn_dimension")
        modifier = kept(columns[1].selectbox, "Modifier type", list(MODIFIER_TYPES),
                        format_func=lambda k: f"{k} ({MODIFIER_TYPES[k]})", key="bn_modifier")
        if remembered("bn_d1", DIMENSIONS[dimension][0]) not in DIMENSIONS[dimension]:
            forget("bn_d1", "bn_d2")  # the pair of the previous dimension
        d1 = kept(columns[2].selectbox, "d1", DIMENSIONS[dimension], index=0, key="bn_d1")
        d2 = kept(columns[3].selectbox, "d2", DIMENSIONS[dimension], index=1, key="bn_d2")
        bags = kept(st.slider, "Modifiers (bags of 17 prompts each)", 1, 100, 1, key="bn_bags")
        try:
            prompts = ig2_prompts(dimension, modifier, d1, d2, limit_modifiers=bags)
        except BiasLabError as error:
            st.error(str(error))
            st.stop()
        description = {"dimension": dimension, "modifier": modifier, "pair": [d1, d2]}
        label = [dimension, modifier, d1, d2, bags]
    steps = kept(st.slider, "Integration steps m", 2, 50, 20, key="bn_steps")
    out = run_folder("ig2", loaded.source, {**description, "prompts": [p.to_dict() for p in prompts], "steps": steps},
                     label=[*label, f"m{steps}"], store=store)
    started = st.button(f"Run IG2 on {len(prompts)} prompts", key="bn_run_button")
    result = run_job(f"bn_job_{out.name}", "IG2 prompts",
                     lambda progress, cancel: run_ig2(loaded, prompts, out, IG2Settings(steps=steps), progress=progress,
                                                      cancel=cancel, description=description), start=started)
    if result is None and IG2Result.is_finished(out) and not started:
        result = IG2Result.load(out)
    if result is None:
        st.info("Choose the prompts and press Run; Cancel stops it, and Run again resumes where it stopped.")
        st.stop()

st.subheader(f"{len(result.prompts)} prompts · {result.model} · m = {result.config.get('settings', {}).get('steps')}")
downloads.figure(plots.attribution_heatmap(mean_scores(result.scores), "Mean IG2 score per neuron over the prompts"),
                 "ig2_heatmap", "bn_heatmap")
st.subheader("Top neurons by mean IG2 score")
SCIENTIFIC = st.column_config.NumberColumn(format="%.3e")
downloads.table(top_neurons(result.scores, 20), "top_neurons", "bn_top", column_config={"mean_score": SCIENTIFIC})

st.subheader("Bias neurons after selection")
ratios = st.columns(2)
prompt_ratio = kept(ratios[0].slider, "Per prompt: score ≥ ratio × max", 0.05, 1.0, 0.2, 0.05, key="bn_prompt_ratio")
jut_ratio = kept(ratios[1].slider, "Per JUT: share of bags", 0.05, 1.0, 0.1, 0.05, key="bn_jut_ratio")
table = select_bias_neurons(result.scores, result.prompts, SelectionSettings(prompt_ratio=prompt_ratio,
                                                                             jut_ratio=jut_ratio))
downloads.table(table, "bias_neurons", "bn_selected",
                column_config={c: SCIENTIFIC for c in table.columns if table[c].dtype.kind == "f"})
downloads.figure(plots.neurons_per_layer_bars(neurons_per_layer(table, result.num_layers)), "bias_neurons_per_layer",
                 "bn_per_layer")

st.subheader("Convergence deltas (mean |Σ scores − (gap − gap with the layer zeroed)| per layer)")
downloads.table(convergence_deltas(result.prompts), "deltas", "bn_deltas", column_config={"mean_abs_delta": SCIENTIFIC})

candidate = neuron_spec(table, 0.0)
mismatch = None
if loaded is None:
    mismatch = "no model is loaded"
elif not table.empty:
    try:
        candidate.validate(loaded)
    except BiasLabError as error:
        mismatch = str(error)
if mismatch and not table.empty:
    st.warning(f"These neurons cannot act on the loaded model: {mismatch}. Load the run's model "
               f"({result.model}) in the sidebar to send them.")
if st.button("Send these bias neurons to the Neuron lab (suppressed ×0)", key="bn_send",
             disabled=table.empty or mismatch is not None):
    apply_spec(candidate, f"Sent {len(table)} bias neurons: open the Neuron lab page — they are the "
                                        "active intervention (see the sidebar).")
if table.empty:
    st.caption("No neuron passes the thresholds: lower the ratios to select some.")
else:
    link_to("views/2_Neuron_lab.py", "Open the Neuron lab →")
