"""Dashboard pages against tiny local models (streamlit.testing.v1.AppTest)."""

import json

import pytest
from streamlit.testing.v1 import AppTest

from .conftest import ROOT


@pytest.fixture
def lab(monkeypatch, tiny_model_dir):
    monkeypatch.setenv("BIAS_LAB_MODEL", str(tiny_model_dir("bert")))
    app = AppTest.from_file(str(ROOT / "pages" / "2_Neuron_lab.py"), default_timeout=120)
    app.session_state["lab_neurons"] = "1:3, 1:5"
    return app


def test_neuron_lab_slider_changes_the_after_gap(lab):
    lab.run()
    assert not lab.exception and not lab.error
    first = lab.session_state["lab_after_gap"]
    lab.slider(key="lab_scale_1_3").set_value(3.0).run()
    assert not lab.exception
    assert lab.session_state["lab_after_gap"] != first
    assert len(lab.metric) == 3


def test_neuron_lab_bad_input_is_an_error_not_a_traceback(lab):
    lab.run()
    lab.text_input(key="lab_neurons").input("9:1").run()
    assert not lab.exception and "layer 9 is out of range" in lab.error[0].value
    lab.text_input(key="lab_neurons").input("1:3").run()
    lab.text_input(key="lab_prompt").input("no mask at all").run()
    assert not lab.exception and "has 0 masks" in lab.error[0].value


def test_neuron_lab_sends_edits_to_the_sidebar_chips(lab):
    lab.run()
    lab.button(key="lab_apply").click().run()
    assert not lab.exception
    assert any("neuron L1:3" in b.label for b in lab.sidebar.button)
    shared = lab.query_params["spec"]
    shared = shared[0] if isinstance(shared, list) else shared
    assert json.loads(shared)["neurons"][0] == {"layer": 1, "neuron": 3, "scale": 0.0}
    lab.button(key="chip_clear").click().run()
    assert not any("neuron L1:3" in b.label for b in lab.sidebar.button)


def test_neuron_lab_random_neurons_keep_the_count(lab):
    lab.run()
    lab.button(key="lab_random").click().run()
    assert not lab.exception
    assert len([p for p in lab.text_input(key="lab_neurons").value.split(",") if p.strip()]) == 2


def test_intervention_arrives_from_the_url(monkeypatch, tiny_model_dir):
    monkeypatch.setenv("BIAS_LAB_MODEL", str(tiny_model_dir("bert")))
    app = AppTest.from_file(str(ROOT / "pages" / "2_Neuron_lab.py"), default_timeout=120)
    app.query_params["spec"] = json.dumps({"neurons": [{"layer": 0, "neuron": 7, "scale": 2.0}], "heads": [],
                                           "position": "mask"})
    app.run()
    assert not app.exception
    assert app.text_input(key="lab_neurons").value == "0:7"
    assert app.slider(key="lab_scale_0_7").value == 2.0
    assert any("neuron L0:7 ×2" in b.label for b in app.sidebar.button)
