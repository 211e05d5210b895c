"""GLUE tasks, metrics and data: every metric against scikit-learn / SciPy on fixed predictions,
the task score and the average (WNLI out unless asked), local files with the Hub's columns, and
one-line errors for a bad task, a bad file and the Hub offline."""

import numpy as np
import pytest
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from bias_lab.data.common import DataError
from bias_lab.errors import BiasLabError
from bias_lab.finetune.glue import (DEFAULT_TASKS, TASKS, chosen_tasks, glue_average, glue_task, load_split,
                                    metric_value, task_metrics, task_score)

from .finetune_fixtures import glue_folder, write_jsonl

GOLD = [1, 0, 1, 1, 0, 0, 1, 0, 1, 1]
PREDICTED = [1, 0, 0, 1, 1, 0, 1, 0, 1, 0]
GOLD_SCORES = [0.0, 1.2, 3.4, 5.0, 2.2, 4.1]
PREDICTED_SCORES = [0.3, 1.0, 2.9, 4.2, 2.8, 3.3]


def test_each_metric_is_scikit_learns_or_scipys_in_points():
    assert metric_value("matthews", PREDICTED, GOLD) == pytest.approx(100 * matthews_corrcoef(GOLD, PREDICTED))
    assert metric_value("accuracy", PREDICTED, GOLD) == pytest.approx(100 * accuracy_score(GOLD, PREDICTED)) == 70.0
    assert metric_value("f1", PREDICTED, GOLD) == pytest.approx(100 * f1_score(GOLD, PREDICTED))
    # F1 of the positive class by hand: 4 true positives, 1 false positive, 2 false negatives
    assert metric_value("f1", PREDICTED, GOLD) == pytest.approx(100 * 2 * 4 / (2 * 4 + 1 + 2))
    assert metric_value("pearson", PREDICTED_SCORES, GOLD_SCORES) == pytest.approx(
        100 * pearsonr(PREDICTED_SCORES, GOLD_SCORES)[0])
    assert metric_value("spearman", PREDICTED_SCORES, GOLD_SCORES) == pytest.approx(
        100 * spearmanr(PREDICTED_SCORES, GOLD_SCORES)[0])
    with pytest.raises(BiasLabError, match="unknown GLUE metric 'bleu'"):
        metric_value("bleu", PREDICTED, GOLD)


@pytest.mark.parametrize("name", list(TASKS))
def test_each_task_reports_its_own_metrics_and_their_mean(name):
    task = TASKS[name]
    regression = task.regression
    gold = GOLD_SCORES if regression else [g % task.num_labels for g in GOLD]
    predicted = PREDICTED_SCORES if regression else [(p + (i % 3 == 0)) % task.num_labels
                                                     for i, p in enumerate(PREDICTED)]
    splits = {split: predicted for split in task.dev_splits}
    golds = {split: gold for split in task.dev_splits}
    if name == "mnli":  # the mismatched dev set gets its own predictions
        splits["validation_mismatched"] = gold
    metrics = task_metrics(task, splits, golds)
    expected = {"cola": lambda: {"matthews": matthews_corrcoef(gold, predicted)},
                "stsb": lambda: {"pearson": pearsonr(predicted, gold)[0], "spearman": spearmanr(predicted, gold)[0]},
                "mrpc": lambda: {"f1": f1_score(gold, predicted), "accuracy": accuracy_score(gold, predicted)},
                "qqp": lambda: {"f1": f1_score(gold, predicted), "accuracy": accuracy_score(gold, predicted)},
                "mnli": lambda: {"accuracy_matched": accuracy_score(gold, predicted), "accuracy_mismatched": 1.0}}
    default = lambda: {"accuracy": accuracy_score(gold, predicted)}  # noqa: E731
    want = {k: 100 * v for k, v in expected.get(name, default)().items()}
    assert metrics == pytest.approx(want)
    assert task_score(task, metrics) == pytest.approx(float(np.mean(list(want.values()))))


def test_the_average_leaves_wnli_out_unless_asked():
    scores = {"cola": 40.0, "sst2": 90.0, "wnli": 10.0}
    assert glue_average(scores) == pytest.approx(65.0)
    assert glue_average(scores, wnli=True) == pytest.approx(140.0 / 3)
    assert [t.name for t in chosen_tasks(None)] == list(DEFAULT_TASKS) and "wnli" not in DEFAULT_TASKS
    assert [t.name for t in chosen_tasks(["rte", "cola"], wnli=True)] == ["cola", "rte", "wnli"]
    with pytest.raises(BiasLabError, match="unknown GLUE task 'squad': use some of cola, sst2"):
        chosen_tasks(["squad"])
    assert glue_task("stsb").regression and glue_task("mnli").num_labels == 3


def test_local_files_with_the_hub_columns(tmp_path):
    folder = glue_folder(tmp_path)
    sst2 = load_split("sst2", "train", folder)
    assert len(sst2) == 24 and sst2[0].text == "the food is good ." and sst2[0].text_pair is None and sst2[0].label == 1
    mnli = load_split("mnli", "validation_mismatched", folder, limit=5)
    assert len(mnli) == 5 and mnli[0].label == 0 and mnli[2].label == 2 and mnli[1].text_pair == "the man lives here ."
    stsb = load_split("stsb", "validation", folder)
    assert isinstance(stsb[1].label, float) and stsb[1].label == 4.5


def test_bad_local_data_is_one_line(tmp_path):
    folder = glue_folder(tmp_path)
    with pytest.raises(DataError, match="has no rte/train.jsonl"):
        load_split("rte", "train", folder)
    write_jsonl(folder / "cola" / "train.jsonl", [{"sentence": "a b", "label": 3}])
    with pytest.raises(DataError, match=r"label 3 must be 0 … 1 \(unacceptable, acceptable\)"):
        load_split("cola", "train", folder)
    write_jsonl(folder / "cola" / "train.jsonl", [{"text": "a b", "label": 1}])
    with pytest.raises(DataError, match="missing 'sentence'"):
        load_split("cola", "train", folder)
    write_jsonl(folder / "qnli" / "train.jsonl", [{"question": "q", "sentence": "s", "label": "yes"}])
    with pytest.raises(DataError, match="label 'yes' is not one of qnli's labels entailment, not_entailment"):
        load_split("qnli", "train", folder)
    with pytest.raises(DataError, match="does not exist"):
        load_split("sst2", "train", tmp_path / "nowhere")


def test_the_hub_offline_fails_with_one_line_naming_the_local_file():
    with pytest.raises(DataError) as error:
        load_split("rte", "train")
    message = str(error.value)
    assert "nyu-mll/glue" in message and "rte/train.jsonl" in message and "\n" not in message
