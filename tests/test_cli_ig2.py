import json

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from bias_lab.neurons import run as ig2_run
from bias_lab.cli import main
from bias_lab.store import RunStore


def _ig2(capsys, model, out, *extra):
    code = main(["neurons", "attribute", "--model", str(model), "--dimension", "gender", "--modifier", "N", "--pair",
                 "female", "male", "--out", str(out), "--steps", "4", *extra])
    return code, capsys.readouterr()


def test_ig2_contract(capsys, tiny_model_dir, tmp_path):
    out = tmp_path / "run"
    code, captured = _ig2(capsys, tiny_model_dir("bert"), out, "--limit", "40")
    assert code == 0, captured.err
    scores = load_file(str(out / "attributions.safetensors"))["ig2"]
    assert scores.dtype == torch.float32 and scores.shape == (40, 2, 64)
    prompts = pd.read_parquet(out / "prompts.parquet")
    assert list(prompts.columns[:4]) == ["id", "prompt", "d1", "d2"]
    assert {"p_d1", "p_d2", "gap", "delta_l0", "delta_l1"} <= set(prompts.columns)
    assert prompts["id"].tolist()[:2] == ["gender|N|female|male|rude|t1", "gender|N|female|male|rude|t2"]
    assert (prompts["gap"] - (prompts["p_d1"] - prompts["p_d2"]).abs()).abs().max() < 1e-12
    run = json.loads((out / "run.json").read_text())
    assert run["config"]["steps"] == 4 and run["config"]["method"] == "riemann_right" and run["config"]["limit"] == 40
    assert run["timing"]["attribution_s"] > 0 and run["provenance"]["versions"]["torch"]
    record = RunStore().get(str(out))
    assert record.kind == "ig2" and record.status == "complete" and record.summary["prompts"] == 40

    code = main(["neurons", "select", "--run", str(out), "--spec", str(tmp_path / "spec.json")])
    captured = capsys.readouterr()
    assert code == 0 and "N:female-male" in captured.out
    table = pd.read_csv(out / "bias_neurons.csv")
    assert list(table.columns) == ["jut", "layer", "neuron", "frequency", "bags", "mean_score"]
    spec = json.loads((tmp_path / "spec.json").read_text())
    assert spec["position"] == "mask" and len(spec["neurons"]) == len(table[["layer", "neuron"]].drop_duplicates())

    code, captured = main(["neurons", "verify", "--run", str(out), "--draws", "2"]), capsys.readouterr()
    assert code == 0, captured.err
    verification = pd.read_csv(out / "verification.csv")
    assert set(verification["method"]) == {"ig2", "random"} and set(verification["mode"]) == {"suppress", "amplify"}


def test_prompt_file_keeps_input_order(capsys, tiny_model_dir, tmp_path):
    lines = [{"id": "long", "prompt": "the young doctor said that [MASK] was very kind and honest .", "pair": ["he", "she"]},
             {"id": "short", "prompt": "[MASK] works .", "pair": ["he", "she"]},
             {"id": "mid", "prompt": "this person is [MASK] .", "pair": ["man", "woman"]}]
    path = tmp_path / "prompts.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    out = tmp_path / "run"
    assert main(["neurons", "attribute", "--model", str(tiny_model_dir("roberta")), "--data", str(path),
                 "--out", str(out), "--steps", "3"]) == 0
    prompts = pd.read_parquet(out / "prompts.parquet")
    assert prompts["id"].tolist() == ["long", "short", "mid"]
    reference_out = tmp_path / "reference"
    assert main(["neurons", "attribute", "--model", str(tiny_model_dir("roberta")), "--data", str(path),
                 "--out", str(reference_out), "--steps", "3", "--engine", "reference"]) == 0
    fast = load_file(str(out / "attributions.safetensors"))["ig2"]
    reference = load_file(str(reference_out / "attributions.safetensors"))["ig2"]
    scale = reference.abs().amax(dim=2, keepdim=True)
    assert ((fast - reference).abs() / scale).max() < 1e-4


def test_interrupted_run_resumes_without_duplicates(capsys, tiny_model_dir, tmp_path, monkeypatch):
    model = tiny_model_dir("distilbert")
    out = tmp_path / "run"
    real = ig2_run.attribute_ig2
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(len(args[1]))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(ig2_run, "attribute_ig2", interrupted)
    code, captured = _ig2(capsys, model, out, "--limit", "80")
    assert code == 130 and "re-run the same command to resume" in captured.err
    assert RunStore().get(str(out)).status == "interrupted"
    assert not (out / "attributions.safetensors").exists()

    calls.clear()
    monkeypatch.setattr(ig2_run, "attribute_ig2", lambda *a, **k: (calls.append(len(a[1])), real(*a, **k))[1])
    code, _ = _ig2(capsys, model, out, "--limit", "80")
    assert code == 0 and calls == [34, 12]  # units 2 and 3 of 34, 34, 12: the first was kept
    prompts = pd.read_parquet(out / "prompts.parquet")
    assert len(prompts) == 80 and prompts["id"].is_unique
    resumed = load_file(str(out / "attributions.safetensors"))["ig2"]
    fresh_out = tmp_path / "fresh"
    monkeypatch.setattr(ig2_run, "attribute_ig2", real)
    assert _ig2(capsys, model, fresh_out, "--limit", "80")[0] == 0
    torch.testing.assert_close(resumed, load_file(str(fresh_out / "attributions.safetensors"))["ig2"])
    assert len(RunStore().list(kind="ig2")) == 2


def test_resume_with_other_settings_is_refused(capsys, tiny_model_dir, tmp_path):
    out = tmp_path / "run"
    assert _ig2(capsys, tiny_model_dir("bert"), out, "--limit", "5")[0] == 0
    code, captured = _ig2(capsys, tiny_model_dir("bert"), out, "--limit", "5", "--method", "gausslegendre")
    assert code == 2 and "another config (--method: stored 'riemann_right'" in captured.err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--dimension", "age", "--modifier", "N", "--pair", "young", "middle-aged"], "'middle-aged' is "),
        (["--dimension", "gendr", "--modifier", "N", "--pair", "a", "b"], "unknown dimension 'gendr'"),
        (["--dimension", "gender", "--modifier", "N", "--pair", "female", "male", "--steps", "0"], "--steps 0 must be at least 1"),
        (["--dimension", "gender", "--modifier", "N", "--pair", "female", "male", "--limit", "0"], "--limit 0"),
        (["--dimension", "gender"], "give --data PROMPTS.jsonl, or all of"),
    ],
)
def test_ig2_bad_input_is_one_line_exit_2(capsys, tiny_model_dir, tmp_path, argv, message):
    code = main(["neurons", "attribute", "--model", str(tiny_model_dir("bert")), "--out", str(tmp_path / "o"), *argv])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("error:")


def test_prompt_without_mask_and_out_of_range_neurons(capsys, tiny_model_dir, tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"id": "nomask", "prompt": "he is here .", "pair": ["he", "she"]}\n')
    code = main(["neurons", "attribute", "--model", str(tiny_model_dir("bert")), "--data", str(path), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "prompt 'nomask' has 0 masks" in err
    out = tmp_path / "run"
    assert _ig2(capsys, tiny_model_dir("bert"), out, "--limit", "3")[0] == 0
    bad = tmp_path / "neurons.csv"
    pd.DataFrame({"jut": ["N:female-male"], "layer": [9], "neuron": [0], "frequency": [1.0], "bags": [1],
                  "mean_score": [1.0]}).to_csv(bad, index=False)
    code = main(["neurons", "verify", "--run", str(out), "--neurons", str(bad), "--out", str(tmp_path / "v.csv")])
    err = capsys.readouterr().err
    assert code == 2 and "layer 9 is out of range, valid layers are 0–1" in err
    code = main(["neurons", "verify", "--run", str(out), "--neurons", str(bad)])
    assert code == 2 and "--neurons verifies a table of your own" in capsys.readouterr().err
    code = main(["neurons", "select", "--run", str(tmp_path / "nothing")])
    assert code == 2 and "is not a finished IG2 run folder" in capsys.readouterr().err


def test_union_ig_analyses_and_comparison(capsys, tiny_model_dir, tmp_path):
    model = tiny_model_dir("bert")
    for target in ("d1", "d2"):
        assert _ig2(capsys, model, tmp_path / target, "--limit", "17", "--target", target)[0] == 0
    assert main(["neurons", "select", "--run", str(tmp_path / "d1"), "--union-with", str(tmp_path / "d2")]) == 0
    union = pd.read_csv(tmp_path / "d1" / "union_ig_neurons.csv")
    assert "source" in union.columns and not union.empty
    analyses = json.loads((tmp_path / "d1" / "union_ig_neurons_analyses.json").read_text())
    assert len(analyses["per_layer"]) == 2 and analyses["intersections"][0]["statistic"] == "avg_intra"
    assert main(["neurons", "select", "--run", str(tmp_path / "d2")]) == 0
    capsys.readouterr()
    code = main(["neurons", "compare", str(tmp_path / "d1" / "union_ig_neurons.csv"), str(tmp_path / "d2" / "bias_neurons.csv"),
                 "--labels", "union", "d2", "--layers", "2", "--out", str(tmp_path / "migration.csv")])
    out = capsys.readouterr().out
    assert code == 0 and "union:" in out and "shallowest" in out
    migration = pd.read_csv(tmp_path / "migration.csv")
    assert set(migration["model"]) == {"union", "d2"} and len(migration) == 4
    code = main(["neurons", "compare", str(tmp_path / "migration.csv"), "--layers", "2", "--labels", "a", "b"])
    assert code == 2 and "2 labels for 1 tables" in capsys.readouterr().err
