"""Lesson: a guided walk in six steps — ask the model, find where the gap lives, switch neurons off,
remove heads, check that the edit generalises and what it costs. Each step is a short text
(``assets/lessons/NN_*.md``) above one computation of :mod:`bias_lab.lesson` on the loaded model;
the step is in the URL (``?step=4`` opens step 4) and results stay while you move around."""

import streamlit as st

from bias_lab import lesson, plots
from bias_lab.errors import BiasLabError
from bias_lab.metrics import metric_of
from ui import downloads, presenter
from ui.format import metric_with_change, number
from ui.intervention import apply_spec, current_spec, describe
from ui.jobs import run_job
from ui.shell import link_to, sidebar
from ui.state import kept, remembered

st.set_page_config(page_title="Lesson · bias lab", layout="wide")
presenting = presenter.apply()

STEPS = lesson.lesson_steps()
DEFAULTS = lesson.lesson_defaults()
STEP_KEY, URL_PARAMETER, WRITTEN_KEY = "lesson_step", "step", "_lesson_step_written"
RESULTS_KEY = "lesson_results"
SCIENTIFIC = st.column_config.NumberColumn(format="%.3e")


# --- the step: session state, mirrored in the URL -------------------------------------------------

def current_step() -> int:
    """The step to show: a ``?step=`` the page did not write itself (a shared link, a link from
    another page) wins; otherwise the session's step, so reruns and page changes keep it."""
    shared = st.query_params.get(URL_PARAMETER)
    if shared is not None and shared != st.session_state.get(WRITTEN_KEY):
        chosen = lesson.parse_step(shared, len(STEPS))
        if chosen is not None:
            st.session_state[STEP_KEY] = chosen
    step = lesson.parse_step(st.session_state.get(STEP_KEY, 1), len(STEPS)) or 1
    st.session_state[STEP_KEY] = step
    # The other parameters (model, device, dtype, spec) are the sidebar's: only ours is touched.
    if st.query_params.get(URL_PARAMETER) != str(step):
        st.query_params[URL_PARAMETER] = str(step)
    st.session_state[WRITTEN_KEY] = str(step)
    return step


def go_to(step: int) -> None:
    st.session_state[STEP_KEY] = step


def jumped() -> None:
    go_to(st.session_state["lesson_jump"])


# --- results carried between steps (kept when you visit other pages) -------------------------------

def results() -> dict:
    return st.session_state.setdefault(RESULTS_KEY, {})


def result(name: str, key: tuple):
    """The stored result ``name`` if it was computed for ``key`` (the model and the step's inputs)."""
    entry = results().get(name)
    return entry[1] if entry is not None and entry[0] == key else None


def computed(name: str, key: tuple, label: str, work, *, start: bool):
    """Run ``work(progress, cancel)`` in the background (progress bar, Cancel) when ``start``; the
    result is stored under ``name`` with ``key`` and returned once it matches the inputs."""
    finished = run_job(f"lesson_job_{name}", label, lambda progress, cancel: (key, work(progress, cancel)),
                       start=start)
    if finished is not None:
        results()[name] = finished
    return result(name, key)


def model_key(loaded) -> tuple:
    return (loaded.source, str(loaded.device), str(loaded.dtype))


def ready(loaded, step: int) -> bool:
    """Whether the step can compute; else one line saying why (no model, or the wrong kind)."""
    if loaded is None:
        st.info("Load a model in the sidebar to run this step — the text above needs none.")
        return False
    note = lesson.unavailable(loaded, step)
    if note is not None:
        st.info(note)
        return False
    return True


def inputs() -> tuple[str, str, str]:
    """The prompt and the two words of step 1 (typed there, used by every step)."""
    return (remembered("lesson_prompt", DEFAULTS.prompt), remembered("lesson_d1", DEFAULTS.d1).strip(),
            remembered("lesson_d2", DEFAULTS.d2).strip())


def prompt_caption() -> None:
    prompt, d1, d2 = inputs()
    st.caption(f"Prompt: “{prompt}” — {d1} vs {d2} (change it in step 1)")


def spec_caption(spec) -> None:
    st.caption(f"Active intervention: {describe(spec)}")


# --- the steps --------------------------------------------------------------------------------------

def step_ask(loaded) -> None:
    columns = st.columns([4, 1, 1])
    prompt = kept(columns[0].text_input, "Prompt (one [MASK])", value=DEFAULTS.prompt, key="lesson_prompt")
    d1 = kept(columns[1].text_input, "Word 1 (d1)", value=DEFAULTS.d1, key="lesson_d1").strip()
    d2 = kept(columns[2].text_input, "Word 2 (d2)", value=DEFAULTS.d2, key="lesson_d2").strip()
    with presenter.settings():
        top_k = int(kept(st.number_input, "Top predictions shown", min_value=1, max_value=50, value=DEFAULTS.top_k,
                         key="lesson_top_k"))
    if not ready(loaded, 1):
        return
    try:
        prediction = lesson.ask(loaded, prompt, d1, d2, top_k=top_k)
    except BiasLabError as error:
        st.error(str(error))
        return
    results()["ask"] = ((model_key(loaded), prompt, d1, d2), prediction)
    metrics = st.columns(3)
    metrics[0].metric(f"P({d1})", number(prediction.p_d1))
    metrics[1].metric(f"P({d2})", number(prediction.p_d2))
    metrics[2].metric("gap |P(d1) − P(d2)|", number(prediction.gap))
    low, high = sorted((prediction.p_d1, prediction.p_d2))
    if low > 0:
        favoured = d1 if prediction.p_d1 >= prediction.p_d2 else d2
        st.caption(f"The model finds “{favoured}” {number(high / low)} times as likely as the other word here.")
    st.subheader("What the model puts at the mask")
    downloads.table(prediction.top, "lesson_predictions", "lesson_top",
                    column_config={"probability": st.column_config.NumberColumn("probability", format="%.3e")})


def attribution_settings() -> tuple[int, int]:
    return (int(remembered("lesson_ig2_steps", DEFAULTS.ig2_steps)), int(remembered("lesson_neurons", DEFAULTS.neurons)))


def attribution(loaded, button: str, button_key: str):
    """Step 2's IG2 of the prompt: the stored one, or started by ``button``."""
    prompt, d1, d2 = inputs()
    steps, _ = attribution_settings()
    key = (model_key(loaded), prompt, d1, d2, steps)
    start = st.button(button, key=button_key, type="primary") if result("attribution", key) is None else False
    return computed("attribution", key, "IG2", lambda progress, cancel: lesson.attribute_one(
        loaded, prompt, d1, d2, steps, progress=progress, cancel=cancel), start=start)


def step_where(loaded) -> None:
    prompt_caption()
    with presenter.settings():
        columns = st.columns(2)
        kept(columns[0].slider, "Integration steps m", min_value=2, max_value=50, value=DEFAULTS.ig2_steps,
             key="lesson_ig2_steps")
        kept(columns[1].slider, "Top neurons (used in step 3)", min_value=1, max_value=50, value=DEFAULTS.neurons,
             key="lesson_neurons")
    if not ready(loaded, 2):
        return
    found = attribution(loaded, "Find the neurons (IG2)", "lesson_ig2_run")
    if found is None:
        st.caption("Press the button: IG2 of this one prompt takes seconds.")
        return
    _, count = attribution_settings()
    metrics = st.columns(3)
    metrics[0].metric("gap |P(d1) − P(d2)|", number(found.gap))
    metrics[1].metric("Σ of all scores", number(float(found.scores.double().sum())))
    metrics[2].metric("layers × neurons", f"{found.scores.shape[0]} × {found.scores.shape[1]}")
    downloads.figure(plots.attribution_heatmap(found.scores.numpy(), f"IG2 score per neuron: “{found.prompt}”"),
                     "lesson_ig2_heatmap", "lesson_heatmap")
    st.subheader(f"The top {count} neurons")
    downloads.table(found.top(count), "lesson_top_neurons", "lesson_top_neurons", column_config={"score": SCIENTIFIC})


def step_switch(loaded) -> None:
    prompt_caption()
    with presenter.settings():
        columns = st.columns(2)
        draws = int(kept(columns[0].slider, "Random draws", min_value=1, max_value=10, value=DEFAULTS.draws,
                         key="lesson_draws"))
        seed = int(kept(columns[1].number_input, "Seed of the random neurons", min_value=0, value=DEFAULTS.seed,
                        key="lesson_seed"))
    if not ready(loaded, 3):
        return
    found = attribution(loaded, "Find the neurons first (step 2's IG2)", "lesson_ig2_run_here")
    if found is None:
        st.info("This step switches off the neurons step 2 finds: press the button (or go back to step 2).")
        return
    prompt, d1, d2 = inputs()
    steps, count = attribution_settings()
    key = (model_key(loaded), prompt, d1, d2, steps, count, draws, seed)
    switched = result("switch", key)
    if switched is None:
        try:
            switched = lesson.switch_off(loaded, prompt, d1, d2, found.top(count), draws=draws, seed=seed)
        except BiasLabError as error:
            st.error(str(error))
            return
        results()["switch"] = (key, switched)
    metrics = st.columns(4)
    metrics[0].metric("gap as loaded", number(switched.before))
    metric_with_change(metrics[1], f"top {count} ×0", switched.after("suppress"), switched.before, lower_is_better=True)
    metric_with_change(metrics[2], f"{count} random ×0 (mean of {draws})", switched.after("suppress", "random"),
                       switched.before, lower_is_better=True)
    metric_with_change(metrics[3], f"top {count} ×2", switched.after("amplify"), switched.before, lower_is_better=True)
    downloads.figure(plots.gap_before_after(switched.before, switched.after("suppress"),
                                            f"The gap before and with the top {count} neurons ×0"),
                     "lesson_switch_gap", "lesson_switch_gap")
    with st.expander("All numbers: suppress and amplify, chosen and random neurons", expanded=not presenting):
        downloads.table(switched.table, "lesson_switch_off", "lesson_switch",
                        column_config={c: SCIENTIFIC for c in ("gap_before", "gap_after", "sd")})
    spec = current_spec()
    if st.button(f"Make the top {count} neurons ×0 the active intervention", key="lesson_apply_neurons"):
        apply_spec(lesson.with_neurons(spec, switched.spec("suppress")),
                   f"The top {count} neurons are suppressed (×0) at the mask on every page — see the sidebar.")


def step_heads(loaded) -> None:
    prompt_caption()
    if not ready(loaded, 4):
        return
    prompt, d1, d2 = inputs()
    key = (model_key(loaded), prompt, d1, d2)
    start = st.button("Remove each head in turn", key="lesson_heads_run", type="primary") \
        if result("heads", key) is None else False
    effects = computed("heads", key, "heads", lambda progress, cancel: lesson.head_effects(
        loaded, prompt, d1, d2, progress=progress, cancel=cancel), start=start)
    if effects is None:
        st.caption(f"One forward pass per head: {loaded.num_layers * loaded.num_heads} passes.")
        return
    layer, head = effects.strongest()
    strongest = effects.table[(effects.table["layer"] == layer) & (effects.table["head"] == head)].iloc[0]
    metrics = st.columns(2)
    metrics[0].metric("gap with every head", number(effects.baseline))
    metric_with_change(metrics[1], f"gap without head L{layer}H{head}", float(strongest["gap"]), effects.baseline,
                       lower_is_better=True)
    downloads.figure(plots.head_grid(effects.table, "gap_change", "Change of the gap when a head is removed",
                                     "Δ gap"), "lesson_head_grid", "lesson_head_grid")
    with st.expander("Every head, the strongest first", expanded=False):
        downloads.table(effects.table.sort_values("gap_change", kind="stable"), "lesson_head_effects", "lesson_heads",
                        column_config={"gap": SCIENTIFIC, "gap_change": SCIENTIFIC})
    spec = current_spec()
    already = any((h.layer, h.head) == (layer, head) for h in spec.heads)
    if st.button(f"Remove head L{layer}H{head} live (add it to the intervention)", key="lesson_apply_head",
                 disabled=already):
        apply_spec(lesson.with_head(spec, layer, head),
                   f"Head L{layer}H{head} is removed on every page — see the sidebar.")
    if already:
        st.caption(f"Head L{layer}H{head} is already part of the active intervention.")


DATA_CHOICES = ("Classroom prompts (offline)", f"StereoSet (first {DEFAULTS.stereoset_limit} examples)")


def step_generalise(loaded) -> None:
    spec = current_spec()
    spec_caption(spec)
    if spec.is_empty:
        st.info("No intervention yet: steps 3 and 4 build one. Without it only “before” is measured.")
    choice = kept(st.radio, "Data", DATA_CHOICES, key="lesson_data", horizontal=True)
    stereoset = choice == DATA_CHOICES[1]
    data, limit = None, None
    if stereoset:
        data = kept(st.text_input, "StereoSet (hub id, or a dev.json file)", value=DEFAULTS.stereoset_data,
                    key="lesson_stereoset_data").strip() or DEFAULTS.stereoset_data
        with presenter.settings():
            limit = int(kept(st.number_input, "Examples", min_value=1, value=DEFAULTS.stereoset_limit,
                             key="lesson_stereoset_limit"))
    if not ready(loaded, 5):
        return
    benchmark = "stereoset" if stereoset else "ig2-gap"
    key = (model_key(loaded), spec.to_json(), benchmark, data, limit)
    start = st.button("Measure before and after", key="lesson_generalise_run", type="primary")
    runs = computed("generalise", key, benchmark, lambda progress, cancel: lesson.generalise(
        loaded, spec, data, benchmark=benchmark, limit=limit, progress=progress, cancel=cancel), start=start)
    if runs is None:
        return
    for note in runs.notes():
        st.caption(f"note: {note}")
    if benchmark == "ig2-gap":
        items = lesson.gap_items(runs)
        before = float(items["gap_before"].mean())
        metrics = st.columns(3)
        metrics[0].metric("prompts", str(len(items)))
        metrics[1].metric("mean gap as loaded", number(before))
        if runs.after is not None:
            metric_with_change(metrics[2], "mean gap with the intervention", float(items["gap_after"].mean()), before,
                               lower_is_better=True)
            shrank = int((items["change"] < 0).sum())
            st.caption(f"The gap shrank on {shrank} of {len(items)} prompts.")
        downloads.table(items, "lesson_generalise", "lesson_generalise",
                        column_config={c: SCIENTIFIC for c in ("gap_before", "gap_after", "change")})
    else:
        downloads.table(runs.summary_table(), "lesson_stereoset", "lesson_stereoset")
        downloads.figure(plots.stereoset_domains(runs.summaries()), "lesson_stereoset_domains", "lesson_domains")
    st.caption("Both evaluations are stored as runs (see the Runs page); step 6 puts them on the trade-off plot.")


def step_cost(loaded) -> None:
    spec = current_spec()
    spec_caption(spec)
    if not ready(loaded, 6):
        return
    key = (model_key(loaded), spec.to_json(), "passage")
    start = st.button("Measure the perplexity before and after", key="lesson_cost_run", type="primary")
    runs = computed("cost", key, "perplexity", lambda progress, cancel: lesson.cost(
        loaded, spec, progress=progress, cancel=cancel), start=start)
    if runs is not None:
        for note in runs.notes():
            st.caption(f"note: {note}")
        before = float(runs.before.summary["perplexity"])
        metrics = st.columns(2)
        name = "pseudo-perplexity" if loaded.kind == "masked" else "perplexity"
        metrics[0].metric(f"{name} as loaded", number(before))
        if runs.after is not None:
            metric_with_change(metrics[1], f"{name} with the intervention", float(runs.after.summary["perplexity"]),
                               before, lower_is_better=True)
        entry = results().get("generalise")
        bias_runs = entry[1] if entry is not None and entry[0][:2] == key[:2] else None
        points = lesson.tradeoff(bias_runs, runs)
        if points.empty:
            st.info("Measure step 5 with the same intervention to place these runs on the trade-off plot.")
        else:
            bias_metric = metric_of(bias_runs.benchmark, "bias").name
            downloads.figure(plots.tradeoff_runs(points, "The lesson's trade-off: bias against perplexity",
                                                 x_label=plots.axis_name("perplexity", "perplexity"),
                                                 y_label=plots.axis_name(bias_metric, "bias")),
                             "lesson_tradeoff", "lesson_tradeoff")
    link_to("views/7_Trade_off.py", "Open the Trade-off page →")
    example_runs(loaded)


def example_runs(loaded) -> None:
    st.subheader("The lesson's example runs")
    st.caption("Four stored runs — the classroom prompts' gap and the passage's perplexity, before and after the "
               "intervention the lesson builds with its defaults (top neurons ×0 and the strongest head removed) — "
               "so that the Trade-off and Runs pages have something to show, e.g. when teaching from a fresh store.")
    note = lesson.unavailable(loaded, 5)
    if note is not None:
        st.info(note)
        return
    key = (model_key(loaded), "example runs")
    start = st.button("Create the lesson's example runs", key="lesson_example_runs")
    made = computed("examples", key, "the lesson's example runs", lambda progress, cancel: lesson.create_example_runs(
        loaded, progress=progress, cancel=cancel), start=start)
    if made is not None:
        st.success(f"{made.count} runs stored ({describe(made.spec)}): open the Trade-off page to see them.")


RUNNERS = {1: step_ask, 2: step_where, 3: step_switch, 4: step_heads, 5: step_generalise, 6: step_cost}


# --- the page ------------------------------------------------------------------------------------------

step = current_step()
top = st.columns([2, 1])  # room for the whole "Presenter mode" label on a laptop screen
top[0].title("Lesson")
with top[1]:
    presenter.toggle()
loaded = sidebar()
shown = STEPS[step - 1]
st.progress(step / len(STEPS), text=f"Step {step} of {len(STEPS)}")
if not presenting:
    st.session_state["lesson_jump"] = step  # re-seed: the box shows the step, however it was reached
    st.selectbox("Go to step", [s.number for s in STEPS], key="lesson_jump", on_change=jumped,
                 format_func=lambda number: f"{number}. {STEPS[number - 1].title}")
st.header(f"{shown.number}. {shown.title}")
st.markdown(shown.text)
st.divider()
RUNNERS[step](loaded)
st.divider()
with st.container(horizontal=True, horizontal_alignment="distribute"):
    st.button("← Back", key="lesson_back", on_click=go_to, args=(step - 1,), disabled=step == 1)
    if step < len(STEPS):
        st.button(f"Next: {STEPS[step].title} →", key="lesson_next", on_click=go_to, args=(step + 1,), type="primary")
    else:
        st.button("Next →", key="lesson_next", disabled=True)
