"""Dashboard pages against tiny local models (streamlit.testing.v1.AppTest)."""

import json

import pytest
from streamlit.testing.v1 import AppTest

from .app_view import density_expanders, fasp_counts, shown_table
from .conftest import ROOT

PROMPT = "The gender of this lazy person is [MASK]."


def _score_heads(model_dir, folder):
    """A head-scoring run (mlm-loss performance, ig2-gap bias) through the library, as `heads score` makes it."""
    from bias_lab.heads.metrics import metrics_for
    from bias_lab.heads.runs import run_head_scoring
    from bias_lab.models import load_model

    text = folder / "text.txt"
    text.write_text("the doctor is here and she is very kind .\nthis young person is honest .\n")
    prompts = folder / "prompts.jsonl"
    prompts.write_text('{"id": "p0", "prompt": "[MASK] is a doctor .", "pair": ["he", "she"]}\n')
    loaded = load_model(model_dir, device="cpu")
    config = {"perf": "mlm-loss", "perf_data": str(text), "bias": "ig2-gap", "bias_data": str(prompts), "limit": None,
              "bias_limit": None, "seed": 0}
    perf, bias = metrics_for(loaded, perf="mlm-loss", perf_data=str(text), bias="ig2-gap", bias_data=str(prompts))
    return run_head_scoring(loaded, perf, bias, folder / "heads", description=config)


@pytest.fixture
def lab(monkeypatch, tiny_model_dir):
    monkeypatch.setenv("BIAS_LAB_MODEL", str(tiny_model_dir("bert")))
    app = AppTest.from_file(str(ROOT / "views" / "2_Neuron_lab.py"), default_timeout=120)
    app.session_state["lab_neurons"] = "1:3, 1:5"
    return app


def test_neuron_lab_slider_changes_the_after_gap(lab):
    lab.run()
    assert not lab.exception and not lab.error
    lab.slider(key="lab_scale_1_3").set_value(3.0).run()
    assert not lab.exception
    from bias_lab.interventions import InterventionSpec, NeuronEdit
    from bias_lab.neurons.live import predict_mask
    from bias_lab.models import load_model

    loaded = load_model(lab.session_state["app_model"], device="cpu")
    spec = InterventionSpec((NeuronEdit(1, 3, 3.0), NeuronEdit(1, 5, 0.0)), position="mask")
    expected = predict_mask(loaded, PROMPT, "female", "male", spec).gap
    numbers = shown_table(lab, "lab_gap_numbers")
    assert numbers["model"].tolist() == ["before", "after"]
    assert numbers["gap"].iloc[1] == pytest.approx(expected, rel=1e-9)
    assert numbers["gap"].iloc[0] == pytest.approx(predict_mask(loaded, PROMPT, "female", "male").gap, rel=1e-9)
    assert len(lab.metric) == 3


def test_neuron_lab_bad_input_is_an_error_not_a_traceback(lab):
    lab.run()
    lab.text_input(key="lab_neurons").input("9:1").run()
    assert not lab.exception and "layer 9 is out of range" in lab.error[0].value
    lab.text_input(key="lab_neurons").input("1:3").run()
    lab.text_input(key="lab_prompt").input("no mask at all").run()
    assert not lab.exception and "exactly one [MASK] where the model fills in a word; it has none" in lab.error[0].value


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
    app = AppTest.from_file(str(ROOT / "views" / "2_Neuron_lab.py"), default_timeout=120)
    app.query_params["spec"] = json.dumps({"neurons": [{"layer": 0, "neuron": 7, "scale": 2.0}], "heads": [],
                                           "position": "mask"})
    app.run()
    assert not app.exception
    assert app.text_input(key="lab_neurons").value == "0:7"
    assert app.slider(key="lab_scale_0_7").value == 2.0
    assert any("neuron L0:7 ×2" in b.label for b in app.sidebar.button)


@pytest.fixture
def ig2_run_folder(tiny_model_dir, tmp_path):
    from bias_lab.neurons.run import run_ig2
    from bias_lab.models import load_model
    from bias_lab.neurons.prompts import ig2_prompts

    loaded = load_model(tiny_model_dir("bert"), device="cpu")
    return run_ig2(loaded, ig2_prompts("gender", "N", "female", "male", limit_modifiers=2), tmp_path / "ig2",
                   __import__("bias_lab.neurons", fromlist=["IG2Settings"]).IG2Settings(steps=4)).folder


def test_bias_neurons_page_opens_a_stored_run_and_sends_neurons(ig2_run_folder, monkeypatch, tiny_model_dir):
    monkeypatch.setenv("BIAS_LAB_MODEL", str(tiny_model_dir("bert")))
    app = AppTest.from_file(str(ROOT / "views" / "1_Bias_neurons.py"), default_timeout=120).run()
    assert not app.exception and not app.error
    selected = len(shown_table(app, "bn_selected"))
    assert selected > 0
    app.slider(key="bn_prompt_ratio").set_value(1.0).run()
    assert len(shown_table(app, "bn_selected")) <= selected
    app.slider(key="bn_prompt_ratio").set_value(0.2).run()
    app.button(key="bn_send").click().run()
    assert not app.exception and "Sent" in app.toast[0].value


def test_bias_neurons_page_runs_ig2_with_progress(monkeypatch, tiny_model_dir):
    monkeypatch.setenv("BIAS_LAB_MODEL", str(tiny_model_dir("bert")))
    app = AppTest.from_file(str(ROOT / "views" / "1_Bias_neurons.py"), default_timeout=180)
    app.session_state["bn_source"] = "Run IG2 now"
    app.session_state["bn_steps"] = 3
    app.run()
    assert not app.exception
    app.button(key="bn_run_button").click().run()
    assert not app.exception and not app.error
    from bias_lab.neurons.run import load_ig2_run
    from bias_lab.neurons import select_bias_neurons
    from bias_lab.store import RunStore

    result = load_ig2_run(RunStore().list(kind="ig2")[0].artifact_dir)
    assert len(result.prompts) == 17  # one bag of the chosen JUT
    shown = shown_table(app, "bn_selected")
    expected = select_bias_neurons(result.scores, result.prompts)
    assert len(shown) == len(expected)
    assert shown[["layer", "neuron"]].values.tolist() == expected[["layer", "neuron"]].values.tolist()


def test_heads_page_alpha_slider_changes_the_pruned_count(monkeypatch, tiny_model_dir, tmp_path):
    _score_heads(tiny_model_dir("bert"), tmp_path)
    monkeypatch.setenv("BIAS_LAB_MODEL", str(tiny_model_dir("bert")))
    app = AppTest.from_file(str(ROOT / "views" / "3_Heads.py"), default_timeout=120).run()
    assert not app.exception and not app.error
    first = fasp_counts(app)["pruned"]
    assert (shown_table(app, "heads_fasp_table")["status"] == "pruned").sum() == first
    app.slider(key="heads_alpha").set_value(0.25).run()
    assert fasp_counts(app)["pruned"] == 2 and first == 0
    assert (shown_table(app, "heads_fasp_table")["status"] == "pruned").sum() == 2
    app.number_input(key="heads_head").set_value(3).run()
    from bias_lab.interventions import HeadAblation, InterventionSpec
    from bias_lab.neurons.live import predict_mask
    from bias_lab.models import load_model

    loaded = load_model(tiny_model_dir("bert"), device="cpu")
    ablated = predict_mask(loaded, PROMPT, "female", "male", InterventionSpec(heads=(HeadAblation(1, 3),))).gap
    assert not app.exception
    assert shown_table(app, "heads_live_numbers")["gap"].tolist()[-1] == pytest.approx(ablated, rel=1e-9)
    assert ablated != pytest.approx(predict_mask(loaded, PROMPT, "female", "male").gap, rel=1e-6)
    app.button(key="heads_apply").click().run()
    assert "2 heads ablated" in app.toast[0].value


def test_heads_page_opens_a_run_of_the_loaded_model_and_refuses_another_models_heads(monkeypatch, tiny_model_dir,
                                                                                    tmp_path):
    import time

    small, deep = tiny_model_dir("bert"), tiny_model_dir("bert", layers=3)
    (tmp_path / "small").mkdir()
    (tmp_path / "deep").mkdir()
    _score_heads(small, tmp_path / "small")
    time.sleep(1.1)  # the store orders runs by the second they started: the deep run is the newest
    _score_heads(deep, tmp_path / "deep")
    monkeypatch.setenv("BIAS_LAB_MODEL", str(small))
    app = AppTest.from_file(str(ROOT / "views" / "3_Heads.py"), default_timeout=120).run()
    assert not app.exception and not app.error and not app.warning
    assert f" {small.name} " in app.selectbox(key="heads_run").value  # not the newest run, another model's
    assert len(shown_table(app, "heads_fasp_table")) == 2 * 4

    app.selectbox(key="heads_run").select(next(o for o in app.selectbox(key="heads_run").options if f" {deep.name} " in o))
    app.slider(key="heads_alpha").set_value(0.25).run()
    assert not app.exception
    assert "3 layers × 4 heads" in app.warning[0].value and "2 layers × 4 heads" in app.warning[0].value
    assert fasp_counts(app)["pruned"] > 0 and app.button(key="heads_apply").disabled


def test_heads_page_shows_the_iterative_pruning_curve(monkeypatch, tiny_model_dir, tmp_path):
    import json as json_module

    from bias_lab.heads.metrics import metrics_for
    from bias_lab.heads.runs import run_head_importance
    from bias_lab.models import load_model

    scored = _score_heads(tiny_model_dir("bert"), tmp_path)
    loaded = load_model(tiny_model_dir("bert"), device="cpu")
    text = tmp_path / "text.txt"
    perf, bias = metrics_for(loaded, perf="mlm-loss", perf_data=str(text), bias="ig2-gap",
                             bias_data=scored.config["bias_data"])
    importance = run_head_importance(loaded, text.read_text().splitlines(), tmp_path / "importance", perf=perf,
                                     bias=bias, iterative=2, fraction=0.25,
                                     description={"perf": "mlm-loss", "bias": "ig2-gap", "perf_data": str(text)})
    monkeypatch.setenv("BIAS_LAB_MODEL", str(tiny_model_dir("bert")))
    app = AppTest.from_file(str(ROOT / "views" / "3_Heads.py"), default_timeout=120).run()
    assert not app.exception and not app.error
    shown = shown_table(app, "heads_iterative_table")
    assert shown["pruned"].tolist() == importance.curve["pruned"].tolist() == [0, 2, 4]
    assert shown["perf"].tolist() == pytest.approx(importance.curve["perf"].tolist())
    assert [json_module.loads(h) for h in shown["heads"]] == [[list(head) for head in step]
                                                              for step in importance.curve["heads"]]


def test_pruning_masks_page_switches_a_mask_on_and_off(monkeypatch, tiny_model_dir, tmp_path):
    from bias_lab.models import load_model
    from bias_lab.pruning.kaneko import KanekoObjective
    from bias_lab.pruning.train import PruneSettings, train_mask

    loaded = load_model(tiny_model_dir("bert"), device="cpu")
    corpus = [f"the {w} is here and works ." for w in ["he", "she", "nurse", "doctor", "man", "woman"] * 10]
    train_mask(loaded, KanekoObjective(loaded, corpus), tmp_path / "prune", PruneSettings(block="head", lr=0.5, batch_size=8))
    monkeypatch.setenv("BIAS_LAB_MODEL", str(tiny_model_dir("bert")))
    app = AppTest.from_file(str(ROOT / "views" / "4_Pruning_masks.py"), default_timeout=120).run()
    assert not app.exception and not app.error and len(density_expanders(app)) == 1
    app.toggle(key="masks_toggle").set_value(True).run()
    assert not app.exception
    assert any(b.label.startswith("✕ mask") for b in app.sidebar.button)
    app.toggle(key="masks_toggle").set_value(False).run()
    assert not any(b.label.startswith("✕ mask") for b in app.sidebar.button)


def test_compare_and_trade_off_pages_from_stored_runs(monkeypatch, tiny_model_dir, tmp_path):
    from bias_lab.neurons import IG2Settings
    from bias_lab.evaluation import evaluate
    from bias_lab.evaluation.record import run_evaluation
    from bias_lab.neurons.run import run_ig2
    from bias_lab.interventions import InterventionSpec, NeuronEdit
    from bias_lab.models import load_model
    from bias_lab.neurons.prompts import ig2_prompts

    from .test_evaluation import STEREOSET

    monkeypatch.setenv("BIAS_LAB_MODEL", str(tiny_model_dir("bert")))
    for family in ("bert", "distilbert"):
        loaded = load_model(tiny_model_dir(family), device="cpu")
        run_ig2(loaded, ig2_prompts("gender", "N", "female", "male", limit_modifiers=2), tmp_path / family,
                IG2Settings(steps=3))
    app = AppTest.from_file(str(ROOT / "views" / "6_Compare.py"), default_timeout=120).run()
    assert not app.exception and not app.error
    from bias_lab.neurons.run import load_ig2_run
    from bias_lab.neurons import select_bias_neurons

    sets = []
    for family in ("bert", "distilbert"):
        result = load_ig2_run(tmp_path / family)
        table = select_bias_neurons(result.scores, result.prompts)
        sets.append(set(zip(table["layer"], table["neuron"])))
    shared, union = len(sets[0] & sets[1]), len(sets[0] | sets[1])
    lines = [m.value for m in app.markdown]
    if union:
        assert any(line.startswith(f"shared bias neurons: {shared} of {union} (") for line in lines), lines
    else:
        assert "neither run has bias neurons after selection: no overlap to measure" in lines

    from bias_lab.data import load_stereoset

    path = tmp_path / "dev.json"
    path.write_text(json.dumps(STEREOSET))
    data = load_stereoset(path)
    spec = InterventionSpec(tuple(NeuronEdit(1, n, 0.0) for n in range(30)), position="mask")
    run_evaluation(evaluate(loaded, "stereoset", data), loaded, None)
    run_evaluation(evaluate(loaded, "stereoset", data, intervention=spec), loaded, spec)
    app = AppTest.from_file(str(ROOT / "views" / "7_Trade_off.py"), default_timeout=120).run()
    assert not app.exception and not app.error
    points = shown_table(app, "trade_table")
    assert len(points) == 2 and sorted(points["method"]) == ["BNS", "original"]


@pytest.mark.parametrize("page, advice", [("1_Bias_neurons.py", "bias-lab neurons attribute"),
                                          ("3_Heads.py", "bias-lab heads score"),
                                          ("4_Pruning_masks.py", "bias-lab masks train"), ("6_Compare.py", "two finished"),
                                          ("7_Trade_off.py", "Evaluate page"), ("8_Runs.py", "No runs yet")])
def test_pages_with_an_empty_run_store_explain_what_to_do(monkeypatch, tiny_model_dir, page, advice):
    monkeypatch.setenv("BIAS_LAB_MODEL", str(tiny_model_dir("bert")))
    app = AppTest.from_file(str(ROOT / "views" / page), default_timeout=120).run()
    assert not app.exception and not app.error
    assert any(advice in info.value for info in app.info), [info.value for info in app.info]


def test_background_job_reports_progress_and_stops_on_cancel():
    import time

    from ui.jobs import Job

    def work(progress, cancel):
        for step in range(1000):
            cancel.check()
            progress(step, 1000)
            time.sleep(0.01)
        return "finished"

    job = Job(work)
    deadline = time.monotonic() + 10  # the thread's first progress call, however busy the machine
    while job.total != 1000 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert job.running and job.total == 1000
    job.token.cancel()
    job.thread.join(timeout=5)
    assert not job.running and job.cancelled and job.result is None
    quick = Job(lambda progress, cancel: "done")
    quick.thread.join(timeout=5)
    assert quick.result == "done" and not quick.cancelled and quick.error is None
    failing = Job(lambda progress, cancel: (_ for _ in ()).throw(ValueError("bad prompt")))
    failing.thread.join(timeout=5)
    assert failing.error == "ValueError: bad prompt"


def test_bias_neurons_page_cancel_leaves_a_resumable_run(monkeypatch, tiny_model_dir):
    from bias_lab.errors import Cancelled
    from bias_lab.store import RunStore

    import bias_lab.neurons.run as ig2_run

    real = ig2_run.attribute_ig2

    def cancelled(*args, cancel=None, **kwargs):
        raise Cancelled("stop")

    monkeypatch.setattr(ig2_run, "attribute_ig2", cancelled)
    monkeypatch.setenv("BIAS_LAB_MODEL", str(tiny_model_dir("bert")))
    app = AppTest.from_file(str(ROOT / "views" / "1_Bias_neurons.py"), default_timeout=180)
    app.session_state["bn_source"] = "Run IG2 now"
    app.session_state["bn_steps"] = 3
    app.run()
    app.button(key="bn_run_button").click().run()
    assert not app.exception and "cancelled" in app.warning[0].value
    assert RunStore().list(kind="ig2")[0].status == "interrupted"
    monkeypatch.setattr(ig2_run, "attribute_ig2", real)
    app.button(key="bn_run_button").click().run()
    assert not app.exception and not app.error and RunStore().list(kind="ig2")[0].status == "complete"


def test_png_export_on_request(monkeypatch, tiny_model_dir, tmp_path):
    import shutil

    if not shutil.which("chromium") and not shutil.which("google-chrome"):
        pytest.skip("PNG export needs Chrome or Chromium")
    monkeypatch.setenv("BIAS_LAB_MODEL", str(tiny_model_dir("bert")))
    _score_heads(tiny_model_dir("bert"), tmp_path)
    app = AppTest.from_file(str(ROOT / "views" / "3_Heads.py"), default_timeout=180).run()
    app.button(key="heads_perf_png_prepare").click().run()
    assert not app.exception and not app.error
    assert app.session_state["heads_perf_png_bytes"][:4] == b"\x89PNG"


def test_pruning_masks_page_learns_a_mask(monkeypatch, tiny_model_dir, tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(f"the {w} is here and works ." for w in ["he", "she", "nurse", "doctor"] * 10) + "\n")
    monkeypatch.setenv("BIAS_LAB_MODEL", str(tiny_model_dir("bert")))
    app = AppTest.from_file(str(ROOT / "views" / "4_Pruning_masks.py"), default_timeout=180)
    app.session_state["masks_corpus"] = str(corpus)
    app.session_state["masks_block"] = "head"
    app.run()
    app.button(key="masks_learn").click().run()
    assert not app.exception and not app.error
    assert "mask written to" in app.success[0].value
    assert len(density_expanders(app)) == 1


def test_bias_neurons_page_runs_ig2_on_a_classroom_prompt_set(monkeypatch, tiny_model_dir):
    """The classroom sets of assets/prompts/ are offered by name; the gender set is the default and
    runs as its file would from the command line."""
    from bias_lab.assets import asset_path
    from bias_lab.neurons.prompts import load_prompt_file
    from bias_lab.neurons.run import IG2Result
    from bias_lab.store import RunStore

    from .conftest import BERT_VOCAB

    if not BERT_VOCAB.is_file():
        pytest.skip("the classroom prompts' words need the real BERT vocabulary (../shared)")
    monkeypatch.setenv("BIAS_LAB_MODEL", str(tiny_model_dir("bert")))
    app = AppTest.from_file(str(ROOT / "views" / "1_Bias_neurons.py"), default_timeout=240)
    app.session_state["bn_source"] = "Run IG2 now"
    app.session_state["bn_steps"] = 2
    app.run()
    app.radio(key="bn_prompts").set_value("A classroom prompt set").run()
    assert not app.exception and not app.error
    assert app.selectbox(key="bn_prompt_set").options == ["gender", "religion", "ethnicity", "age", "occupation",
                                                          "a file of your own"]
    expected = load_prompt_file(asset_path("prompts", "gender.jsonl"))
    assert any(c.value.startswith(f"{len(expected)} prompts · pairs she–he") for c in app.caption)
    app.selectbox(key="bn_prompt_set").select("a file of your own").run()
    assert app.text_input(key="bn_prompt_file").value == str(asset_path("prompts", "gender.jsonl"))  # pre-filled
    app.selectbox(key="bn_prompt_set").select("gender").run()
    app.button(key="bn_run_button").click().run()
    assert not app.exception and not app.error
    record = RunStore().list(kind="ig2")[0]
    assert record.config["dimension"] == "gender" and record.config["prompts_file"] == str(asset_path("prompts",
                                                                                                      "gender.jsonl"))
    result = IG2Result.load(record.artifact_dir)
    assert result.prompts["id"].tolist() == [p.id for p in expected]


def test_bias_neurons_page_typed_prompt_defaults_come_from_the_assets(monkeypatch, tiny_model_dir):
    from bias_lab.assets import page_defaults

    monkeypatch.setenv("BIAS_LAB_MODEL", str(tiny_model_dir("bert")))
    app = AppTest.from_file(str(ROOT / "views" / "1_Bias_neurons.py"), default_timeout=120)
    app.session_state["bn_source"] = "Run IG2 now"
    app.session_state["bn_prompts"] = "One typed prompt"
    app.run()
    assert not app.exception and not app.error
    defaults = page_defaults("bias_neurons")
    assert app.text_input(key="bn_prompt").value == defaults["prompt"]
    assert [app.text_input(key="bn_cd1").value, app.text_input(key="bn_cd2").value] == defaults["pair"]


def test_live_prompts_default_to_the_assets(monkeypatch, tiny_model_dir):
    from bias_lab.assets import page_defaults

    monkeypatch.setenv("BIAS_LAB_MODEL", str(tiny_model_dir("bert")))
    app = AppTest.from_file(str(ROOT / "views" / "2_Neuron_lab.py"), default_timeout=120).run()
    assert not app.exception
    defaults = page_defaults("neuron_lab")
    assert app.text_input(key="lab_prompt").value == defaults["prompt"] == PROMPT
    assert [app.text_input(key="lab_d1").value, app.text_input(key="lab_d2").value] == defaults["pair"]


def test_pruning_masks_page_learns_from_the_classroom_corpus_by_default(monkeypatch, tiny_model_dir):
    from bias_lab.assets import asset_path

    monkeypatch.setenv("BIAS_LAB_MODEL", str(tiny_model_dir("bert")))
    app = AppTest.from_file(str(ROOT / "views" / "4_Pruning_masks.py"), default_timeout=180)
    app.session_state["masks_block"] = "head"
    app.run()
    assert app.text_input(key="masks_corpus").value == str(asset_path("prompts", "classroom_corpus.txt"))
    app.button(key="masks_learn").click().run()
    assert not app.exception and not app.error
    assert "mask written to" in app.success[0].value
