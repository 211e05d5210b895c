"""The GLUE tasks: their columns, label names, dev splits and metrics, and their data from the Hub
(``nyu-mll/glue``) or from local JSON-lines files with the Hub's columns.

Every metric comes from scikit-learn or SciPy and is reported in points (× 100), as the GLUE
leaderboard does. A task's **score** is the mean of its metrics (MRPC and QQP: F1 and accuracy;
STS-B: Pearson and Spearman; MNLI: matched and mismatched accuracy); the **GLUE average** is the
mean of the task scores — WNLI only when it was asked for (the leaderboard's usual practice of
leaving it out: its dev set is adversarial and most models score below the majority class)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..data.common import DataError, load_hf_dataset, read_jsonl
from ..errors import BiasLabError
from .examples import LabelledText

GLUE_DATASET = "nyu-mll/glue"
METRIC_NAMES = ("matthews", "accuracy", "f1", "pearson", "spearman")


@dataclass(frozen=True)
class GlueTask:
    name: str
    title: str
    columns: tuple[str, ...]         # the Hub's text columns: one sentence or a pair
    labels: tuple[str, ...]          # class names in the Hub's label order; () for regression (STS-B)
    metrics: tuple[str, ...]         # of METRIC_NAMES
    dev_splits: tuple[str, ...] = ("validation",)

    @property
    def regression(self) -> bool:
        return not self.labels

    @property
    def num_labels(self) -> int:
        return 1 if self.regression else len(self.labels)

    def metric_columns(self) -> list[str]:
        """The names of its metrics in a result table (``accuracy_matched`` … for MNLI's two dev sets)."""
        if len(self.dev_splits) == 1:
            return list(self.metrics)
        return [f"{metric}_{split_suffix(split)}" for split in self.dev_splits for metric in self.metrics]


def split_suffix(split: str) -> str:
    return split.removeprefix("validation_")


TASKS: dict[str, GlueTask] = {task.name: task for task in (
    GlueTask("cola", "CoLA", ("sentence",), ("unacceptable", "acceptable"), ("matthews",)),
    GlueTask("sst2", "SST-2", ("sentence",), ("negative", "positive"), ("accuracy",)),
    GlueTask("mrpc", "MRPC", ("sentence1", "sentence2"), ("not_equivalent", "equivalent"), ("f1", "accuracy")),
    GlueTask("qqp", "QQP", ("question1", "question2"), ("not_duplicate", "duplicate"), ("f1", "accuracy")),
    GlueTask("stsb", "STS-B", ("sentence1", "sentence2"), (), ("pearson", "spearman")),
    GlueTask("mnli", "MNLI", ("premise", "hypothesis"), ("entailment", "neutral", "contradiction"), ("accuracy",),
             ("validation_matched", "validation_mismatched")),
    GlueTask("qnli", "QNLI", ("question", "sentence"), ("entailment", "not_entailment"), ("accuracy",)),
    GlueTask("rte", "RTE", ("sentence1", "sentence2"), ("entailment", "not_entailment"), ("accuracy",)),
    GlueTask("wnli", "WNLI", ("sentence1", "sentence2"), ("not_entailment", "entailment"), ("accuracy",)),
)}
DEFAULT_TASKS = tuple(name for name in TASKS if name != "wnli")
WNLI_NOTE = "WNLI left out of the average (pass --wnli to run it and count it)"


def glue_task(name: str) -> GlueTask:
    try:
        return TASKS[name]
    except KeyError:
        raise BiasLabError(f"unknown GLUE task {name!r}: use some of {', '.join(TASKS)}") from None


def chosen_tasks(names: Sequence[str] | None, *, wnli: bool = False) -> list[GlueTask]:
    """The tasks to run, in GLUE's order, each once; WNLI when named or when ``wnli`` is set."""
    names = list(names) if names else list(DEFAULT_TASKS)
    for name in names:
        glue_task(name)
    if wnli and "wnli" not in names:
        names.append("wnli")
    return [task for name, task in TASKS.items() if name in names]


# --- metrics (scikit-learn and SciPy; points) ----------------------------------------------------

def metric_value(name: str, predictions: Sequence, labels: Sequence) -> float:
    """One GLUE metric of predictions against gold labels, in points (× 100)."""
    from scipy.stats import pearsonr, spearmanr
    from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

    predictions, labels = np.asarray(predictions), np.asarray(labels)
    if len(labels) == 0:
        raise BiasLabError(f"metric {name} needs at least one example")
    if name == "matthews":
        value = matthews_corrcoef(labels, predictions)
    elif name == "accuracy":
        value = accuracy_score(labels, predictions)
    elif name == "f1":
        value = f1_score(labels, predictions)  # of the positive class (label 1), as GLUE reports it
    elif name == "pearson":
        value = pearsonr(predictions.astype(float), labels.astype(float))[0] if len(labels) > 1 else math.nan
    elif name == "spearman":
        value = spearmanr(predictions.astype(float), labels.astype(float))[0] if len(labels) > 1 else math.nan
    else:
        raise BiasLabError(f"unknown GLUE metric {name!r}: use one of {', '.join(METRIC_NAMES)}")
    return 100.0 * float(value)


def task_metrics(task: GlueTask, predictions: dict[str, Sequence], labels: dict[str, Sequence]) -> dict[str, float]:
    """Every metric of the task on each of its dev splits (``predictions``/``labels``: split → values;
    class indices in the task's label order, or numbers for STS-B), named as :meth:`GlueTask.metric_columns`."""
    values = {}
    for split in task.dev_splits:
        for metric in task.metrics:
            column = metric if len(task.dev_splits) == 1 else f"{metric}_{split_suffix(split)}"
            values[column] = metric_value(metric, predictions[split], labels[split])
    return values


def task_score(task: GlueTask, metrics: dict[str, float]) -> float:
    """The task's one number: the mean of its metrics."""
    return float(np.mean([metrics[column] for column in task.metric_columns()]))


def glue_average(scores: dict[str, float], *, wnli: bool = False) -> float:
    """The mean of the task scores (WNLI's only with ``wnli``)."""
    counted = [value for name, value in scores.items() if wnli or name != "wnli"]
    if not counted:
        raise BiasLabError("no GLUE task score to average" + ("" if wnli else " (WNLI is left out)"))
    return float(np.mean(counted))


# --- data ------------------------------------------------------------------------------------------

def _label(task: GlueTask, value, where: str):
    if task.regression:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise DataError(f"{where}: STS-B label {value!r} must be a number (similarity 0–5)")
        return float(value)
    if isinstance(value, str):
        if value in task.labels:
            return task.labels.index(value)
        raise DataError(f"{where}: label {value!r} is not one of {task.name}'s labels {', '.join(task.labels)}")
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < len(task.labels):
        raise DataError(f"{where}: label {value!r} must be 0 … {len(task.labels) - 1} "
                        f"({', '.join(task.labels)}) or one of those names")
    return int(value)


def _example(task: GlueTask, record: dict, where: str) -> LabelledText:
    texts = [str(record[column]) for column in task.columns]
    return LabelledText(texts[0], texts[1] if len(texts) > 1 else None, _label(task, record["label"], where))


def local_split_path(folder: str | Path, task: str, split: str) -> Path:
    """Where a local GLUE folder keeps a split: ``FOLDER/<task>/<split>.jsonl``."""
    return Path(folder).expanduser() / task / f"{split}.jsonl"


def read_split_file(task: GlueTask, path: str | Path, *, limit: int | None = None,
                    what: str | None = None) -> list[LabelledText]:
    """A JSON-lines file of a task's examples: the Hub's columns and ``label`` (index or name)."""
    path = Path(path)
    examples = []
    for number, record in read_jsonl(path, what or f"GLUE {task.name} file", (*task.columns, "label")):
        examples.append(_example(task, record, f"{path} line {number}"))
        if limit is not None and len(examples) >= limit:
            break
    return examples


def load_split(task: GlueTask | str, split: str, source: str | Path | None = None, *,
               limit: int | None = None) -> list[LabelledText]:
    """One split of a task: from a local folder (``FOLDER/<task>/<split>.jsonl``, one JSON object per
    line with the Hub's columns and ``label`` — the Hub's index or the label's name), or, without
    ``source``, from the Hub's ``nyu-mll/glue``. ``limit`` keeps the first N examples."""
    task = glue_task(task) if isinstance(task, str) else task
    required = (*task.columns, "label")
    if source is not None:
        folder = Path(source).expanduser()
        if not folder.is_dir():
            raise DataError(f"GLUE data folder {str(source)!r} does not exist: give a folder holding "
                            f"<task>/<split>.jsonl files (e.g. {task.name}/train.jsonl)")
        path = local_split_path(folder, task.name, split)
        if not path.is_file():
            raise DataError(f"GLUE data folder {folder} has no {task.name}/{split}.jsonl: write the split there as "
                            f"JSON lines with {', '.join(required)}")
        examples = read_split_file(task, path, limit=limit, what=f"GLUE {task.name} {split}")
    else:
        hint = f"a folder with {task.name}/{split}.jsonl (JSON lines with {', '.join(required)})"
        dataset = load_hf_dataset(GLUE_DATASET, task.name, split, f"GLUE {task.name}", hint)
        if limit is not None:
            dataset = dataset.select(range(min(limit, len(dataset))))
        examples = [_example(task, record, f"{GLUE_DATASET} {task.name} {split} row {index}")
                    for index, record in enumerate(dataset)]
    if not examples:
        raise DataError(f"GLUE {task.name} {split} has no examples")
    return examples
