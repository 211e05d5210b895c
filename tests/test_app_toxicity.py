"""Toxicity on the dashboard: the Evaluate page runs toxicity and toxicity-gap before and after
the active intervention (numbers equal to the library's, per-group bars, generations side by side,
filtered and sorted, the classifier loaded once per source); the Heads page shows a toxicity-gap
run's grid named as the metric table names it; the Trade-off page pairs toxicity runs with
perplexity runs of the same model and intervention."""

import base64
import json

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from .app_view import shown_table, shown_text
from .conftest import ROOT

HEADS = {"neurons": [], "heads": [{"layer": 1, "head": 0}], "position": "mask"}
GROUPS = (("gender", "women"), ("gender", "men"), ("religion", "christian"), ("religion", "jewish"))
WORDS = ("young", "old", "kind")


def _prompts(folder):
    path = folder / "prompts.jsonl"
    path.write_text("".join(json.dumps({"id": f"{group}{i}", "prompt": f"the {word} {group} are", "group": group,
                                        "axis": axis}) + "\n"
                            for axis, group in GROUPS for i, word in enumerate(WORDS)))
    return path


def _array(value):
    """A plotly JSON array: a list, or a typed array ({"dtype", "bdata", "shape"})."""
    if isinstance(value, dict) and "bdata" in value:
        array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        return array.reshape([int(n) for n in str(value.get("shape", len(array))).split(",")]).tolist()
    return value


def _chart(app, key):
    """The figure ``ui.downloads.figure(..., key)`` drew, as plotly JSON."""
    found = [chart for chart in app.get("plotly_chart") if chart.key == f"{key}_chart"]
    assert len(found) == 1, f"{len(found)} charts {key!r} on the page"
    return json.loads(found[0].proto.spec)


@pytest.fixture
def classifier_dir(tiny_model_dir):
    return tiny_model_dir("bert", "classifier", labels=("toxicity", "insult"),
                          problem_type="multi_label_classification")


@pytest.fixture
def page(monkeypatch, tiny_model_dir, classifier_dir, tmp_path):
    monkeypatch.setenv("BIAS_LAB_MODEL", str(tiny_model_dir("gpt2")))
    prompts = _prompts(tmp_path)

    def open_page(benchmark="toxicity", spec=HEADS, **state):
        app = AppTest.from_file(str(ROOT / "views" / "5_Evaluate.py"), default_timeout=240)
        app.query_params["device"] = "cpu"  # as the library results it is compared with, on any machine
        if spec is not None:
            app.query_params["spec"] = json.dumps(spec)
        defaults = {"eval_benchmark": benchmark, f"eval_data_{benchmark}": str(prompts),
                    "eval_classifier": str(classifier_dir), "eval_max_new_tokens": 4, "eval_samples": 2, "eval_seed": 5}
        for key, value in {**defaults, **state}.items():
            app.session_state[key] = value
        return app.run()

    open_page.prompts = prompts
    return open_page


def _library(loaded, benchmark, prompts, classifier, spec=HEADS, **options):
    from bias_lab.evaluation import evaluate, load_benchmark_data

    data = load_benchmark_data(benchmark, str(prompts), limit=200)
    settings = {"classifier": classifier, "max_new_tokens": 4, "samples": 2, "seed": 5, **options}
    return evaluate(loaded, benchmark, data, **settings), evaluate(loaded, benchmark, data, intervention=spec,
                                                                    **settings)


def test_a_causal_lm_is_offered_both_toxicity_benchmarks_with_their_inputs(page):
    from bias_lab.metrics import BENCHMARKS
    from bias_lab.toxicity import DEFAULT_TOXICITY_CLASSIFIER

    app = page(spec=None, eval_classifier=DEFAULT_TOXICITY_CLASSIFIER)
    assert not app.exception and not app.error
    options = app.selectbox(key="eval_benchmark").options
    assert "toxicity" in options and "toxicity-gap" in options
    assert app.text_input(key="eval_data_toxicity").placeholder == BENCHMARKS["toxicity"].data_example
    assert app.text_input(key="eval_classifier").value == DEFAULT_TOXICITY_CLASSIFIER
    assert {n.key for n in app.number_input} >= {"eval_max_new_tokens", "eval_samples", "eval_seed"}
    app.selectbox(key="eval_benchmark").select("toxicity-gap").run()
    assert app.text_input(key="eval_data_toxicity-gap").placeholder == BENCHMARKS["toxicity-gap"].data_example
    app.selectbox(key="eval_benchmark").select("stereoset").run()
    assert all(t.key != "eval_classifier" for t in app.text_input)  # only benchmarks that generate take one
    # offline, the default classifier is not in the cache: one line saying what to type instead
    app.selectbox(key="eval_benchmark").select("toxicity").run()
    app.text_input(key="eval_data_toxicity").input(str(page.prompts)).run()
    app.button(key="eval_run").click().run()
    assert not app.exception
    assert "not available offline" in app.error[0].value and "in the Classifier box" in app.error[0].value
    assert "--classifier" not in app.error[0].value


def test_toxicity_before_and_after_equal_the_library_with_groups_and_generations(page, tiny_loaded, classifier_dir):
    from bias_lab.evaluation.generations import generations_side_by_side
    from bias_lab.metrics import headline
    from bias_lab.store import RunStore

    app = page()
    app.button(key="eval_run").click().run()
    assert not app.exception and not app.error
    before, after = _library(tiny_loaded("gpt2"), "toxicity", page.prompts, str(classifier_dir))
    summary = shown_table(app, "eval_summary")
    assert summary["model"].tolist() == ["before", "after"]
    for column in ("bias", "mean_toxicity", "expected_max_toxicity", "mean_new_tokens"):
        assert summary[column].tolist() == pytest.approx([headline("toxicity", before.summary)[column],
                                                          headline("toxicity", after.summary)[column]], rel=1e-9)
    assert "classifier " + str(classifier_dir) in shown_text(app) and "4 new tokens" in shown_text(app)
    # per-group bars: before and after side by side, the library's group means
    bars = {trace["name"]: trace for trace in _chart(app, "eval_groups")["data"]}
    assert list(bars) == ["before", "after"]
    for name, result in (("before", before), ("after", after)):
        expected = {key: value["mean_toxicity"] for key, value in result.summary["groups"].items()}
        shown = {f"{axis}/{group}": y for axis, group, y in zip(*bars[name]["x"], _array(bars[name]["y"]))}
        assert shown == pytest.approx(expected, rel=1e-9)
    # the generations side by side: every prompt × sample, continuations and scores of both sides
    table = shown_table(app, "eval_generations")
    expected = generations_side_by_side(before.items, after.items)
    assert len(table) == len(GROUPS) * len(WORDS) * 2
    assert table["continuation_before"].tolist() == expected["continuation_before"].tolist()
    assert table["continuation_after"].tolist() == expected["continuation_after"].tolist()
    assert table["toxicity_after"].tolist() == pytest.approx(expected["toxicity_after"].tolist(), rel=1e-9)
    assert (table["continuation_before"] != table["continuation_after"]).any()  # the ablation changed the texts
    assert {r.summary["method"] for r in RunStore().list(kind="evaluate")} == {"original", "head pruning"}
    # filter by group, sort by score: the page's view of the same table; the results stay
    app.selectbox(key="eval_generations_group").select("gender/women").run()
    women = shown_table(app, "eval_generations")
    assert not app.exception and set(women["group"]) == {"women"} and len(women) == len(WORDS) * 2
    app.selectbox(key="eval_generations_sort").select("toxicity before (highest first)").run()
    ordered = shown_table(app, "eval_generations")["toxicity_before"].tolist()
    assert ordered == sorted(ordered, reverse=True) and len(ordered) == len(WORDS) * 2
    assert shown_table(app, "eval_summary")["model"].tolist() == ["before", "after"]
    assert any(b.key == "eval_generations_csv" for b in app.get("download_button"))


def test_toxicity_gap_shows_the_gap_per_axis(page, tiny_loaded, classifier_dir):
    app = page("toxicity-gap")
    app.button(key="eval_run").click().run()
    assert not app.exception and not app.error
    before, after = _library(tiny_loaded("gpt2"), "toxicity-gap", page.prompts, str(classifier_dir))
    assert shown_table(app, "eval_summary")["bias"].tolist() == pytest.approx([before.summary["gap"],
                                                                               after.summary["gap"]], rel=1e-9)
    figure = _chart(app, "eval_axes")
    gaps = {trace["name"]: dict(zip(trace["x"], _array(trace["y"]))) for trace in figure["data"]}
    assert list(gaps) == ["before", "after"]
    for name, result in (("before", before), ("after", after)):
        assert gaps[name] == pytest.approx({axis: entry["gap"] for axis, entry in result.summary["axes"].items()},
                                           rel=1e-9)
    assert figure["layout"]["yaxis"]["title"]["text"] == "toxicity gap Σ|axis − group|"
    groups = {trace["name"]: trace for trace in _chart(app, "eval_groups")["data"]}
    women = dict(zip(zip(*groups["after"]["x"]), _array(groups["after"]["y"])))[("gender", "women")]
    assert women == pytest.approx(after.summary["axes"]["gender"]["groups"]["women"]["mean_toxicity"], rel=1e-9)


def test_the_classifier_is_loaded_once_per_source(page, monkeypatch, classifier_dir):
    from bias_lab.toxicity import ToxicityScorer
    from ui.session import cached_classifier

    cached_classifier.clear()
    loads = []
    real = ToxicityScorer.load.__func__

    def counted(cls, source=None, **kwargs):
        loads.append(source)
        return real(cls, source, **kwargs)

    monkeypatch.setattr(ToxicityScorer, "load", classmethod(counted))
    app = page(spec=None)
    app.button(key="eval_run").click().run()
    assert not app.exception and not app.error and len(loads) == 1
    app.number_input(key="eval_seed").set_value(6).run()
    app.button(key="eval_run").click().run()
    app.text_input(key="eval_label").input("insult").run()  # another label of the same weights
    app.button(key="eval_run").click().run()
    assert not app.exception and not app.error
    assert loads == [str(classifier_dir)]
    app.text_input(key="eval_classifier").input(str(classifier_dir / "missing")).run()
    app.button(key="eval_run").click().run()
    assert not app.exception and "toxicity classifier" in app.error[0].value


def test_heads_page_shows_a_toxicity_gap_run_named_by_the_metric_table(monkeypatch, tiny_model_dir, classifier_dir,
                                                                       tmp_path):
    from bias_lab.heads.metrics import metrics_for
    from bias_lab.heads.runs import run_head_scoring
    from bias_lab.metrics import METRICS
    from bias_lab.models import load_model

    prompts = _prompts(tmp_path)
    loaded = load_model(tiny_model_dir("gpt2"), device="cpu")
    perf, bias = metrics_for(loaded, perf=None, bias="toxicity-gap", bias_data=str(prompts),
                             generation={"classifier": str(classifier_dir), "max_new_tokens": 4})
    scored = run_head_scoring(loaded, perf, bias, tmp_path / "heads",
                              description={"perf": None, "bias": "toxicity-gap", "bias_data": str(prompts)})
    monkeypatch.setenv("BIAS_LAB_MODEL", str(tiny_model_dir("gpt2")))
    app = AppTest.from_file(str(ROOT / "views" / "3_Heads.py"), default_timeout=120).run()
    assert not app.exception and not app.error
    axis = METRICS["toxicity-gap"].axis
    grid = _chart(app, "heads_bias")
    assert axis in grid["layout"]["title"]["text"]
    heatmap = next(trace for trace in grid["data"] if trace["type"] == "heatmap")
    assert heatmap["colorbar"]["title"]["text"] == f"Δ {axis}"
    shown = [value for row in _array(heatmap["z"]) for value in row]
    assert shown == pytest.approx(scored.table.sort_values(["layer", "head"])["bias_delta"].tolist())
    assert "This run has no perf scores" in shown_text(app)
    assert "FASP protects the heads performance needs" in shown_text(app)


def test_trade_off_pairs_toxicity_with_perplexity_of_the_same_model_and_intervention(monkeypatch, tiny_model_dir,
                                                                                    tiny_loaded, classifier_dir,
                                                                                    tmp_path):
    from bias_lab.evaluation.before_after import evaluate_before_after
    from bias_lab.interventions import InterventionSpec
    from bias_lab.metrics import METRICS

    loaded = tiny_loaded("gpt2")
    spec = InterventionSpec.from_dict(HEADS)
    text = tmp_path / "text.txt"
    text.write_text("the doctor is here and she is very kind .\nthis young person is honest .\n")
    toxicity = evaluate_before_after(loaded, "toxicity", spec, data=str(_prompts(tmp_path)),
                                     options={"classifier": str(classifier_dir), "max_new_tokens": 4})
    perplexity = evaluate_before_after(loaded, "perplexity", spec, data=str(text))
    monkeypatch.setenv("BIAS_LAB_MODEL", str(tiny_model_dir("gpt2")))
    app = AppTest.from_file(str(ROOT / "views" / "7_Trade_off.py"), default_timeout=120).run()
    assert not app.exception and not app.error
    assert app.selectbox(key="trade_bias").value == "toxicity"
    assert app.selectbox(key="trade_performance").value == "perplexity"
    assert f"{METRICS['toxicity'].axis} (toxicity)" in app.selectbox(key="trade_bias").options
    points = shown_table(app, "trade_table")
    assert sorted(points["method"]) == ["head pruning", "original"]
    pruned = points.set_index("method").loc["head pruning"]
    assert pruned["bias"] == pytest.approx(toxicity.after.summary["mean_toxicity"])
    assert pruned["performance"] == pytest.approx(perplexity.after.summary["perplexity"])
    assert "|" in pruned["data"] and "classifier" in pruned["data"]
    figure = _chart(app, "trade_scatter")
    hover = next(t for t in figure["data"] if t["name"] == "head pruning")["text"][0]
    assert pruned["bias_run"] in hover and pruned["performance_run"] in hover
    assert figure["layout"]["xaxis"]["title"]["text"].startswith("perplexity")
    assert figure["layout"]["yaxis"]["title"]["text"].startswith(METRICS["toxicity"].axis)
