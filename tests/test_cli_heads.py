import json

import pandas as pd
import pytest

from bias_lab.cli import main
from bias_lab.heads import ablation
from bias_lab.store import RunStore


@pytest.fixture
def files(tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("\n".join(["the doctor is here and she is very kind .", "this young person is honest .",
                               "a man and a woman work in the city .", "the old farmer drives a car ."]) + "\n")
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("\n".join(json.dumps({"id": f"p{i}", "prompt": p, "pair": ["he", "she"]}) for i, p in enumerate(
        ["[MASK] is a doctor .", "the nurse said [MASK] was late .", "[MASK] works in the city ."])) + "\n")
    return text, prompts


def _score(model, text, prompts, out, *extra):
    return main(["heads", "score", "--model", str(model), "--perf", "mlm-loss", "--perf-data", str(text), "--bias", "ig2-gap",
                 "--bias-data", str(prompts), "--out", str(out), *extra])


def test_heads_score_select_importance(capsys, tiny_model_dir, files, tmp_path):
    text, prompts = files
    out = tmp_path / "heads"
    assert _score(tiny_model_dir("bert"), text, prompts, out, "--limit", "3") == 0, capsys.readouterr().err
    table = pd.read_parquet(out / "head_scores.parquet")
    assert list(table.columns) == ["layer", "head", "perf", "perf_delta", "bias", "bias_delta", "importance"]
    assert len(table) == 8
    meta = json.loads((out / "run.json").read_text())
    assert meta["timing"]["scoring_s"] > 0 and meta["baseline"]["perf_metric"] == "mlm-loss"
    assert RunStore().get(str(out)).status == "complete"

    spec = tmp_path / "spec.json"
    grid = tmp_path / "grid.csv"
    code = main(["heads", "select", "--run", str(out), "--rule", "fasp", "--alpha", "0.25", "--gamma", "0.25",
                 "--out", str(spec), "--grid", str(grid)])
    assert code == 0
    assert len(json.loads(spec.read_text())["heads"]) == 2
    statuses = pd.read_csv(grid)["status"].value_counts().to_dict()
    assert statuses == {"kept": 4, "pruned": 2, "protected": 2}
    assert main(["heads", "select", "--run", str(out), "--rule", "magnitude", "--alpha", "0.5", "--out", str(spec)]) == 0
    assert len(json.loads(spec.read_text())["heads"]) == 4
    capsys.readouterr()

    code = main(["heads", "importance", "--model", str(tiny_model_dir("bert")), "--perf-data", str(text),
                 "--out", str(tmp_path / "imp"), "--iterative", "2", "--fraction", "0.25"])
    assert code == 0, capsys.readouterr().err
    importance = pd.read_parquet(tmp_path / "imp" / "importance.parquet")
    assert len(importance) == 8 and importance["importance"].max() == pytest.approx(1.0)
    curve = pd.read_parquet(tmp_path / "imp" / "iterative.parquet")
    assert curve["pruned"].tolist() == [0, 2, 4]


def test_interrupted_head_scoring_resumes_per_layer(capsys, tiny_model_dir, files, tmp_path, monkeypatch):
    text, prompts = files
    out = tmp_path / "heads"
    real = ablation._layer_values
    calls = []

    def stop_in_second_layer(loaded, metric, layer, *args):
        calls.append(layer)
        if layer == 1:
            raise KeyboardInterrupt
        return real(loaded, metric, layer, *args)

    monkeypatch.setattr(ablation, "_layer_values", stop_in_second_layer)
    assert _score(tiny_model_dir("distilbert"), text, prompts, out) == 130
    assert RunStore().get(str(out)).status == "interrupted"
    calls.clear()
    monkeypatch.setattr(ablation, "_layer_values", lambda *a: (calls.append(a[2]), real(*a))[1])
    assert _score(tiny_model_dir("distilbert"), text, prompts, out) == 0
    assert set(calls) == {1}
    table = pd.read_parquet(out / "head_scores.parquet")
    assert len(table) == 8 and not table.duplicated(["layer", "head"]).any()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--perf", "mlm-loss", "--out", "X"], "--perf mlm-loss needs --perf-data"),
        (["--perf", "mlm-loss", "--perf-data", "TEXT", "--bias", "ig2-gap", "--out", "X"], "--bias ig2-gap needs --bias-data"),
        (["--perf", "mlm-loss", "--perf-data", "TEXT", "--limit", "0", "--out", "X"], "--limit 0 must be at least 1"),
    ],
)
def test_bad_heads_input(capsys, tiny_model_dir, files, tmp_path, argv, message):
    text, _ = files
    argv = [str(text) if a == "TEXT" else str(tmp_path / "o") if a == "X" else a for a in argv]
    assert main(["heads", "score", "--model", str(tiny_model_dir("bert")), *argv]) == 2
    assert message in capsys.readouterr().err
    assert main(["heads", "select", "--run", str(tmp_path / "none"), "--alpha", "0.1", "--out", str(tmp_path / "s.json")]) == 2
    assert "is not a finished heads run" in capsys.readouterr().err


def test_causal_models_refuse_mlm_loss(capsys, tiny_model_dir, files, tmp_path):
    text, _ = files
    code = main(["heads", "score", "--model", str(tiny_model_dir("gpt2")), "--perf", "mlm-loss", "--perf-data", str(text),
                 "--out", str(tmp_path / "o")])
    assert code == 2 and "mlm-loss needs a masked LM" in capsys.readouterr().err
    assert main(["heads", "score", "--model", str(tiny_model_dir("gpt2")), "--perf", "perplexity", "--perf-data", str(text),
                 "--out", str(tmp_path / "p")]) == 0


def test_tradeoff_command(capsys, tiny_model_dir, files, tmp_path):
    text, prompts = files
    out = tmp_path / "heads"
    assert _score(tiny_model_dir("bert"), text, prompts, out) == 0
    table = tmp_path / "tradeoff.csv"
    code = main(["heads", "tradeoff", "--run", str(out), "--perf", "mlm-loss", "--perf-data", str(text), "--bias",
                 "ig2-gap", "--bias-data", str(prompts), "--alphas", "0", "0.25", "--gammas", "0.25", "--out", str(table)])
    assert code == 0, capsys.readouterr().err
    points = pd.read_csv(table)
    assert points[["alpha", "gamma", "count"]].values.tolist() == [[0.0, 0.25, 0], [0.25, 0.25, 2]]
    assert {"perf", "bias", "pruned"} <= set(points.columns)
