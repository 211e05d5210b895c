"""Compression: a teacher, its distilled students and pruned variants side by side — build a
comparison (or distil a small student first) in the background, or open a stored one; every figure
and table downloads."""

from dataclasses import asdict
from pathlib import Path

import streamlit as st

from bias_lab import plots
from bias_lab.assets import page_defaults
from bias_lab.compression.compare import ComparisonResult, CompareSettings, compare_models
from bias_lab.compression.distill import DistillSettings, distill
from bias_lab.compression.variants import ModelVariant, same_model_source, stored_model_choices
from bias_lab.errors import BiasLabError
from bias_lab.evaluation.before_after import data_hint
from bias_lab.evaluation.generations import generates_text
from bias_lab.metrics import BENCHMARKS, METRICS
from bias_lab.models import load_model
from bias_lab.run_labels import short_model
from bias_lab.runs import run_folder, run_label
from bias_lab.store import RunStore
from bias_lab.toxicity import DEFAULT_TOXICITY_CLASSIFIER
from ui import downloads
from ui.intervention import current_spec, describe
from ui.jobs import run_job
from ui.session import current_model_settings
from ui.shell import choose_stored_run, sidebar
from ui.state import forget, kept, remembered

st.set_page_config(page_title="Compression · bias lab", layout="wide")
st.title("Compression")
st.caption("Does distilling or pruning a model change its bias and toxicity? A teacher, its distilled students "
           "and its pruned variants scored on the same benchmarks and data, one row per model "
           "(`bias-lab compare-models`); a small student can be distilled here first (`bias-lab distill`).")

loaded = sidebar()
store = RunStore()
_, device, dtype = current_model_settings()

# --- Distil a small student (a demo on a tiny corpus; `bias-lab distill` for real runs) -----------------
with st.expander("Distil a small student from the loaded model"):
    if loaded is None or loaded.kind not in ("masked", "causal"):
        st.info("Distillation needs a masked or causal LM loaded in the sidebar (the teacher).")
    else:
        boxes = st.columns(4)
        corpus = kept(boxes[0].text_input, "Corpus (text file or HF dataset id)",
                      value=page_defaults("pruning_masks")["corpus"], key="cmpr_distil_corpus",
                      help="one passage per line; the default is bias lab's small classroom corpus").strip()
        depth = int(kept(boxes[1].number_input, "Student layers", 1, loaded.num_layers,
                         max(1, loaded.num_layers // 2), key="cmpr_distil_layers",
                         help="copied from evenly spread teacher layers (always the first and the last)"))
        init = kept(boxes[2].selectbox, "Initialisation", ("teacher", "random"), key="cmpr_distil_init")
        steps = int(kept(boxes[3].number_input, "Steps (0 = the initialised student)", 0, 100_000, 20,
                         key="cmpr_distil_steps"))
        boxes = st.columns(3)
        batch = int(kept(boxes[0].number_input, "Batch size", 1, 1024, 8, key="cmpr_distil_batch"))
        length = int(kept(boxes[1].number_input, "Tokens per block", 8, 4096, 64, key="cmpr_distil_length"))
        lr = float(kept(boxes[2].number_input, "Learning rate", 1e-6, 1.0, 5e-4, format="%.5f", key="cmpr_distil_lr"))
        settings = DistillSettings(num_layers=depth, init=init, steps=steps, batch_size=batch, max_length=length, lr=lr)
        invalid = None
        try:
            settings.validate(loaded)
        except BiasLabError as error:
            invalid = str(error)
            st.error(invalid)
        out = run_folder("distill", loaded.source, {"corpus": corpus, "settings": asdict(settings)},
                         label=[Path(corpus).stem[:20], f"{depth}l", init, f"s{steps}"], store=store)
        st.caption(f"output run folder: `{out}`")
        started = st.button("Distil", key="cmpr_distil_run", disabled=not corpus or invalid is not None)

        def distil(progress, cancel, out=out, settings=settings, corpus=corpus):
            return distill(loaded, corpus, out, settings, store=store, progress=progress, cancel=cancel)

        student = run_job("cmpr_distil_job", "distillation steps", distil, start=started)
        if student is not None:
            st.success(f"student written to {student.model_path}: it is offered below as "
                       f"'student · …' among the stored models")

# --- Build a comparison ----------------------------------------------------------------------------------
with st.expander("Compare models", expanded=not ComparisonResult.finished_runs(store)):
    typed = kept(st.text_area, "Models, one per line: a hub id, a model folder, a distilled run folder, or "
                               "MODEL+SPEC (SPEC: an intervention spec .json, a mask .safetensors or a mask run)",
                 value=loaded.source if loaded is not None else "", key="cmpr_models")
    offered = stored_model_choices(store)
    if any(choice not in offered for choice in remembered("cmpr_stored", []) or []):
        forget("cmpr_stored")
    picked = kept(st.multiselect, "Models from stored runs (distilled students, pruned masks)", list(offered),
                  key="cmpr_stored")
    spec = current_spec()
    with_active = loaded is not None and not spec.is_empty and kept(
        st.checkbox, f"Also the loaded model under the active intervention ({describe(spec)})", value=False,
        key="cmpr_active")
    models: list = [line.strip() for line in typed.splitlines() if line.strip()] + [offered[c] for c in picked]
    if with_active:
        models.append(ModelVariant(f"{short_model(loaded.source)}+active", loaded.source, spec, "active intervention"))

    choices = list(BENCHMARKS)
    benchmarks = kept(st.multiselect, "Benchmarks (from the metric table)", choices,
                      default=["perplexity", "stereoset"], key="cmpr_benchmarks",
                      help=" · ".join(f"{name}: {entry.title}, for {', '.join(entry.kinds)}" for name, entry
                                      in BENCHMARKS.items()))
    defaults = page_defaults("evaluate")
    data, boxes = {}, st.columns(max(1, len(benchmarks)))
    for box, name in zip(boxes, benchmarks):
        data[name] = kept(box.text_input, f"{name} data", value=defaults["data"].get(name, ""),
                          key=f"cmpr_data_{name}", placeholder=data_hint(name), help=BENCHMARKS[name].data).strip()
    columns = st.columns(4)
    limit = int(kept(columns[0].number_input, "At most N items of each benchmark (0 = all)", 0, 10_000_000, 50,
                     key="cmpr_limit"))
    options = {}
    if any(generates_text(name) for name in benchmarks):
        classifier = kept(columns[1].text_input, "Toxicity classifier (hub id or local folder)",
                          DEFAULT_TOXICITY_CLASSIFIER, key="cmpr_classifier").strip() or DEFAULT_TOXICITY_CLASSIFIER
        new_tokens = int(kept(columns[2].number_input, "Max new tokens", 1, 1000, 20, key="cmpr_new_tokens"))
        seed = int(kept(columns[3].number_input, "Seed", 0, 2**31 - 1, 0, key="cmpr_seed"))
        options = {name: {"classifier": classifier, "max_new_tokens": new_tokens, "seed": seed}
                   for name in benchmarks if generates_text(name)}
    settings = CompareSettings(benchmarks=tuple(benchmarks), data={name: path for name, path in data.items() if path},
                               limit=limit or None, options=options, device=device, dtype=dtype)
    missing = [name for name in benchmarks if not data.get(name) and not defaults["data"].get(name)]
    if not models or not benchmarks or missing:
        st.info("Give at least one model and one benchmark" + (f", and the data of {', '.join(missing)}" if missing
                                                               else "") + ".")
    first = models[0] if models else ""
    automatic = run_folder("compare-models", first.source if isinstance(first, ModelVariant) else str(first),
                           {"models": [m.to_config() if isinstance(m, ModelVariant) else m for m in models],
                            "settings": asdict(settings)}, label=[len(models), *benchmarks], store=store)
    typed_out = kept(st.text_input, "Output run folder (empty: named after the models and the settings)",
                     value="", key="cmpr_out").strip()
    out = Path(typed_out).expanduser() if typed_out else automatic
    st.caption(f"output run folder: `{out}` — comparing again with the same settings resumes it")
    start = st.button("Compare the models", key="cmpr_run", disabled=not models or not benchmarks or bool(missing))

    def load(source: str):
        # the model of the sidebar is reused, not loaded twice
        if loaded is not None and same_model_source(source, loaded.source):
            return loaded
        return load_model(source, device=device, dtype=dtype)

    def compare(progress, cancel, models=models, out=out, settings=settings):
        return compare_models(models, out, settings, store=store, progress=progress, cancel=cancel, loader=load)

    made = run_job("cmpr_job", "models × benchmarks", compare, start=start)
    if made is not None and st.session_state.get("cmpr_made") != made.meta["id"]:
        # a new comparison is the one shown below
        st.session_state["cmpr_made"] = made.meta["id"]
        st.session_state["cmpr_run_choice"] = run_label(store.get(made.meta["id"]), created=True)

# --- A stored comparison ---------------------------------------------------------------------------------
st.subheader("Models side by side")
result = choose_stored_run(ComparisonResult, "Comparison run", "cmpr_run_choice",
                           "No comparison run yet: compare models above, or run `bias-lab compare-models M1 M2 … "
                           "--benchmarks perplexity stereoset … --out DIR`.", store)
table = result.table
st.caption(f"{len(table)} models on {', '.join(result.benchmarks)}; data: "
           + "; ".join(f"{name} {source or 'default'}" for name, source in result.config.get("data", {}).items())
           + (f"; first {result.config['limit']} items" if result.config.get("limit") else ""))
downloads.table(table, "comparison", "cmpr_table")

figures = result.figure_columns()
metrics = result.metric_columns()
named = {column: f"{METRICS[metrics[column]].axis} ({metrics[column]})" if column in metrics else column
         for column in figures}
if not figures:
    st.info("This comparison has no numeric figure to plot.")
    st.stop()
for key in ("cmpr_bars_metric", "cmpr_scatter_metric"):
    if remembered(key) not in figures:
        forget(key)
chosen = kept(st.selectbox, "Figure of", figures, key="cmpr_bars_metric", format_func=named.get)
left, right = st.columns(2)
with left:
    downloads.figure(plots.model_metric_bars(table, chosen), f"{chosen}_per_model", "cmpr_bars")
with right:
    downloads.figure(plots.parameters_vs_metric(table, chosen), f"parameters_vs_{chosen}", "cmpr_parameters")

biased = list(result.metric_columns("bias"))
if result.perplexity_column and biased:
    st.subheader("Perplexity against bias and toxicity")
    if remembered("cmpr_scatter_metric") not in biased:
        forget("cmpr_scatter_metric")
    against = kept(st.selectbox, "Bias or toxicity metric", biased, key="cmpr_scatter_metric", format_func=named.get)
    downloads.figure(plots.perplexity_vs_metric(table, against, perplexity=result.perplexity_column),
                     f"perplexity_vs_{against}", "cmpr_perplexity")
elif biased:
    st.caption("Add perplexity to the benchmarks to plot perplexity against each bias metric.")

choices_shown = result.stereoset_choice_columns()
if choices_shown:
    st.subheader("StereoSet choices")
    downloads.figure(plots.model_grouped_bars(table, choices_shown, "Which StereoSet sentence each model scores "
                                              "highest (intrasentence examples)", y_label="examples (count)"),
                     "stereoset_choices", "cmpr_stereoset_choices")
for column, benchmark in result.generation_length_columns().items():
    st.subheader(f"Generation length ({benchmark})")
    downloads.figure(plots.generation_length_bars(table, column), f"generation_length_{benchmark}",
                     f"cmpr_length_{benchmark}")
