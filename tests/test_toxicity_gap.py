"""Bias in generated text: the toxicity figures and FASP's gap against hand-computed fixtures, the
stored text is what the classifier scored, a planted group-toxic head is found and pruned, and the
commands refuse bad input in one line."""

import json

import numpy as np
import pandas as pd
import pytest

from bias_lab.cli import main
from bias_lab.evaluation import evaluate
from bias_lab.evaluation.record import EvaluationResult
from bias_lab.evaluation.toxicity import gap_figures, toxicity_figures
from bias_lab.heads.ablation import ablated_value, score_heads
from bias_lab.heads.metrics import bias_metric
from bias_lab.metrics import METRICS
from bias_lab.models import load_model
from bias_lab.tiny import build_tiny_model

from .planting import plant_group_head


class KeywordToxicity:
    """A stand-in classifier: toxic (0.9) when the text has the word, else 0.1."""

    source = "keyword"
    label = "toxicity"

    def __init__(self, word: str = " bad"):
        self.word = word

    def score(self, texts, progress=None, cancel=None):
        return np.array([0.9 if self.word in text else 0.1 for text in texts])


def _items(rows):
    frame = pd.DataFrame(rows, columns=["id", "seed", "sample", "axis", "group", "toxicity", "new_tokens"])
    return frame


def test_gap_is_the_sum_over_groups_of_the_distance_to_the_prompt_weighted_axis_mean():
    items = _items([("a1", 0, 0, "gender", "women", 0.2, 5), ("a2", 0, 0, "gender", "women", 0.4, 5),
                    ("a3", 0, 0, "gender", "women", 0.6, 5), ("b1", 0, 0, "gender", "men", 0.1, 5),
                    ("n1", 0, 0, "gender", "nonbinary", 0.9, 5),
                    ("c1", 0, 0, "religion", "x", 0.5, 5), ("c2", 0, 0, "religion", "y", 0.3, 5)])
    figures = gap_figures(items)
    # gender: axis mean (0.2 + 0.4 + 0.6 + 0.1 + 0.9) / 5 = 0.44 (the mean of group means would be
    # 0.4667 and give 0.8667); |0.44 − 0.4| + |0.44 − 0.1| + |0.44 − 0.9| = 0.84.
    # religion: mean 0.4, |0.4 − 0.5| + |0.4 − 0.3| = 0.2.
    assert figures["axes"]["gender"]["gap"] == pytest.approx(0.84)
    assert figures["axes"]["gender"]["groups"]["women"] == {"mean_toxicity": pytest.approx(0.4), "count": 3}
    assert figures["axes"]["religion"]["gap"] == pytest.approx(0.2)
    assert figures["gap"] == pytest.approx(0.52)  # the mean over the axes


def test_toxicity_figures_by_hand():
    # Two prompts, three generations each.
    items = _items([("p", 0, 0, "", "", 0.7, 10), ("p", 0, 1, "", "", 0.2, 20), ("p", 0, 2, "", "", 0.1, 30),
                    ("q", 0, 0, "", "", 0.3, 4), ("q", 0, 1, "", "", 0.5, 6), ("q", 0, 2, "", "", 0.4, 8)])
    figures = toxicity_figures(items)
    assert figures["mean_toxicity"] == pytest.approx(2.2 / 6)
    assert figures["toxic_count"] == 1 and figures["toxic_share"] == pytest.approx(100 / 6)  # > 0.5 only
    assert figures["toxic_score"] == pytest.approx(2.2)
    assert figures["expected_max_toxicity"] == pytest.approx((0.7 + 0.5) / 2)
    assert figures["toxicity_probability"] == pytest.approx(100.0)  # q's 0.5 counts: "at least one ≥ 0.5"
    assert figures["mean_new_tokens"] == pytest.approx(13.0)


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    folder = build_tiny_model("gpt2", tmp_path_factory.mktemp("planted-gpt2"))
    loaded = load_model(folder, device="cpu")
    women, bad = loaded.tokenizer.encode(" women"), loaded.tokenizer.encode(" bad")
    assert len(women) == 1 and len(bad) == 1
    site = plant_group_head(loaded, women[0], bad[0])
    prompts = [{"id": f"w{i}", "prompt": f"the {word} women are", "group": "women", "axis": "gender"}
               for i, word in enumerate(["young", "old", "kind", "new", "tall", "happy"])]
    prompts += [{"id": f"m{i}", "prompt": f"the {word} men are", "group": "men", "axis": "gender"}
                for i, word in enumerate(["young", "old", "kind", "new", "tall", "happy"])]
    return loaded, site, prompts


def test_head_scan_finds_the_planted_head_and_pruning_it_removes_the_gap(planted):
    loaded, site, prompts = planted
    metric = bias_metric(loaded, "toxicity-gap", prompts, classifier=KeywordToxicity(), max_new_tokens=8)
    scores = score_heads(loaded, None, metric, ablations_per_pass=1).table
    ranked = scores.sort_values("bias_delta")
    assert (int(ranked.iloc[0]["layer"]), int(ranked.iloc[0]["head"])) == site
    baseline = metric(loaded)
    assert baseline == pytest.approx(0.8)  # women all toxic (0.9), men none (0.1): |0.5−0.9| + |0.5−0.1|
    assert ablated_value(loaded, metric, [site]) <= 0.1 * baseline
    together = score_heads(loaded, None, metric, ablations_per_pass=loaded.num_heads).table
    pd.testing.assert_frame_equal(together, scores)  # one generation for a layer's heads, same numbers


def test_stored_text_is_what_the_classifier_scored(tiny_model_dir, tiny_loaded, tmp_path):
    loaded = tiny_loaded("gpt2", "causal")
    from bias_lab.toxicity import ToxicityScorer

    scorer = ToxicityScorer.load(tiny_model_dir("bert", "classifier", labels=("toxicity", "insult"),
                                                problem_type="multi_label_classification"), device=loaded.device)
    prompts = [{"id": "a", "prompt": "The woman\nsaid", "group": "women"}, {"id": "b", "prompt": "the man said",
                                                                             "group": "men"}]
    result = evaluate(loaded, "toxicity-gap", prompts, classifier=scorer, max_new_tokens=6, samples=2, seeds=[1, 2])
    items = result.items
    assert list(items.columns[:10]) == ["id", "seed", "sample", "axis", "group", "prompt", "continuation", "text",
                                        "toxicity", "new_tokens"]
    assert len(items) == 2 * 2 * 2 and set(items["seed"]) == {1, 2}
    assert (items["text"] == (items["prompt"] + items["continuation"]).str.lower().str.replace("\n", " ")).all()
    np.testing.assert_allclose(items["toxicity"], scorer.score(items["text"].tolist()), rtol=1e-6)
    per_seed = result.summary["per_seed"]
    assert result.summary["gap"] == pytest.approx(np.mean([s["gap"] for s in per_seed]))
    assert METRICS["toxicity-gap"].value(result.summary) == result.summary["gap"]


def _write(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.fixture
def group_file(tmp_path):
    return _write(tmp_path / "groups.jsonl", [
        {"id": "w1", "prompt": "the women are", "group": "women", "axis": "gender"},
        {"id": "w2", "prompt": "my sister is", "group": "women", "axis": "gender"},
        {"id": "m1", "prompt": "the men are", "group": "men", "axis": "gender"},
        {"id": "m2", "prompt": "my brother is", "group": "men", "axis": "gender"}])


def test_evaluate_command_stores_generations_per_group(capsys, tiny_model_dir, group_file, tmp_path):
    classifier = tiny_model_dir("bert", "classifier", labels=("toxicity", "insult"),
                                problem_type="multi_label_classification")
    out = tmp_path / "run"
    assert main(["evaluate", "toxicity-gap", "--model", str(tiny_model_dir("gpt2", "causal")), "--data",
                 str(group_file), "--classifier", str(classifier), "--max-new-tokens", "5", "--samples", "2",
                 "--out", str(out)]) == 0, capsys.readouterr().err
    stored = EvaluationResult.load(out)
    assert set(stored.summary["axes"]["gender"]["groups"]) == {"women", "men"}
    assert len(stored.items) == 8 and {"text", "toxicity", "continuation"} <= set(stored.items.columns)
    assert "gap" in stored.headline or "bias" in stored.headline
    out_tox = tmp_path / "tox"
    assert main(["evaluate", "toxicity", "--model", str(tiny_model_dir("gpt2", "causal")), "--data", str(group_file),
                 "--classifier", str(classifier), "--max-new-tokens", "5", "--out", str(out_tox)]) == 0
    summary = EvaluationResult.load(out_tox).summary
    assert {"mean_toxicity", "toxic_share", "toxic_count", "toxic_score", "expected_max_toxicity",
            "toxicity_probability", "mean_new_tokens"} <= set(summary)


@pytest.mark.parametrize("case, message", [
    ("masked", "needs a causal LM"),
    ("no-groups", "prompt file without groups"),
    ("one-group", "one group only"),
    ("empty", "empty"),
    ("samples", "--samples 0 must be at least 1"),
    ("tokens", "--max-new-tokens 0 must be at least 1"),
    ("label", "nonsense"),
])
def test_bad_input_is_one_line_exit_2(capsys, tiny_model_dir, group_file, tmp_path, case, message):
    classifier = tiny_model_dir("bert", "classifier", labels=("toxicity", "insult"),
                                problem_type="multi_label_classification")
    model = str(tiny_model_dir("gpt2", "causal"))
    data, extra = group_file, []
    if case == "masked":
        model = str(tiny_model_dir("bert"))
    elif case == "no-groups":
        data = _write(tmp_path / "plain.jsonl", [{"id": "a", "prompt": "hello"}, {"id": "b", "prompt": "there"}])
    elif case == "one-group":
        data = _write(tmp_path / "one.jsonl", [{"id": "a", "prompt": "hello", "group": "x"},
                                               {"id": "b", "prompt": "hi", "group": "x"}])
    elif case == "empty":
        data = _write(tmp_path / "empty.jsonl", [{"id": "a", "prompt": "", "group": "x"}])
    elif case == "samples":
        extra = ["--samples", "0"]
    elif case == "tokens":
        extra = ["--max-new-tokens", "0"]
    elif case == "label":
        extra = ["--label", "nonsense"]
    code = main(["evaluate", "toxicity-gap", "--model", model, "--data", str(data), "--classifier", str(classifier),
                 "--max-new-tokens", "3", "--out", str(tmp_path / "out"), *extra])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1, err


def test_heads_score_with_toxicity_gap_then_fasp(capsys, tiny_model_dir, group_file, tmp_path):
    classifier = tiny_model_dir("bert", "classifier", labels=("toxicity", "insult"),
                                problem_type="multi_label_classification")
    text = tmp_path / "text.txt"
    text.write_text("the doctor is here .\nthis young person is very kind .\n")
    out = tmp_path / "heads"
    assert main(["heads", "score", "--model", str(tiny_model_dir("gpt2", "causal")), "--perf", "perplexity",
                 "--perf-data", str(text), "--bias", "toxicity-gap", "--bias-data", str(group_file),
                 "--classifier", str(classifier), "--max-new-tokens", "4", "--out", str(out)]) == 0, \
        capsys.readouterr().err
    assert main(["heads", "select", "--run", str(out), "--rule", "fasp", "--alpha", "0.25", "--gamma", "0.25",
                 "--out", str(tmp_path / "pruned.json")]) == 0, capsys.readouterr().err
    assert json.loads((tmp_path / "pruned.json").read_text())["heads"]


def test_real_toxicity_prompts_challenging_and_sample(capsys, tiny_model_dir, tmp_path):
    classifier = tiny_model_dir("bert", "classifier", labels=("toxicity", "insult"),
                                problem_type="multi_label_classification")
    rtp = _write(tmp_path / "rtp.jsonl", [{"prompt": {"text": f"prompt number {i} says"}, "challenging": i % 2 == 0}
                                          for i in range(10)])
    out = tmp_path / "run"
    assert main(["evaluate", "toxicity", "--model", str(tiny_model_dir("gpt2", "causal")), "--data", str(rtp),
                 "--challenging", "--sample", "3", "--seed", "4", "--classifier", str(classifier),
                 "--max-new-tokens", "3", "--samples", "2", "--out", str(out)]) == 0, capsys.readouterr().err
    items = EvaluationResult.load(out).items
    chosen = set(items["prompt"])
    assert len(chosen) == 3 and len(items) == 6
    assert all(int(text.split()[2]) % 2 == 0 for text in chosen)  # challenging ones only
    assert main(["evaluate", "stereoset", "--model", str(tiny_model_dir("gpt2", "causal")), "--sample", "3",
                 "--out", str(tmp_path / "x")]) == 2
    assert "--sample applies to the prompts of toxicity" in capsys.readouterr().err
