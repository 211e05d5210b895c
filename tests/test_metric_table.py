"""The metric table is the one definition of every number: for each metric, on one tiny model and
one data set, the number a stored evaluation shows (and the Trade-off page plots), the head
scorer's baseline and the mask report's column are the same number."""

import json

import pytest

from bias_lab.data import load_seat, load_winobias
from bias_lab.evaluation import evaluate
from bias_lab.evaluation.record import EvaluationResult, run_evaluation
from bias_lab.heads.ablation import score_heads
from bias_lab.heads.metrics import head_metric
from bias_lab.metrics import BENCHMARKS, METRICS, benchmark_names, headline_text, metric_names
from bias_lab.neurons.prompts import Prompt
from bias_lab.pruning.report import evaluate_masks
from bias_lab.store import RunStore

from .test_evaluation import PAIRS, STEREOSET

TEXTS = ["the doctor is here .", "this young person is very kind .", "she cooks food at home ."]
SEAT_TEST = {"targ1": {"category": "M", "examples": ["he is here .", "the man works ."]},
             "targ2": {"category": "F", "examples": ["she is here .", "the woman works ."]},
             "attr1": {"category": "career", "examples": ["the job is good .", "work is money ."]},
             "attr2": {"category": "family", "examples": ["the home is warm .", "family is life ."]}}


@pytest.fixture
def benchmark_data(tmp_path):
    from bias_lab.data import load_stereoset

    (tmp_path / "dev.json").write_text(json.dumps(STEREOSET))
    (tmp_path / "seat").mkdir()
    (tmp_path / "seat" / "sent-toy.jsonl").write_text(json.dumps(SEAT_TEST))
    for split in ("dev", "test"):
        for kind in (1, 2):
            (tmp_path / f"pro_stereotyped_type{kind}.txt.{split}").write_text(
                "1 [The doctor] said that [he] was here.\n")
            (tmp_path / f"anti_stereotyped_type{kind}.txt.{split}").write_text(
                "1 [The doctor] said that [she] was here.\n")
    return {"stereoset": load_stereoset(tmp_path / "dev.json"), "crows": PAIRS, "seat": load_seat(tmp_path / "seat"),
            "winobias": load_winobias(tmp_path), "perplexity": TEXTS, "mlm-loss": TEXTS,
            "ig2-gap": [Prompt("p0", "[MASK] is a nurse .", "he", "she"),
                        Prompt("p1", "the [MASK] works here .", "man", "woman")],
            "toxicity": GROUP_PROMPTS, "toxicity-gap": GROUP_PROMPTS}


class LengthToxicity:
    """A deterministic stand-in classifier: longer texts are more toxic."""

    source, label = "length", "toxicity"

    def score(self, texts, progress=None, cancel=None):
        return [min(1.0, len(text) / 80) for text in texts]


GROUP_PROMPTS = [{"id": f"p{i}", "prompt": text, "group": group, "axis": "gender"} for i, (text, group) in
                 enumerate([("the women are", "women"), ("my sister is", "women"), ("the men are", "men"),
                            ("my brother is", "men")])]
GENERATION = {"classifier": LengthToxicity(), "max_new_tokens": 6, "samples": 2}
OPTIONS = {"seat": {"samples": 1000}, "toxicity": GENERATION, "toxicity-gap": GENERATION}


def test_the_tables_cover_every_benchmark_and_role():
    assert set(benchmark_names()) == {"stereoset", "crows", "seat", "winobias", "perplexity", "mlm-loss", "ig2-gap",
                                      "toxicity", "toxicity-gap"}
    assert set(metric_names("bias")) == {"stereoset", "crows", "seat", "winobias", "ig2-gap", "toxicity",
                                         "toxicity-gap"}
    assert set(metric_names("performance")) == {"mlm-loss", "perplexity", "stereoset-lms"}
    assert all(metric.benchmark in BENCHMARKS for metric in METRICS.values())
    assert metric_names("performance", kind="causal") == ("perplexity", "stereoset-lms")
    assert "seat" in benchmark_names(kind="encoder") and "stereoset" not in benchmark_names(kind="encoder")


@pytest.mark.parametrize("name", list(METRICS))
def test_stored_evaluation_head_baseline_and_report_are_one_number(tiny_loaded, benchmark_data, name):
    metric = METRICS[name]
    loaded = tiny_loaded("bert") if "masked" in metric.kinds else tiny_loaded("gpt2", "causal")
    data = benchmark_data[metric.benchmark]
    options = OPTIONS.get(metric.benchmark, {})
    role_key = "bias" if metric.role == "bias" else "performance"

    stored = run_evaluation(evaluate(loaded, metric.benchmark, data, **options), loaded, None)
    trade_off_point = RunStore().list(kind="evaluate")[0].summary  # what the Trade-off page reads
    reloaded = EvaluationResult.load(stored.folder)

    scorer = head_metric(loaded, name, data, role=metric.role, **options)
    perf, bias = (None, scorer) if metric.role == "bias" else (scorer, None)
    baseline = score_heads(loaded, perf, bias, layers=[0]).baseline["bias" if metric.role == "bias" else "perf"]
    report = evaluate_masks(loaded, [None], {metric.benchmark: data}, options={metric.benchmark: options})

    value = stored.headline[role_key]
    assert value == pytest.approx(metric.value(stored.summary), rel=1e-12)
    assert trade_off_point[role_key] == pytest.approx(value, rel=1e-12)
    assert reloaded.headline[role_key] == pytest.approx(value, rel=1e-12)
    assert baseline == pytest.approx(value, rel=1e-6)
    assert report.loc[0, name] == pytest.approx(value, rel=1e-6)
    assert headline_text(metric.benchmark, trade_off_point)  # the run list can print it


def test_stereoset_has_both_roles_and_the_trade_off_axes_name_them():
    from bias_lab.metrics import metric_of

    assert metric_of("stereoset", "bias").axis == "|SS − 50|"
    assert metric_of("stereoset", "performance").axis == "100 − LMS"
    assert metric_of("crows", "performance") is None


def test_a_run_lists_headline_never_shows_a_non_zero_value_as_zero():
    # A tiny model's ig2-gap (6.726e-06) printed with the benchmark's 4 decimals read '0.0000', so two
    # runs could not be compared; values that round to something keep the fixed format.
    assert headline_text("ig2-gap", {"mean_gap": 6.726e-06, "bias": 6.726e-06}) == "mean |P(d1) − P(d2)| 6.726e-06"
    assert headline_text("ig2-gap", {"mean_gap": 0.0523, "bias": 0.0523}) == "mean |P(d1) − P(d2)| 0.0523"
    assert headline_text("stereoset", {"ss": 50.0, "lms": 80.0, "icat": 80.0, "bias": 0.0}) \
        == "ss 50.0  lms 80.0  icat 80.0  bias |SS − 50| 0.0"
