"""State that must survive moving between pages: the model, device, precision and the active
intervention — one source of truth every page reads (issue: a typed model vanished or was swapped
for the default on every second page)."""

import json

import pytest
from streamlit.testing.v1 import AppTest

from .conftest import ROOT

PAGES = ["views/1_Bias_neurons.py", "views/2_Neuron_lab.py", "views/3_Heads.py", "views/4_Pruning_masks.py",
         "views/5_Evaluate.py", "views/6_Compare.py", "views/7_Trade_off.py", "views/8_Runs.py", "views/home.py"]


def _sidebar_caption(app) -> str:
    return " ".join(c.value for c in app.sidebar.caption)


@pytest.fixture
def home(monkeypatch, tiny_model_dir):
    monkeypatch.setenv("BIAS_LAB_MODEL", str(tiny_model_dir("bert")))
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()


def test_a_typed_model_stays_on_every_page(home, tiny_model_dir):
    gpt2 = str(tiny_model_dir("gpt2"))
    home.text_input(key="model_source").input(gpt2).run()
    home.selectbox(key="dtype").select("bfloat16").run()
    assert not home.exception
    for page in PAGES + PAGES:  # twice round: the bug showed on every second page
        home.switch_page(page).run()
        assert not home.exception, page
        assert home.text_input(key="model_source").value == gpt2, page
        assert home.selectbox(key="dtype").value == "bfloat16", page
        assert "gpt2 · causal" in _sidebar_caption(home), page
        assert home.query_params["model"] in (gpt2, [gpt2]), page


def test_the_neuron_lab_never_swaps_a_causal_model_for_the_default(home, tiny_model_dir):
    home.text_input(key="model_source").input(str(tiny_model_dir("gpt2"))).run()
    home.switch_page("views/2_Neuron_lab.py").run()
    assert not home.exception
    assert "needs a masked language model" in home.error[0].value
    assert "gpt2" in home.error[0].value or str(tiny_model_dir("gpt2")) in home.error[0].value


def test_the_intervention_and_its_url_survive_page_changes(home):
    home.switch_page("views/2_Neuron_lab.py")
    home.session_state["lab_neurons"] = "1:3, 1:5"
    home.run()
    home.button(key="lab_apply").click().run()
    assert not home.exception
    for page in PAGES:
        home.switch_page(page).run()
        assert not home.exception, page
        labels = [b.label for b in home.sidebar.button]
        assert "✕ neuron L1:3 ×0" in labels and "✕ neuron L1:5 ×0" in labels, page
        shared = home.query_params["spec"]
        shared = shared[0] if isinstance(shared, list) else shared
        assert [n["neuron"] for n in json.loads(shared)["neurons"]] == [3, 5], page


def test_a_shared_link_opens_model_and_intervention_on_any_page(monkeypatch, tiny_model_dir):
    monkeypatch.setenv("BIAS_LAB_MODEL", str(tiny_model_dir("bert")))
    app = AppTest.from_file(str(ROOT / "views" / "5_Evaluate.py"), default_timeout=120)
    app.query_params["model"] = str(tiny_model_dir("distilbert"))
    app.query_params["spec"] = json.dumps({"heads": [{"layer": 1, "head": 0}]})
    app.run()
    assert not app.exception
    assert app.text_input(key="model_source").value == str(tiny_model_dir("distilbert"))
    assert "distilbert" in _sidebar_caption(app)
    assert any(b.label == "✕ head L1H0" for b in app.sidebar.button)


def test_many_neurons_get_one_summary_chip(monkeypatch, tiny_model_dir):
    monkeypatch.setenv("BIAS_LAB_MODEL", str(tiny_model_dir("bert")))
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    app.query_params["spec"] = json.dumps({"neurons": [{"layer": l, "neuron": n, "scale": 0.0} for l in (0, 1) for n in range(33)]})
    app.run()
    assert not app.exception
    labels = [b.label for b in app.sidebar.button]
    assert "✕ 66 neurons ×0" in labels
    assert not any(label.startswith("✕ neuron L") for label in labels)
    assert "66 neurons ×0 at the mask" in _sidebar_caption(app)
    app.button(key="chip_neurons_all").click().run()
    assert "none — the model as loaded" in _sidebar_caption(app)
