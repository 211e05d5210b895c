"""The Compression page (issue 15) against tiny models: a comparison built on the page equals the
library's; a stored comparison shows every figure, each drawing the table's numbers; the active
intervention joins as a variant; a student distilled on the page is offered as a model."""

import base64
import json

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from bias_lab.compression.compare import CompareSettings, compare_models

from .app_view import has_table, shown_table, shown_text
from .conftest import ROOT
from .test_compare_models import STEREOSET

PAGE = str(ROOT / "views" / "9_Compression.py")
TEXT = ["the doctor is very kind and works in the city .", "she reads a book at home every day ."]
TIMED = "inference_ms_per_token"  # measured, not computed: left out of equality checks


def _array(value):
    """A plotly JSON array: a list, or a typed array ({"dtype", "bdata", "shape"})."""
    if isinstance(value, dict) and "bdata" in value:
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"]).tolist()
    return value


def _chart(app, key):
    found = [chart for chart in app.get("plotly_chart") if chart.key == f"{key}_chart"]
    assert len(found) == 1, f"{len(found)} charts {key!r} on the page"
    return json.loads(found[0].proto.spec)


@pytest.fixture
def files(tmp_path):
    stereoset, text = tmp_path / "dev.json", tmp_path / "text.txt"
    stereoset.write_text(json.dumps(STEREOSET))
    text.write_text("\n".join(TEXT) + "\n")
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"id": f"{g}{i}", "prompt": f"the {w} {g} are", "group": g, "axis": "gender"})
                               + "\n" for g in ("women", "men") for i, w in enumerate(["young", "old"])))
    return {"stereoset": stereoset, "perplexity": text, "toxicity": prompts}


@pytest.fixture
def models(tiny_model_dir, monkeypatch):
    teacher, student = tiny_model_dir("gpt2"), tiny_model_dir("gpt2", layers=1)
    monkeypatch.setenv("BIAS_LAB_MODEL", str(teacher))
    return teacher, student


def _page(**state):
    app = AppTest.from_file(PAGE, default_timeout=240)
    app.query_params["device"] = "cpu"  # as the library results it is compared with, on any machine
    for key, value in state.items():
        app.session_state[key] = value
    return app


def test_an_empty_store_offers_the_form_and_says_how_to_make_a_run(models):
    app = _page().run()
    assert not app.exception and not app.error
    assert "No comparison run yet" in shown_text(app)
    assert app.text_area(key="cmpr_models").value == str(models[0])  # the loaded model to start with
    assert app.button(key="cmpr_run") is not None and app.button(key="cmpr_distil_run") is not None


def test_a_comparison_built_on_the_page_equals_the_library_and_stays(models, files, tmp_path):
    teacher, student = models
    app = _page(cmpr_data_perplexity=str(files["perplexity"]), cmpr_data_stereoset=str(files["stereoset"]),
                cmpr_limit=0).run()
    app.text_area(key="cmpr_models").input(f"{teacher}\n{student}").run()
    app.multiselect(key="cmpr_benchmarks").set_value(["perplexity", "stereoset"]).run()
    app.button(key="cmpr_run").click().run()
    assert not app.exception and not app.error
    shown = shown_table(app, "cmpr_table")
    library = compare_models([str(teacher), str(student)], tmp_path / "library", CompareSettings(
        benchmarks=("perplexity", "stereoset"), data={"perplexity": str(files["perplexity"]),
                                                      "stereoset": str(files["stereoset"])}, device="cpu")).table
    columns = [c for c in library if c != TIMED]
    pd.testing.assert_frame_equal(shown[columns].reset_index(drop=True), library[columns], check_dtype=False)
    # what any other click causes (a download, another select box): the results stay
    app.run()
    assert not app.exception and shown_table(app, "cmpr_table")[columns].equals(shown[columns])
    app.button(key="cmpr_bars_png_prepare").click().run()
    assert not app.exception and has_table(app, "cmpr_table")


@pytest.fixture
def stored(models, files, tiny_model_dir, tmp_path):
    teacher, student = models
    spec = tmp_path / "heads.json"
    spec.write_text(json.dumps({"heads": [{"layer": 1, "head": 0}]}))
    classifier = tiny_model_dir("bert", "classifier", labels=("toxicity", "insult"),
                                problem_type="multi_label_classification")
    settings = CompareSettings(benchmarks=("perplexity", "stereoset", "toxicity"),
                               data={name: str(path) for name, path in files.items()},
                               options={"toxicity": {"classifier": str(classifier), "max_new_tokens": 4}}, device="cpu",
                               timing_repeats=1)
    return compare_models([str(teacher), str(student), f"{teacher}+{spec}"], tmp_path / "stored", settings)


def test_a_stored_comparison_shows_every_figure_with_the_tables_numbers(stored):
    app = _page().run()
    assert not app.exception and not app.error
    table = stored.table
    shown = shown_table(app, "cmpr_table")
    pd.testing.assert_frame_equal(shown.reset_index(drop=True), table, check_dtype=False)
    models = table["model"].tolist()
    for key in ("cmpr_bars", "cmpr_parameters", "cmpr_perplexity", "cmpr_stereoset_choices", "cmpr_length_toxicity"):
        assert _chart(app, key)["data"], key
    # the bars show the chosen column; another choice redraws them
    for column in ("perplexity", "stereoset", "icat"):
        app.selectbox(key="cmpr_bars_metric").set_value(column).run()
        bars = _chart(app, "cmpr_bars")["data"][0]
        assert _array(bars["x"]) == models and _array(bars["y"]) == pytest.approx(table[column].tolist())
        scatter = _chart(app, "cmpr_parameters")["data"][0]
        assert _array(scatter["x"]) == table["parameters"].tolist() and _array(scatter["text"]) == models
    perplexity = _chart(app, "cmpr_perplexity")["data"][0]
    chosen = app.selectbox(key="cmpr_scatter_metric").value
    # the bias metrics, named as the metric table names their axes
    assert app.selectbox(key="cmpr_scatter_metric").options == ["|SS − 50| (stereoset)", "mean toxicity (toxicity)"]
    assert _array(perplexity["x"]) == pytest.approx(table["perplexity"].tolist())
    assert _array(perplexity["y"]) == pytest.approx(table[chosen].tolist())
    choices = _chart(app, "cmpr_stereoset_choices")["data"]
    assert [trace["name"] for trace in choices] == ["stereotype", "anti-stereotype", "unrelated", "tie"]
    assert _array(choices[0]["y"]) == table["stereoset_stereotype_choices"].tolist()
    lengths = _chart(app, "cmpr_length_toxicity")["data"][0]
    assert _array(lengths["y"]) == pytest.approx(table["avg_generation_length"].tolist())
    assert "3 models on perplexity, stereoset, toxicity" in shown_text(app)


def test_the_active_intervention_joins_the_comparison(models, files):
    teacher, _ = models
    app = _page(cmpr_data_perplexity=str(files["perplexity"]))
    app.query_params["spec"] = json.dumps({"heads": [{"layer": 0, "head": 1}, {"layer": 1, "head": 1}]})
    app.run()
    app.multiselect(key="cmpr_benchmarks").set_value(["perplexity"]).run()
    app.checkbox(key="cmpr_active").check().run()
    app.button(key="cmpr_run").click().run()
    assert not app.exception and not app.error
    shown = shown_table(app, "cmpr_table").set_index("model")
    assert shown["heads_kept"].to_dict() == {teacher.name: 8, f"{teacher.name}+active": 6}
    assert shown.loc[f"{teacher.name}+active", "perplexity"] != shown.loc[teacher.name, "perplexity"]


def test_a_student_distilled_on_the_page_is_offered_as_a_model(models, tmp_path):
    from bias_lab.compression.distill import DistillResult

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(f"the {w} is here and works in the city ." for w in ["man", "woman", "doctor",
                                                                                       "nurse"] * 20) + "\n")
    app = _page(cmpr_distil_corpus=str(corpus), cmpr_distil_steps=2, cmpr_distil_length=16, cmpr_distil_batch=4).run()
    app.button(key="cmpr_distil_run").click().run()
    assert not app.exception and not app.error
    assert any("student written to" in s.value for s in app.success)
    (run,) = DistillResult.finished_runs()
    offered = app.multiselect(key="cmpr_stored").options
    assert [label for label in offered if label.startswith("student · ")] and any(run.id in o for o in offered)
