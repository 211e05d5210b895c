"""Typed run results: every kind saves and loads back what it holds (round trip), refuses an
unfinished folder in one line, and is found in the run store by its kind."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from bias_lab.errors import BiasLabError
from bias_lab.evaluation.record import EvaluationResult
from bias_lab.heads.runs import HeadImportanceResult, HeadScoresResult
from bias_lab.neurons.run import BiasNeuronSelection, IG2Result
from bias_lab.pruning.masks import MaskSet
from bias_lab.pruning.train import DebiasResult, MaskTrainingResult
from bias_lab.results import result_classes
from bias_lab.store import RunStore

PROMPTS = pd.DataFrame({"id": ["a", "b"], "prompt": ["[MASK] is here .", "[MASK] works ."], "d1": ["he", "he"],
                        "d2": ["she", "she"], "dimension": ["gender", "gender"], "modifier_type": ["", ""],
                        "modifier": ["", ""], "template": [0, 1], "gap": [0.1, 0.2]})
TABLE = pd.DataFrame({"layer": [0, 1], "head": [2, 3], "perf": [1.5, np.nan], "bias": [0.25, 0.5]})


def _equal(a, b) -> None:
    if isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True), check_dtype=False)
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b)
    elif isinstance(a, MaskSet):
        assert a.block == b.block and a.metadata == b.metadata
        assert a.masks.keys() == b.masks.keys() and all(torch.equal(a.masks[k], b.masks[k]) for k in a.masks)
    else:
        assert a == b


def _examples(folder):
    generator = torch.Generator().manual_seed(0)
    masks = MaskSet(1, {"layer0.value": torch.rand(4, 8, generator=generator) > 0.5},
                    {"model": "tiny", "step": 3})
    curve = pd.DataFrame({"step": [0, 1], "heads": [[], [[0, 1]]], "perf": [1.0, 1.2], "bias": [0.3, 0.2]})
    return [
        (IG2Result(folder, PROMPTS, torch.rand(2, 3, 5, generator=generator), {"id": "x", "config": {"model": "m"}}),
         ("prompts", "scores", "config")),
        (BiasNeuronSelection(pd.DataFrame({"jut": ["j"], "layer": [1], "neuron": [4], "frequency": [0.5]}),
                             {"per_layer": [{"layer": 1, "count": 1}]}, False,
                             pd.DataFrame({"jut": ["j"], "mode": ["suppress"], "change_pct_mean": [-12.5]})),
         ("table", "analyses", "verification")),
        (HeadScoresResult(folder, TABLE, {"id": "h", "baseline": {"perf": 1.0, "bias": 0.5}}), ("table", "meta")),
        (HeadImportanceResult(folder, TABLE[["layer", "head"]].assign(importance=[0.1, 1.0]), {"id": "i"}, curve),
         ("importance", "meta", "curve")),
        (MaskTrainingResult(folder, masks, pd.DataFrame({"step": [1], "loss": [0.5]}),
                            pd.DataFrame({"layer": [0], "module": ["value"], "kept": [3], "total": [4]}),
                            pd.DataFrame({"layer": [0], "head": [0], "alive": [True]}), {"summary": {"steps": 1}}),
         ("masks", "history", "densities", "heads", "meta")),
        (DebiasResult(folder, pd.DataFrame({"step": [1], "loss": [0.2]}), {"id": "d"}), ("history", "meta")),
        (EvaluationResult(folder, "crows", {"overall": {"metric": 60.0}}, pd.DataFrame({"score": [1.0]}),
                          {"benchmark": "crows", "limit": None}), ("benchmark", "summary", "items", "config")),
    ]


def test_every_kind_has_a_result_class():
    assert set(result_classes()) == {"ig2", "bias-neurons", "heads", "head-importance", "prune", "debias", "evaluate",
                                     "compare-models", "distill", "sweep", "glue", "bias-model", "challenge"}


@pytest.mark.parametrize("index", range(7))
def test_save_then_load_gives_back_the_same_result(tmp_path, index):
    result, fields = _examples(tmp_path)[index]
    result.save(tmp_path)
    back = type(result).load(tmp_path)
    for name in fields:
        _equal(getattr(result, name), getattr(back, name))
    assert not list(tmp_path.glob("*.pt")) and not list(tmp_path.glob("*.pkl"))  # nothing pickled


@pytest.mark.parametrize("cls", [IG2Result, HeadScoresResult, HeadImportanceResult, MaskTrainingResult,
                                 DebiasResult, EvaluationResult, BiasNeuronSelection])
def test_an_unfinished_folder_is_refused_in_one_line(tmp_path, cls):
    with pytest.raises(BiasLabError) as error:
        cls.load(tmp_path)
    assert "\n" not in str(error.value) and str(tmp_path) in str(error.value)


def test_finished_runs_lists_only_complete_runs_with_their_files(tmp_path):
    store = RunStore()
    done = store.start("heads", {"a": 1}, artifact_dir=tmp_path / "done")
    HeadScoresResult(done.dir, TABLE, {"id": done.id}).save(done.dir)
    done.complete()
    store.start("heads", {"a": 2}, artifact_dir=tmp_path / "empty").complete()  # no artifacts
    running = store.start("heads", {"a": 3}, artifact_dir=tmp_path / "running")
    HeadScoresResult(running.dir, TABLE, {"id": running.id}).save(running.dir)
    assert [record.id for record in HeadScoresResult.finished_runs(store)] == [done.id]


def test_selection_tables_go_where_asked(tmp_path):
    selection = BiasNeuronSelection(pd.DataFrame({"jut": ["j"], "layer": [0], "neuron": [1]}), {"settings": {}}, True)
    path = selection.save(tmp_path, table=tmp_path / "chosen.parquet")
    assert path.is_file() and (tmp_path / "chosen_analyses.json").is_file()
    assert json.loads((tmp_path / "chosen_analyses.json").read_text()) == {"settings": {}}
    selection.save(tmp_path)
    assert BiasNeuronSelection.load(tmp_path, union=True).union


def test_every_result_class_is_importable_from_bias_lab_results_in_a_fresh_interpreter():
    # As the README promises (`from bias_lab.results import EvaluationResult`); a fresh interpreter,
    # because the lookup must work before any method module was imported (no import cycle).
    import subprocess
    import sys

    script = ("import bias_lab.results as results\n"
              "classes = results.result_classes()\n"
              "from bias_lab.results import EvaluationResult, SweepResult\n"
              "assert EvaluationResult is classes['evaluate'] and SweepResult is classes['sweep']\n"
              "for kind, cls in classes.items():\n"
              "    assert getattr(results, cls.__name__) is cls, kind\n"
              "try:\n"
              "    from bias_lab.results import NoSuchResult\n"
              "except ImportError:\n"
              "    pass\n"
              "else:\n"
              "    raise SystemExit('an unknown name was found')\n")
    first = subprocess.run([sys.executable, "-c", "from bias_lab.results import EvaluationResult"], capture_output=True,
                           text=True)
    assert first.returncode == 0, first.stderr
    checked = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
