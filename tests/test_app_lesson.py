"""The Lesson page (streamlit.testing.v1.AppTest) on tiny local models: every step computes what
bias_lab.lesson computes, Next / Back and ``?step=N`` choose the step, the step survives reruns and
page changes, presenter mode folds the settings away, and a causal LM gets one-line notes."""

import json

import pytest
from streamlit.testing.v1 import AppTest

from bias_lab import lesson

from .app_view import has_table, shown_table, shown_text
from .conftest import ROOT

PAGE = str(ROOT / "views" / "0_Lesson.py")
DEFAULTS = lesson.lesson_defaults()
TITLES = [step.title for step in lesson.lesson_steps()]


@pytest.fixture
def open_lesson(tiny_model_dir):
    def open_page(family="bert", step=None, spec=None, **state):
        app = AppTest.from_file(PAGE, default_timeout=180)
        app.session_state["app_model"] = str(tiny_model_dir(family))
        if step is not None:
            app.query_params["step"] = str(step)
        if spec is not None:
            app.query_params["spec"] = json.dumps(spec)
        for key, value in state.items():
            app.session_state[key] = value
        return app.run()

    return open_page


def _param(app, name):
    value = app.query_params.get(name)
    return value[-1] if isinstance(value, list) else value


def _step_shown(app) -> int:
    """The step the page shows, read from its header ('3. Switch them off') and checked against the URL."""
    headers = [h.value for h in app.header if h.value[:1].isdigit()]
    assert len(headers) == 1, headers
    number = int(headers[0].split(".")[0])
    assert headers[0] == f"{number}. {TITLES[number - 1]}"
    assert _param(app, "step") == str(number)
    return number


def _clean(app) -> None:
    assert not app.exception, app.exception
    assert not app.error, [e.value for e in app.error]


def _charts(app) -> int:
    return len(app.get("plotly_chart"))


def test_walk_every_step_with_next_and_back(open_lesson, tiny_loaded, tiny_model_dir):
    from bias_lab.store import RunStore

    loaded = tiny_loaded("bert")
    app = open_lesson()
    _clean(app)
    assert _step_shown(app) == 1
    # Step 1: the numbers of a direct call.
    asked = lesson.ask(loaded, DEFAULTS.prompt, DEFAULTS.d1, DEFAULTS.d2, top_k=DEFAULTS.top_k)
    shown = shown_table(app, "lesson_top")
    assert shown["token"].tolist() == asked.top["token"].tolist()
    assert shown["probability"].tolist() == pytest.approx(asked.top["probability"].tolist())
    assert [m.label for m in app.metric] == ["P(he)", "P(she)", "gap |P(d1) − P(d2)|"]
    assert app.button(key="lesson_back").disabled

    # Step 2: IG2 of the prompt.
    app.button(key="lesson_next").click().run()
    _clean(app)
    assert _step_shown(app) == 2 and not has_table(app, "lesson_top_neurons")
    app.button(key="lesson_ig2_run").click().run()
    _clean(app)
    found = lesson.attribute_one(loaded, DEFAULTS.prompt, DEFAULTS.d1, DEFAULTS.d2, DEFAULTS.ig2_steps)
    top = shown_table(app, "lesson_top_neurons")
    assert list(zip(top["layer"], top["neuron"])) == list(zip(*found.top(DEFAULTS.neurons)[["layer", "neuron"]].T.values))
    assert _charts(app) == 1

    # Step 3: the top neurons switched off, and made the active intervention.
    app.button(key="lesson_next").click().run()
    _clean(app)
    assert _step_shown(app) == 3
    switched = lesson.switch_off(loaded, DEFAULTS.prompt, DEFAULTS.d1, DEFAULTS.d2, found.top(DEFAULTS.neurons),
                                 draws=DEFAULTS.draws, seed=DEFAULTS.seed)
    assert shown_table(app, "lesson_switch")["gap_after"].tolist() == pytest.approx(switched.table["gap_after"].tolist())
    app.button(key="lesson_apply_neurons").click().run()
    _clean(app)
    assert _step_shown(app) == 3
    assert "neurons are suppressed" in app.toast[0].value
    assert any(f"{DEFAULTS.neurons} neurons ×0" in b.label for b in app.sidebar.button)
    assert len(json.loads(_param(app, "spec"))["neurons"]) == DEFAULTS.neurons

    # Step 4: one value per head; the strongest head joins the intervention.
    app.button(key="lesson_next").click().run()
    app.button(key="lesson_heads_run").click().run()
    _clean(app)
    assert _step_shown(app) == 4
    effects = lesson.head_effects(loaded, DEFAULTS.prompt, DEFAULTS.d1, DEFAULTS.d2)
    heads = shown_table(app, "lesson_heads")
    assert len(heads) == loaded.num_layers * loaded.num_heads
    assert heads["gap"].tolist() == pytest.approx(effects.table.sort_values("gap_change", kind="stable")["gap"].tolist())
    layer, head = effects.strongest()
    app.button(key="lesson_apply_head").click().run()
    _clean(app)
    assert f"✕ head L{layer}H{head}" in [b.label for b in app.sidebar.button]
    assert app.button(key="lesson_apply_head").disabled
    spec = json.loads(_param(app, "spec"))
    assert spec["heads"] == [{"layer": layer, "head": head}] and len(spec["neurons"]) == DEFAULTS.neurons

    # Step 5: the classroom prompts before and after that intervention.
    app.button(key="lesson_next").click().run()
    assert _step_shown(app) == 5
    app.button(key="lesson_generalise_run").click().run()
    _clean(app)
    items = shown_table(app, "lesson_generalise")
    runs = lesson.generalise(loaded, lesson.with_head(switched.spec("suppress"), layer, head))
    expected = lesson.gap_items(runs)
    assert items["gap_before"].tolist() == pytest.approx(expected["gap_before"].tolist())
    assert items["gap_after"].tolist() == pytest.approx(expected["gap_after"].tolist())

    # Step 6: the perplexity, and the two points on the trade-off plot.
    app.button(key="lesson_next").click().run()
    assert _step_shown(app) == 6
    app.button(key="lesson_cost_run").click().run()
    _clean(app)
    assert any(m.label.startswith("pseudo-perplexity with the intervention") for m in app.metric)
    assert _charts(app) == 1 and "Measure step 5" not in shown_text(app)
    assert app.button(key="lesson_next").disabled
    methods = {r.summary["method"] for r in RunStore().list(kind="evaluate")}
    assert methods == {"original", "BNS + head pruning"}

    # Back: the results of earlier steps are still there.
    app.button(key="lesson_back").click().run()
    _clean(app)
    assert _step_shown(app) == 5 and has_table(app, "lesson_generalise")
    for _ in range(3):
        app.button(key="lesson_back").click().run()
    assert _step_shown(app) == 2 and has_table(app, "lesson_top_neurons")


@pytest.mark.parametrize("given, expected", [("4", 4), ("6", 6), ("1", 1), ("99", 6), ("zero", 1)])
def test_the_url_opens_a_step_directly(open_lesson, given, expected):
    app = open_lesson(step=given)
    _clean(app)
    assert _step_shown(app) == expected


def test_the_step_param_keeps_the_other_url_params(open_lesson, tiny_model_dir):
    spec = {"neurons": [], "heads": [{"layer": 1, "head": 2}], "position": "mask"}
    app = open_lesson(step=5, spec=spec)
    _clean(app)
    assert _step_shown(app) == 5
    assert json.loads(_param(app, "spec"))["heads"] == [{"layer": 1, "head": 2}]
    assert _param(app, "model") == str(tiny_model_dir("bert"))
    assert "1 head ablated" in shown_text(app)
    app.button(key="lesson_next").click().run()
    assert _step_shown(app) == 6 and _param(app, "model") == str(tiny_model_dir("bert"))
    assert json.loads(_param(app, "spec"))["heads"] == [{"layer": 1, "head": 2}]


def test_the_step_and_the_results_survive_reruns_and_page_changes(tiny_model_dir):
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    app.session_state["app_model"] = str(tiny_model_dir("bert"))
    app.run()
    app.query_params["step"] = "2"
    app.switch_page("views/0_Lesson.py").run()
    _clean(app)
    assert _step_shown(app) == 2
    app.button(key="lesson_ig2_run").click().run()
    app.button(key="lesson_next").click().run()
    _clean(app)
    assert _step_shown(app) == 3
    app.run()
    assert _step_shown(app) == 3
    for page in ("views/2_Neuron_lab.py", "views/home.py"):
        app.query_params.pop("step", None)  # a page change clears the URL
        app.switch_page(page).run()
        assert not app.exception and "step" not in app.query_params, page
    app.switch_page("views/0_Lesson.py").run()
    _clean(app)
    assert _step_shown(app) == 3
    assert has_table(app, "lesson_switch")  # step 2's neurons were kept: no need to run IG2 again
    app.button(key="lesson_back").click().run()
    assert _step_shown(app) == 2 and has_table(app, "lesson_top_neurons")


def test_the_jump_box_goes_to_any_step(open_lesson):
    app = open_lesson()
    app.selectbox(key="lesson_jump").select(5).run()
    _clean(app)
    assert _step_shown(app) == 5 and app.selectbox(key="lesson_jump").value == 5
    app.button(key="lesson_back").click().run()
    assert _step_shown(app) == 4 and app.selectbox(key="lesson_jump").value == 4


def _presenter_css(app) -> bool:
    return any("bias-lab-presenter" in str(element.proto) for element in app.get("html"))


def test_presenter_mode_on_and_off(open_lesson):
    app = open_lesson(step=2)
    assert not _presenter_css(app)
    assert not any(e.label == "Settings" for e in app.expander) and app.slider(key="lesson_ig2_steps")
    assert app.selectbox(key="lesson_jump")
    app.toggle(key="presenter_toggle").set_value(True).run()
    _clean(app)
    assert app.session_state["presenter_mode"] is True
    assert _presenter_css(app)
    assert any(e.label == "Settings" for e in app.expander)  # the advanced settings are folded away
    assert not [s for s in app.selectbox if s.key == "lesson_jump"]  # fewer controls
    assert _step_shown(app) == 2
    app.button(key="lesson_next").click().run()  # the mode is remembered from run to run
    assert _presenter_css(app) and _step_shown(app) == 3
    app.toggle(key="presenter_toggle").set_value(False).run()
    _clean(app)
    assert not _presenter_css(app) and app.session_state["presenter_mode"] is False
    assert app.selectbox(key="lesson_jump")


def test_any_page_turns_presenter_mode_on_with_one_call():
    def page():
        import streamlit as st

        from ui import presenter

        st.set_page_config(page_title="any page", layout="wide")
        presenter.presenter()
        with presenter.settings():
            st.slider("an advanced setting", 0, 10, 3, key="advanced")

    app = AppTest.from_function(page, default_timeout=60).run()
    assert not app.exception
    toggle = app.sidebar.toggle[0]
    assert toggle.label == "Presenter mode" and toggle.value is False and not _presenter_css(app)
    toggle.set_value(True).run()
    assert not app.exception and _presenter_css(app)
    assert [e.label for e in app.expander] == ["Settings"]


def test_a_causal_lm_gets_one_line_notes(open_lesson, tiny_model_dir):
    app = open_lesson("gpt2")
    for step in range(1, 7):
        _clean(app)
        assert _step_shown(app) == step
        notes = [i.value for i in app.info if i.value.startswith(f"Step {step} needs")]
        if step < 6:
            assert len(notes) == 1 and "masked LM" in notes[0] and "\n" not in notes[0], step
            assert not [b for b in app.button if b.key and b.key.endswith("_run")], step
            app.button(key="lesson_next").click().run()
    # Step 6 measures the perplexity of a causal LM too; the example runs need a masked LM.
    assert any("Step 5 needs a masked LM" in i.value for i in app.info)
    app.button(key="lesson_cost_run").click().run()
    _clean(app)
    assert any(m.label == "perplexity as loaded" for m in app.metric)


def test_the_lessons_example_runs_button(open_lesson):
    from bias_lab.evaluation.tradeoff import tradeoff_points
    from bias_lab.store import RunStore

    app = open_lesson(step=6)
    app.button(key="lesson_example_runs").click().run()
    _clean(app)
    assert "4 runs stored" in app.success[0].value
    assert len(RunStore().list(kind="evaluate", status="complete")) == 4
    assert sorted(tradeoff_points(bias="ig2-gap", performance="perplexity")["method"]) == [
        "BNS + head pruning", "original"]
