"""Regression tests for the CLI user-test findings (issue 10): --limit, wrong model kinds, head
scoring without a performance metric, wording, runs list, --debug/--version, neurons compare."""

import json
import os
import subprocess
from importlib.metadata import version

import pandas as pd
import pytest

from bias_lab.cli import main
from bias_lab.evaluation.record import EvaluationResult
from bias_lab.interventions import InterventionSpec, NeuronEdit
from bias_lab.store import RunStore

from .conftest import ROOT
from .test_evaluation import STEREOSET

CROWS = ("sent_more,sent_less,stereo_antistereo,bias_type\n"
         "the poor man is lazy .,the rich man is lazy .,stereo,socioeconomic\n"
         "she cooks food .,he cooks food .,antistereo,gender\n"
         "the old driver was slow .,the young driver was slow .,antistereo,age\n")
SEAT_TOY = {"targ1": {"category": "M", "examples": ["he is here .", "the man works ."]},
            "targ2": {"category": "F", "examples": ["she is here .", "the woman works ."]},
            "attr1": {"category": "career", "examples": ["the job is good .", "work is money ."]},
            "attr2": {"category": "family", "examples": ["the home is warm .", "family is life ."]}}


@pytest.fixture
def files(tmp_path):
    """Tiny data of every benchmark in its official format, plus prompts and a masked-debias file."""
    paths = {"stereoset": tmp_path / "dev.json", "crows": tmp_path / "crows.csv", "text": tmp_path / "text.txt",
             "prompts": tmp_path / "prompts.jsonl", "seat": tmp_path / "seat", "winobias": tmp_path / "winobias",
             "debias": tmp_path / "debias.jsonl"}
    paths["stereoset"].write_text(json.dumps(STEREOSET))
    paths["crows"].write_text(CROWS)
    paths["text"].write_text("the doctor is here and she is very kind .\nthis young person is honest .\n"
                             "a man and a woman work in the city .\n")
    paths["prompts"].write_text("".join(json.dumps({"id": f"p{i}", "prompt": p, "pair": ["he", "she"]}) + "\n"
                                        for i, p in enumerate(["[MASK] is a doctor .", "[MASK] works in the city .",
                                                               "the nurse said [MASK] was late ."])))
    paths["seat"].mkdir()
    (paths["seat"] / "sent-toy.jsonl").write_text(json.dumps(SEAT_TOY))
    paths["winobias"].mkdir()
    for split in ("dev", "test"):
        for kind in (1, 2):
            (paths["winobias"] / f"pro_stereotyped_type{kind}.txt.{split}").write_text(
                "1 [The doctor] said that [he] was here.\n")
            (paths["winobias"] / f"anti_stereotyped_type{kind}.txt.{split}").write_text(
                "1 [The doctor] said that [she] was here.\n")
    paths["debias"].write_text(json.dumps({"text": "he is a doctor .", "label": 1, "bias_prob": 0.5}) + "\n")
    return paths


def _unfinished_runs() -> list:
    return [record for record in RunStore().list() if record.status != "complete"]


def _one_line_error(capsys, code) -> str:
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


# --- A: --limit and --retarget-all of `evaluate` ------------------------------------------------

def test_limit_is_honoured_and_recorded_for_stereoset_and_crows(capsys, tiny_model_dir, files, tmp_path):
    out = tmp_path / "ss"
    code = main(["evaluate", "stereoset", "--model", str(tiny_model_dir("bert")), "--data", str(files["stereoset"]),
                 "--limit", "1", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    assert EvaluationResult.load(out).summary["intrasentence"]["overall"]["count"] == 1  # of 2 examples
    config = RunStore().list(kind="evaluate")[0].config
    assert (config["limit"], config["items"], config["benchmark"]) == (1, 1, "stereoset")
    assert config["data_label"].endswith("dev.json, first 1") and config["notes"] == []
    assert {"data", "intervention", "method", "options", "tasks"} <= set(config)

    out = tmp_path / "crows"
    code = main(["evaluate", "crows", "--model", str(tiny_model_dir("bert")), "--data", str(files["crows"]),
                 "--limit", "2", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    assert EvaluationResult.load(out).summary["overall"]["count"] == 2  # of 3 pairs
    (record,) = [r for r in RunStore().list(kind="evaluate") if r.config["benchmark"] == "crows"]
    assert record.config["limit"] == 2 and record.config["items"] == 2 and record.summary["items"] == 2


def test_limit_help_and_seat_limit_is_refused(capsys, tiny_model_dir, files, tmp_path):
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    assert "CrowS/WinoBias pairs, text lines" in " ".join(capsys.readouterr().out.split())
    code = main(["evaluate", "seat", "--model", str(tiny_model_dir("bert", "encoder")), "--data", str(files["seat"]),
                 "--limit", "3", "--out", str(tmp_path / "o")])
    assert "--limit 3 does not apply to SEAT" in _one_line_error(capsys, code)
    assert RunStore().list() == []


def test_retarget_all_moves_mask_edits_and_prints_a_note(capsys, tiny_model_dir, files, tmp_path):
    spec = tmp_path / "spec.json"
    InterventionSpec((NeuronEdit(1, 3, 0.0),), position="mask").save(spec)
    argv = ["evaluate", "stereoset", "--model", str(tiny_model_dir("gpt2")), "--data", str(files["stereoset"]),
            "--intervention", str(spec), "--out", str(tmp_path / "o")]
    assert "--retarget-all" in _one_line_error(capsys, main(argv))
    assert RunStore().list() == []  # refused before any run existed
    assert main(argv + ["--retarget-all"]) == 0
    err = capsys.readouterr().err
    assert "note: neuron edits re-targeted from the mask position to every position" in err
    config = RunStore().list(kind="evaluate")[0].config
    assert config["intervention"]["position"] == "all" and len(config["notes"]) == 1


# --- B: a model of the wrong kind is one line, exit 2, and leaves no run behind -----------------

WRONG_KIND = [
    ("encoder", ["neurons", "attribute", "--data", "{prompts}", "--out", "{out}"]),
    ("encoder", ["neurons", "verify", "--run", "{ig2_run}"]),
    ("encoder", ["evaluate", "stereoset", "--data", "{stereoset}", "--out", "{out}/o"]),
    ("encoder", ["evaluate", "crows", "--data", "{crows}", "--out", "{out}/o"]),
    ("encoder", ["evaluate", "winobias", "--data", "{winobias}", "--out", "{out}/o"]),
    ("encoder", ["evaluate", "perplexity", "--data", "{text}", "--out", "{out}/o"]),
    ("encoder", ["evaluate", "mlm-loss", "--data", "{text}", "--out", "{out}/o"]),
    ("encoder", ["evaluate", "ig2-gap", "--data", "{prompts}", "--out", "{out}/o"]),
    ("encoder", ["heads", "score", "--perf", "mlm-loss", "--perf-data", "{text}", "--out", "{out}"]),
    ("encoder", ["heads", "score", "--perf", "perplexity", "--perf-data", "{text}", "--out", "{out}"]),
    ("encoder", ["heads", "score", "--perf", "stereoset-lms", "--perf-data", "{stereoset}", "--out", "{out}"]),
    ("encoder", ["heads", "score", "--perf", "none", "--bias", "crows", "--bias-data", "{crows}", "--out", "{out}"]),
    ("encoder", ["heads", "importance", "--perf-data", "{text}", "--out", "{out}"]),
    ("encoder", ["heads", "tradeoff", "--run", "{heads_run}", "--perf", "perplexity", "--perf-data", "{text}",
                 "--bias", "seat", "--bias-data", "{seat}", "--out", "{out}/t.csv"]),
    ("encoder", ["masks", "train", "--objective", "masked-debias", "--data", "{debias}", "--out", "{out}"]),
    ("encoder", ["masks", "evaluate", "{out}/mask.safetensors", "--perplexity-data", "{text}", "--out", "{out}/m.csv"]),
    ("causal", ["neurons", "attribute", "--data", "{prompts}", "--out", "{out}"]),
    ("causal", ["neurons", "verify", "--run", "{ig2_run}"]),
    ("causal", ["evaluate", "mlm-loss", "--data", "{text}", "--out", "{out}/o"]),
    ("causal", ["heads", "score", "--perf", "mlm-loss", "--perf-data", "{text}", "--out", "{out}"]),
    ("causal", ["heads", "score", "--perf", "perplexity", "--perf-data", "{text}", "--bias", "ig2-gap",
                "--bias-data", "{prompts}", "--out", "{out}"]),
    ("causal", ["heads", "importance", "--perf-data", "{text}", "--iterative", "1", "--out", "{out}"]),
    ("causal", ["masks", "train", "--objective", "masked-debias", "--data", "{debias}", "--out", "{out}"]),
]


def _heads_run(folder):
    """A finished heads run folder (as `heads tradeoff` reads it) without scoring anything."""
    folder.mkdir()
    pd.DataFrame({"layer": [0, 0, 1, 1], "head": [0, 1, 0, 1], "perf": [1.0, 2.0, 3.0, 4.0], "perf_delta": 0.0,
                  "bias": [0.1, 0.2, 0.3, 0.4], "bias_delta": 0.0, "importance": 0.0}).to_parquet(folder / "head_scores.parquet")
    (folder / "run.json").write_text(json.dumps({"config": {}}))
    return folder


@pytest.mark.parametrize("kind, argv", WRONG_KIND, ids=[f"{k}-{'-'.join(a[:3])}" for k, a in WRONG_KIND])
def test_wrong_model_kind_is_refused_before_any_run(capsys, tiny_model_dir, files, tmp_path, kind, argv):
    paths = {name: str(path) for name, path in files.items()}
    paths["out"] = str(tmp_path / "out")
    if "{ig2_run}" in argv:  # a real IG2 run of a masked LM, verified with the wrong model
        paths["ig2_run"] = str(tmp_path / "ig2")
        assert main(["neurons", "attribute", "--model", str(tiny_model_dir("bert")), "--data", paths["prompts"],
                     "--steps", "2", "--out", paths["ig2_run"]]) == 0
        assert main(["neurons", "select", "--run", paths["ig2_run"]]) == 0
        capsys.readouterr()
    if "{heads_run}" in argv:
        paths["heads_run"] = str(_heads_run(tmp_path / "heads"))
    model = tiny_model_dir("bert", "encoder") if kind == "encoder" else tiny_model_dir("gpt2")
    before = RunStore().list()
    err = _one_line_error(capsys, main([a.format(**paths) for a in argv] + ["--model", str(model)]))
    assert "is loaded as an encoder without an LM head" in err if kind == "encoder" else "is loaded as a causal LM" in err
    assert _unfinished_runs() == [] and len(RunStore().list()) == len(before)


@pytest.mark.parametrize("kind", ["encoder", "causal"])
def test_model_info_and_seat_accept_every_kind(capsys, tiny_model_dir, files, tmp_path, kind):
    model = str(tiny_model_dir("bert", "encoder") if kind == "encoder" else tiny_model_dir("gpt2"))
    assert main(["model-info", "--model", model, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["kind"] == kind
    assert main(["evaluate", "seat", "--model", model, "--data", str(files["seat"]), "--permutations", "100",
                 "--out", str(tmp_path / "seat")]) == 0
    assert "mean |effect size|" in capsys.readouterr().out


# --- C: scoring the heads of an encoder: --perf none with --bias seat ---------------------------

def test_encoder_heads_are_scored_on_bias_only(capsys, tiny_model_dir, files, tmp_path):
    encoder = str(tiny_model_dir("bert", "encoder"))
    out = tmp_path / "heads"
    assert "--perf none scores bias only: give --bias" in _one_line_error(
        capsys, main(["heads", "score", "--model", encoder, "--perf", "none", "--out", str(out)]))
    code = main(["heads", "score", "--model", encoder, "--perf", "mlm-loss", "--perf-data", str(files["text"]), "--out", str(out)])
    assert "use --perf none" in _one_line_error(capsys, code)
    assert RunStore().list() == []

    code = main(["heads", "score", "--model", encoder, "--perf", "none", "--bias", "seat", "--bias-data",
                 str(files["seat"]), "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    assert "baseline seat" in capsys.readouterr().out
    table = pd.read_parquet(out / "head_scores.parquet")
    assert len(table) == 8 and table["perf"].isna().all() and table["bias"].notna().all()
    assert (table["importance"] == -table["bias_delta"]).all()  # the bias a head carries
    assert json.loads((out / "run.json").read_text())["baseline"]["perf_metric"] is None
    assert RunStore().get(str(out)).status == "complete"

    spec = str(tmp_path / "spec.json")
    err = _one_line_error(capsys, main(["heads", "select", "--run", str(out), "--alpha", "0.25", "--out", spec]))
    assert "rule 'fasp' needs a performance score" in err and "--perf none" in err
    assert main(["heads", "select", "--run", str(out), "--rule", "bias", "--alpha", "0.25", "--out", spec]) == 0
    assert len(json.loads((tmp_path / "spec.json").read_text())["heads"]) == 2
    capsys.readouterr()
    code = main(["heads", "tradeoff", "--run", str(out), "--perf", "none", "--bias", "seat", "--bias-data",
                 str(files["seat"]), "--out", str(tmp_path / "t.csv")])
    assert "needs a performance score per head" in _one_line_error(capsys, code)


# --- D: wording, runs list, pipes, --debug, --version, neurons compare, flag names -------------

def test_summary_lines_name_each_metric(capsys, tiny_model_dir, files, tmp_path):
    assert main(["evaluate", "stereoset", "--model", str(tiny_model_dir("bert")), "--data", str(files["stereoset"]),
                 "--out", str(tmp_path / "ss")]) == 0
    line = capsys.readouterr().out.splitlines()[0]
    assert line.startswith("ss ") and "  lms " in line and "  icat " in line and "  bias |SS − 50| " in line
    assert "performance" not in line
    assert main(["evaluate", "perplexity", "--model", str(tiny_model_dir("gpt2")), "--data", str(files["text"]),
                 "--out", str(tmp_path / "ppl")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("perplexity ") and "performance" not in out

    assert main(["runs", "list"]) == 0
    listing = capsys.readouterr().out
    assert "what" in listing.splitlines()[0]
    assert "perplexity on " in listing and "stereoset on " in listing and "ss " in listing


def test_runs_list_describes_each_run(capsys):
    store = RunStore()
    ig2 = store.start("ig2", {"dimension": "gender", "modifier": "N", "pair": ["female", "male"], "target": "abs"},
                      model="bert-base-uncased")
    ig2.complete({"prompts": 40, "mean_gap": 0.0123})
    heads = store.start("heads", {"perf": "none", "bias": "seat"}, model="enc")
    heads.complete({"heads": 144, "baseline_perf": float("nan"), "baseline_bias": 0.61})
    failed = store.start("evaluate", {"benchmark": "crows"}, model="m")
    failed.fail("something broke")
    assert main(["runs", "list"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert "gender N female–male, target abs: 40 prompts, mean gap 0.0123" in rows[ig2.id]
    assert "perf none, bias seat: 144 heads, baseline seat 0.61" in rows[heads.id]
    assert "failed: something broke" in rows[failed.id]


def test_runs_list_into_a_closed_pipe_is_quiet(tmp_path):
    store = RunStore()
    for number in range(150):  # > 64 KiB of JSON: more than a pipe holds once `head` has gone
        store.start("evaluate", {"benchmark": "crows", "padding": "x" * 500, "n": number}, model="m").complete({})
    err = tmp_path / "err.txt"
    result = subprocess.run(["bash", "-c", f"bias-lab runs list --json 2>{err} | head -1"], capture_output=True,
                            text=True, cwd=ROOT, timeout=120, env=os.environ.copy())
    assert result.stdout == "[\n"
    assert err.read_text() == ""


def test_debug_after_the_subcommand_and_version(capsys):
    assert main(["runs", "show", "nope", "--debug"]) == 2
    assert "Traceback" in capsys.readouterr().err
    assert main(["runs", "show", "nope"]) == 2 and "Traceback" not in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out == f"bias-lab {version('bias-lab')}\n"


def test_compare_neurons_edges_never_overlap(capsys, tmp_path):
    table = tmp_path / "four.csv"
    pd.DataFrame({"jut": "N:a-b", "layer": [0, 1, 2, 3], "neuron": [5, 6, 7, 8], "frequency": 1.0, "bags": 1,
                  "mean_score": 1.0}).to_csv(table, index=False)
    assert main(["neurons", "compare", str(table), "--layers", "4"]) == 0
    out = capsys.readouterr().out
    assert "25% in the shallowest layer, 25% in the deepest layer" in out  # edge 1 of 4 layers, not 3
    err = _one_line_error(capsys, main(["neurons", "compare", str(table), "--layers", "4", "--edge", "3"]))
    assert "--edge 3 on a 4-layer model" in err and "use 1–2" in err
    assert "give --layers" in _one_line_error(capsys, main(["neurons", "compare", str(table)]))
    assert "neither a bias-neuron table" in _one_line_error(capsys, main(["neurons", "compare", "no-such-run"]))


def test_compare_neurons_takes_run_folders_and_ids_and_union_checks_targets(capsys, tiny_model_dir, files, tmp_path):
    run = tmp_path / "ig2"
    assert main(["neurons", "attribute", "--model", str(tiny_model_dir("bert")), "--data", str(files["prompts"]),
                 "--steps", "2", "--out", str(run)]) == 0
    run_id = RunStore().get(str(run)).id
    assert main(["neurons", "select", "--run", run_id]) == 0  # a run id works wherever a run folder does
    capsys.readouterr()
    assert main(["neurons", "compare", str(run), run_id, "--labels", "folder", "id"]) == 0  # layers from the run
    out = capsys.readouterr().out
    assert "folder:" in out and "id:" in out and "in the shallowest layer" in out

    err = _one_line_error(capsys, main(["neurons", "select", "--run", str(run), "--union-with", str(run)]))
    assert "--union-with builds Union_IG from plain-IG runs" in err and "has target abs" in err


def test_resume_conflicts_name_the_flag(capsys, tiny_model_dir, files, tmp_path):
    other = tmp_path / "other.txt"
    other.write_text("the old farmer drives a car .\n")
    argv = ["heads", "score", "--model", str(tiny_model_dir("bert")), "--perf", "mlm-loss", "--out", str(tmp_path / "h"),
            "--limit", "1", "--perf-data"]
    assert main(argv + [str(files["text"])]) == 0
    capsys.readouterr()
    err = _one_line_error(capsys, main(argv + [str(other)]))
    assert "another config (--perf-data: stored" in err and "perf_data" not in err


def test_heads_bias_limit_scores_only_the_first_items(tiny_model_dir, tmp_path, monkeypatch):
    import json

    import bias_lab.heads.metrics as metrics
    from bias_lab.cli import main
    from bias_lab.store import RunStore

    from .test_evaluation import STEREOSET

    path = tmp_path / "dev.json"
    path.write_text(json.dumps(STEREOSET))
    seen = []
    real = metrics.head_metric

    def spy(loaded, name, data, *, role, **options):
        if role == "bias":
            seen.append(len(data.intrasentence))
        return real(loaded, name, data, role=role, **options)

    monkeypatch.setattr(metrics, "head_metric", spy)
    assert main(["heads", "score", "--model", str(tiny_model_dir("bert")), "--perf", "none", "--bias", "stereoset",
                 "--bias-data", str(path), "--bias-limit", "1", "--out", str(tmp_path / "heads")]) == 0
    assert seen == [1]
    assert RunStore().list(kind="heads")[0].config["bias_limit"] == 1
    assert main(["heads", "score", "--model", str(tiny_model_dir("bert")), "--perf", "none", "--bias", "stereoset",
                 "--bias-data", str(path), "--bias-limit", "0", "--out", str(tmp_path / "h2")]) == 2


def test_seat_defaults_to_the_gender_tests_like_the_app(tiny_model_dir, tmp_path, capsys):
    import json

    from bias_lab.cli import main

    from .test_app_evaluate import SEAT_TEST

    folder = tmp_path / "seat"
    folder.mkdir()
    for name in ("sent-weat6", "sent-weat7", "heilman_double_bind_competent_1"):
        (folder / f"{name}.jsonl").write_text(json.dumps(SEAT_TEST))
    model = str(tiny_model_dir("bert", "encoder"))
    assert main(["evaluate", "seat", "--model", model, "--data", str(folder), "--out", str(tmp_path / "a")]) == 0
    assert "SEAT on 2 gender tests of the 3" in capsys.readouterr().err
    assert sorted(EvaluationResult.load(tmp_path / "a").summary["tests"]) == ["sent-weat6", "sent-weat7"]
    assert main(["evaluate", "seat", "--model", model, "--data", str(folder), "--tests", "all",
                 "--out", str(tmp_path / "b")]) == 0
    assert len(EvaluationResult.load(tmp_path / "b").summary["tests"]) == 3
