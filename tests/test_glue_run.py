"""`bias-lab glue` end to end on local files: one row per (mask, task) whose numbers are those of the
saved fine-tuned classifiers scored independently with scikit-learn, resumable per (mask, task);
the GLUE average as a run metric of the metric table — on the Trade-off axes and in `masks
evaluate`, refused by head scoring; bad input in one line, exit 2, nothing written."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import pearsonr
from sklearn.metrics import accuracy_score

from bias_lab.cli import main
from bias_lab.errors import BiasLabError, Cancelled
from bias_lab.finetune.glue import load_split
from bias_lab.finetune.glue_run import GlueResult, glue_columns, run_glue
from bias_lab.finetune.train import FinetuneSettings
from bias_lab.models import load_model
from bias_lab.store import RunStore

from .finetune_fixtures import glue_folder, nli_classifier, random_mask, small_bert, stored_glue_run  # noqa: F401
from .finetune_fixtures import write_jsonl

COMMON = ["--epochs", "2", "--lr", "1e-3", "--batch-size", "8", "--seed", "3"]


def _mask_file(model_dir, folder, seed=0):
    loaded = load_model(model_dir, device="cpu")
    path = folder / f"mask{seed}.safetensors"
    random_mask(loaded, keep=0.6, seed=seed).save(path)
    return path


def _dev_predictions(model_folder, examples, regression=False):
    loaded = load_model(model_folder, kind="classifier", device="cpu")
    pairs = [e.text_pair for e in examples]
    encoded = loaded.tokenizer([e.text for e in examples], pairs if pairs[0] is not None else None,
                               return_tensors="pt", padding=True)
    import torch

    with torch.no_grad():
        logits = loaded.model(**encoded).logits
    if regression:
        return logits[:, 0].numpy()
    names = [loaded.model.config.id2label[int(i)] for i in logits.argmax(-1)]
    return names


def test_glue_command_scores_each_mask_and_task_as_the_saved_models_do(capsys, small_bert, tmp_path):
    data = glue_folder(tmp_path / "glue")
    mask = _mask_file(small_bert, tmp_path)
    out = tmp_path / "run"
    code = main(["glue", "--model", str(small_bert), "--mask", f"random={mask}", "--tasks", "sst2", "stsb", "mnli",
                 "--data", str(data), "--save-models", "--device", "cpu", *COMMON, "--out", str(out)])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "WNLI left out of the average" in printed.out
    result = GlueResult.load(out)
    table = result.table
    assert list(table["name"]) == ["unmasked"] * 3 + ["random"] * 3
    assert list(table["task"]) == ["sst2", "stsb", "mnli"] * 2
    assert {"accuracy", "pearson", "spearman", "accuracy_matched", "accuracy_mismatched"} <= set(table.columns)
    assert table.loc[table["name"] == "unmasked", "density"].eq(100.0).all()
    assert table.loc[table["name"] == "random", "density"].lt(100.0).all()
    # Independently: each saved classifier (the mask written into its weights) scored with scikit-learn.
    for row in table.itertuples():
        folder = result.model_folder(row.name, row.task)
        if row.task == "sst2":
            dev = load_split("sst2", "validation", data)
            predicted = _dev_predictions(folder, dev)
            gold = [["negative", "positive"][e.label] for e in dev]
            assert row.accuracy == pytest.approx(100 * accuracy_score(gold, predicted)) and row.score == row.accuracy
        elif row.task == "stsb":
            dev = load_split("stsb", "validation", data)
            predicted = _dev_predictions(folder, dev, regression=True)
            assert row.pearson == pytest.approx(100 * pearsonr(predicted, [e.label for e in dev])[0], abs=1e-3)
        else:
            names = ["entailment", "neutral", "contradiction"]
            accuracies = []
            for split in ("validation_matched", "validation_mismatched"):
                dev = load_split("mnli", split, data)
                accuracies.append(100 * accuracy_score([names[e.label] for e in dev], _dev_predictions(folder, dev)))
            assert (row.accuracy_matched, row.accuracy_mismatched) == pytest.approx(accuracies)
            assert row.score == pytest.approx(np.mean(accuracies))
    averages = result.averages().set_index("name")
    by_task = table.pivot(index="name", columns="task", values="score")
    assert averages.loc["random", "average"] == pytest.approx(by_task.loc["random"].mean())
    record = RunStore().get(str(out))
    assert record.kind == "glue" and record.status == "complete"
    assert record.summary["average"] == pytest.approx(averages.loc["unmasked", "average"])
    assert not list(out.rglob("*.pt")) and not list(out.rglob("*.pkl"))  # safetensors, parquet, JSON only
    assert not list(out.rglob("checkpoint.json"))  # each unit's checkpoint is gone once the unit is done


def test_a_glue_run_resumes_per_mask_and_task(small_bert, tmp_path, monkeypatch):
    import bias_lab.finetune.glue_run as glue_run

    data = glue_folder(tmp_path / "glue", train=16, dev=6)
    settings = FinetuneSettings(epochs=1, lr=1e-3, batch_size=8)
    calls = []
    real = glue_run._finetune_and_score

    def counted(model, task, *args, **kwargs):
        calls.append(task.name)
        if len(calls) == 2 and "fail" not in calls:
            calls.append("fail")
            raise Cancelled("stop")
        return real(model, task, *args, **kwargs)

    monkeypatch.setattr(glue_run, "_finetune_and_score", counted)
    with pytest.raises(Cancelled):
        run_glue(str(small_bert), [], tmp_path / "run", tasks=["sst2", "stsb"],
                 data=data, settings=settings, device="cpu")
    assert RunStore().get(str(tmp_path / "run")).status == "interrupted"
    result = run_glue(str(small_bert), [], tmp_path / "run", tasks=["sst2", "stsb"], data=data, settings=settings,
                      device="cpu")
    assert calls == ["sst2", "stsb", "fail", "stsb"]  # sst2 was done: not fine-tuned again
    assert list(result.table["task"]) == ["sst2", "stsb"]
    with pytest.raises(BiasLabError, match="another config"):
        run_glue(str(small_bert), [], tmp_path / "run", tasks=["sst2"], data=data, settings=settings, device="cpu")


def test_bad_input_is_one_line_exit_2_and_writes_nothing(capsys, small_bert, nli_classifier, tmp_path):
    from bias_lab.tiny import build_tiny_model

    data = glue_folder(tmp_path / "glue", train=8, dev=4)
    cases = [
        (["--model", str(small_bert), "--tasks", "sst2", "squad"], "unknown GLUE task 'squad'"),
        (["--model", str(nli_classifier), "--tasks", "stsb"],
         "a regression task needs a head with one output; the model has a classification head with 3 labels"),
        (["--model", str(small_bert), "--tasks", "sst2", "--train-scores"], "--train-scores learns the scores"),
    ]
    other = build_tiny_model("bert", tmp_path / "other", layers=3)
    cases.append((["--model", str(small_bert), "--tasks", "sst2", "--mask", str(_mask_file(other, tmp_path, 1))],
                  "does not fit"))
    for number, (arguments, message) in enumerate(cases):
        out = tmp_path / f"out{number}"
        assert main(["glue", *arguments, "--data", str(data), "--device", "cpu", "--out", str(out)]) == 2
        error = capsys.readouterr().err
        assert message in error and error.count("\n") == 1, error
        assert not out.exists()
    assert RunStore().list() == []


def test_the_glue_average_is_a_run_metric_that_head_scoring_refuses(tiny_loaded, capsys):
    from bias_lab.heads.metrics import metrics_for, perf_metric
    from bias_lab.metrics import METRICS, RUN_METRICS, all_metrics, metric_names

    entry = RUN_METRICS["glue-average"]
    assert entry.role == "performance" and entry.higher_is_better and entry.direction == "higher is better"
    assert not entry.head_scoring and entry.run_kind == "glue"
    assert "glue-average" not in METRICS and "glue-average" not in metric_names("performance")
    assert list(all_metrics())[-1] == "glue-average"
    loaded = tiny_loaded("bert")
    for call in (lambda: perf_metric(loaded, "glue-average", ["a b"]),
                 lambda: metrics_for(loaded, perf="glue-average", perf_data="x.txt")):
        with pytest.raises(BiasLabError, match="metric glue-average cannot be scored here: it comes from "
                                               "`bias-lab glue` runs"):
            call()
    with pytest.raises(SystemExit) as exited:  # the CLI never offers it: argparse names the valid choices
        main(["heads", "score", "--perf", "glue-average", "--out", "x"])
    assert exited.value.code == 2 and "invalid choice: 'glue-average'" in capsys.readouterr().err


def test_the_trade_off_pairs_a_glue_average_with_bias_under_the_same_mask(tmp_path):
    from bias_lab import plots
    from bias_lab.evaluation.tradeoff import (default_metrics, metric_choices, metric_direction, metric_values,
                                              tradeoff_points)
    from bias_lab.interventions import InterventionSpec

    from .test_page_logic import _stereoset_summary, _stored_evaluation

    mask_a, mask_b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    for path in (mask_a, mask_b):
        path.write_bytes(b"x")
    glue = stored_glue_run("m", {None: [80.0, 70.0], mask_a: [70.0, 60.0], mask_b: [60.0, 50.0]})
    spec = lambda path: InterventionSpec(mask=str(path)).to_dict()  # noqa: E731
    original = _stored_evaluation("stereoset", _stereoset_summary(60.0, 90.0), {"data_label": "dev, first 2"})
    under_a = _stored_evaluation("stereoset", _stereoset_summary(55.0, 88.0),
                                 {"data_label": "dev, first 2", "method": "mask", "intervention": spec(mask_a)})
    # a spec naming the mask relative to where the command ran: the same mask file
    import os

    here = os.getcwd()
    os.chdir(tmp_path)
    try:
        under_b = _stored_evaluation("stereoset", _stereoset_summary(52.0, 85.0),
                                     {"data_label": "dev, first 2", "method": "mask", "intervention": spec("b.safetensors")})
        values = metric_values()
    finally:
        os.chdir(here)
    assert "glue-average" in metric_choices(values)[1]
    points = tradeoff_points(values=values, bias="stereoset", performance="glue-average")
    pairs = {row.bias_run: row for row in points.itertuples()}
    assert set(pairs) == {original, under_a, under_b}
    assert (pairs[original].performance, pairs[under_a].performance, pairs[under_b].performance) == (75.0, 65.0, 55.0)
    assert (pairs[original].bias, pairs[under_a].bias, pairs[under_b].bias) == (10.0, 5.0, 2.0)
    assert all(row.performance_run == glue for row in points.itertuples())
    assert "GLUE sst2, rte (dev)" in pairs[under_a].data and "3 epochs, lr 2e-05" in pairs[under_a].data
    assert metric_direction("glue-average") == "higher is better"
    assert default_metrics(values) is not None
    # The Pareto front maximises the GLUE average: every point here trades bias for GLUE, so all are on it
    front = plots.pareto_front(points, "performance", "bias", maximise_x=True)
    assert len(front) == 3
    worse = pd.concat([points, points.iloc[[0]].assign(performance=60.0, bias=12.0)], ignore_index=True)
    assert len(plots.pareto_front(worse, "performance", "bias", maximise_x=True)) == 3
    assert len(plots.pareto_front(worse, "performance", "bias")) == 1  # lower-is-better would keep only one


def test_masks_evaluate_adds_the_glue_average_of_each_mask(tmp_path, tiny_model_dir, capsys):
    model = tiny_model_dir("bert")
    mask = _mask_file(model, tmp_path, 3)
    stored_glue_run(str(model), {None: [80.0, 70.0], mask: [72.0, 60.0]})
    glue_dir = RunStore().list(kind="glue")[0].artifact_dir
    text = tmp_path / "text.txt"
    text.write_text("the doctor is here .\nshe works at home .\n")
    out = tmp_path / "masks.csv"
    assert main(["masks", "evaluate", str(mask), "--model", str(model), "--perplexity-data", str(text),
                 "--glue-run", str(glue_dir), "--out", str(out)]) == 0, capsys.readouterr().err
    table = pd.read_csv(out)
    assert list(table["glue-average"]) == [75.0, 66.0]
    assert list(table["glue:sst2"]) == [80.0, 72.0] and "perplexity" in table.columns
    report = glue_columns(pd.DataFrame({"mask": ["(none)", str(tmp_path / "other.safetensors")]}),
                          GlueResult.load(glue_dir))
    assert report["glue-average"].iloc[0] == 75.0 and np.isnan(report["glue-average"].iloc[1])


def test_local_files_may_give_labels_by_name(tmp_path, small_bert):
    data = tmp_path / "glue"
    for split in ("train", "validation"):
        write_jsonl(data / "rte" / f"{split}.jsonl",
                    [{"sentence1": "a man works .", "sentence2": "a man is here .",
                      "label": ["entailment", "not_entailment"][i % 2]} for i in range(6)])
    result = run_glue(str(small_bert), [], tmp_path / "run", tasks=["rte"], data=data,
                      settings=FinetuneSettings(epochs=1, batch_size=4), device="cpu")
    assert result.table["eval_examples"].tolist() == [6]
    assert json.loads((tmp_path / "run" / "run.json").read_text())["note"].startswith("WNLI left out")


def test_a_classifier_keeps_its_head_and_is_scored_by_its_label_names(nli_classifier, tmp_path):
    """An NLI classifier whose head orders its labels (contradiction, entailment, neutral) unlike GLUE
    (entailment, neutral, contradiction): trained and scored through its own label names."""
    data = glue_folder(tmp_path / "glue", train=24, dev=12)
    hypotheses = ["the man works .", "the man lives here .", "the man never works ."]
    for split in ("validation_matched", "validation_mismatched"):  # unbalanced: a swapped label shows
        write_jsonl(data / "mnli" / f"{split}.jsonl",
                    [{"premise": "the man works .", "hypothesis": hypotheses[label], "label": label}
                     for label in [0] * 6 + [1] * 3 + [2]])
    result = run_glue(str(nli_classifier), [], tmp_path / "run", tasks=["mnli"], data=data, save_models=True,
                      settings=FinetuneSettings(epochs=2, lr=1e-3, batch_size=8), device="cpu")
    folder = result.model_folder("unmasked", "mnli")
    assert load_model(folder, device="cpu").model.config.id2label == {0: "contradiction", 1: "entailment",
                                                                      2: "neutral"}
    names = ["entailment", "neutral", "contradiction"]
    expected = []
    for split in ("validation_matched", "validation_mismatched"):
        dev = load_split("mnli", split, data)
        predicted = _dev_predictions(folder, dev)
        expected.append(100 * accuracy_score([names[e.label] for e in dev], predicted))
    row = result.table.iloc[0]
    assert (row.accuracy_matched, row.accuracy_mismatched) == pytest.approx(expected)
