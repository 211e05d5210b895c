"""The weak "bias model" of masked debiasing (Meissner et al. 2022, after Utama et al. 2020): a
classifier under-trained on a small random sample of the training set, whose softmax on every
training example says how easily a shallow model gets it right. Its probability of the gold label
is ``bias_prob`` in the file ``masks train --objective masked-debias`` reads.

The study's settings: bert-base-uncased trained 5 epochs on 2 000 random MNLI examples (500 for
FEVER and QQP), or bert-tiny 3 epochs. The training sets: MNLI and QQP from the Hub's
``nyu-mll/glue`` (or a local GLUE folder), FEVER from Schuster's NLI-form ``fever.train.jsonl``
(claim, evidence, gold_label), or any JSONL of ``{text, text_pair?, label}``.

The labels of the file follow the classifier that will be debiased when it is given
(``classifier``: its ``config.id2label`` names, matched by name), else the task's own order."""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, ClassVar, Sequence

import numpy as np
import pandas as pd

from ..data.common import DataError, local_path, read_jsonl
from ..errors import BiasLabError
from ..models import RUN_MODEL_FOLDER
from ..progress import CancelToken, report
from ..provenance import provenance
from ..results import StoredResult
from ..store import RunStore, write_json_atomic, write_parquet_atomic, write_text_atomic
from .examples import LabelledText
from .glue import glue_task, load_split
from .train import (FinetuneSettings, clear_checkpoint, finetune, label_positions, load_classifier, normalised_label,
                    predict_logits, save_classifier)

FEVER_LABELS = ("SUPPORTS", "REFUTES", "NOT ENOUGH INFO")
# The study's sample sizes: 2 000 MNLI examples, 500 of FEVER or QQP.
DEFAULT_EXAMPLES = {"mnli": 2000, "qqp": 500, "fever": 500}
TASKS = ("mnli", "fever", "qqp")
SCORE_CHUNK = 4096  # training examples scored per unit of the run


@dataclass(frozen=True)
class BiasModelSettings:
    examples: int | None = None   # the random sample it trains on (None: the study's size for the task, else 2 000)
    epochs: int = 5
    lr: float = 2e-5
    batch_size: int = 32
    max_length: int = 128
    seed: int = 42

    def finetune_settings(self) -> FinetuneSettings:
        return FinetuneSettings(epochs=self.epochs, lr=self.lr, batch_size=self.batch_size,
                                max_length=self.max_length, seed=self.seed)

    def validate(self) -> None:
        if self.examples is not None and self.examples < 1:
            raise BiasLabError(f"examples {self.examples} must be at least 1")
        self.finetune_settings().validate()


@dataclass(frozen=True)
class TrainingSet:
    name: str
    labels: tuple[str, ...]
    examples: list[LabelledText]


def _fever_training_set(path: Path) -> TrainingSet:
    examples = []
    for number, record in read_jsonl(path, "FEVER training file", ("claim",)):
        evidence = record.get("evidence", record.get("evidence_sentence"))
        label = record.get("gold_label", record.get("label"))
        if evidence is None or label is None:
            raise DataError(f"{path} line {number}: a FEVER record needs 'evidence' (or 'evidence_sentence') and "
                            "'gold_label' (or 'label')")
        names = [normalised_label(name) for name in FEVER_LABELS]
        if normalised_label(label) not in names:
            raise DataError(f"{path} line {number}: label {label!r} is not one of {', '.join(FEVER_LABELS)}")
        examples.append(LabelledText(str(record["claim"]), str(evidence), names.index(normalised_label(label))))
    return TrainingSet("fever", FEVER_LABELS, examples)


def _file_training_set(path: Path, labels: Sequence[str] | None) -> TrainingSet:
    records = list(read_jsonl(path, "training file", ("text", "label")))
    given = [record["label"] for _, record in records]
    if labels:
        names = tuple(str(name) for name in labels)
    elif all(isinstance(value, str) for value in given):
        names = tuple(sorted(set(given)))
    elif all(isinstance(value, int) and not isinstance(value, bool) for value in given):
        names = tuple(str(i) for i in range(max(given) + 1))
    else:
        raise DataError(f"{path}: labels must be all names or all class indices (0, 1, …)")
    examples = []
    for number, record in records:
        value = record["label"]
        index = names.index(value) if isinstance(value, str) and value in names else value
        if isinstance(index, str) or isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(names):
            raise DataError(f"{path} line {number}: label {value!r} is not one of {', '.join(names)}")
        pair = record.get("text_pair")
        examples.append(LabelledText(str(record["text"]), str(pair) if pair is not None else None, index))
    return TrainingSet(path.stem, names, examples)


def load_training_set(task: str, data: str | Path | None = None, *, labels: Sequence[str] | None = None,
                      limit: int | None = None) -> TrainingSet:
    """The training set the bias model learns from and is run over: ``mnli`` / ``qqp`` (GLUE's train
    split, from ``data`` — a local GLUE folder — or the Hub), ``fever`` (``data``: Schuster's
    ``fever.train.jsonl``) or a JSONL file (``task`` itself) of ``{text, text_pair?, label}``, its
    label names given by ``labels`` or read from the file."""
    if task in ("mnli", "qqp"):
        chosen = glue_task(task)
        found = TrainingSet(task, chosen.labels, load_split(chosen, "train", data, limit=limit))
    elif task == "fever":
        path = local_path(data)
        if path is None or not path.is_file():
            raise BiasLabError("--task fever needs --data: Schuster's FEVER training file (fever.train.jsonl, JSON "
                               "lines with claim, evidence, gold_label)")
        found = _fever_training_set(path)
    else:
        path = local_path(task)
        if path is None or not path.is_file():
            raise BiasLabError(f"unknown task {task!r}: use {', '.join(TASKS)} or a JSONL file of "
                               "{text, text_pair, label} records")
        found = _file_training_set(path, labels)
    if limit is not None:
        found = TrainingSet(found.name, found.labels, found.examples[:limit])
    if not found.examples:
        raise DataError(f"the {task} training set has no examples")
    return found


def output_labels(task_labels: Sequence[str], classifier_config=None) -> list[str]:
    """The label order of the bias-probability file: the classifier's (``id2label``, matched to the
    task's labels by name) when given, else the task's. Refuses a classifier that does not name them."""
    if classifier_config is None:
        return list(task_labels)
    head = [str(classifier_config.id2label[i]) for i in sorted(classifier_config.id2label)]
    wanted = {normalised_label(name) for name in task_labels}
    if len(head) != len(task_labels) or {normalised_label(name) for name in head} != wanted:
        raise BiasLabError(f"the classifier's labels ({', '.join(head)}) are not the task's labels "
                           f"({', '.join(task_labels)}): the bias-probability file must use the debiased "
                           "classifier's label order, read from its id2label")
    return head


@dataclass
class BiasModelResult(StoredResult):
    """A trained bias model's probabilities on every training example (``bias_probs.jsonl``: text,
    text_pair, label, label_name, bias_prob, bias_probs), its training history, ``run.json`` and the
    bias model itself (``model/``)."""

    KIND: ClassVar[str] = "bias-model"
    WHAT: ClassVar[str] = "bias-model run"
    FILES: ClassVar[tuple[str, ...]] = ("bias_probs.jsonl", "history.parquet", "run.json")
    HINT: ClassVar[str] = "run `bias-lab bias-model --task mnli --out {folder}` first"
    MODEL: ClassVar[str] = RUN_MODEL_FOLDER

    folder: Path
    history: pd.DataFrame
    meta: dict = field(default_factory=dict)

    @property
    def probabilities_path(self) -> Path:
        return self.folder / self.FILES[0]

    @property
    def model_path(self) -> Path:
        return self.folder / self.MODEL

    @property
    def labels(self) -> list[str]:
        return list(self.meta.get("labels", []))

    def probabilities(self) -> pd.DataFrame:
        """The probability file as a table, one row per training example."""
        return pd.read_json(self.probabilities_path, lines=True)

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        write_parquet_atomic(folder / self.FILES[1], self.history)
        write_json_atomic(folder / self.FILES[2], self.meta)
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> "BiasModelResult":
        folder = cls.require(folder)
        return cls(folder, pd.read_parquet(folder / cls.FILES[1]), json.loads((folder / cls.FILES[2]).read_text()))


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted.astype(np.float64))
    return exp / exp.sum(axis=1, keepdims=True)


def train_bias_model(model: str, task: str, out_dir: str | Path, settings: BiasModelSettings | None = None, *,
                     data: str | Path | None = None, labels: Sequence[str] | None = None,
                     classifier: str | None = None, score_limit: int | None = None, device: str = "auto",
                     dtype: str = "float32", trust_remote_code: bool = False, store: RunStore | None = None,
                     progress: Callable | None = None, cancel: CancelToken | None = None,
                     training_set: TrainingSet | None = None) -> BiasModelResult:
    """Train the weak learner on a random sample of the task's training set and write its softmax on
    every training example (the first ``score_limit`` when given) as the bias-probability file."""
    settings = settings or BiasModelSettings()
    settings.validate()
    found = training_set or load_training_set(task, data, labels=labels, limit=score_limit)
    classifier_config = None
    if classifier is not None:
        from ..models import load_model

        classifier_config = load_model(classifier, kind="classifier", device="cpu").model.config
    order = output_labels(found.labels, classifier_config)
    size = settings.examples or DEFAULT_EXAMPLES.get(task, 2000)
    sample = sorted(random.Random(settings.seed).sample(range(len(found.examples)), min(size, len(found.examples))))
    tuning = settings.finetune_settings()
    out = Path(out_dir)
    config = {"model": model, "task": task, "data": str(data) if data is not None else None, "labels": list(found.labels),
              "classifier": classifier, "score_limit": score_limit, **asdict(settings), "examples": len(sample)}
    store = store or RunStore()
    run = store.start("bias-model", config, model=model, artifact_dir=out,
                      provenance=provenance(device, settings.seed))
    with run:
        chunks = range(0, len(found.examples), SCORE_CHUNK)
        total = tuning.steps(len(sample)) + len(chunks)
        if run.is_done("train"):
            from ..models import load_model

            loaded = load_model(out / RUN_MODEL_FOLDER, kind="classifier", device=device, dtype=dtype)
            history = run.load_unit("train")
        else:
            loaded = load_classifier(model, found.labels, device=device, dtype=dtype, seed=settings.seed,
                                     trust_remote_code=trust_remote_code)
            head = label_positions(loaded.model.config, found.labels)
            chosen = [found.examples[i] for i in sample]
            outcome = finetune(loaded, [LabelledText(e.text, e.text_pair, head[int(e.label)]) for e in chosen], tuning,
                               checkpoint_dir=out / "checkpoint", progress=progress, cancel=cancel,
                               total_steps=total, message="bias model")
            save_classifier(loaded, out / RUN_MODEL_FOLDER)
            history = pd.DataFrame(outcome.history)
            run.save_unit("train", history)
            clear_checkpoint(out / "checkpoint")
        head = label_positions(loaded.model.config, found.labels)  # task label → the bias model's output
        task_index = [normalised_label(n) for n in found.labels]
        positions = [head[task_index.index(normalised_label(name))] for name in order]  # file label → output
        rows = []
        for number, start in enumerate(chunks):
            unit = f"probs-{number:06d}"
            if not run.is_done(unit):
                part = found.examples[start:start + SCORE_CHUNK]
                probabilities = _softmax(predict_logits(loaded, part, max_length=settings.max_length,
                                                        batch_size=64, cancel=cancel))
                run.save_unit(unit, pd.DataFrame({"probs": [list(map(float, row)) for row in probabilities]}))
            rows.extend(run.load_unit(unit)["probs"].tolist())
            report(progress, tuning.steps(len(sample)) + number + 1, total, "scoring the training set")
        lines, gold_probabilities, hits = [], [], 0
        for index, (example, probs) in enumerate(zip(found.examples, rows)):
            in_order = [float(probs[p]) for p in positions]
            label = positions.index(head[int(example.label)])
            gold_probabilities.append(in_order[label])
            hits += int(np.argmax(in_order) == label)
            lines.append(json.dumps({"id": index, "text": example.text, "text_pair": example.text_pair, "label": label,
                                     "label_name": order[label], "bias_prob": in_order[label], "bias_probs": in_order}))
        write_text_atomic(out / BiasModelResult.FILES[0], "\n".join(lines) + "\n")
        summary = {"task": task, "trained_on": len(sample), "scored": len(lines), "labels": " ".join(order),
                   "accuracy": hits / len(lines), "mean_bias_prob": float(np.mean(gold_probabilities))}
        result = BiasModelResult(out, history, {"id": run.id, "kind": "bias-model", "config": run.record.config,
                                                "labels": order, "summary": summary,
                                                "provenance": run.record.provenance})
        result.save(out)
        run.complete(summary)
    return result
