import json
import os
import shutil
import subprocess
import sys

import pytest

from bias_lab.cli import main
from bias_lab.families import family_names
from bias_lab.store import RunStore

from .conftest import ROOT


def _run(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_info_lists_device_and_families(capsys):
    code, out, err = _run(capsys, "info")
    assert code == 0 and err == ""
    assert out.startswith("device: cpu")
    for family in family_names():
        assert f"  {family} " in out
    code, out, _ = _run(capsys, "info", "--json")
    facts = json.loads(out)
    assert facts["device"]["device"] == "cpu" and [f["family"] for f in facts["families"]] == family_names()


@pytest.mark.parametrize("command", [[sys.executable, "-m", "bias_lab", "info"], ["bias-lab", "info"]])
def test_info_as_module_and_console_script(command):
    if command[0] == "bias-lab":
        assert shutil.which("bias-lab"), "bias-lab console script missing: install with `pip install -e .`"
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=120, env=os.environ.copy())
    assert result.returncode == 0, result.stderr
    assert "device:" in result.stdout and "gpt-neo" in result.stdout


def test_runs_list_show_delete(capsys, tmp_path):
    store = RunStore()
    run = store.start("ig2", {"steps": 20}, model="tiny")
    run.complete({"prompts": 3})
    code, out, _ = _run(capsys, "runs", "list")
    assert code == 0 and run.id in out and "complete" in out
    code, out, _ = _run(capsys, "runs", "list", "--json", "--kind", "ig2")
    assert [r["id"] for r in json.loads(out)] == [run.id]
    code, out, _ = _run(capsys, "runs", "list", "--kind", "heads")
    assert out.strip() == "no runs"
    code, out, _ = _run(capsys, "runs", "show", run.id)
    assert json.loads(out)["summary"] == {"prompts": 3}
    code, out, _ = _run(capsys, "runs", "delete", run.id)
    assert code == 0 and f"deleted run {run.id}" in out
    assert store.list() == []


@pytest.mark.parametrize(
    "argv, message",
    [
        (["runs", "show", "nope"], "error: no run 'nope'"),
        (["runs", "delete", "nope"], "error: no run 'nope'"),
        (["runs", "list", "--limit", "0"], "error: --limit 0 must be at least 1"),
        (["model-info", "--model", "/not/a/folder"], "error: model folder '/not/a/folder' does not exist"),
        (["model-info", "--model", "x", "--device", "tpu"], "error: unknown device 'tpu'"),
    ],
)
def test_library_errors_print_one_line_and_exit_2(capsys, argv, message):
    code, out, err = _run(capsys, *argv)
    assert code == 2
    assert err.startswith(message) and err.count("\n") == 1
    assert "Traceback" not in err


@pytest.mark.parametrize("argv", [["bogus"], ["runs"], ["runs", "list", "--status", "done"], ["info", "--nope"],
                                  ["neurons"], ["heads"], ["masks"], ["evaluate", "nope"], ["ig2"], ["prune"]])
def test_bad_arguments_exit_2_with_one_line(capsys, argv):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and err.count("\n") == 1


@pytest.mark.parametrize("argv, help_of", [(["info", "--nope"], "bias-lab info"),
                                           (["runs", "list", "--bogus"], "bias-lab runs list"),
                                           (["heads", "score", "--model", "m", "--out", "o", "--tests", "a"],
                                            "bias-lab heads score")])
def test_an_unknown_option_points_to_the_help_of_the_command_typed(capsys, argv, help_of):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert capsys.readouterr().err.endswith(f"(see `{help_of} --help`)\n")


@pytest.mark.parametrize("group, actions", [("neurons", "attribute, select, verify, compare"),
                                           ("heads", "score, select, importance, tradeoff"),
                                           ("masks", "train, info, evaluate"), ("runs", "list, show, delete, export, import")])
def test_a_group_without_an_action_names_its_actions(capsys, group, actions):
    with pytest.raises(SystemExit) as info:
        main([group])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err == f"error: `bias-lab {group}` needs an action: {actions} (see `bias-lab {group} --help`)\n"
    with pytest.raises(SystemExit) as info:
        main([group, "--help"])
    out = capsys.readouterr().out
    assert info.value.code == 0 and all(action in out for action in actions.split(", "))


def test_help_lists_the_command_tree_and_the_library_tables(capsys):
    from bias_lab.metrics import BENCHMARKS, metric_names

    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("neurons", "heads", "masks", "evaluate", "runs", "info", "model-info"):
        assert f"    {command}" in out
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    out = capsys.readouterr().out
    assert all(f"  {name} " in out for name in BENCHMARKS)  # every benchmark of the table, with its data
    with pytest.raises(SystemExit):
        main(["heads", "score", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert all(name in out for name in metric_names("performance") + metric_names("bias"))


def test_debug_flag_shows_the_traceback(capsys):
    assert main(["--debug", "runs", "show", "nope"]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_model_info_uses_environment_default(capsys, monkeypatch, tiny_model_dir):
    folder = tiny_model_dir("distilbert")
    monkeypatch.setenv("BIAS_LAB_MODEL", str(folder))
    code, out, _ = _run(capsys, "model-info", "--json")
    assert code == 0
    summary = json.loads(out)
    assert summary["source"] == str(folder) and summary["family"] == "distilbert" and summary["ffn_width"] == 64


def test_offline_default_model_is_a_clear_error(capsys):
    code, _, err = _run(capsys, "model-info")
    assert code == 2
    assert "cannot fetch model 'bert-base-uncased'" in err and "local model folder" in err
