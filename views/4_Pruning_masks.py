"""Pruning masks: densities of several masks side by side, their surviving heads, and a switch that
puts a mask on the live model."""

import dataclasses
from pathlib import Path

import streamlit as st

from bias_lab import plots
from bias_lab.assets import page_defaults
from bias_lab.data import load_text
from bias_lab.errors import BiasLabError
from bias_lab.finetune.challenge_run import (ChallengeResult, accuracy_table, average_runs, best_per_set,
                                             challenge_runs_for)
from bias_lab.finetune.glue_run import glue_note, glue_table_for
from bias_lab.pruning.kaneko import MODES, KanekoObjective
from bias_lab.pruning.masks import MaskSet, densities, overall_density, surviving_heads
from bias_lab.pruning.summary import head_status, mask_misfit, pruned_head_count, steps_to_prune, stored_masks
from bias_lab.pruning.train import MaskTrainingResult, PruneSettings, train_mask
from bias_lab.run_labels import short_model
from bias_lab.runs import run_folder
from ui import downloads
from ui.format import percent_kept
from ui.intervention import current_spec, set_spec
from ui.jobs import run_job
from ui.shell import sidebar
from ui.state import forget, kept, remembered

st.set_page_config(page_title="Pruning masks · bias lab", layout="wide")
st.title("Pruning masks")
st.caption("Masks learned with frozen weights (`bias-lab masks train`): how much of each layer they keep, which "
           "heads survive, what the model does with them switched on — and, from stored runs, its GLUE scores "
           "after fine-tuning under each mask and, for classifier masks, its challenge-set accuracy.")


@st.cache_resource(max_entries=32, show_spinner=False)
def read_mask(path: str, modified: float) -> MaskSet:
    """A mask file, read once per version of the file."""
    return MaskSet.load(path)


def cached_mask(path: Path) -> MaskSet:
    return read_mask(str(path), path.stat().st_mtime)


loaded = sidebar(need_model=True)
with st.expander("Learn a new mask (Kaneko & Bollegala debiasing, weights frozen)"):
    form = st.columns(4)
    corpus = kept(form[0].text_input, "Corpus (text file or HF dataset id)",
                  value=page_defaults("pruning_masks")["corpus"], key="masks_corpus",
                  help="one passage per line; the default is bias lab's small classroom corpus "
                       "(assets/prompts/classroom_corpus.txt); e.g. wikitext for a large one")
    block = form[1].selectbox("Block", ("32", "64", "128", "head", "neuron", "unstructured"), key="masks_block")
    mode = form[2].selectbox("Mode", MODES, index=MODES.index("last-token"), key="masks_mode")
    epochs = form[3].number_input("Epochs", 1, 1000, 1, key="masks_epochs")
    form = st.columns(5)
    lr = form[0].number_input("Learning rate of the scores", 1e-4, 10.0, 0.01, 0.01, format="%.4f", key="masks_lr")
    threshold = form[1].number_input("Final threshold τ", 0.0, 0.99, 0.1, 0.05, format="%.2f", key="masks_threshold",
                                     help="a block is pruned when σ(score) ends below τ (τ = 0 prunes nothing)")
    l1 = form[2].number_input("L1 weight on σ(scores)", 0.0, 100.0, 0.0, 0.1, key="masks_l1",
                              help="pushes scores down: more pruning")
    batch_size = form[3].number_input("Batch size", 1, 1024, 16, key="masks_batch")
    limit = form[4].number_input("Max corpus sentences (0 = all)", 0, 10_000_000, 0, key="masks_limit")
    head_qkv = block == "head" and st.checkbox("Prune a head's query, key and value rows together (default: value "
                                               "rows)", key="masks_head_qkv")
    settings = PruneSettings(block=int(block) if block.isdigit() else block, epochs=int(epochs), lr=float(lr),
                             threshold=float(threshold), l1=float(l1), batch_size=int(batch_size),
                             head_roles=("query", "key", "value") if head_qkv else ("value",))
    invalid = None
    try:
        settings.validate()
    except BiasLabError as error:
        invalid = str(error)
        st.error(invalid)
    needed = steps_to_prune(threshold, lr)
    if needed is not None and not invalid:
        st.caption(f"Scores start at σ = 0.5; a block is pruned once σ(score) falls below τ = {threshold:g}. Adam moves "
                   f"a score by about the learning rate per step, so pruning needs roughly {needed} steps "
                   f"(steps = epochs × stereotype sentences / batch size).")
    elif not invalid:
        st.caption("With τ = 0 no block is ever pruned (σ(score) > 0 always): raise the threshold.")
    automatic = run_folder("prune", loaded.source, {"corpus": corpus.strip(), "mode": mode, "limit": int(limit) or None,
                                                    "settings": dataclasses.asdict(settings)},
                           label=[Path(corpus.strip()).stem[:20], block, mode, f"e{int(epochs)}", f"lr{lr:g}",
                                  f"t{threshold:g}"])
    typed_out = st.text_input("Output run folder (empty: named after the model and the settings)", key="masks_out")
    out = Path(typed_out.strip()).expanduser() if typed_out.strip() else automatic
    st.caption(f"output run folder: `{out}`" + (" — a run with these settings is there; learning again retrains it"
                                               if MaskTrainingResult.is_finished(out) else ""))
    started = st.button("Learn the mask", key="masks_learn", disabled=not corpus.strip() or invalid is not None)

    def learn(progress, cancel, out=out, settings=settings, corpus=corpus.strip(), mode=mode, limit=int(limit) or None):
        objective = KanekoObjective(loaded, load_text(corpus), mode=mode, limit=limit)
        return train_mask(loaded, objective, out, settings, progress=progress, cancel=cancel,
                          description={"mode": mode, "corpus": corpus, "limit": limit, "words": "bias-lab"})

    learned = run_job("masks_job", "mask training steps", learn, start=started)
    if learned is not None:
        share = overall_density(learned.densities)
        st.success(f"mask written to {learned.mask_path}: it keeps {percent_kept(share)} % of the weights, "
                   f"{pruned_head_count(learned.heads)} of {len(learned.heads)} heads fully pruned, after "
                   f"{len(learned.history)} steps")
        if share >= 100:
            used = learned.config
            detail = (f" ({len(learned.history)} steps at learning rate {used.get('lr')}, "
                      f"final threshold {used.get('threshold')})" if used else "")
            st.warning("the mask keeps 100 % of the weights: train longer, raise the learning rate or the threshold"
                       + detail)
        if started or st.session_state.get("masks_learned") != str(learned.folder):
            st.session_state["masks_learned"] = str(learned.folder)
            st.session_state["masks_path"] = str(learned.mask_path)

# Stored masks: only those that fit the loaded model can be chosen; the others are listed with the reason.
stored = stored_masks(loaded, read=cached_mask)
known = {mask.label: mask.path for mask in stored if mask.fits}
unfit = [f"mask {mask.record.id} ({mask.path}): {mask.problem}" for mask in stored if not mask.fits]
chosen = st.multiselect(f"Masks from stored runs that fit {short_model(loaded.source)}", list(known),
                        default=list(known)[:2], key="masks_runs")
if unfit:
    with st.expander(f"{len(unfit)} stored mask{'s' if len(unfit) > 1 else ''} made for other models "
                     "(cannot be used with the loaded model)"):
        for line in unfit:
            st.caption(line)
typed = st.text_input("…or a mask file path", key="masks_path")

paths = list(dict.fromkeys(known[c].resolve() for c in chosen))
tables, loaded_masks = {}, {}
if typed.strip():
    path = Path(typed.strip()).expanduser()
    try:
        masks = MaskSet.load(path)
        reason = mask_misfit(masks, loaded)
    except BiasLabError as error:
        st.error(f"mask file {path}: {error}" if str(path) not in str(error) else str(error))
    else:
        if reason is not None:
            st.error(f"mask file {path} does not fit the loaded model {short_model(loaded.source)}: {reason}")
        elif path.resolve() not in paths:
            paths.append(path.resolve())
if not paths:
    st.info("No mask for this model yet: learn one above, run `bias-lab masks train --model M --data TEXT --out DIR`, "
            "or give a mask file path.")
    st.stop()

for path in paths:
    name = path.parent.name or path.name
    try:
        masks = cached_mask(path)
        tables[name] = densities(loaded, masks)
        loaded_masks[str(path)] = masks
    except (BiasLabError, OSError) as error:
        st.error(f"mask file {path}: {error}")
if not tables:
    st.stop()
# What each mask can still do, beside how much it keeps: GLUE after fine-tuning under the mask
# (`bias-lab glue` runs that scored these mask files).
glue_scores = glue_table_for(list(loaded_masks))
density_column, glue_column = st.columns([3, 2]) if not glue_scores.empty else (st.container(), None)
with density_column:
    downloads.figure(plots.density_bars(tables), "mask_densities", "masks_density")
if glue_column is not None:
    with glue_column:
        st.markdown("**GLUE dev score per task and average** (fine-tuned under each mask, points)")
        downloads.table(glue_scores.round(2), "glue_per_mask", "masks_glue",
                        column_config={"mask": None, "run": None})
        st.caption(f"From GLUE runs {', '.join(dict.fromkeys(glue_scores['run']))}. " + glue_note(glue_scores))
else:
    st.caption("No GLUE scores for these masks yet: `bias-lab glue --model MODEL --mask MASK … --out RUN` fine-tunes "
               "the model on each GLUE task under each mask; its scores then appear here and on the Trade-off page.")
for name, table in tables.items():
    with st.expander(f"{name}: {overall_density(table):.1f} % of prunable weights kept"):
        downloads.table(table, f"densities_{name}", f"masks_table_{name}")

if loaded.kind == "classifier":
    # Classifier masks (masked debiasing): challenge-set accuracy of each mask, switched on or off.
    found = challenge_runs_for(list(loaded_masks))
    if not found:
        st.caption("No challenge-set run for these masks yet: `bias-lab challenge --model CLASSIFIER --mask MASK … "
                   "--out RUN` scores HANS, the MNLI negation subset, PAWS and FEVER-Symmetric with each mask.")
    else:
        st.subheader("Challenge sets")
        labels = {f"{record.id} · {' '.join(record.config.get('sets', []))} · {len(record.config.get('masks', []))} "
                  f"mask(s)": record for record in found}
        if any(label not in labels for label in remembered("masks_challenge_runs") or []):
            forget("masks_challenge_runs")  # a run deleted or from another store since
        chosen_runs = kept(st.multiselect, "Challenge runs (several: averaged, e.g. one per seed)", list(labels),
                           default=list(labels)[:1], key="masks_challenge_runs")
        if chosen_runs:
            results = [ChallengeResult.load(labels[label].artifact_dir) for label in chosen_runs]
            table = results[0].table if len(results) == 1 else average_runs(results)
            masks_on = kept(st.toggle, "Masks switched on", value=True, key="masks_challenge_on",
                            help="off: every mask switched off again — the classifier's own accuracy, as it must be")
            accuracies = accuracy_table(table, masks_on=masks_on)
            downloads.table(accuracies.round(4), "challenge_accuracy", "masks_challenge")
            downloads.figure(plots.challenge_accuracy_bars(accuracies), "challenge_accuracy", "masks_challenge_bars")
            if masks_on:
                best = best_per_set(table)
                st.caption("Best per set: " + "; ".join(f"{row.set}: {row.best} ({row.accuracy:.3f})"
                                                        for row in best.itertuples()))

path = st.selectbox("Mask for the head grid and the live switch", list(loaded_masks), key="masks_selected")
heads = surviving_heads(loaded, loaded_masks[path])
st.write(f"fully pruned heads: {pruned_head_count(heads)} of {len(heads)}")
downloads.figure(plots.pruned_head_grid(head_status(heads), "Surviving heads (a head is pruned when all its value rows are)"),
                 "surviving_heads", "masks_heads")

spec = current_spec()
active = spec.mask == path
if st.toggle("Mask on the live model", value=active, key="masks_toggle") != active:
    set_spec(dataclasses.replace(spec, mask=None if active else path))
    st.rerun()
st.caption("With the mask on, every page (Neuron lab, Heads, Evaluate) computes with it; switch it off to get the "
           "original model back, bit for bit.")
