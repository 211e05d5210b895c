"""The Evaluate page: before/after numbers equal the library's, results stay after any click, an
intervention that cannot act on the benchmark says so, the item limit is honoured and recorded."""

import json

import pytest
from streamlit.testing.v1 import AppTest

from .app_view import shown_table
from .conftest import ROOT
from .test_evaluation import STEREOSET

SPEC = {"neurons": [{"layer": 1, "neuron": n, "scale": 0.0} for n in range(30)], "heads": [], "position": "mask"}
SEAT_TEST = {"targ1": {"category": "M", "examples": ["he is here .", "the man works ."]},
             "targ2": {"category": "F", "examples": ["she is here .", "the woman works ."]},
             "attr1": {"category": "career", "examples": ["the job is good .", "work is money ."]},
             "attr2": {"category": "family", "examples": ["the home is warm .", "family is life ."]}}


@pytest.fixture
def page(monkeypatch, tiny_model_dir):
    monkeypatch.setenv("BIAS_LAB_MODEL", str(tiny_model_dir("bert")))

    def open_page(spec=None, **state):
        app = AppTest.from_file(str(ROOT / "views" / "5_Evaluate.py"), default_timeout=180)
        if spec is not None:
            app.query_params["spec"] = json.dumps(spec)
        for key, value in state.items():
            app.session_state[key] = value
        return app.run()

    return open_page


@pytest.fixture
def stereoset_path(tmp_path):
    path = tmp_path / "dev.json"
    path.write_text(json.dumps(STEREOSET))
    return path


def test_before_and_after_equal_the_library_and_are_stored(page, stereoset_path, tiny_loaded):
    from bias_lab.data import load_stereoset
    from bias_lab.evaluation import evaluate
    from bias_lab.store import RunStore

    app = page(SPEC, eval_data_stereoset=str(stereoset_path))
    app.button(key="eval_run").click().run()
    assert not app.exception and not app.error
    summary = shown_table(app, "eval_summary")
    assert summary["model"].tolist() == ["before", "after"]
    loaded = tiny_loaded("bert")
    data = load_stereoset(stereoset_path)
    before = evaluate(loaded, "stereoset", data)
    after = evaluate(loaded, "stereoset", data, intervention=SPEC)
    assert summary["lms"].tolist() == pytest.approx([before.summary["intrasentence"]["overall"]["lms"],
                                                     after.summary["intrasentence"]["overall"]["lms"]])
    shown_before, shown_after = app.dataframe[-2].value, app.dataframe[-1].value
    assert shown_before["score"].tolist() == pytest.approx(before.items["score"].tolist())
    assert shown_after["score"].tolist() == pytest.approx(after.items["score"].tolist())
    assert shown_after["score"].tolist() != pytest.approx(shown_before["score"].tolist())
    runs = RunStore().list(kind="evaluate")
    assert {r.summary["method"] for r in runs} == {"original", "BNS"}
    assert all(r.config["items"] == 2 and r.config["limit"] == 200 for r in runs)


def test_results_stay_after_downloads_and_png(page, stereoset_path):
    app = page(SPEC, eval_data_stereoset=str(stereoset_path))
    app.button(key="eval_run").click().run()
    shown = app.dataframe[0].value.copy()
    app.run()  # what any click (a download, a checkbox elsewhere) causes
    assert not app.exception and app.dataframe[0].value.equals(shown)
    app.button(key="eval_domains_png_prepare").click().run()
    assert not app.exception
    assert app.dataframe[0].value.equals(shown)
    assert len(app.dataframe) >= 3


def test_changing_an_input_clears_stale_results(page, stereoset_path):
    app = page(SPEC, eval_data_stereoset=str(stereoset_path))
    app.button(key="eval_run").click().run()
    assert len(app.dataframe) >= 1
    app.number_input(key="eval_limit").set_value(1).run()
    assert not app.exception and "press Run" in app.info[0].value
    app.button(key="eval_run").click().run()
    assert "1 item (first 1)" in " ".join(c.value for c in app.caption)


def test_limit_is_honoured_and_recorded(page, stereoset_path):
    from bias_lab.evaluation.record import EvaluationResult
    from bias_lab.store import RunStore

    app = page(None, eval_data_stereoset=str(stereoset_path), eval_limit=1)
    app.button(key="eval_run").click().run()
    assert not app.exception and not app.error
    run = RunStore().list(kind="evaluate")[0]
    assert run.config["limit"] == 1 and run.config["items"] == 1
    assert len(EvaluationResult.load(run.artifact_dir).items) == 3  # one example, three sentences


def test_neurons_at_the_mask_on_seat_say_they_cannot_act(page, tmp_path, tiny_loaded):
    from bias_lab.data import load_seat
    from bias_lab.evaluation import evaluate

    (tmp_path / "seat").mkdir()
    (tmp_path / "seat" / "sent-weat6.jsonl").write_text(json.dumps(SEAT_TEST))
    app = page(SPEC, eval_benchmark="seat", eval_data_seat=str(tmp_path / "seat"))
    assert not app.exception
    assert "contain no mask token" in app.warning[0].value
    assert all(b.key != "eval_run" for b in app.button)  # nothing to run until the user chooses
    app.checkbox(key="eval_retarget").check().run()
    assert app.multiselect[0].value == ["sent-weat6"]
    app.button(key="eval_run").click().run()
    assert not app.exception and not app.error
    assert any("re-targeted" in w.value for w in app.warning)
    summary = shown_table(app, "eval_summary")
    expected = evaluate(tiny_loaded("bert"), "seat", load_seat(tmp_path / "seat"),
                        intervention={**SPEC, "position": "all"}).summary["mean_abs_effect_size"]
    assert summary["bias"].tolist()[1] == pytest.approx(expected)
    assert summary["bias"].tolist()[0] != pytest.approx(expected)


def test_out_of_memory_is_reported_with_the_batch_size(page, monkeypatch, stereoset_path):
    import torch

    import bias_lab.evaluation as evaluation

    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(evaluation, "evaluate", out_of_memory)
    app = page(None, eval_data_stereoset=str(stereoset_path), eval_batch=64)
    app.button(key="eval_run").click().run()
    assert not app.exception and "out of memory with batch size 64" in app.error[0].value


def test_an_encoder_is_offered_only_what_it_can_run(page, monkeypatch, tiny_model_dir):
    monkeypatch.setenv("BIAS_LAB_MODEL", str(tiny_model_dir("bert", "encoder")))
    app = page(None)
    assert not app.exception and not app.error
    assert app.selectbox(key="eval_benchmark").options == ["seat"]
    assert "it can run seat" in " ".join(c.value for c in app.caption)


def test_each_model_kind_is_offered_the_benchmarks_of_the_table(page, monkeypatch, tiny_model_dir):
    from bias_lab.metrics import BENCHMARKS

    app = page(None)  # a masked LM runs every benchmark but those that generate text
    assert not app.exception and not app.error
    assert app.selectbox(key="eval_benchmark").options == [name for name, entry in BENCHMARKS.items()
                                                           if "masked" in entry.kinds]
    assert "mlm-loss" in app.selectbox(key="eval_benchmark").options
    assert "toxicity and toxicity-gap need a causal LM" in " ".join(c.value for c in app.caption)
    app.selectbox(key="eval_benchmark").select("ig2-gap").run()
    assert "JSONL" in app.text_input(key="eval_data_ig2-gap").placeholder
    app.selectbox(key="eval_benchmark").select("mlm-loss").run()
    assert "text file" in app.text_input(key="eval_data_mlm-loss").placeholder
    monkeypatch.setenv("BIAS_LAB_MODEL", str(tiny_model_dir("gpt2")))
    causal = page(None)
    assert not causal.exception and not causal.error
    options = causal.selectbox(key="eval_benchmark").options
    assert options == [name for name, entry in BENCHMARKS.items() if "causal" in entry.kinds]
    assert "mlm-loss" not in options and "ig2-gap" not in options
    assert "toxicity" in options and "toxicity-gap" in options
    assert "mlm-loss and ig2-gap need a masked LM" in " ".join(c.value for c in causal.caption)


def test_ig2_gap_on_the_page_equals_the_library(page, tmp_path, tiny_loaded):
    from bias_lab.evaluation import evaluate, load_benchmark_data

    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"id": "p0", "prompt": "[MASK] is a doctor .", "pair": ["he", "she"]}\n'
                       '{"id": "p1", "prompt": "[MASK] is a nurse .", "pair": ["he", "she"]}\n')
    app = page(SPEC, eval_benchmark="ig2-gap", **{"eval_data_ig2-gap": str(prompts)})
    app.button(key="eval_run").click().run()
    assert not app.exception and not app.error
    data = load_benchmark_data("ig2-gap", str(prompts))
    loaded = tiny_loaded("bert")
    expected = [evaluate(loaded, "ig2-gap", data).summary["mean_gap"],
                evaluate(loaded, "ig2-gap", data, intervention=SPEC).summary["mean_gap"]]
    summary = shown_table(app, "eval_summary")
    assert summary["model"].tolist() == ["before", "after"]
    assert summary["bias"].tolist() == pytest.approx(expected)
    assert expected[0] != pytest.approx(expected[1])


def test_each_benchmark_keeps_its_own_data_and_seat_tests_follow_the_folder(page, tmp_path, stereoset_path):
    for folder, names in (("seat-a", ["sent-weat6", "sent-weat7", "other"]), ("seat-b", ["sent-weat8", "x"])):
        (tmp_path / folder).mkdir()
        for name in names:
            (tmp_path / folder / f"{name}.jsonl").write_text(json.dumps(SEAT_TEST))
    app = page(None, eval_data_stereoset=str(stereoset_path))
    app.selectbox(key="eval_benchmark").select("seat").run()
    assert app.text_input(key="eval_data_seat").value == ""  # not the StereoSet file
    app.text_input(key="eval_data_seat").input(str(tmp_path / "seat-a")).run()
    assert app.multiselect[0].value == ["sent-weat6", "sent-weat7"]
    app.text_input(key="eval_data_seat").input(str(tmp_path / "seat-b")).run()
    assert app.multiselect[0].value == ["sent-weat8"]
    app.selectbox(key="eval_benchmark").select("stereoset").run()
    assert app.text_input(key="eval_data_stereoset").value == str(stereoset_path)


def test_every_data_box_starts_with_a_working_source_or_says_why_not(page, monkeypatch, tiny_model_dir):
    from bias_lab.assets import asset_path

    app = page(None)
    expected = {"stereoset": "McGill-NLP/stereoset", "crows": "nyu-mll/crows_pairs", "perplexity": "wikitext",
                "mlm-loss": "wikitext", "ig2-gap": str(asset_path("prompts", "gender.jsonl"))}
    for benchmark, value in expected.items():
        app.selectbox(key="eval_benchmark").select(benchmark).run()
        assert not app.exception
        assert app.text_input(key=f"eval_data_{benchmark}").value == value, benchmark
    for benchmark in ("seat", "winobias"):
        app.selectbox(key="eval_benchmark").select(benchmark).run()
        assert not app.exception and not app.error
        assert app.text_input(key=f"eval_data_{benchmark}").value == ""
        assert app.text_input(key=f"eval_data_{benchmark}").placeholder  # the table's example
        assert any("has no default" in i.value and "no Hub dataset" in i.value for i in app.info), benchmark
        assert all(b.key != "eval_run" for b in app.button)
    monkeypatch.setenv("BIAS_LAB_MODEL", str(tiny_model_dir("gpt2")))
    causal = page(None)
    for benchmark in ("toxicity", "toxicity-gap"):
        causal.selectbox(key="eval_benchmark").select(benchmark).run()
        shown = causal.text_input(key=f"eval_data_{benchmark}").value
        assert shown == str(asset_path("prompts", "group_prompts.jsonl")), benchmark


def test_ig2_gap_runs_on_its_default_classroom_prompts(page, tiny_loaded):
    from bias_lab.assets import asset_path

    from .conftest import BERT_VOCAB

    if not BERT_VOCAB.is_file():
        pytest.skip("the classroom prompts' words need the real BERT vocabulary (../shared)")
    from bias_lab.evaluation import evaluate, load_benchmark_data

    app = page(None, eval_benchmark="ig2-gap")
    app.button(key="eval_run").click().run()
    assert not app.exception and not app.error
    data = load_benchmark_data("ig2-gap", str(asset_path("prompts", "gender.jsonl")), limit=200)
    expected = evaluate(tiny_loaded("bert"), "ig2-gap", data).summary["mean_gap"]
    assert shown_table(app, "eval_summary")["bias"].tolist() == pytest.approx([expected])
