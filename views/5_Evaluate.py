"""Evaluate: a benchmark on the model as loaded and under the active intervention, side by side."""

import hashlib

import streamlit as st

from bias_lab import plots
from bias_lab.assets import page_defaults
from bias_lab.data.seat import default_seat_tests, seat_test_names
from bias_lab.errors import BiasLabError
from bias_lab.evaluation import check_reach
from bias_lab.evaluation.before_after import data_hint, evaluate_before_after, unusable_benchmarks, usable_benchmarks
from bias_lab.evaluation.generations import (ALL_GROUPS, filter_generations, generates_text, generation_groups,
                                             generation_settings_text, sort_choices, sort_generations)
from bias_lab.metrics import BENCHMARKS
from bias_lab.models import kind_phrase
from bias_lab.toxicity import DEFAULT_TOXICITY_CLASSIFIER, TOXICITY_CLASSIFIERS
from ui import downloads
from ui.intervention import current_spec, describe
from ui.jobs import run_job
from ui.session import classifier, current_model_settings
from ui.shell import sidebar
from ui.state import forget, kept, remembered

st.set_page_config(page_title="Evaluate · bias lab", layout="wide")
st.title("Evaluate")
st.caption(f"{', '.join(b.title for b in BENCHMARKS.values())} — before (the model as loaded) and after (with the "
           "active intervention from the sidebar). Results are stored as runs for the Trade-off page "
           "(`bias-lab evaluate BENCHMARK` stores the same from the command line). Toxicity benchmarks generate "
           "continuations with a causal LM and score them with a toxicity classifier.")

loaded = sidebar(need_model=True)
spec = current_spec()
usable = list(usable_benchmarks(loaded.kind))
unusable = unusable_benchmarks(loaded.kind)
if unusable:
    st.caption(f"{loaded.source!r} is {kind_phrase(loaded.kind)}: it can run {', '.join(usable)} ({unusable})")
if remembered("eval_benchmark") not in usable:
    forget("eval_benchmark")
columns = st.columns(4)
benchmark = kept(columns[0].selectbox, "Benchmark", usable, key="eval_benchmark",
                 help=" · ".join(f"{name}: {BENCHMARKS[name].title}" for name in usable))
whole = not BENCHMARKS[benchmark].limit_unit  # scored whole (SEAT: each test)
# Each benchmark keeps its own data path: a StereoSet file is no SEAT folder. The box starts with a
# working source (a Hub dataset id or a classroom file of assets/, from assets/app/defaults.json);
# a benchmark without one (SEAT, WinoBias: local folders only) starts empty and says why.
DEFAULTS = page_defaults("evaluate")
no_default = DEFAULTS["why"].get(benchmark)
data_path = kept(columns[1].text_input, "Data (file, folder or HF dataset id)",
                 value=DEFAULTS["data"].get(benchmark, ""), key=f"eval_data_{benchmark}",
                 placeholder=data_hint(benchmark),
                 help=f"{BENCHMARKS[benchmark].title} reads {BENCHMARKS[benchmark].data}"
                      + (f". {no_default}." if no_default else "")).strip()
limit = kept(columns[2].number_input, "At most N items (0 = all)", min_value=0, value=200, key="eval_limit",
             disabled=whole, help=f"the first N {BENCHMARKS[benchmark].limit_unit}" if not whole else
             "SEAT scores each test whole: choose tests below instead")
batch_size = kept(columns[3].number_input, "Batch size (0 = automatic)", min_value=0, value=0, key="eval_batch")
limit = None if whole else int(limit) or None
if not data_path and no_default:
    st.info(f"{no_default} in the Data box.")
    st.stop()

tests = None
if benchmark == "seat":
    try:
        available = seat_test_names(data_path) if data_path else []
    except BiasLabError as error:
        st.error(str(error))
        st.stop()
    if not available:
        st.info("SEAT needs its folder of sent-bias .jsonl tests: give it in the Data box.")
        st.stop()
    default = default_seat_tests(available)
    # The choice belongs to a folder: another folder starts again from the six gender tests.
    folder_key = hashlib.sha1(data_path.encode()).hexdigest()[:10]
    tests = kept(st.multiselect, "SEAT tests", available, default=default, key=f"eval_seat_tests_{folder_key}",
                 help="default: the six gender tests (weat6–8, word and sentence forms)")
    if not tests:
        st.info("Choose at least one SEAT test.")
        st.stop()

generation = {}
if generates_text(benchmark):
    # Generation and the classifier that scores it; the classifier is loaded once per source.
    boxes = st.columns([3, 1, 1, 1, 1])
    classifier_source = kept(boxes[0].text_input, "Toxicity classifier (hub id or local folder)",
                             DEFAULT_TOXICITY_CLASSIFIER, key="eval_classifier",
                             help="a sequence classifier; known: " + "; ".join(
                                 f"{name}: {entry.description}" for name, entry in TOXICITY_CLASSIFIERS.items())
                             ).strip() or DEFAULT_TOXICITY_CLASSIFIER
    label_name = kept(boxes[1].text_input, "Toxicity label", "", key="eval_label",
                      help="the classifier's label read as toxicity; empty: chosen by name").strip()
    generation = {"max_new_tokens": int(kept(boxes[2].number_input, "Max new tokens", min_value=1, value=40,
                                             key="eval_max_new_tokens", help="tokens generated per continuation")),
                  "samples": int(kept(boxes[3].number_input, "Samples per prompt", min_value=1, value=1,
                                      key="eval_samples", help="continuations generated for each prompt")),
                  "seed": int(kept(boxes[4].number_input, "Seed", min_value=0, value=0, key="eval_seed",
                                   help="before and after sample with the same seed"))}

retarget = False
try:
    check_reach(loaded, benchmark, spec)
except BiasLabError as error:
    retarget = kept(st.checkbox, "Re-target the neuron edits to every token for this evaluation", value=False,
                    key="eval_retarget")
    if not retarget:
        st.warning(str(error))
        st.stop()

inputs = (current_model_settings(), spec.to_json(), benchmark, data_path, limit, int(batch_size),
          tuple(tests or ()), retarget, tuple(sorted(generation.items())),
          (classifier_source, label_name) if generation else None)
options = dict(generation)

label = "Run before and after" if not spec.is_empty else "Run (no intervention: before only)"
start = st.button(label, key="eval_run")
if start and generation:
    try:
        options["classifier"] = classifier(classifier_source, loaded.device, label_name)
    except BiasLabError as error:
        st.error(str(error))
        st.stop()


def work(progress, cancel):
    """Before and after, stored as runs."""
    runs = evaluate_before_after(loaded, benchmark, spec, data=data_path or None, tests=tests, limit=limit,
                                 batch_size=int(batch_size) or None, retarget=retarget, options=options,
                                 progress=progress, cancel=cancel)
    return {"inputs": inputs, "runs": runs}


unit_name = "generations" if generation else "items"
finished = run_job("eval_job", f"{benchmark} {unit_name}", work, start=start)
if finished is not None:
    st.session_state["eval_results"] = finished

# Results stay until the inputs change: a download or "Prepare PNG" click reruns the page.
results = st.session_state.get("eval_results")
if results is None or results["inputs"] != inputs:
    st.info("Choose the benchmark and its data, then press Run.")
    st.stop()
runs = results["runs"]
before, after = runs.before, runs.after
for note in runs.notes():
    st.warning(f"note: {note}")
items = before.config.get("items")
unit = "test" if benchmark == "seat" else "prompt" if runs.generates_text else "item"
st.caption(f"{benchmark} on {data_path or 'the default data'}: {items} {unit}{'s' if items != 1 else ''}"
           + (f" (first {limit})" if limit else "") + f" · after = {describe(spec) if after else 'no intervention'}")
if runs.generates_text:
    st.caption(generation_settings_text(runs.settings()))
downloads.table(runs.summary_table(), f"{benchmark}_summary", "eval_summary")
if benchmark == "stereoset":
    downloads.figure(plots.stereoset_domains(runs.summaries()), "stereoset_domains", "eval_domains")
elif benchmark == "seat":
    downloads.figure(plots.seat_effect_sizes(runs.summaries()), "seat_effect_sizes", "eval_seat")
if not runs.generates_text:
    st.subheader("Items before")
    downloads.table(before.items, f"{benchmark}_items_before", "eval_items")
    if after is not None:
        st.subheader("Items after")
        downloads.table(after.items, f"{benchmark}_items_after", "eval_items_after")
    st.stop()

groups = runs.group_toxicity()
if groups.empty:
    st.info("These prompts have no groups: no per-group toxicity to show.")
else:
    downloads.figure(plots.group_toxicity_bars(groups), f"{benchmark}_groups", "eval_groups")
if benchmark == "toxicity-gap":
    downloads.figure(plots.axis_gap_bars(runs.axis_gaps()), f"{benchmark}_axes", "eval_axes")

st.subheader("Generations before and after" if after is not None else "Generations")
generations = runs.generations()
group_choices = [ALL_GROUPS] + generation_groups(generations)
if remembered("eval_generations_group") not in group_choices:
    forget("eval_generations_group")
controls = st.columns(2)
group = kept(controls[0].selectbox, "Group", group_choices, key="eval_generations_group")
orders = sort_choices(generations)
if remembered("eval_generations_sort") not in orders:
    forget("eval_generations_sort")
order = kept(controls[1].selectbox, "Sort by", orders, key="eval_generations_sort",
             help="or click a column's header in the table")
shown = sort_generations(filter_generations(generations, group), order)
st.caption(f"{len(shown)} of {len(generations)} generations · toxicity = the classifier's probability (0–1)")
downloads.table(shown, f"{benchmark}_generations", "eval_generations",
                column_config={name: st.column_config.NumberColumn(format="%.4f")
                               for name in ("toxicity_before", "toxicity_after") if name in shown})
