"""Pruning masks: densities of several masks side by side, their surviving heads, and a switch that
puts a mask on the live model."""

from pathlib import Path

import streamlit as st

from bias_lab import plots
from bias_lab.errors import BiasLabError
from bias_lab.interventions import InterventionSpec
from bias_lab.data import load_text
from bias_lab.pruning.kaneko import MODES, KanekoObjective
from bias_lab.pruning.masks import MaskSet, densities, surviving_heads
from bias_lab.pruning.train import PruneSettings, train_mask
from bias_lab.store import RunStore
from ui import downloads
from ui.intervention import current_spec, set_spec
from ui.jobs import run_job
from ui.shell import sidebar

st.set_page_config(page_title="Pruning masks · bias lab", layout="wide")
st.title("Pruning masks")
st.caption("Masks learned with frozen weights (`bias-lab prune`): how much of each layer they keep, which "
           "heads survive, and what the model does with them switched on.")

loaded = sidebar(need_model=True)
with st.expander("Learn a new mask (Kaneko & Bollegala debiasing, weights frozen)"):
    form = st.columns(4)
    corpus = form[0].text_input("Corpus text file", key="masks_corpus")
    block = form[1].selectbox("Block", ("32", "64", "128", "head", "neuron", "unstructured"), key="masks_block")
    mode = form[2].selectbox("Mode", MODES, index=MODES.index("last-token"), key="masks_mode")
    epochs = form[3].number_input("Epochs", 1, 100, 1, key="masks_epochs")
    started = st.button("Learn the mask", key="masks_learn", disabled=not corpus.strip())

    def learn(progress, cancel):
        objective = KanekoObjective(loaded, load_text(corpus.strip()), mode=mode)
        out = RunStore().home / "runs" / f"ui-prune-{Path(corpus.strip()).stem}-{block}-{mode}-e{int(epochs)}"
        return train_mask(loaded, objective, out, PruneSettings(block=int(block) if block.isdigit() else block,
                                                                epochs=int(epochs)), progress=progress, cancel=cancel)

    learned = run_job("masks_job", "mask training steps", learn, start=started)
    if learned is not None:
        st.success(f"mask written to {learned.folder / 'mask.safetensors'}")
        if started or st.session_state.get("masks_learned") != str(learned.folder):
            st.session_state["masks_learned"] = str(learned.folder)
            st.session_state["masks_path"] = str(learned.folder / "mask.safetensors")

runs = [r for r in RunStore().list(kind="prune", status="complete") if (r.artifact_dir / "mask.safetensors").is_file()]
known = {f"{r.id} · block {r.config.get('block')} · {r.config.get('objective')}": r.artifact_dir / "mask.safetensors"
         for r in runs}
chosen = st.multiselect("Masks from stored runs", list(known), default=list(known)[:2], key="masks_runs")
typed = st.text_input("…or a mask file path", key="masks_path")
paths = [known[c] for c in chosen] + ([Path(typed.strip())] if typed.strip() else [])
if not paths:
    st.info("No mask yet: run `bias-lab prune --model M --corpus TEXT --out DIR`, or give a mask file path.")
    st.stop()

tables, loaded_masks = {}, {}
for path in paths:
    try:
        masks = MaskSet.load(path)
        tables[path.parent.name or path.name] = densities(loaded, masks)
        loaded_masks[str(path)] = masks
    except BiasLabError as error:
        st.error(str(error))
if not tables:
    st.stop()
st.session_state["masks_count"] = len(tables)
downloads.figure(plots.density_bars(tables), "mask_densities", "masks_density")
for name, table in tables.items():
    with st.expander(f"{name}: {100 * table['kept'].sum() / table['total'].sum():.1f} % of prunable weights kept"):
        downloads.table(table, f"densities_{name}", f"masks_table_{name}")

path = st.selectbox("Mask for the head grid and the live switch", list(loaded_masks), key="masks_selected")
heads = surviving_heads(loaded, loaded_masks[path])
grid = heads.assign(status=heads["alive"].map({True: "kept", False: "pruned"}))
st.write(f"fully pruned heads: {int((~heads['alive']).sum())} of {len(heads)}")
downloads.figure(plots.pruned_head_grid(grid, "Surviving heads (a head is pruned when all its value rows are)"),
                 "surviving_heads", "masks_heads")

spec = current_spec()
active = spec.mask == path
if st.toggle("Mask on the live model", value=active, key="masks_toggle") != active:
    set_spec(InterventionSpec(spec.neurons, spec.heads, spec.position, None if active else path))
    st.rerun()
st.caption("With the mask on, every page (Neuron lab, Heads, Evaluate) computes with it; switch it off to get the "
           "original model back, bit for bit.")
