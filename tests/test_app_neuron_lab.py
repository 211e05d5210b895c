"""The Neuron lab shows the library's numbers, readably, and stays compact with many neurons."""

import json

import pytest
from streamlit.testing.v1 import AppTest

from bias_lab.interventions import InterventionSpec, NeuronEdit
from ui.format import change, number

from .app_view import shown_table
from .conftest import ROOT

PROMPT = "The gender of this lazy person is [MASK]."


@pytest.fixture
def lab(monkeypatch, tiny_model_dir):
    monkeypatch.setenv("BIAS_LAB_MODEL", str(tiny_model_dir("bert")))
    return AppTest.from_file(str(ROOT / "views" / "2_Neuron_lab.py"), default_timeout=120)


def test_shown_numbers_are_the_library_predictions(lab, tiny_loaded):
    from bias_lab.neurons.live import predict_mask

    lab.session_state["lab_neurons"] = "1:3, 1:5"
    lab.run()
    lab.slider(key="lab_scale_1_3").set_value(2.5).run()
    assert not lab.exception and not lab.error
    loaded = tiny_loaded("bert")
    before = predict_mask(loaded, PROMPT, "female", "male")
    after = predict_mask(loaded, PROMPT, "female", "male",
                         InterventionSpec((NeuronEdit(1, 3, 2.5), NeuronEdit(1, 5, 0.0)), position="mask"))
    assert [m.value for m in lab.metric] == [number(after.p_d1, 4), number(after.p_d2, 4), number(after.gap, 4)]
    assert lab.metric[2].delta == change(after.gap - before.gap)
    assert after.gap != before.gap
    assert shown_table(lab, "lab_after")["token"].tolist() == after.top["token"].tolist()
    numbers = shown_table(lab, "lab_gap_numbers")
    assert numbers["gap"].tolist() == pytest.approx([before.gap, after.gap], rel=1e-9)
    assert numbers["p_d1"].tolist() == pytest.approx([before.p_d1, after.p_d1], rel=1e-9)


def test_small_numbers_are_readable():
    assert number(1.234e-7) == "1.23e-07" and number(0.04212) == "0.0421" and number(0) == "0"
    assert change(-3e-6) == "-3.00e-06" and change(0.0) == "no change" and change(0.25) == "+0.25"


def test_many_neurons_get_one_slider_and_a_table(lab):
    lab.query_params["spec"] = json.dumps({"neurons": [{"layer": l, "neuron": n, "scale": 0.0} for l in (0, 1) for n in range(33)]})
    lab.run()
    assert not lab.exception and not lab.error
    assert [s.key for s in lab.slider] == ["lab_scale_all"]
    first = shown_table(lab, "lab_gap_numbers")["gap"].iloc[1]
    lab.slider(key="lab_scale_all").set_value(3.0).run()
    assert not lab.exception and shown_table(lab, "lab_gap_numbers")["gap"].iloc[1] != first
    assert [b.label for b in lab.sidebar.button if b.label.startswith("✕")] == ["✕ 66 neurons ×0"]


def test_errors_speak_the_users_words(lab):
    lab.session_state["lab_neurons"] = "1:3"
    lab.run()
    lab.text_input(key="lab_prompt").input("no mask here").run()
    assert "needs exactly one [MASK]" in lab.error[0].value and "'live'" not in lab.error[0].value
    lab.text_input(key="lab_prompt").input(PROMPT).run()
    lab.text_input(key="lab_d1").input("").run()
    assert "demographic 1 is empty" in lab.error[0].value


def test_apply_updates_the_sidebar_at_once(lab):
    lab.session_state["lab_neurons"] = "1:3"
    lab.run()
    lab.button(key="lab_apply").click().run()
    assert not lab.exception
    assert "1 neuron ×0 at the mask" in " ".join(c.value for c in lab.sidebar.caption)
    assert "active intervention" in lab.toast[0].value
